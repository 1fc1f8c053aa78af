//! One stream's view of the log: a position, a small read-ahead of whole batches, and for a
//! durable stream the lease on its name and the acknowledgement rule of SPEC §6.
//!
//! A subscriber never receives copies pushed by appenders. It reads committed batches from the
//! store after its position when the store's commit signal says something changed, so a slow
//! consumer costs a position, not a growing queue, and delays no one else.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::store::{EventStore, LeaseId};
use crate::types::{Batch, EventQuery};

/// How many records one read from the store may bring in (whole batches are kept together).
const READ_AHEAD_EVENTS: usize = 1024;

/// A subscriber reads again after this long even if no wake-up came.
const SAFETY_READ: Duration = Duration::from_secs(2);

/// How long a subscriber waits before retrying a failed read.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

pub struct Subscriber {
    store: Arc<dyn EventStore>,
    query: EventQuery,
    /// Every committed fact up to here has been read into `pending` or skipped as not matching.
    position: u64,
    pending: VecDeque<Batch>,
    durable: Option<DurableHold>,
    closed: bool,
    /// The commit signal's generation at the last successful read, and when it was: nothing
    /// new can be there until the signal moves (a read is still made now and then, in case a
    /// wake-up was lost).
    last_read: Option<(u64, Instant)>,
    /// Since when reads have been failing (the database unreachable).
    failing_since: Option<Instant>,
}

struct DurableHold {
    name: String,
    lease: LeaseId,
    /// The stored cursor, as far as this subscriber moved it.
    saved: u64,
    /// The end of the last batch handed out and not yet acknowledged.
    unacked: Option<u64>,
}

impl Subscriber {
    /// A live stream: only batches committed from now on. Its position is its lower bound, so
    /// the query's `min_sequence_number` is dropped, as the upstream crates do.
    pub fn live(store: Arc<dyn EventStore>, query: EventQuery) -> Result<Self> {
        let query = query.without_min();
        store.watch_commits();
        let position = store.head()?;
        Ok(Self {
            store,
            query,
            position,
            pending: VecDeque::new(),
            durable: None,
            closed: false,
            last_read: None,
            failing_since: None,
        })
    }

    /// A durable stream: takes the name and starts after its stored cursor. A durable stream
    /// is identified by its filters: the lower bound of `query` is dropped (its cursor is the
    /// lower bound), as the upstream crates do.
    pub fn durable(store: Arc<dyn EventStore>, name: &str, query: EventQuery) -> Result<Self> {
        let query = query.without_min();
        store.watch_commits();
        let (lease, cursor) = store.acquire_durable(name, &query)?;
        Ok(Self {
            store,
            query,
            position: cursor,
            pending: VecDeque::new(),
            durable: Some(DurableHold {
                name: name.to_owned(),
                lease,
                saved: cursor,
                unacked: None,
            }),
            closed: false,
            last_read: None,
            failing_since: None,
        })
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    pub fn durable_name(&self) -> Option<&str> {
        self.durable.as_ref().map(|hold| hold.name.as_str())
    }

    /// Whether everything committed up to `head` has been handed out.
    pub fn caught_up_to(&self, head: u64) -> bool {
        self.position >= head && self.pending.is_empty()
    }

    /// The next committed batch if one is there, without waiting.
    pub fn try_next(&mut self) -> Result<Option<Batch>> {
        self.check_usable()?;
        if self.pending.is_empty() {
            self.read_more()?;
        }
        Ok(self.hand_out())
    }

    /// The next committed batch, waiting at most `timeout` for one. `None` when none came in
    /// time, or when the store's signal was raised without a batch for this subscriber (so that
    /// a caller that stops a stream can wake its thread); callers loop.
    pub fn next_batch(&mut self, timeout: Duration) -> Result<Option<Batch>> {
        let deadline = crate::signal::deadline_after(timeout);
        self.check_usable()?;
        let store = self.store.clone();
        let signal = store.commit_signal();
        let seen = signal.generation();
        if self.pending.is_empty()
            && self.needs_read(seen)
            && !self.read_or_retry(seen, deadline)?
        {
            return Ok(None);
        }
        if let Some(batch) = self.hand_out() {
            return Ok(Some(batch));
        }
        let now = Instant::now();
        if now < deadline && signal.wait_past(seen, (deadline - now).min(SAFETY_READ)) {
            self.check_usable()?;
            let seen = signal.generation();
            if self.read_or_retry(seen, deadline)? {
                return Ok(self.hand_out());
            }
        }
        Ok(None)
    }

    fn needs_read(&self, generation: u64) -> bool {
        match self.last_read {
            Some((read_at, when)) => read_at != generation || when.elapsed() >= SAFETY_READ,
            None => true,
        }
    }

    /// Reads more batches. A backend failure is retried (after a pause, returning false) for as
    /// long as the store's reconnect window allows, then reported.
    fn read_or_retry(&mut self, generation: u64, deadline: Instant) -> Result<bool> {
        match self.read_more() {
            Ok(found) => {
                // Only an empty read says "nothing more until the signal moves": a read that
                // found batches may have stopped at its read-ahead bound, so read again next time.
                self.last_read = if found {
                    None
                } else {
                    Some((generation, Instant::now()))
                };
                self.failing_since = None;
                if !found
                    && self
                        .durable
                        .as_ref()
                        .is_some_and(|hold| hold.unacked.is_none())
                {
                    // Committed batches without a matching event: nothing to deliver, and the
                    // cursor passes over them, as upstream's does.
                    self.ack()?;
                }
                Ok(true)
            }
            Err(Error::Backend(message)) => {
                let since = *self.failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= self.store.reconnect_window() {
                    self.failing_since = None;
                    return Err(Error::Backend(message));
                }
                std::thread::sleep(
                    RETRY_PAUSE.min(deadline.saturating_duration_since(Instant::now())),
                );
                Ok(false)
            }
            Err(other) => Err(other),
        }
    }

    /// Acknowledges the last batch handed out: a durable cursor moves past it (and past any
    /// non-matching batches already looked at, when nothing else is waiting).
    pub fn ack(&mut self) -> Result<()> {
        let position = self.position;
        let nothing_pending = self.pending.is_empty();
        let Some(hold) = self.durable.as_mut() else {
            return Ok(());
        };
        let target = match hold.unacked.take() {
            Some(end) if nothing_pending => end.max(position),
            Some(end) => end,
            None if nothing_pending => position,
            None => return Ok(()),
        };
        if target > hold.saved {
            match self
                .store
                .save_durable_cursor(&hold.name, hold.lease, target)
            {
                Ok(()) => {
                    hold.saved = target;
                    self.failing_since = None;
                }
                // The cursor only moves forward: a later acknowledgement saves this one too.
                // While the database is unreachable, keep going within the reconnect window.
                Err(Error::Backend(message)) => {
                    let since = *self.failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.store.reconnect_window() {
                        return Err(Error::Backend(message));
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    /// Ends the subscription: a durable name is released, its cursor stays where it was acked.
    pub fn close(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.pending.clear();
        if let Some(hold) = self.durable.take() {
            self.store.release_durable(&hold.name, hold.lease)?;
        }
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn check_usable(&self) -> Result<()> {
        if self.closed {
            return Err(Error::DurableStream(
                "the subscription is closed".to_owned(),
            ));
        }
        if self.store.is_closed() {
            return Err(Error::StoreClosed);
        }
        Ok(())
    }

    /// Reads the next page of batches; whether it found any.
    fn read_more(&mut self) -> Result<bool> {
        let page = self
            .store
            .read_batches(self.position, &self.query, READ_AHEAD_EVENTS)?;
        self.position = self.position.max(page.scanned_to);
        let found = !page.batches.is_empty();
        self.pending.extend(page.batches);
        Ok(found)
    }

    fn hand_out(&mut self) -> Option<Batch> {
        let batch = self.pending.pop_front()?;
        if let Some(hold) = self.durable.as_mut() {
            hold.unacked = Some(batch.last_sequence_number);
        }
        Some(batch)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        // Releasing can only fail on a closed or broken store, where the lease dies with it.
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use crate::types::NewEvent;
    use serde_json::json;

    fn events(event_type: &str, count: usize) -> Vec<NewEvent> {
        (0..count)
            .map(|i| NewEvent::new(event_type, json!({"i": i})))
            .collect()
    }

    fn numbers(batch: &Batch) -> Vec<u64> {
        batch.records.iter().map(|r| r.sequence_number).collect()
    }

    #[test]
    fn live_subscribers_see_only_later_batches_whole_and_filtered() {
        let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
        store.append(events("a", 2)).unwrap();
        let mut subscriber =
            Subscriber::live(store.clone(), EventQuery::for_event_types(["b"])).unwrap();
        store
            .append(vec![
                NewEvent::new("a", json!({})),
                NewEvent::new("b", json!({})),
                NewEvent::new("b", json!({})),
            ])
            .unwrap();
        store.append(events("a", 1)).unwrap();
        store.append(events("b", 1)).unwrap();
        let first = subscriber
            .next_batch(Duration::from_millis(100))
            .unwrap()
            .unwrap();
        assert_eq!(
            (numbers(&first), first.last_sequence_number),
            (vec![4, 5], 5)
        );
        let second = subscriber
            .next_batch(Duration::from_millis(100))
            .unwrap()
            .unwrap();
        assert_eq!(numbers(&second), vec![7]);
        assert!(subscriber
            .next_batch(Duration::from_millis(10))
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_timeout_beyond_the_clock_waits_instead_of_panicking() {
        let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
        let mut subscriber = Subscriber::live(store.clone(), EventQuery::all()).unwrap();
        let writer = store.clone();
        let appender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer.append(events("a", 1)).unwrap();
        });
        let mut batch = None;
        while batch.is_none() {
            batch = subscriber.next_batch(Duration::MAX).unwrap();
        }
        appender.join().unwrap();
        assert_eq!(numbers(&batch.unwrap()), vec![1]);
        assert!(!store
            .commit_signal()
            .wait_past(store.commit_signal().generation(), Duration::ZERO));
    }

    #[test]
    fn durable_cursor_moves_only_on_ack_and_resumes_there() {
        let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
        for _ in 0..3 {
            store.append(events("a", 2)).unwrap();
        }
        let cursor = |store: &Arc<dyn EventStore>| {
            store.durable_streams().unwrap()[0].last_processed_sequence_number
        };
        let mut subscriber = Subscriber::durable(store.clone(), "d", EventQuery::all()).unwrap();
        assert!(matches!(
            Subscriber::durable(store.clone(), "d", EventQuery::all()),
            Err(Error::DurableStreamActive(_))
        ));
        let batch = subscriber.try_next().unwrap().unwrap();
        assert_eq!(numbers(&batch), vec![1, 2]);
        assert_eq!(cursor(&store), 0);
        subscriber.ack().unwrap();
        assert_eq!(cursor(&store), 2);
        subscriber.try_next().unwrap().unwrap();
        subscriber.close().unwrap();
        assert_eq!(
            cursor(&store),
            2,
            "an unacknowledged batch is delivered again"
        );
        let mut again = Subscriber::durable(store.clone(), "d", EventQuery::all()).unwrap();
        assert_eq!(numbers(&again.try_next().unwrap().unwrap()), vec![3, 4]);
        assert!(matches!(
            Subscriber::durable(store.clone(), "d", EventQuery::for_event_types(["x"])),
            Err(Error::DurableStreamQueryMismatch(_))
        ));
    }

    #[test]
    fn non_matching_batches_are_passed_over_by_the_cursor() {
        let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
        store.append(events("a", 1)).unwrap();
        store.append(events("b", 3)).unwrap();
        let mut subscriber =
            Subscriber::durable(store.clone(), "d", EventQuery::for_event_types(["a"])).unwrap();
        assert_eq!(numbers(&subscriber.try_next().unwrap().unwrap()), vec![1]);
        subscriber.ack().unwrap();
        assert_eq!(
            store.durable_streams().unwrap()[0].last_processed_sequence_number,
            4
        );
    }

    #[test]
    fn pages_never_split_a_batch() {
        let store = MemoryStore::new();
        store.append(events("a", 3)).unwrap();
        store.append(events("a", 5)).unwrap();
        store.append(events("a", 1)).unwrap();
        let page = store.read_batches(0, &EventQuery::all(), 4).unwrap();
        assert_eq!(
            page.batches.iter().map(numbers).collect::<Vec<_>>(),
            vec![vec![1, 2, 3], vec![4, 5, 6, 7, 8]]
        );
        assert_eq!(page.scanned_to, 8);
        let page = store.read_batches(8, &EventQuery::all(), 4).unwrap();
        assert_eq!(
            page.batches.iter().map(numbers).collect::<Vec<_>>(),
            vec![vec![9]]
        );
    }
}
