//! The SQLite store: the whole contract in one file, on the table layout of `factstr-sqlite`
//! 0.5.2, shared safely by several store objects and processes.
//!
//! - Writes: one writer connection per store; every append is one `BEGIN IMMEDIATE`
//!   transaction, which SQLite serialises across processes (see `writes`).
//! - Reads: a small pool of reader connections; WAL lets them run beside the writer, and each
//!   read runs in one transaction, so it sees one snapshot (see `reads`).
//! - Streams: the store's commit signal is raised by its own appends and, while streams exist,
//!   by a watcher that notices other processes' commits (see `watcher`, `beacon`).
//! - Durable streams: cursors in `subscriber_cursors`, exclusivity by lock files (see `durable`).

mod beacon;
mod durable;
mod file_locks;
pub mod fork_gate;
mod payload_index;
mod posting_block;
mod reads;
mod restore;
mod schema;
mod watcher;
mod writes;

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, TransactionBehavior};

pub use schema::Synchronous;

use crate::condition::Condition;
use crate::error::{Error, Result};
use crate::lifecycle::Lifecycle;
use crate::prepared::{prepare_events, FloatText};
use crate::search;
use crate::signal::CommitSignal;
use crate::sql_numbers;
use crate::store::{EventStore, LeaseId};
use crate::types::{AppendResult, BatchPage, DurableStreamInfo, EventQuery, NewEvent, QueryResult};
use reads::SqliteLog;

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// How often streams look for other processes' commits.
    pub poll_interval: Duration,
    /// How long a call waits for another writer's lock before failing with a backend error.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            poll_interval: Duration::from_millis(10),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// The longest `busy_timeout` SQLite takes: it counts milliseconds in a C `int`.
pub const MAX_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

fn check_options(options: &SqliteOptions) -> Result<()> {
    if options.busy_timeout > MAX_BUSY_TIMEOUT {
        return Err(Error::InvalidInput(format!(
            "busy_timeout is too large: {} seconds (SQLite takes at most {} seconds)",
            options.busy_timeout.as_secs_f64(),
            MAX_BUSY_TIMEOUT.as_secs_f64()
        )));
    }
    Ok(())
}

/// The file's folder must exist already (and the path must name a file).
fn check_folder(path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::InvalidInput(
            "the SQLite database path must not be empty".to_owned(),
        ));
    }
    // A relative name without a folder lives in the current directory.
    let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    match std::fs::metadata(folder) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::Backend(format!(
            "cannot open {}: {} is not a folder",
            path.display(),
            folder.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Backend(format!(
            "cannot open {}: the folder {} does not exist (it is not created)",
            path.display(),
            folder.display()
        ))),
        Err(e) => Err(Error::Backend(format!(
            "cannot open {}: folder {}: {e}",
            path.display(),
            folder.display()
        ))),
    }
}

pub struct SqliteStore {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Option<Connection>>,
    readers: Mutex<Vec<Connection>>,
    signal: CommitSignal,
    lifecycle: Lifecycle,
    /// Whether the watcher runs; held while it starts, so that every caller of `watch_commits`
    /// returns only after the watcher's first reading.
    watching: Mutex<bool>,
    leases: Mutex<HashMap<LeaseId, (String, File)>>,
    next_lease: AtomicU64,
    beacon: Mutex<beacon::Ringer>,
}

pub(crate) fn backend(error: rusqlite::Error) -> Error {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
            Error::Backend(format!(
                "the database stayed locked by another writer for too long: {error}"
            ))
        }
        Some(rusqlite::ErrorCode::DiskFull) => Error::Backend(format!("the disk is full: {error}")),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => {
            Error::Backend(format!("the database file is damaged: {error}"))
        }
        _ => Error::Backend(error.to_string()),
    }
}

impl Shared {
    fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }

    fn check_open(&self) -> Result<()> {
        self.lifecycle.check_open()
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the writer connection; any error
    /// rolls everything back, so nothing of a failed call is left behind.
    fn write<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.check_open()?;
        let _inside = fork_gate::enter();
        let mut writer = self.writer.lock();
        let connection = writer.as_mut().ok_or(Error::StoreClosed)?;
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let out = work(&transaction)?;
        transaction.commit().map_err(backend)?;
        Ok(out)
    }

    /// Runs `work` in one read transaction (one snapshot) on a pooled reader connection.
    fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.check_open()?;
        let _inside = fork_gate::enter();
        let pooled = self.readers.lock().pop();
        let mut connection = match pooled {
            Some(connection) => connection,
            None => schema::open_connection(
                &self.path,
                self.options.synchronous,
                self.options.busy_timeout,
            )?,
        };
        let out = (|| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(backend)?;
            let out = work(&transaction)?;
            transaction.finish().map_err(backend)?;
            Ok(out)
        })();
        if !self.is_closed() {
            self.readers.lock().push(connection);
        }
        out
    }
}

impl SqliteStore {
    /// Opens (creating when missing) the store in the file `path`. The folder must exist: a
    /// mistyped folder is an error, not a new empty store (SPEC §7).
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        check_options(&options)?;
        check_folder(&path)?;
        let mut writer = schema::open_unconfigured(&path, options.busy_timeout)?;
        schema::check_tables(&writer, &path)?;
        schema::configure(&writer, &path, options.synchronous)?;
        schema::prepare(&mut writer, &path)?;
        Ok(Self {
            shared: Arc::new(Shared {
                options,
                writer: Mutex::new(Some(writer)),
                readers: Mutex::new(Vec::new()),
                signal: CommitSignal::new(),
                lifecycle: Lifecycle::process_bound(),
                watching: Mutex::new(false),
                leases: Mutex::new(HashMap::new()),
                next_lease: AtomicU64::new(1),
                beacon: Mutex::new(beacon::Ringer::new(&path)),
                path,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// A conditional append (`what` names the version argument, for a too large one).
    fn append_on(
        &self,
        events: Vec<NewEvent>,
        condition: Condition<'_>,
        what: &str,
    ) -> Result<AppendResult> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        sql_numbers::check(condition.named_version(), what)?;
        let prepared = prepare_events(&events, FloatText::Shortest);
        self.committed(
            self.shared
                .write(|c| writes::append(c, &prepared, Some(condition))),
        )
    }

    fn committed(&self, result: Result<AppendResult>) -> Result<AppendResult> {
        if result.is_ok() {
            self.shared.signal.notify();
            self.shared.beacon.lock().ring();
        }
        result
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if self.shared.lifecycle.inherited() {
            // In a forked child, dropping would close the parent's connections (SPEC §7).
            std::mem::forget(Arc::clone(&self.shared));
        }
    }
}

impl EventStore for SqliteStore {
    fn append(&self, events: Vec<NewEvent>) -> Result<AppendResult> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        let prepared = prepare_events(&events, FloatText::Shortest);
        self.committed(self.shared.write(|c| writes::append(c, &prepared, None)))
    }

    fn append_if(
        &self,
        events: Vec<NewEvent>,
        context: &EventQuery,
        expected: Option<u64>,
    ) -> Result<AppendResult> {
        self.append_on(
            events,
            Condition::VersionIs { context, expected },
            "expected_context_version",
        )
    }

    fn append_unless(
        &self,
        events: Vec<NewEvent>,
        context: &EventQuery,
        after: Option<u64>,
    ) -> Result<AppendResult> {
        self.append_on(events, Condition::NoneAfter { context, after }, "after")
    }

    fn query(&self, query: &EventQuery, limit: Option<usize>) -> Result<QueryResult> {
        sql_numbers::check_query(query)?;
        self.shared
            .read(|connection| search::query(&mut SqliteLog { connection }, query, limit))
    }

    fn read_batches(
        &self,
        position: u64,
        query: &EventQuery,
        max_events: usize,
    ) -> Result<BatchPage> {
        sql_numbers::check_query(query)?;
        self.shared.read(|connection| {
            search::read_batches(&mut SqliteLog { connection }, position, query, max_events)
        })
    }

    fn restore_batches(&self, batches: Vec<crate::restore::RestoredBatch>) -> Result<AppendResult> {
        self.committed(self.shared.write(|c| restore::restore(c, &batches)))
    }

    fn read_text_batches(
        &self,
        position: u64,
        max_events: usize,
    ) -> Result<Option<crate::restore::TextPage>> {
        self.shared
            .read(|connection| restore::read_text_batches(connection, position, max_events))
            .map(Some)
    }

    fn head(&self) -> Result<u64> {
        self.shared.read(reads::head)
    }

    fn commit_signal(&self) -> &CommitSignal {
        &self.shared.signal
    }

    fn watch_commits(&self) {
        if self.shared.is_closed() {
            return;
        }
        let mut watching = self.shared.watching.lock();
        if !*watching {
            *watching = watcher::spawn(Arc::downgrade(&self.shared));
        }
    }

    fn release_idle(&self) {
        // Streams open a reader connection again when they read.
        self.shared.readers.lock().clear();
    }

    fn acquire_durable(&self, name: &str, query: &EventQuery) -> Result<(LeaseId, u64)> {
        self.shared.check_open()?;
        self.shared.read(|c| {
            durable::check_query(c, name, query)?;
            durable::check_batch_format(c)
        })?;
        let lock = durable::lock_name(&durable::lock_folder(&self.shared.path), name)?;
        let cursor = self
            .shared
            .write(|c| durable::load_or_create(c, name, query))?;
        let lease = self.shared.next_lease.fetch_add(1, Ordering::Relaxed);
        self.shared
            .leases
            .lock()
            .insert(lease, (name.to_owned(), lock));
        Ok((lease, cursor))
    }

    fn save_durable_cursor(&self, name: &str, lease: LeaseId, position: u64) -> Result<()> {
        if self.shared.lifecycle.inherited() {
            return Err(Error::StoreClosed);
        }
        if self
            .shared
            .leases
            .lock()
            .get(&lease)
            .is_none_or(|(held, _)| held != name)
        {
            return Ok(());
        }
        self.shared.write(|c| durable::advance(c, name, position))
    }

    fn release_durable(&self, _name: &str, lease: LeaseId) -> Result<()> {
        if self.shared.lifecycle.inherited() {
            return Ok(()); // the parent holds the name
        }
        // Dropping the file releases the lock.
        self.shared.leases.lock().remove(&lease);
        Ok(())
    }

    fn durable_streams(&self) -> Result<Vec<DurableStreamInfo>> {
        self.shared.read(durable::list)
    }

    fn reset_durable_stream(&self, name: &str, sequence_number: u64) -> Result<()> {
        self.shared.check_open()?;
        sql_numbers::to_sql(sequence_number, "sequence_number")?;
        let _held = durable::lock_name(&durable::lock_folder(&self.shared.path), name)?;
        if self
            .shared
            .write(|c| durable::reset(c, name, sequence_number))?
        {
            Ok(())
        } else {
            Err(Error::DurableStream(format!(
                "unknown durable stream {name:?}"
            )))
        }
    }

    fn delete_durable_stream(&self, name: &str) -> Result<()> {
        self.shared.check_open()?;
        let _held = durable::lock_name(&durable::lock_folder(&self.shared.path), name)?;
        self.shared.write(|c| durable::delete(c, name))
    }

    fn close(&self) -> Result<()> {
        self.shared.lifecycle.close();
        if self.shared.lifecycle.inherited() {
            // A forked child's copy: the connections and locks are the parent's (SPEC §7).
            return Ok(());
        }
        self.shared.signal.close();
        self.shared.leases.lock().clear();
        self.shared.readers.lock().clear();
        if let Some(writer) = self.shared.writer.lock().take() {
            writer.close().map_err(|(_, e)| backend(e))?;
        }
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temporary_database(name: &str) -> PathBuf {
        let folder =
            std::env::temp_dir().join(format!("factstr-core-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        folder.join("events.db")
    }

    #[test]
    fn batches_and_selective_queries_survive_reopening() {
        let path = temporary_database("reopen");
        {
            let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
            store
                .append(
                    (0..3)
                        .map(|i| NewEvent::new("a", json!({"k": i})))
                        .collect(),
                )
                .unwrap();
            store
                .append(vec![NewEvent::new("b", json!({"k": 1.0, "tags": ["x"]}))])
                .unwrap();
            store.close().unwrap();
        }
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let query = EventQuery {
            filters: Some(vec![crate::types::EventFilter {
                event_types: None,
                payload_predicates: Some(vec![json!({"k": 1})]),
            }]),
            min_sequence_number: None,
        };
        let result = store.query(&query, None).unwrap();
        assert_eq!(
            result
                .event_records
                .iter()
                .map(|r| r.sequence_number)
                .collect::<Vec<_>>(),
            vec![2, 4]
        );
        assert_eq!(result.current_context_version, Some(4));
        let page = store.read_batches(0, &EventQuery::all(), 100).unwrap();
        let shapes: Vec<(usize, u64)> = page
            .batches
            .iter()
            .map(|b| (b.records.len(), b.last_sequence_number))
            .collect();
        assert_eq!(shapes, vec![(3, 3), (1, 4)]);
        assert!(matches!(
            store.append_if(vec![NewEvent::new("c", json!({}))], &query, Some(2)),
            Err(Error::ConditionalAppendConflict {
                expected: Some(2),
                actual: Some(4)
            })
        ));
        assert_eq!(
            store
                .append_if(vec![NewEvent::new("c", json!({}))], &query, Some(4))
                .unwrap()
                .first_sequence_number,
            5
        );
    }

    #[test]
    fn a_failed_append_leaves_nothing_and_burns_no_number() {
        let path = temporary_database("rollback");
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        store.append(vec![NewEvent::new("a", json!({}))]).unwrap();
        let stale = EventQuery::all();
        assert!(store
            .append_if(vec![NewEvent::new("a", json!({}))], &stale, None)
            .is_err());
        assert_eq!(store.head().unwrap(), 1);
        assert_eq!(
            store
                .append(vec![NewEvent::new("a", json!({}))])
                .unwrap()
                .first_sequence_number,
            2
        );
    }
}
