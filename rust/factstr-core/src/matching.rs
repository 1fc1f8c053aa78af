//! Matching (SPEC §3): the one implementation used by queries, `append_if` contexts, streams
//! and durable streams in every store.

use serde_json::{Number, Value};

use crate::types::{EventFilter, EventQuery};

impl EventQuery {
    /// Whether a fact matches the filters (the lower bound is not checked here).
    pub fn matches(&self, event_type: &str, payload: &Value) -> bool {
        match &self.filters {
            None => true,
            Some(filters) if filters.is_empty() => true,
            Some(filters) => filters
                .iter()
                .any(|filter| filter.matches(event_type, payload)),
        }
    }

    /// Whether the query matches every fact, so that no index is needed.
    pub fn matches_everything(&self) -> bool {
        match &self.filters {
            None => true,
            Some(filters) => {
                filters.is_empty()
                    || filters
                        .iter()
                        .any(|f| f.event_types.is_none() && f.payload_predicates.is_none())
            }
        }
    }
}

impl EventFilter {
    pub fn matches(&self, event_type: &str, payload: &Value) -> bool {
        let type_matches = match &self.event_types {
            None => true,
            Some(types) => types.iter().any(|t| t == event_type),
        };
        type_matches
            && match &self.payload_predicates {
                None => true,
                Some(predicates) => predicates.iter().any(|p| contains(payload, p)),
            }
    }

    /// Whether the filter can match nothing at all (an explicit empty set somewhere).
    pub fn matches_nothing(&self) -> bool {
        matches!(&self.event_types, Some(t) if t.is_empty())
            || matches!(&self.payload_predicates, Some(p) if p.is_empty())
    }
}

/// `payload` contains `pattern`, recursively: objects by subset of keys, arrays by every pattern
/// element being contained in some payload element, scalars by equality, numbers by value.
pub fn contains(payload: &Value, pattern: &Value) -> bool {
    match (payload, pattern) {
        (Value::Object(have), Value::Object(want)) => want
            .iter()
            .all(|(key, wanted)| have.get(key).is_some_and(|value| contains(value, wanted))),
        (Value::Array(have), Value::Array(want)) => want
            .iter()
            .all(|wanted| have.iter().any(|value| contains(value, wanted))),
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Null, Value::Null) => true,
        _ => false,
    }
}

/// A number as an exact key: integers (and floats with an integral value that fits) as i128,
/// other floats by their bits. Two numbers are equal by value iff their keys are equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NumberKey {
    Integer(i128),
    Float(u64),
}

pub fn number_key(number: &Number) -> NumberKey {
    if let Some(i) = number.as_i64() {
        return NumberKey::Integer(i128::from(i));
    }
    if let Some(u) = number.as_u64() {
        return NumberKey::Integer(i128::from(u));
    }
    let f = number.as_f64().unwrap_or(f64::NAN);
    // 2^64 and -2^63 bound every integer a payload can hold; within them an integral float is
    // converted exactly, so `1.0` and `1` share a key.
    if f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..18_446_744_073_709_551_616.0).contains(&f)
    {
        return NumberKey::Integer(f as i128);
    }
    // -0.0 has an integral value and was handled above; NaN and infinities never reach here.
    NumberKey::Float(f.to_bits())
}

pub fn numbers_equal(a: &Number, b: &Number) -> bool {
    number_key(a) == number_key(b)
}

/// Equality of JSON values with numbers compared by value (`1` equals `1.0`), as Python does.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_equal(v, w))
        }
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        _ => a == b,
    }
}

/// Value equality of filters (payload predicates compared with `json_equal`).
pub fn filters_equal(a: &EventFilter, b: &EventFilter) -> bool {
    a.event_types == b.event_types
        && match (&a.payload_predicates, &b.payload_predicates) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
            }
            _ => false,
        }
}

/// Value equality of queries: same filters (by `filters_equal`) and same lower bound.
pub fn queries_equal(a: &EventQuery, b: &EventQuery) -> bool {
    a.min_sequence_number == b.min_sequence_number
        && match (&a.filters, &b.filters) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(f, g)| filters_equal(f, g))
            }
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_match_by_subset_of_keys() {
        assert!(contains(&json!({"a": 1, "b": 2}), &json!({"a": 1})));
        assert!(!contains(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(contains(&json!({"a": 1}), &json!({})));
        assert!(!contains(&json!([1]), &json!({})));
        assert!(!contains(&json!("x"), &json!({})));
    }

    #[test]
    fn arrays_match_by_elements_in_any_order() {
        assert!(contains(&json!([1, 2, 3]), &json!([3, 1])));
        assert!(contains(&json!([1, 2, 3]), &json!([1, 1])));
        assert!(contains(&json!([1]), &json!([])));
        assert!(!contains(&json!({}), &json!([])));
        assert!(!contains(&json!([1, 2]), &json!([4])));
        assert!(contains(
            &json!([{"a": 1, "b": 2}, {"c": 3}]),
            &json!([{"a": 1}])
        ));
        assert!(!contains(
            &json!([{"a": 1}, {"b": 2}]),
            &json!([{"a": 1, "b": 2}])
        ));
    }

    #[test]
    fn scalars_match_by_value_and_never_inside_arrays() {
        assert!(contains(&json!(1), &json!(1.0)));
        assert!(contains(&json!(1.5), &json!(1.5)));
        assert!(!contains(&json!(1), &json!(true)));
        assert!(!contains(&json!([1]), &json!(1)));
        assert!(!contains(&json!({"a": [1]}), &json!({"a": 1})));
        assert!(contains(&json!(null), &json!(null)));
        assert!(!contains(&json!(null), &json!({})));
        assert!(contains(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!contains(&json!(u64::MAX), &json!(i64::MAX)));
        assert!(contains(&json!(-0.0), &json!(0)));
    }

    #[test]
    fn none_and_empty_differ_at_every_level() {
        let any = EventFilter {
            event_types: None,
            payload_predicates: None,
        };
        let no_types = EventFilter {
            event_types: Some(vec![]),
            payload_predicates: None,
        };
        let no_payloads = EventFilter {
            event_types: None,
            payload_predicates: Some(vec![]),
        };
        let payload = json!({"a": 1});
        assert!(any.matches("t", &payload));
        assert!(!no_types.matches("t", &payload));
        assert!(!no_payloads.matches("t", &payload));
        assert!(EventQuery {
            filters: None,
            min_sequence_number: None
        }
        .matches("t", &payload));
        assert!(EventQuery {
            filters: Some(vec![]),
            min_sequence_number: None
        }
        .matches("t", &payload));
        let two = EventQuery {
            filters: Some(vec![no_types, any]),
            min_sequence_number: None,
        };
        assert!(two.matches("t", &payload));
    }

    #[test]
    fn a_filter_needs_type_and_payload() {
        let filter = EventFilter {
            event_types: Some(vec!["a".into(), "b".into()]),
            payload_predicates: Some(vec![json!({"x": 1}), json!({"y": 2})]),
        };
        assert!(filter.matches("a", &json!({"x": 1})));
        assert!(filter.matches("b", &json!({"y": 2, "z": 0})));
        assert!(!filter.matches("c", &json!({"x": 1})));
        assert!(!filter.matches("a", &json!({"x": 2})));
    }
}
