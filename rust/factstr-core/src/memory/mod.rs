//! The Memory store: the whole contract in process memory, for tests and local work.
//!
//! One `RwLock` guards the log and its indexes: appends serialise on the write lock (which is
//! what makes commit order equal sequence order), queries share the read lock. Records are
//! cheap `Arc` clones, so the lock is held only while the matching sequence numbers are found.

mod index;
mod restore;

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::clock::now_micros;
use crate::condition::Condition;
use crate::durable::DurableRegistry;
use crate::error::{Error, Result};
use crate::lifecycle::Lifecycle;
use crate::signal::CommitSignal;
use crate::store::{EventStore, LeaseId};
use crate::types::{
    AppendResult, Batch, BatchPage, DurableStreamInfo, EventQuery, EventRecord, NewEvent,
    QueryResult, Timestamp,
};
use index::{merge_above, Candidates, Index};

#[derive(Default)]
pub struct MemoryStore {
    log: RwLock<Log>,
    durable: Mutex<DurableRegistry>,
    signal: CommitSignal,
    lifecycle: Lifecycle,
    next_lease: AtomicU64,
}

#[derive(Default)]
struct Log {
    /// `records[i]` has sequence number `i + 1`.
    records: Vec<EventRecord>,
    /// The last sequence number of the batch that `records[i]` belongs to.
    batch_ends: Vec<u64>,
    index: Index,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn check_open(&self) -> Result<()> {
        self.lifecycle.check_open()
    }

    /// A conditional append: the check and the commit under one write lock.
    fn append_on(&self, events: Vec<NewEvent>, condition: Condition<'_>) -> Result<AppendResult> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        self.check_open()?;
        let mut log = self.log.write();
        condition.check(log.context_version(condition.context()))?;
        let result = self.commit(&mut log, events);
        drop(log);
        self.signal.notify();
        Ok(result)
    }

    fn commit(&self, log: &mut Log, events: Vec<NewEvent>) -> AppendResult {
        self.commit_at(log, events, now_micros())
    }

    /// `commit` with a given `occurred_at` (a restored batch keeps its own, see `restore`).
    fn commit_at(
        &self,
        log: &mut Log,
        events: Vec<NewEvent>,
        occurred_at: Timestamp,
    ) -> AppendResult {
        let first = log.records.len() as u64 + 1;
        let count = events.len() as u64;
        let last = first + count - 1;
        log.records.reserve(events.len());
        for (offset, event) in events.into_iter().enumerate() {
            let sequence_number = first + offset as u64;
            log.index
                .insert(sequence_number, &event.event_type, &event.payload);
            log.records.push(EventRecord {
                sequence_number,
                occurred_at,
                event_type: event.event_type,
                payload: event.payload,
            });
            log.batch_ends.push(last);
        }
        AppendResult {
            first_sequence_number: first,
            last_sequence_number: last,
            committed_count: count,
        }
    }
}

impl Log {
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

impl EventStore for MemoryStore {
    fn append(&self, events: Vec<NewEvent>) -> Result<AppendResult> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        self.check_open()?;
        let result = self.commit(&mut self.log.write(), events);
        self.signal.notify();
        Ok(result)
    }

    fn append_if(
        &self,
        events: Vec<NewEvent>,
        context: &EventQuery,
        expected: Option<u64>,
    ) -> Result<AppendResult> {
        self.append_on(events, Condition::VersionIs { context, expected })
    }

    fn append_unless(
        &self,
        events: Vec<NewEvent>,
        context: &EventQuery,
        after: Option<u64>,
    ) -> Result<AppendResult> {
        self.append_on(events, Condition::NoneAfter { context, after })
    }

    fn query(&self, query: &EventQuery, limit: Option<usize>) -> Result<QueryResult> {
        self.check_open()?;
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

    fn read_batches(
        &self,
        position: u64,
        query: &EventQuery,
        max_events: usize,
    ) -> Result<BatchPage> {
        self.check_open()?;
        let log = self.log.read();
        let mut page = BatchPage {
            batches: Vec::new(),
            scanned_to: log.head(),
        };
        let mut taken = 0usize;
        log.for_each_match(query, position, |sequence_number| {
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

    fn restore_batches(&self, batches: Vec<crate::restore::RestoredBatch>) -> Result<AppendResult> {
        self.restore(batches)
    }

    fn head(&self) -> Result<u64> {
        self.check_open()?;
        Ok(self.log.read().head())
    }

    fn commit_signal(&self) -> &CommitSignal {
        &self.signal
    }

    fn acquire_durable(&self, name: &str, query: &EventQuery) -> Result<(LeaseId, u64)> {
        self.check_open()?;
        let lease = self.next_lease.fetch_add(1, Ordering::Relaxed) + 1;
        let cursor = self.durable.lock().acquire(name, query, lease)?;
        Ok((lease, cursor))
    }

    fn save_durable_cursor(&self, name: &str, lease: LeaseId, position: u64) -> Result<()> {
        self.check_open()?;
        self.durable.lock().save_cursor(name, lease, position);
        Ok(())
    }

    fn release_durable(&self, name: &str, lease: LeaseId) -> Result<()> {
        self.durable.lock().release(name, lease);
        Ok(())
    }

    fn durable_streams(&self) -> Result<Vec<DurableStreamInfo>> {
        self.check_open()?;
        Ok(self.durable.lock().list())
    }

    fn reset_durable_stream(&self, name: &str, sequence_number: u64) -> Result<()> {
        self.check_open()?;
        self.durable.lock().reset(name, sequence_number)
    }

    fn delete_durable_stream(&self, name: &str) -> Result<()> {
        self.check_open()?;
        self.durable.lock().delete(name)
    }

    fn close(&self) -> Result<()> {
        self.lifecycle.close();
        self.signal.close();
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }
}

// Keep the type-level promise explicit: stores are shared across threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MemoryStore>();
};
