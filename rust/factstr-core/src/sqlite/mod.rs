//! The SQLite store: the whole contract in one file, on the table layout of `factstr-sqlite`
//! 0.5.2, shared safely by several store objects and processes.
//!
//! - Writes: one writer connection per store; every append is one `BEGIN IMMEDIATE`
//!   transaction, which SQLite serialises across processes (see `writes`); concurrent appends of
//!   the store's threads share one (see `group`).
//! - Reads: a small pool of reader connections; WAL lets them run beside the writer, and each
//!   read runs in one transaction, so it sees one snapshot (see `reads`).
//! - Streams: the store's commit signal is raised by its own appends and, while streams exist,
//!   by a watcher that notices other processes' commits (see `watcher`, `beacon`).
//! - Durable streams: cursors in `subscriber_cursors`, exclusivity by lock files (see `durable`).

mod beacon;
mod durable;
mod file_locks;
pub mod fork_gate;
mod group;
mod payload_index;
mod posting_block;
mod reads;
mod restore;
mod schema;
mod watcher;
mod writes;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, TransactionBehavior};

pub use schema::Synchronous;

use crate::error::{Error, Result};
use crate::restore::RestoredBatch;
use crate::signal::CommitSignal;
use crate::sql::numbers;
use crate::sql::prepared::{prepare_events, FloatText};
use crate::sql::search;
use crate::store::{AppendRequest, Storage, Store};
use crate::types::{
    AppendResult, BatchPage, DurableStreamInfo, EventQuery, EventRecord, QueryResult,
};
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

/// The SQLite store (see `store` for what every store shares).
pub type SqliteStore = Store<SqliteStorage>;

pub struct SqliteStorage {
    path: PathBuf,
    options: SqliteOptions,
    writer: Mutex<Option<Connection>>,
    readers: Mutex<Vec<Connection>>,
    /// Set by `close`, so that a read still running then does not pool its connection again.
    closed: AtomicBool,
    /// Whether the watcher runs; held while it starts, so that every caller of `watch_commits`
    /// returns only after the watcher's first reading.
    watching: Mutex<bool>,
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

impl SqliteStorage {
    /// Runs `work` in one `BEGIN IMMEDIATE` transaction on the writer connection; any error
    /// rolls everything back, so nothing of a failed call is left behind.
    fn write<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
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
        if self.closed.load(Ordering::Acquire) {
            // Closed while this call was on its way (`Store` checked before): open nothing new.
            return Err(Error::StoreClosed);
        }
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
        if !self.closed.load(Ordering::Acquire) {
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
        Ok(Store::from_storage(SqliteStorage {
            options,
            writer: Mutex::new(Some(writer)),
            readers: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            watching: Mutex::new(false),
            beacon: Mutex::new(beacon::Ringer::new(&path)),
            path,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.storage().path
    }
}

impl Storage for SqliteStorage {
    /// An advisory lock on a file of the name's own (see `durable`).
    type NameLock = File;
    const BOUND_TO_PROCESS: bool = true;
    const LARGEST_NUMBER: u64 = numbers::LARGEST;

    fn append(&self, request: AppendRequest<'_>) -> Result<AppendResult> {
        let prepared = prepare_events(&request.events, FloatText::Shortest);
        let result = self.write(|c| writes::append(c, &prepared, request.condition))?;
        self.beacon.lock().ring();
        Ok(result)
    }

    /// One `BEGIN IMMEDIATE` transaction for the whole group, a savepoint per request (see
    /// `group`).
    fn append_group(&self, requests: Vec<AppendRequest<'_>>) -> Vec<Result<AppendResult>> {
        let prepared: Vec<_> = requests
            .iter()
            .map(|r| (prepare_events(&r.events, FloatText::Shortest), r.condition))
            .collect();
        let results = self
            .write(|c| group::append_each(c, &prepared))
            .unwrap_or_else(|error| group::all_failed(prepared.len(), error));
        if results.iter().any(Result::is_ok) {
            self.beacon.lock().ring();
        }
        results
    }

    fn query(&self, query: &EventQuery, limit: Option<usize>) -> Result<QueryResult> {
        self.read(|connection| search::query(&mut SqliteLog { connection }, query, limit))
    }

    fn query_page(&self, query: &EventQuery, limit: usize) -> Result<Vec<EventRecord>> {
        self.read(|connection| {
            let log = &mut SqliteLog { connection };
            let plan = search::plan(log, query)?;
            let after = query.min_sequence_number.unwrap_or(0);
            search::matching_records(log, query, &plan, after, limit)
        })
    }

    fn read_batches(&self, after: u64, query: &EventQuery, max_events: usize) -> Result<BatchPage> {
        self.read(|connection| {
            search::read_batches(&mut SqliteLog { connection }, after, query, max_events)
        })
    }

    fn restore(&self, batches: Vec<RestoredBatch>, written: AppendResult) -> Result<AppendResult> {
        let result = self.write(|c| restore::restore(c, &batches, written))?;
        self.beacon.lock().ring();
        Ok(result)
    }

    fn read_text_batches(
        &self,
        position: u64,
        max_events: usize,
    ) -> Result<Option<crate::restore::TextPage>> {
        self.read(|connection| restore::read_text_batches(connection, position, max_events))
            .map(Some)
    }

    fn head(&self) -> Result<u64> {
        self.read(reads::head)
    }

    fn check_replayable(&self) -> Result<()> {
        self.read(durable::check_batch_format)
    }

    fn stored_query(&self, name: &str) -> Result<Option<EventQuery>> {
        self.read(|c| durable::stored_query(c, name))
    }

    fn lock_name(&self, name: &str) -> Result<File> {
        durable::lock_name(&durable::lock_folder(&self.path), name)
    }

    fn create_cursor(&self, name: &str, query: &EventQuery) -> Result<(EventQuery, u64)> {
        self.write(|c| durable::load_or_create(c, name, query))
    }

    fn advance_cursor(&self, name: &str, position: u64) -> Result<()> {
        self.write(|c| durable::advance(c, name, position))
    }

    fn durable_streams(&self) -> Result<Vec<DurableStreamInfo>> {
        self.read(durable::list)
    }

    fn reset_cursor(&self, name: &str, position: u64) -> Result<bool> {
        self.write(|c| durable::reset(c, name, position))
    }

    fn delete_cursor(&self, name: &str) -> Result<()> {
        self.write(|c| durable::delete(c, name))
    }

    fn watch_commits(&self, signal: Weak<CommitSignal>) {
        let mut watching = self.watching.lock();
        if !*watching {
            *watching = watcher::spawn(self, signal);
        }
    }

    fn release_idle(&self) {
        // Streams open a reader connection again when they read.
        self.readers.lock().clear();
    }

    fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.readers.lock().clear();
        if let Some(writer) = self.writer.lock().take() {
            writer.close().map_err(|(_, e)| backend(e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventStore;
    use crate::types::NewEvent;
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
