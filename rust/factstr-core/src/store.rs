//! What a store is, in two halves:
//!
//! - `Storage`: what each store kind implements: its log (append a numbered batch under a
//!   condition, read, read batches, head), its durable cursor rows and what holds a durable name
//!   against other holders, watching other processes' commits, and closing its connections and
//!   files. The SQL of SQLite and PostgreSQL, the memory structures of the Memory store.
//! - `Store<S>`: the one store, generic over its storage, that keeps the rules every kind shares,
//!   written once: an empty append fails first, a closed (or forked-off, see `lifecycle`) store
//!   refuses every call, numbers too large for the storage are refused by name, every commit
//!   raises the commit signal that streams wait on, and durable names are leased (one holder per
//!   name, cursors that never move backwards, reset and delete refuse a held name).
//!
//! `EventStore` is the object-safe face of `Store<S>` that the binding and the stream machinery
//! (`subscriber`) hold as `Arc<dyn EventStore>`. A new store kind implements `Storage` only.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::condition::Condition;
use crate::error::{Error, Result};
use crate::group_commit::GroupCommit;
use crate::idempotency::IdempotencyKey;
use crate::lifecycle::Lifecycle;
use crate::matching::queries_equal;
use crate::restore::{self, RestoredBatch};
use crate::signal::CommitSignal;
use crate::sql::numbers;
use crate::types::{
    AppendResult, BatchPage, DurableStreamInfo, EventQuery, EventRecord, NewEvent, QueryResult,
};

/// Identifies one holder of a durable name, so that only the holder can move or release it.
pub type LeaseId = u64;

/// A store's operations, as the binding and the stream machinery use them. Implemented once, by
/// `Store<S>`; a store kind implements `Storage` instead.
pub trait EventStore: Send + Sync {
    // The public operations (SPEC §2-§4, §6).

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

    /// `append` (no condition), `append_if` (`Condition::VersionIs`) or `append_unless`
    /// (`Condition::NoneAfter`) with an idempotency key (SPEC §2.8, checked here: see
    /// `IdempotencyKey::new`): a key that committed already returns that commit's result.
    fn append_keyed(
        &self,
        events: Vec<NewEvent>,
        condition: Option<Condition<'_>>,
        idempotency_key: Option<&str>,
    ) -> Result<AppendResult>;

    /// `append`, done on the calling thread only when the storage can do it at once: no
    /// waiting for a lock, no I/O, only memory work proportional to `events` (the Memory store
    /// when nobody holds its log). Otherwise `events` come back untouched, for `append` on a
    /// thread that may wait. The asyncio fast path (`factstr.aio`) runs this on the event loop.
    fn try_append_at_once(&self, events: Vec<NewEvent>) -> AtOnce<Vec<NewEvent>> {
        AtOnce::Busy(events)
    }

    /// The matching facts after `query.min_sequence_number`, at most `limit` of them (SPEC §3).
    fn query(&self, query: &EventQuery, limit: Option<usize>) -> Result<QueryResult>;

    fn durable_streams(&self) -> Result<Vec<DurableStreamInfo>>;

    /// Sets the cursor of a durable name that nobody holds (`DurableStream` when unknown).
    fn reset_durable_stream(&self, name: &str, sequence_number: u64) -> Result<()>;

    /// Removes a durable name that nobody holds; an unknown name is no error.
    fn delete_durable_stream(&self, name: &str) -> Result<()>;

    /// Closes the store: later calls fail with `StoreClosed`, waiting streams end.
    fn close(&self) -> Result<()>;

    fn is_closed(&self) -> bool;

    // What streams, subscriptions and paged reads use (see `subscriber`).

    /// `query(query, Some(limit))`'s records alone, for a page of `iter_query`.
    fn query_page(&self, query: &EventQuery, limit: usize) -> Result<Vec<EventRecord>>;

    /// The committed batches after `after`, filtered by `query` (empty deliveries skipped),
    /// at most about `max_events` records in all (whole batches: one oversized batch is still
    /// returned whole).
    fn read_batches(&self, after: u64, query: &EventQuery, max_events: usize) -> Result<BatchPage>;

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

    /// Internal (`factstr info`): the bytes the store takes on disk, `None` when it cannot
    /// tell (no disk, or not allowed to read it).
    fn storage_size(&self) -> Result<Option<u64>> {
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

    /// Called when a stream starts: a store that can see other processes' commits starts
    /// watching for them here.
    fn watch_commits(&self);

    /// Lets go of what only direct calls need (idle pooled connections): the store object was
    /// dropped unclosed, and only its stream registrations still use the store.
    fn release_idle(&self);

    /// How long a stream keeps retrying reads that fail with a backend error (the database
    /// restarting, a connection lost) before it reports the failure. Zero: report at once.
    fn reconnect_window(&self) -> Duration;
}

/// One append as the storage receives it: the events and, for `append_if`/`append_unless`, the
/// condition to check in the same atomic step.
pub struct AppendRequest<'a> {
    /// Never empty: `Store` refuses an empty append before the storage sees it.
    pub events: Vec<NewEvent>,
    pub condition: Option<Condition<'a>>,
    /// SPEC §2.8 (see `idempotency`): the storage looks the key up in its key table inside the
    /// append's own transaction (under the same lock that numbers the batch) and returns the
    /// stored `AppendResult` when it is there, writing nothing and checking no condition;
    /// otherwise it writes the key with the batch, so that both commit or neither does.
    pub idempotency_key: Option<IdempotencyKey>,
}

/// The answer of an operation tried at once (`EventStore::try_append_at_once`).
pub enum AtOnce<Request> {
    Done(Result<AppendResult>),
    /// It would have had to wait: the request, handed back untouched.
    Busy(Request),
}

/// What each store kind implements: where its facts and cursors live and how they are read and
/// written. Every rule the kinds share lives in `Store<S>`, which calls these only on an open
/// store, with arguments already checked (non-empty batches, numbers at most
/// `LARGEST_NUMBER`).
///
/// Group commit: `Store` queues concurrent callers' appends and hands the queue to
/// `append_group` (see `group_commit`); neither the numbering nor the conditions move out of the
/// storage for it.
pub trait Storage: Send + Sync + 'static {
    /// What holds a durable name against every other holder (in this process and, for the SQL
    /// kinds, in every other process sharing the data): dropping it releases the name.
    type NameLock: Send + 'static;

    /// Whether the storage belongs to the process that opened it (connections, files, locks):
    /// then a forked child's copy of the store is closed (see `lifecycle`).
    const BOUND_TO_PROCESS: bool;

    /// The largest sequence number, cursor or version the storage holds; `Store` refuses larger
    /// ones with `InvalidInput` before calling the storage (SPEC §7).
    const LARGEST_NUMBER: u64;

    /// Commits `request.events` as one batch numbered after the head, when its condition holds
    /// (else `ConditionalAppendConflict`), as one atomic step across threads and processes.
    /// Commit order is sequence order; a failed append writes nothing and uses no number.
    fn append(&self, request: AppendRequest<'_>) -> Result<AppendResult>;

    /// Group commit (see `group_commit`): commits several callers' requests, in order, each as
    /// `append` would alone: its own batch numbered right after the batches before it, its
    /// condition checked against the log including them, and one failing (a conflict, a bad
    /// batch) without touching the others. One result per request, in order. A storage that
    /// can puts the group in one transaction (one fsync); a failure of that transaction as a
    /// whole fails every request. By default: `append` for each.
    fn append_group(&self, requests: Vec<AppendRequest<'_>>) -> Vec<Result<AppendResult>> {
        requests
            .into_iter()
            .map(|request| self.append(request))
            .collect()
    }

    /// `append` when it can be done without waiting (see `EventStore::try_append_at_once`);
    /// the request back otherwise. Stores that always wait (I/O) keep this default.
    fn append_at_once<'a>(&self, request: AppendRequest<'a>) -> AtOnce<AppendRequest<'a>> {
        AtOnce::Busy(request)
    }

    /// See `EventStore::query`: one snapshot.
    fn query(&self, query: &EventQuery, limit: Option<usize>) -> Result<QueryResult>;

    /// See `EventStore::query_page`: one snapshot. The SQL storages skip the context version and
    /// head: found through an index, a context version collects every candidate of the whole
    /// log, which made each page of a filtered iteration cost that.
    fn query_page(&self, query: &EventQuery, limit: usize) -> Result<Vec<EventRecord>> {
        self.query(query, Some(limit)).map(|r| r.event_records)
    }

    /// See `EventStore::read_batches`: one snapshot.
    fn read_batches(&self, after: u64, query: &EventQuery, max_events: usize) -> Result<BatchPage>;

    /// See `EventStore::restore_batches`: `batches` are checked (`restore::check_batches`, which
    /// reported `written`); the storage checks, under its append lock, that the first one starts
    /// directly after the head (`restore::not_after_head` otherwise) and writes them all in one
    /// transaction through its append path, with their own `occurred_at`.
    fn restore(&self, batches: Vec<RestoredBatch>, written: AppendResult) -> Result<AppendResult>;

    /// See `EventStore::read_text_batches` (`None`: this storage keeps no payload text).
    fn read_text_batches(
        &self,
        _position: u64,
        _max_events: usize,
    ) -> Result<Option<crate::restore::TextPage>> {
        Ok(None)
    }

    /// Internal (`factstr info`): the bytes the store takes on disk, `None` when it cannot
    /// tell (no disk, or not allowed to read it).
    fn storage_size(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    /// The last committed sequence number (0 when empty).
    fn head(&self) -> Result<u64>;

    /// Fails when durable replay is impossible on this data (SPEC §9: a missing batch-format
    /// marker); checked before a name is taken.
    fn check_replayable(&self) -> Result<()> {
        Ok(())
    }

    /// The stored query of the cursor row of `name`, if there is one.
    fn stored_query(&self, name: &str) -> Result<Option<EventQuery>>;

    /// Takes the name without waiting; `DurableStreamActive` when anyone else holds it.
    fn lock_name(&self, name: &str) -> Result<Self::NameLock>;

    /// Before a held name's cursor is saved: takes the lock again when it was lost (a
    /// PostgreSQL session that ended with a server restart), or fails when someone else has
    /// it now.
    fn renew_lock(&self, _name: &str, _lock: &mut Self::NameLock) -> Result<()> {
        Ok(())
    }

    /// Releases a name (by default by dropping its lock).
    fn release_lock(&self, _name: &str, lock: Self::NameLock) {
        drop(lock);
    }

    /// Creates the cursor row of `name` with `query` at 0 unless it exists; returns the stored
    /// query and cursor (the caller compares the queries).
    fn create_cursor(&self, name: &str, query: &EventQuery) -> Result<(EventQuery, u64)>;

    /// Moves the cursor of `name` to `position` if that is forward: a conditional write, so that
    /// the cursor never moves backwards even beside other writers.
    fn advance_cursor(&self, name: &str, position: u64) -> Result<()>;

    /// Every cursor row, ordered by name.
    fn durable_streams(&self) -> Result<Vec<DurableStreamInfo>>;

    /// Sets the cursor of `name` (the caller holds its lock); `false` when there is no such row.
    fn reset_cursor(&self, name: &str, position: u64) -> Result<bool>;

    /// Removes the cursor row of `name` (the caller holds its lock).
    fn delete_cursor(&self, name: &str) -> Result<()>;

    /// Starts watching other processes' commits (if the kind can see them), raising `signal`
    /// on each; the watcher ends when the signal is gone or closed.
    fn watch_commits(&self, _signal: Weak<CommitSignal>) {}

    /// See `EventStore::release_idle`.
    fn release_idle(&self) {}

    /// See `EventStore::reconnect_window`.
    fn reconnect_window(&self) -> Duration {
        Duration::ZERO
    }

    /// Closes connections and files; called once, after the store is marked closed and its
    /// durable names are released.
    fn close(&self) -> Result<()>;
}

/// The store: a storage and the rules every kind shares (see the module header).
pub struct Store<S: Storage> {
    /// Shared so that a forked child can leak it instead of dropping it (see `Drop`).
    inner: Arc<Inner<S>>,
}

struct Inner<S: Storage> {
    storage: S,
    lifecycle: Lifecycle,
    /// Held weakly by the storage's watcher, which ends when the store is gone.
    signal: Arc<CommitSignal>,
    leases: Mutex<HashMap<LeaseId, Lease<S::NameLock>>>,
    next_lease: AtomicU64,
    /// Concurrent appends of this store object, committed together (see `group_commit`).
    group: GroupCommit,
}

/// One registration's hold on a durable name.
struct Lease<L> {
    name: String,
    lock: L,
    /// The cursor as this holder last saved it (or found it).
    saved: u64,
}

impl<S: Storage> Store<S> {
    pub(crate) fn from_storage(storage: S) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                lifecycle: if S::BOUND_TO_PROCESS {
                    Lifecycle::process_bound()
                } else {
                    Lifecycle::default()
                },
                signal: Arc::new(CommitSignal::new()),
                leases: Mutex::new(HashMap::new()),
                next_lease: AtomicU64::new(1),
                group: GroupCommit::new(),
            }),
        }
    }

    pub(crate) fn storage(&self) -> &S {
        &self.inner.storage
    }

    /// `InvalidInput` naming `what` when `number` is larger than the storage holds.
    fn check_number(number: Option<u64>, what: &str) -> Result<()> {
        match number {
            Some(number) if number > S::LARGEST_NUMBER => numbers::to_sql(number, what).map(drop),
            _ => Ok(()),
        }
    }

    fn append_on(
        &self,
        events: Vec<NewEvent>,
        condition: Option<Condition<'_>>,
        idempotency_key: Option<&str>,
    ) -> Result<AppendResult> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        let idempotency_key = idempotency_key.map(IdempotencyKey::new).transpose()?;
        if let Some(condition) = condition {
            Self::check_number(condition.named_version(), condition.argument_name())?;
        }
        self.inner.lifecycle.check_open()?;
        self.inner.group.append(
            AppendRequest {
                events,
                condition,
                idempotency_key,
            },
            &|requests| self.commit(requests),
        )
    }

    /// Commits one request alone or a group of queued ones (see `group_commit`); raises the
    /// commit signal once when any committed.
    fn commit(&self, mut requests: Vec<AppendRequest<'_>>) -> Vec<Result<AppendResult>> {
        let inner = &self.inner;
        // Queued requests may have waited while the store was closed (or its process forked).
        if let Err(closed) = inner.lifecycle.check_open() {
            return vec![Err(closed); requests.len()];
        }
        let results = match requests.pop() {
            Some(only) if requests.is_empty() => vec![inner.storage.append(only)],
            Some(last) => {
                requests.push(last);
                inner.storage.append_group(requests)
            }
            None => Vec::new(),
        };
        if results.iter().any(Result::is_ok) {
            inner.signal.notify();
        }
        results
    }

    /// Runs `work` while holding the lock of `name` briefly: a held name is refused.
    fn with_name_locked<T>(&self, name: &str, work: impl FnOnce(&S) -> Result<T>) -> Result<T> {
        let storage = &self.inner.storage;
        let lock = storage.lock_name(name)?;
        let out = work(storage);
        storage.release_lock(name, lock);
        out
    }
}

impl<S: Storage> Drop for Store<S> {
    fn drop(&mut self) {
        if self.inner.lifecycle.inherited() {
            // In a forked child, dropping would close the parent's connections and release its
            // locks (SPEC §7).
            std::mem::forget(Arc::clone(&self.inner));
        }
    }
}

impl<S: Storage> EventStore for Store<S> {
    fn append(&self, events: Vec<NewEvent>) -> Result<AppendResult> {
        self.append_on(events, None, None)
    }

    fn append_if(
        &self,
        events: Vec<NewEvent>,
        context: &EventQuery,
        expected: Option<u64>,
    ) -> Result<AppendResult> {
        self.append_on(
            events,
            Some(Condition::VersionIs { context, expected }),
            None,
        )
    }

    fn append_unless(
        &self,
        events: Vec<NewEvent>,
        context: &EventQuery,
        after: Option<u64>,
    ) -> Result<AppendResult> {
        self.append_on(events, Some(Condition::NoneAfter { context, after }), None)
    }

    fn append_keyed(
        &self,
        events: Vec<NewEvent>,
        condition: Option<Condition<'_>>,
        idempotency_key: Option<&str>,
    ) -> Result<AppendResult> {
        self.append_on(events, condition, idempotency_key)
    }

    fn try_append_at_once(&self, events: Vec<NewEvent>) -> AtOnce<Vec<NewEvent>> {
        // The rules of `append_on`, none of which waits.
        if events.is_empty() {
            return AtOnce::Done(Err(Error::EmptyAppend));
        }
        if let Err(error) = self.inner.lifecycle.check_open() {
            return AtOnce::Done(Err(error));
        }
        let request = AppendRequest {
            events,
            condition: None,
            idempotency_key: None,
        };
        match self.inner.storage.append_at_once(request) {
            AtOnce::Done(result) => {
                if result.is_ok() {
                    self.inner.signal.notify();
                }
                AtOnce::Done(result)
            }
            AtOnce::Busy(request) => AtOnce::Busy(request.events),
        }
    }

    fn query(&self, query: &EventQuery, limit: Option<usize>) -> Result<QueryResult> {
        Self::check_number(query.min_sequence_number, "min_sequence_number")?;
        self.inner.lifecycle.check_open()?;
        self.inner.storage.query(query, limit)
    }

    fn durable_streams(&self) -> Result<Vec<DurableStreamInfo>> {
        self.inner.lifecycle.check_open()?;
        self.inner.storage.durable_streams()
    }

    fn reset_durable_stream(&self, name: &str, sequence_number: u64) -> Result<()> {
        self.inner.lifecycle.check_open()?;
        Self::check_number(Some(sequence_number), "sequence_number")?;
        if self.with_name_locked(name, |storage| storage.reset_cursor(name, sequence_number))? {
            Ok(())
        } else {
            Err(Error::DurableStream(format!(
                "unknown durable stream {name:?}"
            )))
        }
    }

    fn delete_durable_stream(&self, name: &str) -> Result<()> {
        self.inner.lifecycle.check_open()?;
        self.with_name_locked(name, |storage| storage.delete_cursor(name))
    }

    fn close(&self) -> Result<()> {
        let inner = &self.inner;
        inner.lifecycle.close();
        if inner.lifecycle.inherited() {
            // A forked child's copy: the connections and locks are the parent's (SPEC §7).
            return Ok(());
        }
        inner.signal.close();
        let leases: Vec<Lease<S::NameLock>> = inner
            .leases
            .lock()
            .drain()
            .map(|(_, lease)| lease)
            .collect();
        for lease in leases {
            inner.storage.release_lock(&lease.name, lease.lock);
        }
        inner.storage.close()
    }

    fn is_closed(&self) -> bool {
        self.inner.lifecycle.is_closed()
    }

    fn query_page(&self, query: &EventQuery, limit: usize) -> Result<Vec<EventRecord>> {
        Self::check_number(query.min_sequence_number, "min_sequence_number")?;
        self.inner.lifecycle.check_open()?;
        self.inner.storage.query_page(query, limit)
    }

    fn read_batches(&self, after: u64, query: &EventQuery, max_events: usize) -> Result<BatchPage> {
        Self::check_number(query.min_sequence_number, "min_sequence_number")?;
        self.inner.lifecycle.check_open()?;
        self.inner.storage.read_batches(after, query, max_events)
    }

    fn read_text_batches(
        &self,
        position: u64,
        max_events: usize,
    ) -> Result<Option<crate::restore::TextPage>> {
        self.inner.lifecycle.check_open()?;
        self.inner.storage.read_text_batches(position, max_events)
    }

    fn restore_batches(&self, batches: Vec<RestoredBatch>) -> Result<AppendResult> {
        let written = restore::check_batches(&batches)?;
        Self::check_number(Some(written.last_sequence_number), "sequence_number")?;
        self.inner.lifecycle.check_open()?;
        let result = self.inner.storage.restore(batches, written)?;
        self.inner.signal.notify();
        Ok(result)
    }

    fn storage_size(&self) -> Result<Option<u64>> {
        self.inner.lifecycle.check_open()?;
        self.inner.storage.storage_size()
    }

    fn head(&self) -> Result<u64> {
        self.inner.lifecycle.check_open()?;
        self.inner.storage.head()
    }

    fn commit_signal(&self) -> &CommitSignal {
        &self.inner.signal
    }

    fn acquire_durable(&self, name: &str, query: &EventQuery) -> Result<(LeaseId, u64)> {
        let inner = &self.inner;
        inner.lifecycle.check_open()?;
        // A wrong query is reported as such even while the name is held (and before a missing
        // batch-format marker).
        let mismatch = || Error::DurableStreamQueryMismatch(name.to_owned());
        if let Some(stored) = inner.storage.stored_query(name)? {
            if !queries_equal(&stored, query) {
                return Err(mismatch());
            }
        }
        inner.storage.check_replayable()?;
        let lock = inner.storage.lock_name(name)?;
        let (stored, cursor) = match inner.storage.create_cursor(name, query) {
            Ok(found) => found,
            Err(error) => {
                inner.storage.release_lock(name, lock);
                return Err(error);
            }
        };
        if !queries_equal(&stored, query) {
            inner.storage.release_lock(name, lock);
            return Err(mismatch());
        }
        let lease = inner.next_lease.fetch_add(1, Ordering::Relaxed);
        inner.leases.lock().insert(
            lease,
            Lease {
                name: name.to_owned(),
                lock,
                saved: cursor,
            },
        );
        Ok((lease, cursor))
    }

    fn save_durable_cursor(&self, name: &str, lease: LeaseId, position: u64) -> Result<()> {
        let inner = &self.inner;
        if inner.lifecycle.inherited() {
            return Err(Error::StoreClosed);
        }
        {
            let mut leases = inner.leases.lock();
            // Only the holder moves the cursor, and only forward. A lease that is gone (released,
            // or the store closed) saves nothing.
            let Some(held) = leases.get_mut(&lease).filter(|held| held.name == name) else {
                return Ok(());
            };
            if position <= held.saved {
                return Ok(());
            }
            inner.storage.renew_lock(name, &mut held.lock)?;
        }
        inner.lifecycle.check_open()?;
        inner.storage.advance_cursor(name, position)?;
        if let Some(held) = inner.leases.lock().get_mut(&lease) {
            held.saved = held.saved.max(position);
        }
        Ok(())
    }

    fn release_durable(&self, _name: &str, lease: LeaseId) -> Result<()> {
        let inner = &self.inner;
        if inner.lifecycle.inherited() {
            return Ok(()); // the parent holds the name
        }
        let released = inner.leases.lock().remove(&lease);
        if let Some(held) = released {
            inner.storage.release_lock(&held.name, held.lock);
        }
        Ok(())
    }

    fn watch_commits(&self) {
        if self.is_closed() {
            return;
        }
        self.inner
            .storage
            .watch_commits(Arc::downgrade(&self.inner.signal));
    }

    fn release_idle(&self) {
        self.inner.storage.release_idle();
    }

    fn reconnect_window(&self) -> Duration {
        self.inner.storage.reconnect_window()
    }
}

// Keep the type-level promise explicit: stores are shared across threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<crate::MemoryStore>();
    assert_send_sync::<crate::SqliteStore>();
    assert_send_sync::<crate::PostgresStore>();
};
