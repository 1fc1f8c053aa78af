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

/// An object member with this name, and everything under it, yields no key: its contents are
/// kept and matched but never indexed (ciphertext, compressed bytes; `factstr.eventsourcing`
/// stores non-JSON state there). A predicate on it alone is answered by a scan or the type index.
pub const OPAQUE: &str = "$opaque";

/// Which nodes yield keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every node: objects, arrays and scalars (an in-memory index, where a key is cheap).
    AllNodes,
    /// Strings and numbers only (a disk index, where each key is a row). Containers, booleans
    /// and null split a log into a few huge groups and never narrow a search much; predicates
    /// on them alone are answered through the type index or a scan, and checked by the matcher.
    /// The disk indexes hash these keys directly (`selective_key_hashes`); their text form is
    /// used by the tests that compare the two.
    #[cfg_attr(not(test), allow(dead_code))]
    SelectiveScalars,
}

/// The keys of `value` and of every node below it, within `scope`.
pub fn node_keys(value: &Value, scope: Scope) -> Vec<String> {
    let mut keys = Vec::new();
    collect(value, &String::new(), scope == Scope::AllNodes, &mut keys);
    keys
}

/// Walks `value`, writing each node's key into a copy of its path: `K` is the key text
/// (`String`) or its hash (`Fnv`), so both come from this one definition of a key.
fn collect<K: Write + Clone>(value: &Value, path: &K, containers: bool, keys: &mut Vec<K>) {
    let mut key = path.clone();
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                if name == OPAQUE {
                    continue;
                }
                let mut step = path.clone();
                let _ = write!(step, "k{}:{}", name.len(), name);
                collect(child, &step, containers, keys);
            }
            if !containers {
                return;
            }
            let _ = key.write_char('o');
        }
        Value::Array(items) => {
            let mut step = path.clone();
            let _ = step.write_char('[');
            for item in items {
                collect(item, &step, containers, keys);
            }
            if !containers {
                return;
            }
            let _ = key.write_char('a');
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
        // Booleans and null are keyed only where containers are (see `Scope`).
        Value::Bool(_) | Value::Null if !containers => return,
        Value::Bool(b) => {
            let _ = key.write_char(if *b { 't' } else { 'f' });
        }
        Value::Null => {
            let _ = key.write_char('z');
        }
    }
    keys.push(key);
}

/// A stable 64-bit hash of a key (FNV-1a), for stores that index fixed-size keys. A collision
/// only adds candidates, which the matcher then rejects.
pub fn key_hash(key: &str) -> i64 {
    let mut hash = Fnv::new();
    hash.add(key.as_bytes());
    hash.0 as i64
}

/// A short hash (32 bits, see `Fnv::short`) of every key `node_keys` yields for `value` in the
/// `SelectiveScalars` scope, computed without building the key texts (this runs for every
/// appended event).
pub fn selective_key_hashes(value: &Value) -> Vec<i64> {
    let mut hashes = Vec::new();
    collect(value, &Fnv::new(), false, &mut hashes);
    hashes.into_iter().map(|h| h.short()).collect()
}

/// FNV-1a, fed through `fmt::Write` so that formatted key parts need no allocation.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// The hash folded to 32 bits, for a disk index: its rows stay small (fewer pages to write
    /// per commit), and with a million distinct keys a lookup meets a colliding key's rows
    /// about once in four thousand lookups.
    fn short(self) -> i64 {
        i64::from((self.0 ^ (self.0 >> 32)) as u32)
    }

    fn add(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

impl Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.add(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalar_keys_follow_paths_and_numbers_by_value() {
        let keys = node_keys(
            &json!({"a": [1, {"b": "x"}], "c": 2.0, "d": true, "e": null}),
            Scope::SelectiveScalars,
        );
        assert_eq!(keys, vec!["k1:a[i1", "k1:a[k1:bs1:x", "k1:ci2"]);
        assert_eq!(
            node_keys(&json!({"c": 2}), Scope::SelectiveScalars),
            vec!["k1:ci2"]
        );
        assert!(node_keys(&json!({}), Scope::SelectiveScalars).is_empty());
        assert_eq!(node_keys(&json!({}), Scope::AllNodes), vec!["o"]);
        assert_eq!(
            node_keys(&json!({"d": true}), Scope::AllNodes),
            vec!["k1:dt", "o"]
        );
    }

    #[test]
    fn direct_hashes_equal_hashes_of_key_texts() {
        let value = json!({"a": [1, {"b": "x"}, [2.5, "y"]], "c": 2.0, "d": true, "e": null, "k1:x": "z", "": ""});
        let texts: Vec<i64> = node_keys(&value, Scope::SelectiveScalars)
            .iter()
            .map(|k| {
                let mut hash = Fnv::new();
                hash.add(k.as_bytes());
                hash.short()
            })
            .collect();
        assert_eq!(selective_key_hashes(&value), texts);
    }

    #[test]
    fn opaque_members_yield_no_keys() {
        let value =
            json!({"a": "x", "$opaque": {"state": "c2VjcmV0", "n": 1}, "b": {"$opaque": [1]}});
        let with = node_keys(&value, Scope::AllNodes);
        let without = node_keys(&json!({"a": "x", "b": {}}), Scope::AllNodes);
        assert_eq!(with, without);
        assert_eq!(
            selective_key_hashes(&value),
            selective_key_hashes(&json!({"a": "x"}))
        );
    }

    #[test]
    fn hash_is_stable() {
        assert_eq!(key_hash(""), 0xcbf2_9ce4_8422_2325_u64 as i64);
        assert_ne!(key_hash("k1:ai1"), key_hash("k1:ai2"));
    }
}
