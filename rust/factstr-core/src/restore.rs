//! Restoring a log from an export (SPEC §14, `factstr import`/`copy`): batches written with the
//! sequence numbers and `occurred_at` they had in the source, and durable streams created with a
//! given query and cursor. Internal: only the command line uses it (through private methods of
//! the native stores); it is not part of the public API, because it lets the caller choose times.
//!
//! A restored batch goes through each store's ordinary append path (the same rows, batch
//! boundaries and index entries as `append`, SPEC §9), with two differences: the batch's
//! `occurred_at` is the given one, and the write continues the log only directly after its head
//! (anything else is refused with `InvalidInput` naming both numbers, nothing written).

use crate::error::{Error, Result};
use crate::store::EventStore;
use crate::types::{AppendResult, EventQuery, NewEvent, Timestamp};

/// One batch of an export: its first sequence number, its commit time and its events.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoredBatch {
    pub first_sequence_number: u64,
    pub occurred_at: Timestamp,
    pub events: Vec<NewEvent>,
}

impl RestoredBatch {
    pub fn last_sequence_number(&self) -> u64 {
        self.first_sequence_number + self.events.len() as u64 - 1
    }
}

/// One fact as the store keeps it, its payload as stored JSON text (for `factstr export`, which
/// can then copy the text instead of parsing and writing it again: see
/// `EventStore::read_text_batches`).
#[derive(Debug, Clone, PartialEq)]
pub struct TextRecord {
    pub sequence_number: u64,
    pub occurred_at: Timestamp,
    pub event_type: String,
    pub payload_text: String,
}

/// A committed batch of `TextRecord`s and its last sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct TextBatch {
    pub last_sequence_number: u64,
    pub records: Vec<TextRecord>,
}

/// Whole batches after a position, as `read_batches` pages them (`scanned_to`: every fact up to
/// it is in this or an earlier page).
#[derive(Debug, Clone, PartialEq)]
pub struct TextPage {
    pub batches: Vec<TextBatch>,
    pub scanned_to: u64,
}

/// Checks that `batches` are non-empty, numbered consecutively from the first one, with times
/// the stores can hold; returns what writing all of them will report.
pub fn check_batches(batches: &[RestoredBatch]) -> Result<AppendResult> {
    let Some(first) = batches.first() else {
        return Err(Error::EmptyAppend);
    };
    let mut next = first.first_sequence_number;
    if next == 0 {
        return Err(Error::InvalidInput(
            "a restored batch cannot start at sequence number 0".to_owned(),
        ));
    }
    for batch in batches {
        if batch.events.is_empty() {
            return Err(Error::InvalidInput(format!(
                "the restored batch at sequence number {} has no events",
                batch.first_sequence_number
            )));
        }
        if batch.first_sequence_number != next {
            return Err(Error::InvalidInput(format!(
                "restored batches must be consecutive: expected one starting at {next}, got {}",
                batch.first_sequence_number
            )));
        }
        if batch.occurred_at < 0 {
            return Err(Error::InvalidInput(format!(
                "the restored batch at sequence number {} has an occurred_at before 1970",
                batch.first_sequence_number
            )));
        }
        next = batch
            .first_sequence_number
            .checked_add(batch.events.len() as u64)
            .filter(|n| *n <= i64::MAX as u64)
            .ok_or_else(|| Error::InvalidInput("restored sequence numbers overflow".to_owned()))?;
    }
    let last = next - 1;
    Ok(AppendResult {
        first_sequence_number: first.first_sequence_number,
        last_sequence_number: last,
        committed_count: last - first.first_sequence_number + 1,
    })
}

/// The error for batches that do not start directly after the head (read under the write lock).
pub fn not_after_head(first: u64, head: u64) -> Error {
    Error::InvalidInput(format!(
        "restored batches must continue the log directly after its head: the store's head is \
         {head}, so the next batch must start at {}, not {first}",
        head + 1
    ))
}

/// Creates the durable stream `name` with `query` at `cursor`, through the ordinary durable
/// interface (claim, advance, release), so it needs nothing of a store. Refused when the name
/// exists already (an import never overwrites a cursor) or is held.
pub fn restore_durable_stream(
    store: &dyn EventStore,
    name: &str,
    query: &EventQuery,
    cursor: u64,
) -> Result<()> {
    if store
        .durable_streams()?
        .iter()
        .any(|info| info.name == name)
    {
        return Err(Error::DurableStream(format!(
            "durable stream {name:?} exists already in the target"
        )));
    }
    let (lease, _) = store.acquire_durable(name, query)?;
    let saved = if cursor > 0 {
        store.save_durable_cursor(name, lease, cursor)
    } else {
        Ok(())
    };
    let released = store.release_durable(name, lease);
    saved.and(released)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use serde_json::json;

    fn batch(first: u64, count: usize, occurred_at: Timestamp) -> RestoredBatch {
        RestoredBatch {
            first_sequence_number: first,
            occurred_at,
            events: (0..count)
                .map(|i| NewEvent::new("t", json!({ "i": i })))
                .collect(),
        }
    }

    #[test]
    fn batches_must_be_consecutive_and_non_empty() {
        assert_eq!(
            check_batches(&[batch(1, 2, 5), batch(3, 1, 6)]).unwrap(),
            AppendResult {
                first_sequence_number: 1,
                last_sequence_number: 3,
                committed_count: 3
            }
        );
        assert!(check_batches(&[batch(1, 2, 5), batch(4, 1, 6)]).is_err());
        assert!(check_batches(&[batch(1, 0, 5)]).is_err());
        assert!(check_batches(&[batch(0, 1, 5)]).is_err());
        assert!(check_batches(&[batch(1, 1, -1)]).is_err());
        assert_eq!(check_batches(&[]), Err(Error::EmptyAppend));
    }

    #[test]
    fn memory_restore_keeps_numbers_times_and_boundaries() {
        let store = MemoryStore::new();
        store
            .restore_batches(vec![batch(1, 2, 1_000_000), batch(3, 1, 2_000_000)])
            .unwrap();
        let page = store.read_batches(0, &EventQuery::all(), 100).unwrap();
        let shapes: Vec<(usize, u64, Timestamp)> = page
            .batches
            .iter()
            .map(|b| {
                (
                    b.records.len(),
                    b.last_sequence_number,
                    b.records[0].occurred_at,
                )
            })
            .collect();
        assert_eq!(shapes, vec![(2, 2, 1_000_000), (1, 3, 2_000_000)]);
        let refused = store.restore_batches(vec![batch(5, 1, 0)]).unwrap_err();
        assert!(refused.to_string().contains("head is 3"), "{refused}");
        assert_eq!(store.head().unwrap(), 3);
    }

    #[test]
    fn durable_streams_are_restored_once() {
        let store = MemoryStore::new();
        let query = EventQuery::for_event_types(["t"]);
        restore_durable_stream(&store, "p", &query, 7).unwrap();
        let listed = store.durable_streams().unwrap();
        assert_eq!(listed[0].last_processed_sequence_number, 7);
        assert_eq!(listed[0].query, query);
        assert!(restore_durable_stream(&store, "p", &query, 1).is_err());
    }
}
