//! Durable streams on PostgreSQL: cursors in the upstream `durable_stream_cursors` table, and
//! exclusivity across processes and machines by a session advisory lock, held on a connection
//! of its own for the registration's lifetime. The server drops the lock when that connection
//! closes, including when the holder's process dies.

use super::client::Client;

use super::pool::{Conn, Pool};
use crate::error::{Error, Result};
use crate::sql::layout::{self, BATCH_FORMAT_KEY};
use crate::sql::numbers::{from_sql, to_sql};
use crate::sql::query_json::{query_from_json, query_to_json};
use crate::types::{DurableStreamInfo, EventQuery};

const LOCK_KEY: &str = "hashtextextended('factstr-durable:' || current_schema() || ':' || $1, 0)";

/// A connection holding the lock of `name`; `DurableStreamActive` when another holder has it.
pub fn lock_name(pool: &Pool, name: &str) -> Result<Client> {
    let mut client = pool.connect()?;
    let taken: bool = client
        .query_one(
            &format!("SELECT pg_try_advisory_lock({LOCK_KEY})"),
            &[&name],
        )
        .map_err(|e| pool.error(e))?
        .get(0);
    if taken {
        Ok(client)
    } else {
        Err(Error::DurableStreamActive(name.to_owned()))
    }
}

/// Releases the lock of `name` held on `client` before the connection closes: closing alone
/// lets the server release it only when it notices the disconnection, a moment later.
pub fn unlock_name(mut client: Client, name: &str) {
    let _ = client.query_one(&format!("SELECT pg_advisory_unlock({LOCK_KEY})"), &[&name]);
}

/// The stored query of `name`, if it has a cursor row.
pub fn stored_query(conn: &mut Conn, name: &str) -> Result<Option<EventQuery>> {
    conn.query_opt(
        "SELECT event_query FROM durable_stream_cursors WHERE durable_stream_id = $1",
        &[&name],
    )
    .map_err(|e| conn.error(e))?
    .map(|row| query_from_json(row.get(0)))
    .transpose()
}

/// Fails with a backend error naming the marker unless `store_metadata` records the sparse
/// batch boundaries that replay reads (SPEC §9): `factstr-postgres` 0.5.2 refuses every durable
/// replay without it, and so do we (before the cursor is created). Plain appends and queries
/// need no boundaries and go on working.
pub fn check_batch_format(conn: &mut Conn) -> Result<()> {
    let format: Option<String> = conn
        .query_opt(
            "SELECT value FROM store_metadata WHERE key = $1",
            &[&BATCH_FORMAT_KEY],
        )
        .map_err(|e| conn.error(e))?
        .map(|row| row.get(0));
    layout::check_batch_format(format.as_deref())
}

/// Creates the cursor row (at 0) unless it exists; returns the stored query and cursor.
pub fn load_or_create(
    conn: &mut Conn,
    name: &str,
    query: &EventQuery,
) -> Result<(EventQuery, u64)> {
    conn.execute(
        "INSERT INTO durable_stream_cursors (durable_stream_id, event_query, last_processed_sequence_number) \
         VALUES ($1, $2, 0) ON CONFLICT (durable_stream_id) DO NOTHING",
        &[&name, &query_to_json(query)],
    )
    .map_err(|e| conn.error(e))?;
    let row = conn
        .query_one(
            "SELECT event_query, last_processed_sequence_number FROM durable_stream_cursors WHERE durable_stream_id = $1",
            &[&name],
        )
        .map_err(|e| conn.error(e))?;
    Ok((query_from_json(row.get(0))?, from_sql(row.get(1))))
}

/// Moves a cursor forward (never backwards).
pub fn advance(conn: &mut Conn, name: &str, position: u64) -> Result<()> {
    conn.execute(
        "UPDATE durable_stream_cursors SET last_processed_sequence_number = $2 \
         WHERE durable_stream_id = $1 AND last_processed_sequence_number < $2",
        &[&name, &to_sql(position, "sequence_number")?],
    )
    .map_err(|e| conn.error(e))?;
    Ok(())
}

pub fn list(conn: &mut Conn) -> Result<Vec<DurableStreamInfo>> {
    let rows = conn
        .query(
            "SELECT durable_stream_id, event_query, last_processed_sequence_number FROM durable_stream_cursors \
             ORDER BY durable_stream_id",
            &[],
        )
        .map_err(|e| conn.error(e))?;
    rows.iter()
        .map(|row| {
            Ok(DurableStreamInfo {
                name: row.get(0),
                query: query_from_json(row.get(1))?,
                last_processed_sequence_number: from_sql(row.get(2)),
            })
        })
        .collect()
}

/// Sets a cursor; `false` when the name is unknown.
pub fn reset(conn: &mut Conn, name: &str, position: u64) -> Result<bool> {
    let changed = conn
        .execute(
            "UPDATE durable_stream_cursors SET last_processed_sequence_number = $2 WHERE durable_stream_id = $1",
            &[&name, &to_sql(position, "sequence_number")?],
        )
        .map_err(|e| conn.error(e))?;
    Ok(changed > 0)
}

pub fn delete(conn: &mut Conn, name: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM durable_stream_cursors WHERE durable_stream_id = $1",
        &[&name],
    )
    .map_err(|e| conn.error(e))?;
    Ok(())
}
