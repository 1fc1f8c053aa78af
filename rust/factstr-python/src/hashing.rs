//! Hashes of the value classes, consistent with their equality (SPEC §11: equal values, equal
//! hashes). Equality compares JSON numbers by value (`1 == 1.0`) and objects regardless of key
//! order, so the hash goes through `number_key` and combines object entries order-independently.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use factstr_core as core;
use factstr_core::matching::number_key;
use serde_json::Value;

fn finish(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

fn write_json(value: &Value, state: &mut impl Hasher) {
    match value {
        Value::Null => 0u8.hash(state),
        Value::Bool(b) => (1u8, b).hash(state),
        Value::Number(n) => (2u8, number_key(n)).hash(state),
        Value::String(s) => (3u8, s).hash(state),
        Value::Array(items) => {
            (4u8, items.len()).hash(state);
            items.iter().for_each(|item| write_json(item, state));
        }
        Value::Object(map) => {
            // Wrapping sum of per-entry hashes: independent of the order entries come in.
            let entries = map.iter().fold(0u64, |sum, (key, value)| {
                let mut entry = DefaultHasher::new();
                key.hash(&mut entry);
                write_json(value, &mut entry);
                sum.wrapping_add(entry.finish())
            });
            (5u8, map.len(), entries).hash(state);
        }
    }
}

pub fn json_hash(value: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    write_json(value, &mut hasher);
    hasher.finish()
}

fn write_filter(filter: &core::EventFilter, state: &mut impl Hasher) {
    filter.event_types.hash(state);
    match &filter.payload_predicates {
        None => 0u8.hash(state),
        Some(predicates) => {
            (1u8, predicates.len()).hash(state);
            predicates.iter().for_each(|p| write_json(p, state));
        }
    }
}

pub fn filter_hash(filter: &core::EventFilter) -> u64 {
    let mut hasher = DefaultHasher::new();
    write_filter(filter, &mut hasher);
    hasher.finish()
}

pub fn query_hash(query: &core::EventQuery) -> u64 {
    let mut hasher = DefaultHasher::new();
    query.min_sequence_number.hash(&mut hasher);
    match &query.filters {
        None => 0u8.hash(&mut hasher),
        Some(filters) => {
            (1u8, filters.len()).hash(&mut hasher);
            filters.iter().for_each(|f| write_filter(f, &mut hasher));
        }
    }
    hasher.finish()
}

pub fn text_hash(text: &str) -> u64 {
    finish(text)
}

/// Combines already computed hashes (of the fields of one value) in order.
pub fn combine(parts: &[u64]) -> u64 {
    finish(parts)
}
