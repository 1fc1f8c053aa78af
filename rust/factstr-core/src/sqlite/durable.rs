//! Durable streams on SQLite: cursors in the upstream `subscriber_cursors` table, and
//! exclusivity across processes by an advisory lock on one small file per name, beside the
//! database. The operating system drops the lock when its holder closes it or dies, so a name
//! is free again at once, without heartbeats.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use super::backend;
use crate::error::{Error, Result};
use crate::payload_keys::key_hash;
use crate::sql::layout::{self, BATCH_FORMAT_KEY};
use crate::sql::numbers::{from_sql, to_sql};
use crate::sql::query_json::{query_from_json, query_to_json};
use crate::types::{DurableStreamInfo, EventQuery};

/// The folder of lock files for a database file: `<database>-factstr-locks`.
pub fn lock_folder(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-factstr-locks");
    PathBuf::from(name)
}

/// Takes the lock of `name` without waiting; `DurableStreamActive` when another holder has it.
pub fn lock_name(folder: &Path, name: &str) -> Result<File> {
    std::fs::create_dir_all(folder).map_err(|e| {
        Error::Backend(format!(
            "cannot create lock folder {}: {e}",
            folder.display()
        ))
    })?;
    let path = folder.join(format!("{:016x}.lock", key_hash(name) as u64));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::Backend(format!("cannot open lock file {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(Error::DurableStreamActive(name.to_owned())),
        Err(TryLockError::Error(e)) => Err(Error::Backend(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// The stored query of `name`, if it has a cursor row.
pub fn stored_query(connection: &Connection, name: &str) -> Result<Option<EventQuery>> {
    let stored: Option<String> = connection
        .query_row(
            "SELECT event_query FROM subscriber_cursors WHERE subscriber_id = ?1",
            [name],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)?;
    stored.map(|text| query_from_json(&text)).transpose()
}

/// Fails with a backend error naming the marker unless `store_metadata` records the sparse
/// batch boundaries that replay reads (SPEC §9). Without it, a database may predate them: its
/// batches could not be told apart, so `factstr-sqlite` 0.5.2 refuses every durable replay
/// there, and so do we (before the cursor is created). Plain appends and queries need no
/// boundaries and go on working.
pub fn check_batch_format(connection: &Connection) -> Result<()> {
    let format: Option<String> = connection
        .query_row(
            "SELECT value FROM store_metadata WHERE key = ?1",
            [BATCH_FORMAT_KEY],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)?;
    layout::check_batch_format(format.as_deref())
}

/// Creates the cursor row (at 0) unless it exists; returns the stored query and cursor.
pub fn load_or_create(
    connection: &Connection,
    name: &str,
    query: &EventQuery,
) -> Result<(EventQuery, u64)> {
    let stored: Option<(String, i64)> = connection
        .query_row(
            "SELECT event_query, last_processed_sequence_number FROM subscriber_cursors WHERE subscriber_id = ?1",
            [name],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    match stored {
        Some((text, cursor)) => Ok((query_from_json(&text)?, from_sql(cursor))),
        None => {
            connection
                .execute(
                    "INSERT INTO subscriber_cursors (subscriber_id, event_query, last_processed_sequence_number) VALUES (?1, ?2, 0)",
                    (name, query_to_json(query)),
                )
                .map_err(backend)?;
            Ok((query.clone(), 0))
        }
    }
}

/// Moves a cursor forward (never backwards).
pub fn advance(connection: &Connection, name: &str, position: u64) -> Result<()> {
    connection
        .prepare_cached(
            "UPDATE subscriber_cursors SET last_processed_sequence_number = ?2 \
             WHERE subscriber_id = ?1 AND last_processed_sequence_number < ?2",
        )
        .map_err(backend)?
        .execute((name, to_sql(position, "sequence_number")?))
        .map_err(backend)?;
    Ok(())
}

pub fn list(connection: &Connection) -> Result<Vec<DurableStreamInfo>> {
    let mut statement = connection
        .prepare("SELECT subscriber_id, event_query, last_processed_sequence_number FROM subscriber_cursors ORDER BY subscriber_id")
        .map_err(backend)?;
    let rows = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .map_err(backend)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, text, cursor) = row.map_err(backend)?;
        out.push(DurableStreamInfo {
            name,
            query: query_from_json(&text)?,
            last_processed_sequence_number: from_sql(cursor),
        });
    }
    Ok(out)
}

/// Sets a cursor; `false` when the name is unknown.
pub fn reset(connection: &Connection, name: &str, position: u64) -> Result<bool> {
    let changed = connection
        .execute(
            "UPDATE subscriber_cursors SET last_processed_sequence_number = ?2 WHERE subscriber_id = ?1",
            (name, to_sql(position, "sequence_number")?),
        )
        .map_err(backend)?;
    Ok(changed > 0)
}

pub fn delete(connection: &Connection, name: &str) -> Result<()> {
    connection
        .execute(
            "DELETE FROM subscriber_cursors WHERE subscriber_id = ?1",
            [name],
        )
        .map_err(backend)?;
    Ok(())
}
