//! The interface every store implements. Streams, subscriptions and durable registrations are
//! built once on top of it (see `subscriber`), so each store only provides storage.

use crate::error::Result;
use crate::restore::RestoredBatch;
use crate::signal::CommitSignal;
use crate::types::{AppendResult, BatchPage, DurableStreamInfo, EventQuery, NewEvent, QueryResult};

/// Identifies one holder of a durable name, so that only the holder can move or release it.
pub type LeaseId = u64;

pub trait EventStore: Send + Sync {
    /// Commits `events` as one batch (SPEC §2).
    fn append(&self, events: Vec<NewEvent>) -> Result<AppendResult>;

    /// Commits `events` only if the context version of `context` equals `expected` (SPEC §4).
    fn append_if(
        &self,
        events: Vec<NewEvent>,
        context: &EventQuery,
        expected: Option<u64>,
    ) -> Result<AppendResult>;

    /// Commits `events` unless a fact matching `context` has a sequence number above `after`
    /// (`None`: any matching fact at all), the DCB condition (SPEC §4).
    fn append_unless(
        &self,
        events: Vec<NewEvent>,
        context: &EventQuery,
        after: Option<u64>,
    ) -> Result<AppendResult>;

    /// The matching facts after `query.min_sequence_number`, at most `limit` of them (SPEC §3).
    fn query(&self, query: &EventQuery, limit: Option<usize>) -> Result<QueryResult>;

    /// The committed batches after `position`, filtered by `query` (empty deliveries skipped),
    /// at most about `max_events` records in all (whole batches: one oversized batch is still
    /// returned whole).
    fn read_batches(
        &self,
        position: u64,
        query: &EventQuery,
        max_events: usize,
    ) -> Result<BatchPage>;

    /// Internal (`factstr import`, see `restore`): commits `batches` (consecutive, the first one
    /// directly after the head) with their own sequence numbers and `occurred_at`, through the
    /// store's append path, all or nothing. Returns the range written.
    fn restore_batches(&self, batches: Vec<RestoredBatch>) -> Result<AppendResult>;

    /// Internal (`factstr export`, see `restore::TextPage`): every fact after `position`, paged
    /// as `read_batches` pages them, with payloads as the JSON text the store keeps. `None` for
    /// stores that keep no text (the caller then uses `read_batches`).
    fn read_text_batches(
        &self,
        _position: u64,
        _max_events: usize,
    ) -> Result<Option<crate::restore::TextPage>> {
        Ok(None)
    }

    /// The last committed sequence number (0 when empty).
    fn head(&self) -> Result<u64>;

    /// Raised after every commit this store sees (its own and, where the store can tell, other
    /// processes'), and on close.
    fn commit_signal(&self) -> &CommitSignal;

    /// Takes the durable name for one registration: creates it with `query` at cursor 0 when it
    /// is new; fails when its stored query differs or another registration holds it. Returns the
    /// lease and the stored cursor.
    fn acquire_durable(&self, name: &str, query: &EventQuery) -> Result<(LeaseId, u64)>;

    /// Moves the cursor of a held durable name forward (never backwards).
    fn save_durable_cursor(&self, name: &str, lease: LeaseId, position: u64) -> Result<()>;

    /// Frees a held durable name; its cursor stays.
    fn release_durable(&self, name: &str, lease: LeaseId) -> Result<()>;

    fn durable_streams(&self) -> Result<Vec<DurableStreamInfo>>;

    fn reset_durable_stream(&self, name: &str, sequence_number: u64) -> Result<()>;

    fn delete_durable_stream(&self, name: &str) -> Result<()>;

    /// Closes the store: later calls fail with `StoreClosed`, waiting streams end.
    fn close(&self) -> Result<()>;

    fn is_closed(&self) -> bool;

    /// Called when a stream starts: a store that can see other processes' commits starts
    /// watching for them here.
    fn watch_commits(&self) {}

    /// Lets go of what only direct calls need (idle pooled connections): the store object was
    /// dropped unclosed, and only its stream registrations still use the store.
    fn release_idle(&self) {}

    /// How long a stream keeps retrying reads that fail with a backend error (the database
    /// restarting, a connection lost) before it reports the failure. Zero: report at once.
    fn reconnect_window(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}
