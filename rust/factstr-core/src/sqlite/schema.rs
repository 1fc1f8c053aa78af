//! Opening a SQLite file: connection settings, recognising a factstr database (ours or one
//! written by `factstr-sqlite` 0.5.2), refusing anything else, and creating what is missing.
//!
//! The upstream tables (`events`, `append_batches`, `store_metadata`, `subscriber_cursors`) and
//! their indexes are kept exactly; we add only the payload index (`factstr_payload_level_0`,
//! `factstr_payload_runs`, `factstr_payload_blocks`, see `payload_index`),
//! `factstr_payload_index_state` (how far that index is current) and the idempotency keys
//! (`factstr_idempotency_keys`, see `idempotency`).

use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{backend, idempotency, payload_index};
use crate::error::{Error, Result};
use crate::sql::layout::{self, BATCH_FORMAT_KEY, BATCH_FORMAT_SPARSE};

pub const STORE_FORMAT_VERSION: &str = "1";
/// Bumped when the key encoding of `payload_keys` changes; the index is then rebuilt.
pub const PAYLOAD_KEY_FORMAT: i64 = 8;

/// How durable a commit is (SQLite's `synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// A committed append survives power loss (fsync on every commit).
    Full,
    /// A committed append survives a crash of the process, but the last commits may be lost
    /// on power loss or an OS crash; commits are much cheaper.
    Normal,
}

/// Opens a connection to a known factstr database (see `check_tables` for a file not yet known).
pub fn open_connection(
    path: &std::path::Path,
    synchronous: Synchronous,
    busy_timeout: Duration,
) -> Result<Connection> {
    let connection = open_unconfigured(path, busy_timeout)?;
    configure(&connection, path, synchronous)?;
    Ok(connection)
}

/// Opens without changing anything in the file.
pub fn open_unconfigured(path: &std::path::Path, busy_timeout: Duration) -> Result<Connection> {
    super::file_locks::install();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection =
        Connection::open_with_flags(path, flags).map_err(|e| describe_open_error(path, e))?;
    connection.busy_timeout(busy_timeout).map_err(backend)?;
    Ok(connection)
}

/// Switches to WAL (which rewrites the file header, so only for a file known to be ours or new)
/// and sets the connection's durability.
pub fn configure(
    connection: &Connection,
    path: &std::path::Path,
    synchronous: Synchronous,
) -> Result<()> {
    let journal: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| describe_open_error(path, e))?;
    if !journal.eq_ignore_ascii_case("wal") {
        return Err(Error::Backend(format!(
            "{}: could not switch to WAL journal mode (got {journal})",
            path.display()
        )));
    }
    let level = match synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    // A larger page cache (32 MiB) keeps the upper levels of the payload index in memory.
    connection
        .execute_batch(&format!(
            "PRAGMA synchronous = {level}; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;"
        ))
        .map_err(backend)?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn describe_open_error(path: &std::path::Path, error: rusqlite::Error) -> Error {
    match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => Error::Backend(format!(
            "{} is not a SQLite database (is it another kind of file?)",
            path.display()
        )),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) => Error::Backend(format!(
            "{} is damaged (SQLite reports corruption)",
            path.display()
        )),
        _ => Error::Backend(format!("cannot open {}: {error}", path.display())),
    }
}

/// The upstream cursor table of this layout; the other upstream tables are `sql::layout`'s.
const CURSOR_TABLE: (&str, &[&str]) = (
    "subscriber_cursors",
    &[
        "subscriber_id",
        "event_query",
        "last_processed_sequence_number",
    ],
);

const CREATE_UPSTREAM: &str = "
    CREATE TABLE IF NOT EXISTS events (
        sequence_number INTEGER PRIMARY KEY,
        occurred_at TEXT NOT NULL,
        event_type TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS append_batches (
        first_sequence_number INTEGER PRIMARY KEY,
        last_sequence_number INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS store_metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS subscriber_cursors (
        subscriber_id TEXT PRIMARY KEY,
        event_query TEXT NOT NULL,
        last_processed_sequence_number INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS idx_events_type ON events(event_type);
    CREATE INDEX IF NOT EXISTS idx_events_occurred_at ON events(occurred_at);
";

// How far the payload index (see `payload_index`) is current: events appended by writers that do
// not maintain it (the upstream crates) are indexed by the next append of ours.
const CREATE_INDEX_STATE: &str = "
    CREATE TABLE IF NOT EXISTS factstr_payload_index_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key_format INTEGER NOT NULL,
        indexed_through INTEGER NOT NULL
    );
";

/// Refuses a file that is not a factstr store (or an empty database), reading only.
pub fn check_tables(connection: &Connection, path: &std::path::Path) -> Result<()> {
    let tables = table_names(connection).map_err(|e| describe_open_error(path, e))?;
    check_columns(connection, path, &tables)
}

fn table_names(connection: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement =
        connection.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
    let names = statement.query_map([], |row| row.get(0))?;
    names.collect()
}

fn check_columns(connection: &Connection, path: &std::path::Path, tables: &[String]) -> Result<()> {
    if !tables.is_empty() && !tables.iter().any(|t| t == "events") {
        return Err(Error::Backend(format!(
            "{} is a SQLite database but not a factstr store (it has tables, none of them `events`)",
            path.display()
        )));
    }
    for (table, columns) in layout::expected_tables(CURSOR_TABLE) {
        if !tables.iter().any(|t| t == table) {
            continue;
        }
        let found: Vec<String> = {
            let mut statement = connection
                .prepare(&format!("PRAGMA table_info({table})"))
                .map_err(backend)?;
            let names = statement.query_map([], |row| row.get(1)).map_err(backend)?;
            names.collect::<rusqlite::Result<_>>().map_err(backend)?
        };
        if found != *columns {
            return Err(Error::Backend(format!(
                "{} is not a factstr store: table `{table}` has columns {found:?}, expected {columns:?}",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Creates what is missing (in one write transaction, so that processes starting at once do
/// not race) and checks the format markers.
pub fn prepare(connection: &mut Connection, path: &std::path::Path) -> Result<()> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| describe_open_error(path, e))?;
    let tables = table_names(&tx).map_err(backend)?;
    check_columns(&tx, path, &tables)?;
    let is_new = tables.is_empty();
    tx.execute_batch(CREATE_UPSTREAM).map_err(backend)?;
    tx.execute_batch(payload_index::CREATE).map_err(backend)?;
    tx.execute_batch(CREATE_INDEX_STATE).map_err(backend)?;
    tx.execute_batch(idempotency::CREATE).map_err(backend)?;
    tx.execute(
        "INSERT INTO store_metadata (key, value) VALUES ('store_format_version', ?1) ON CONFLICT(key) DO NOTHING",
        [STORE_FORMAT_VERSION],
    )
    .map_err(backend)?;
    if is_new {
        tx.execute(
            "INSERT INTO store_metadata (key, value) VALUES (?1, ?2)",
            [BATCH_FORMAT_KEY, BATCH_FORMAT_SPARSE],
        )
        .map_err(backend)?;
    }
    let version: String = tx
        .query_row(
            "SELECT value FROM store_metadata WHERE key = 'store_format_version'",
            [],
            |row| row.get(0),
        )
        .map_err(backend)?;
    if version != STORE_FORMAT_VERSION {
        return Err(Error::Backend(format!(
            "{} has store_format_version {version:?}; this factstr reads version {STORE_FORMAT_VERSION}",
            path.display()
        )));
    }
    let batch_format: Option<String> = tx
        .query_row(
            "SELECT value FROM store_metadata WHERE key = ?1",
            [BATCH_FORMAT_KEY],
            |row| row.get(0),
        )
        .ok();
    if let Some(format) = batch_format {
        if format != BATCH_FORMAT_SPARSE {
            return Err(Error::Backend(format!(
                "{} records batch boundaries as {format:?}; this factstr reads {BATCH_FORMAT_SPARSE:?}",
                path.display()
            )));
        }
    }
    // A missing or outdated key format means the index must be built again from the events.
    let key_format: Option<i64> = tx
        .query_row(
            "SELECT key_format FROM factstr_payload_index_state WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .ok();
    if key_format != Some(PAYLOAD_KEY_FORMAT) {
        payload_index::drop_all(&tx)?;
        tx.execute_batch(payload_index::CREATE).map_err(backend)?;
        tx.execute_batch("DELETE FROM factstr_payload_index_state;")
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO factstr_payload_index_state (id, key_format, indexed_through) VALUES (1, ?1, 0)",
            [PAYLOAD_KEY_FORMAT],
        )
        .map_err(backend)?;
    }
    tx.commit().map_err(backend)
}
