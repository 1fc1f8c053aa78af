//! The Memory store: the whole contract in process memory, for tests and local work.
//!
//! One `RwLock` guards the log and its indexes: appends serialise on the write lock (which is
//! what makes commit order equal sequence order), queries share the read lock. Records are
//! cheap `Arc` clones, so the lock is held only while the matching sequence numbers are found.
//! Durable cursors live as long as the store object (SPEC §6); a durable name is held by being
//! in the set of held names.

mod idempotency;
mod index;
mod restore;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::clock::now_micros;
use crate::error::{Error, Result};
use crate::idempotency::Retention;
use crate::restore::RestoredBatch;
use crate::store::{AppendRequest, AtOnce, Storage, Store};
use crate::types::{
    AppendResult, Batch, BatchPage, DurableStreamInfo, EventQuery, EventRecord, NewEvent,
    QueryResult, Timestamp,
};
use index::{merge_above, Candidates, Index};

/// The Memory store (see `store` for what every store shares).
pub type MemoryStore = Store<MemoryStorage>;

#[derive(Default)]
pub struct MemoryStorage {
    log: RwLock<Log>,
    /// Per durable name: its query and cursor.
    cursors: Mutex<BTreeMap<String, (EventQuery, u64)>>,
    held: Arc<Mutex<HashSet<String>>>,
}

/// A held durable name: in the set of held names until dropped.
pub struct HeldName {
    name: String,
    held: Arc<Mutex<HashSet<String>>>,
}

impl Drop for HeldName {
    fn drop(&mut self) {
        self.held.lock().remove(&self.name);
    }
}

#[derive(Default)]
struct Log {
    /// `records[i]` has sequence number `i + 1`.
    records: Vec<EventRecord>,
    /// The last sequence number of the batch that `records[i]` belongs to.
    batch_ends: Vec<u64>,
    index: Index,
    keys: idempotency::KeyTable,
}

impl MemoryStore {
    pub fn new() -> Self {
        Store::from_storage(MemoryStorage::default())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Log {
    fn commit(&mut self, events: Vec<NewEvent>) -> AppendResult {
        self.commit_at(events, now_micros())
    }

    /// `commit` with a given `occurred_at` (a restored batch keeps its own, see `restore`).
    fn commit_at(&mut self, events: Vec<NewEvent>, occurred_at: Timestamp) -> AppendResult {
        let first = self.records.len() as u64 + 1;
        let count = events.len() as u64;
        let last = first + count - 1;
        self.records.reserve(events.len());
        for (offset, event) in events.into_iter().enumerate() {
            let sequence_number = first + offset as u64;
            self.index
                .insert(sequence_number, &event.event_type, &event.payload);
            self.records.push(EventRecord {
                sequence_number,
                occurred_at,
                event_type: event.event_type,
                payload: event.payload,
            });
            self.batch_ends.push(last);
        }
        AppendResult {
            first_sequence_number: first,
            last_sequence_number: last,
            committed_count: count,
        }
    }

    fn head(&self) -> u64 {
        self.records.len() as u64
    }

    fn record(&self, sequence_number: u64) -> &EventRecord {
        &self.records[(sequence_number - 1) as usize]
    }

    fn is_match(&self, query: &EventQuery, sequence_number: u64) -> bool {
        let record = self.record(sequence_number);
        query.matches(&record.event_type, &record.payload)
    }

    /// Visits the matching sequence numbers above `after` in ascending order until `visit`
    /// returns false.
    fn for_each_match(&self, query: &EventQuery, after: u64, mut visit: impl FnMut(u64) -> bool) {
        let after = after.max(query.min_sequence_number.unwrap_or(0));
        match self.index.candidates(query) {
            Candidates::Everything => {
                for sequence_number in after.saturating_add(1)..=self.head() {
                    if !visit(sequence_number) {
                        return;
                    }
                }
            }
            Candidates::Lists(lists) => {
                for sequence_number in merge_above(&lists, after) {
                    if self.is_match(query, sequence_number) && !visit(sequence_number) {
                        return;
                    }
                }
            }
        }
    }

    /// The highest matching sequence number, ignoring the query's lower bound.
    fn context_version(&self, query: &EventQuery) -> Option<u64> {
        match self.index.candidates(query) {
            Candidates::Everything => (self.head() > 0).then(|| self.head()),
            Candidates::Lists(lists) => {
                let mut best: Option<u64> = None;
                for list in lists {
                    // Each list is ascending: walk it backwards to its first real match, and
                    // stop early where it cannot beat the best found so far.
                    for &sequence_number in list.iter().rev() {
                        if best.is_some_and(|b| sequence_number <= b) {
                            break;
                        }
                        if self.is_match(query, sequence_number) {
                            best = Some(sequence_number);
                            break;
                        }
                    }
                }
                best
            }
        }
    }
}

impl Storage for MemoryStorage {
    type NameLock = HeldName;
    const BOUND_TO_PROCESS: bool = false;
    const LARGEST_NUMBER: u64 = u64::MAX;

    fn append(&self, request: AppendRequest<'_>) -> Result<AppendResult> {
        let mut log = self.log.write();
        let key = request.idempotency_key.as_ref();
        if let Some(committed) = key.and_then(|key| log.keys.find(key)) {
            return Ok(committed);
        }
        if let Some(condition) = request.condition {
            condition.check(log.context_version(condition.context()))?;
        }
        let result = log.commit(request.events);
        if let Some(key) = key {
            log.keys
                .record(key, &result, now_micros(), Retention::current());
        }
        Ok(result)
    }

    fn append_at_once<'a>(&self, request: AppendRequest<'a>) -> AtOnce<AppendRequest<'a>> {
        // A condition may scan the log: not at once (nor a key: its lookup is `append`'s). Neither is waiting for a reader (a long
        // query) or another writer to let go of the log.
        if request.condition.is_some() || request.idempotency_key.is_some() {
            return AtOnce::Busy(request);
        }
        match self.log.try_write() {
            Some(mut log) => AtOnce::Done(Ok(log.commit(request.events))),
            None => AtOnce::Busy(request),
        }
    }

    fn query(&self, query: &EventQuery, limit: Option<usize>) -> Result<QueryResult> {
        let log = self.log.read();
        let limit = limit.unwrap_or(usize::MAX);
        let mut event_records = Vec::new();
        if limit > 0 {
            log.for_each_match(query, 0, |sequence_number| {
                event_records.push(log.record(sequence_number).clone());
                event_records.len() < limit
            });
        }
        let current_context_version = log.context_version(query);
        Ok(QueryResult {
            last_returned_sequence_number: event_records.last().map(|r| r.sequence_number),
            event_records,
            current_context_version,
            head_sequence_number: (log.head() > 0).then(|| log.head()),
        })
    }

    fn read_batches(&self, after: u64, query: &EventQuery, max_events: usize) -> Result<BatchPage> {
        let log = self.log.read();
        let mut page = BatchPage {
            batches: Vec::new(),
            scanned_to: log.head(),
        };
        let mut taken = 0usize;
        log.for_each_match(query, after, |sequence_number| {
            let batch_end = log.batch_ends[(sequence_number - 1) as usize];
            match page.batches.last_mut() {
                Some(batch) if batch.last_sequence_number == batch_end => {}
                _ => {
                    if taken >= max_events {
                        // Stop at a batch boundary: everything before this batch is looked at.
                        page.scanned_to = sequence_number - 1;
                        return false;
                    }
                    page.batches.push(Batch {
                        records: Vec::new(),
                        last_sequence_number: batch_end,
                    });
                }
            }
            taken += 1;
            page.batches
                .last_mut()
                .expect("pushed above")
                .records
                .push(log.record(sequence_number).clone());
            true
        });
        // A page that stopped early ends at its last whole batch.
        if let Some(last) = page.batches.last() {
            if page.scanned_to < last.last_sequence_number {
                page.scanned_to = last.last_sequence_number;
            }
        }
        Ok(page)
    }

    fn restore(&self, batches: Vec<RestoredBatch>, written: AppendResult) -> Result<AppendResult> {
        self.restore_after_head(batches, written)
    }

    fn head(&self) -> Result<u64> {
        Ok(self.log.read().head())
    }

    fn stored_query(&self, name: &str) -> Result<Option<EventQuery>> {
        Ok(self
            .cursors
            .lock()
            .get(name)
            .map(|(query, _)| query.clone()))
    }

    fn lock_name(&self, name: &str) -> Result<HeldName> {
        if !self.held.lock().insert(name.to_owned()) {
            return Err(Error::DurableStreamActive(name.to_owned()));
        }
        Ok(HeldName {
            name: name.to_owned(),
            held: Arc::clone(&self.held),
        })
    }

    fn create_cursor(&self, name: &str, query: &EventQuery) -> Result<(EventQuery, u64)> {
        let mut cursors = self.cursors.lock();
        let (stored, cursor) = cursors
            .entry(name.to_owned())
            .or_insert_with(|| (query.clone(), 0));
        Ok((stored.clone(), *cursor))
    }

    fn advance_cursor(&self, name: &str, position: u64) -> Result<()> {
        if let Some((_, cursor)) = self.cursors.lock().get_mut(name) {
            *cursor = (*cursor).max(position);
        }
        Ok(())
    }

    fn durable_streams(&self) -> Result<Vec<DurableStreamInfo>> {
        Ok(self
            .cursors
            .lock()
            .iter()
            .map(|(name, (query, cursor))| DurableStreamInfo {
                name: name.clone(),
                query: query.clone(),
                last_processed_sequence_number: *cursor,
            })
            .collect())
    }

    fn reset_cursor(&self, name: &str, position: u64) -> Result<bool> {
        Ok(match self.cursors.lock().get_mut(name) {
            Some((_, cursor)) => {
                *cursor = position;
                true
            }
            None => false,
        })
    }

    fn delete_cursor(&self, name: &str) -> Result<()> {
        self.cursors.lock().remove(name);
        Ok(())
    }

    fn close(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventStore;
    use serde_json::json;

    fn events(n: usize) -> Vec<NewEvent> {
        (0..n)
            .map(|i| NewEvent::new("e", json!({ "i": i })))
            .collect()
    }

    fn done(attempt: AtOnce<Vec<NewEvent>>) -> Result<AppendResult> {
        match attempt {
            AtOnce::Done(result) => result,
            AtOnce::Busy(_) => panic!("expected the append to be done at once"),
        }
    }

    #[test]
    fn an_append_at_once_commits_numbers_and_signals_like_append() {
        let store = MemoryStore::new();
        store.append(events(1)).unwrap();
        let generation = store.commit_signal().generation();
        let result = done(store.try_append_at_once(events(3))).unwrap();
        assert_eq!(
            (result.first_sequence_number, result.last_sequence_number),
            (2, 4)
        );
        assert_ne!(store.commit_signal().generation(), generation);
        assert_eq!(store.head().unwrap(), 4);
    }

    #[test]
    fn an_append_at_once_never_waits_for_the_log() {
        let store = MemoryStore::new();
        let reading = store.storage().log.read(); // e.g. a long query on another thread
        match store.try_append_at_once(events(2)) {
            AtOnce::Busy(back) => assert_eq!(back.len(), 2, "the events come back untouched"),
            AtOnce::Done(_) => panic!("appended while the log was held"),
        }
        drop(reading);
        assert_eq!(store.head().unwrap(), 0, "nothing was written");
        assert!(done(store.try_append_at_once(events(2))).is_ok());
    }

    #[test]
    fn an_append_at_once_keeps_the_rules_of_append() {
        let store = MemoryStore::new();
        assert!(matches!(
            done(store.try_append_at_once(Vec::new())),
            Err(Error::EmptyAppend)
        ));
        store.close().unwrap();
        assert!(matches!(
            done(store.try_append_at_once(events(1))),
            Err(Error::StoreClosed)
        ));
    }
}
