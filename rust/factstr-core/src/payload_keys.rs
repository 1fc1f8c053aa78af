//! Index keys of a JSON value, shared by the stores' payload indexes.
//!
//! Every node of a payload yields one key: its path (object keys, and a marker for "some element
//! of an array", without its position) plus what sits there: a scalar value, or just "an object"
//! / "an array". If a payload contains a predicate (SPEC §3), the payload has every key the
//! predicate has, so each key of a predicate is a necessary condition for a match. Numbers are
//! keyed by value, so `1` and `1.0` share a key. Keys are length-prefixed, so no object key or
//! string can be mistaken for a separator.

use std::fmt::Write;

use serde_json::Value;

use crate::matching::{number_key, NumberKey};

/// The keys of `value` and of every node below it; container nodes (objects, arrays) only when
/// `containers` is set.
pub fn node_keys(value: &Value, containers: bool) -> Vec<String> {
    let mut keys = Vec::new();
    collect(value, &mut String::new(), containers, &mut keys);
    keys
}

fn collect(value: &Value, path: &mut String, containers: bool, keys: &mut Vec<String>) {
    let mut key = path.clone();
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                let restore = path.len();
                let _ = write!(path, "k{}:{}", name.len(), name);
                collect(child, path, containers, keys);
                path.truncate(restore);
            }
            if !containers {
                return;
            }
            key.push('o');
        }
        Value::Array(items) => {
            let restore = path.len();
            path.push('[');
            for item in items {
                collect(item, path, containers, keys);
            }
            path.truncate(restore);
            if !containers {
                return;
            }
            key.push('a');
        }
        Value::String(s) => {
            let _ = write!(key, "s{}:{}", s.len(), s);
        }
        Value::Number(n) => match number_key(n) {
            NumberKey::Integer(i) => {
                let _ = write!(key, "i{i}");
            }
            NumberKey::Float(bits) => {
                let _ = write!(key, "f{bits}");
            }
        },
        Value::Bool(b) => key.push(if *b { 't' } else { 'f' }),
        Value::Null => key.push('z'),
    }
    keys.push(key);
}

/// A stable 64-bit hash of a key (FNV-1a), for stores that index fixed-size keys. A collision
/// only adds candidates, which the matcher then rejects.
pub fn key_hash(key: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalar_keys_follow_paths_and_numbers_by_value() {
        let keys = node_keys(&json!({"a": [1, {"b": "x"}], "c": 2.0}), false);
        assert_eq!(keys, vec!["k1:a[i1", "k1:a[k1:bs1:x", "k1:ci2"]);
        assert_eq!(node_keys(&json!({"c": 2}), false), vec!["k1:ci2"]);
        assert!(node_keys(&json!({}), false).is_empty());
        assert_eq!(node_keys(&json!({}), true), vec!["o"]);
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(key_hash(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_ne!(key_hash("k1:ai1"), key_hash("k1:ai2"));
    }
}
