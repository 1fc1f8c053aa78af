//! The stored form of a durable stream's query: the JSON text the upstream crates write in
//! their cursor tables (`{"filters":...,"min_sequence_number":null}`, compact, keys sorted), so
//! that cursors are shared with FACTSTR for Rust.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::types::{EventFilter, EventQuery};

pub fn query_to_json(query: &EventQuery) -> String {
    let filters = query.filters.as_ref().map(|filters| {
        filters
            .iter()
            .map(|f| json!({"event_types": f.event_types, "payload_predicates": f.payload_predicates}))
            .collect::<Vec<_>>()
    });
    json!({"filters": filters, "min_sequence_number": query.min_sequence_number}).to_string()
}

pub fn query_from_json(text: &str) -> Result<EventQuery> {
    let bad = |why: &str| {
        Error::Backend(format!(
            "stored durable query is not readable ({why}): {text}"
        ))
    };
    let value: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let object = value.as_object().ok_or_else(|| bad("not an object"))?;
    let filters = match object.get("filters") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| {
                    item.as_object()
                        .map(filter_from_json)
                        .ok_or_else(|| bad("filter is not an object"))?
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        Some(_) => return Err(bad("filters is not a list")),
    };
    let min_sequence_number = match object.get("min_sequence_number") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| bad("min_sequence_number is not a number"))?,
        ),
    };
    Ok(EventQuery {
        filters,
        min_sequence_number,
    })
}

fn filter_from_json(object: &Map<String, Value>) -> Result<EventFilter> {
    let event_types = match object.get("event_types") {
        None | Some(Value::Null) => None,
        Some(Value::Array(types)) => Some(
            types
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::Backend("stored event type is not a string".to_owned()))?,
        ),
        Some(_) => {
            return Err(Error::Backend(
                "stored event_types is not a list".to_owned(),
            ))
        }
    };
    let payload_predicates = match object.get("payload_predicates") {
        None | Some(Value::Null) => None,
        Some(Value::Array(predicates)) => Some(predicates.clone()),
        Some(_) => {
            return Err(Error::Backend(
                "stored payload_predicates is not a list".to_owned(),
            ))
        }
    };
    Ok(EventFilter {
        event_types,
        payload_predicates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_shapes() {
        assert_eq!(
            query_to_json(&EventQuery::all()),
            r#"{"filters":null,"min_sequence_number":null}"#
        );
        let q = EventQuery {
            filters: Some(vec![EventFilter {
                event_types: Some(vec!["a".into()]),
                payload_predicates: Some(vec![json!({"b": 1, "a": "x"})]),
            }]),
            min_sequence_number: None,
        };
        let text = query_to_json(&q);
        assert_eq!(
            text,
            r#"{"filters":[{"event_types":["a"],"payload_predicates":[{"a":"x","b":1}]}],"min_sequence_number":null}"#
        );
        assert_eq!(query_from_json(&text).unwrap(), q);
        assert!(query_from_json("nope").is_err());
    }
}
