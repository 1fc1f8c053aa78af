//! The Memory store's indexes: postings (ascending sequence numbers) per event type and per
//! payload node, so that a selective query costs about O(matches), not O(history).
//!
//! Payload nodes are keyed as in `payload_keys`; any one key of a predicate is a necessary
//! condition, so we take the rarest key's postings as candidates and check each candidate with
//! the real matcher.

use std::collections::HashMap;

use serde_json::Value;

use crate::payload_keys::{node_keys, Scope};
use crate::types::{EventFilter, EventQuery};

#[derive(Default)]
pub struct Index {
    by_type: HashMap<Box<str>, Vec<u64>>,
    by_node: HashMap<Box<str>, Vec<u64>>,
}

/// Which facts may match a query.
pub enum Candidates<'a> {
    /// Every fact (a filter without conditions): scan the log.
    Everything,
    /// Only facts in these ascending lists (possibly overlapping), none if empty.
    Lists(Vec<&'a [u64]>),
}

impl Index {
    pub fn insert(&mut self, sequence_number: u64, event_type: &str, payload: &Value) {
        push_posting(
            self.by_type.entry(event_type.into()).or_default(),
            sequence_number,
        );
        for key in node_keys(payload, Scope::AllNodes) {
            push_posting(
                self.by_node.entry(key.into_boxed_str()).or_default(),
                sequence_number,
            );
        }
    }

    pub fn candidates(&self, query: &EventQuery) -> Candidates<'_> {
        if query.matches_everything() {
            return Candidates::Everything;
        }
        let mut lists = Vec::new();
        for filter in query.filters.iter().flatten() {
            lists.extend(self.filter_candidates(filter));
        }
        Candidates::Lists(lists)
    }

    fn filter_candidates(&self, filter: &EventFilter) -> Vec<&[u64]> {
        if filter.matches_nothing() {
            return Vec::new();
        }
        let by_type: Option<Vec<&[u64]>> = filter.event_types.as_ref().map(|types| {
            types
                .iter()
                .filter_map(|t| self.by_type.get(t.as_str()))
                .map(Vec::as_slice)
                .collect()
        });
        let by_payload: Option<Vec<&[u64]>> =
            filter.payload_predicates.as_ref().map(|predicates| {
                predicates
                    .iter()
                    .filter_map(|p| self.rarest_posting(p))
                    .collect()
            });
        match (by_type, by_payload) {
            (Some(t), Some(p)) => {
                if total_len(&t) <= total_len(&p) {
                    t
                } else {
                    p
                }
            }
            (Some(only), None) | (None, Some(only)) => only,
            // Both conditions absent means "everything", handled by `matches_everything`.
            (None, None) => Vec::new(),
        }
    }

    /// The shortest posting list among the predicate's node keys; `None` when some key was never
    /// seen, so that nothing can match.
    fn rarest_posting(&self, predicate: &Value) -> Option<&[u64]> {
        let mut best: Option<&[u64]> = None;
        for key in node_keys(predicate, Scope::AllNodes) {
            let posting = self.by_node.get(key.as_str())?.as_slice();
            if best.is_none_or(|b| posting.len() < b.len()) {
                best = Some(posting);
            }
        }
        best
    }
}

fn total_len(lists: &[&[u64]]) -> usize {
    lists.iter().map(|l| l.len()).sum()
}

fn push_posting(posting: &mut Vec<u64>, sequence_number: u64) {
    // One payload can yield the same key twice (equal array elements).
    if posting.last() != Some(&sequence_number) {
        posting.push(sequence_number);
    }
}

/// Ascending, deduplicated sequence numbers above `after` from several ascending lists.
pub fn merge_above(lists: &[&[u64]], after: u64) -> Vec<u64> {
    let tails: Vec<&[u64]> = lists
        .iter()
        .map(|l| &l[l.partition_point(|&s| s <= after)..])
        .collect();
    if tails.len() == 1 {
        return tails[0].to_vec();
    }
    let mut merged: Vec<u64> = tails.concat();
    merged.sort_unstable();
    merged.dedup();
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filter(types: Option<Vec<&str>>, predicates: Option<Vec<Value>>) -> EventQuery {
        EventQuery {
            filters: Some(vec![EventFilter {
                event_types: types.map(|t| t.into_iter().map(String::from).collect()),
                payload_predicates: predicates,
            }]),
            min_sequence_number: None,
        }
    }

    fn candidate_set(index: &Index, query: &EventQuery) -> Option<Vec<u64>> {
        match index.candidates(query) {
            Candidates::Everything => None,
            Candidates::Lists(lists) => Some(merge_above(&lists, 0)),
        }
    }

    #[test]
    fn candidates_are_a_superset_of_matches_and_selective() {
        let mut index = Index::default();
        index.insert(1, "a", &json!({"k": 1, "tags": ["x", "y"]}));
        index.insert(2, "b", &json!({"k": 2.0}));
        index.insert(3, "a", &json!({"k": 2, "n": {"deep": true}}));
        index.insert(4, "a", &json!([1, 1]));

        assert_eq!(
            candidate_set(&index, &filter(None, Some(vec![json!({"k": 2})]))),
            Some(vec![2, 3])
        );
        assert_eq!(
            candidate_set(&index, &filter(None, Some(vec![json!({"tags": ["y"]})]))),
            Some(vec![1])
        );
        assert_eq!(
            candidate_set(&index, &filter(None, Some(vec![json!({"missing": 1})]))),
            Some(vec![])
        );
        assert_eq!(
            candidate_set(&index, &filter(Some(vec!["b"]), None)),
            Some(vec![2])
        );
        assert_eq!(
            candidate_set(&index, &filter(Some(vec![]), None)),
            Some(vec![])
        );
        assert_eq!(
            candidate_set(&index, &filter(None, Some(vec![json!({"n": {}})]))),
            Some(vec![3])
        );
        assert_eq!(
            candidate_set(&index, &filter(None, Some(vec![json!([1])]))),
            Some(vec![4])
        );
        assert_eq!(candidate_set(&index, &filter(None, None)), None);
        assert_eq!(candidate_set(&index, &EventQuery::all()), None);
    }

    #[test]
    fn keys_cannot_be_confused() {
        let mut index = Index::default();
        index.insert(1, "a", &json!({"k1:x": "y"}));
        assert_eq!(
            candidate_set(&index, &filter(None, Some(vec![json!({"k": {"x": "y"}})]))),
            Some(vec![])
        );
    }

    #[test]
    fn merge_keeps_order_and_drops_duplicates() {
        assert_eq!(merge_above(&[&[1, 3, 5], &[2, 3, 6]], 2), vec![3, 5, 6]);
        assert_eq!(merge_above(&[&[1, 3, 5]], 3), vec![5]);
    }
}
