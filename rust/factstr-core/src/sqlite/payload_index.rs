//! The payload index of the SQLite store: which events have a given scalar at a given path.
//!
//! Rows are (key, batch) postings (see `postings`), kept as a small log-structured merge tree
//! inside one table: level 0 takes every append and stays small, so a commit dirties only a few
//! of its pages; when a level outgrows its capacity it is merged, in key order, into the next
//! level, eight times larger. Writing a key-ordered index one commit at a time would instead
//! dirty a page for nearly every key of the batch (a page per key, written to the WAL at each
//! commit), which costs more than the events themselves. A lookup seeks once per level.

use rusqlite::{Connection, ToSql};

use super::backend;
use crate::postings::decode_members;
use crate::error::{Error, Result};

pub const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS factstr_payload_index (
        level INTEGER NOT NULL,
        key_hash INTEGER NOT NULL,
        first_sequence_number INTEGER NOT NULL,
        members BLOB,
        PRIMARY KEY (level, key_hash, first_sequence_number)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS factstr_payload_index_levels (
        level INTEGER PRIMARY KEY,
        row_count INTEGER NOT NULL
    );
";

pub const DROP: &str = "
    DROP TABLE IF EXISTS factstr_payload_index;
    DROP TABLE IF EXISTS factstr_payload_index_levels;
";

/// Rows level 0 may hold before it is merged into level 1; each further level holds
/// `GROWTH` times more.
const LEVEL0_ROWS: i64 = 4096;
const GROWTH: i64 = 8;

/// The levels that hold rows, as SQL for `level IN (...)`.
const LIVE_LEVELS: &str = "SELECT level FROM factstr_payload_index_levels WHERE row_count > 0";

/// One posting: a key, the first sequence number of a batch that has it, the others.
pub type Posting = (i64, i64, Option<Vec<u8>>);

/// Adds postings (any order) at level 0, then merges levels that outgrew their capacity.
pub fn add(connection: &Connection, mut postings: Vec<Posting>) -> Result<()> {
    if postings.is_empty() {
        return Ok(());
    }
    postings.sort_unstable_by_key(|(hash, first, _)| (*hash, *first));
    let params: Vec<&dyn ToSql> =
        postings.iter().flat_map(|(hash, first, members)| [hash as &dyn ToSql, first, members]).collect();
    super::writes::insert_rows(
        connection,
        "INSERT INTO factstr_payload_index (level, key_hash, first_sequence_number, members) VALUES ",
        "(0,?,?,?)",
        3,
        &params,
    )?;
    add_to_count(connection, 0, postings.len() as i64)?;
    merge_full_levels(connection)
}

fn add_to_count(connection: &Connection, level: i64, rows: i64) -> Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO factstr_payload_index_levels (level, row_count) VALUES (?1, ?2) \
             ON CONFLICT(level) DO UPDATE SET row_count = row_count + excluded.row_count",
        )
        .map_err(backend)?
        .execute((level, rows))
        .map_err(backend)?;
    Ok(())
}

fn merge_full_levels(connection: &Connection) -> Result<()> {
    let mut level = 0i64;
    let mut capacity = LEVEL0_ROWS;
    loop {
        let rows: i64 = connection
            .prepare_cached("SELECT row_count FROM factstr_payload_index_levels WHERE level = ?1")
            .map_err(backend)?
            .query_row([level], |row| row.get(0))
            .unwrap_or(0);
        if rows <= capacity {
            return Ok(());
        }
        // In key order, the merge walks the larger level's pages once.
        connection
            .prepare_cached(
                "INSERT INTO factstr_payload_index (level, key_hash, first_sequence_number, members) \
                 SELECT level + 1, key_hash, first_sequence_number, members FROM factstr_payload_index \
                 WHERE level = ?1 ORDER BY key_hash, first_sequence_number",
            )
            .map_err(backend)?
            .execute([level])
            .map_err(backend)?;
        connection
            .prepare_cached("DELETE FROM factstr_payload_index WHERE level = ?1")
            .map_err(backend)?
            .execute([level])
            .map_err(backend)?;
        add_to_count(connection, level, -rows)?;
        add_to_count(connection, level + 1, rows)?;
        level += 1;
        capacity = capacity.saturating_mul(GROWTH);
    }
}

/// How many rows a key has, counted up to `cap`.
pub fn estimate(connection: &Connection, hash: i64, cap: i64) -> Result<i64> {
    connection
        .prepare_cached(&format!(
            "SELECT count(*) FROM (SELECT 1 FROM factstr_payload_index \
             WHERE level IN ({LIVE_LEVELS}) AND key_hash = ?1 LIMIT ?2)"
        ))
        .map_err(backend)?
        .query_row((hash, cap), |row| row.get(0))
        .map_err(backend)
}

/// Appends every sequence number indexed under `hash` to `out` (unordered).
pub fn lookup(connection: &Connection, hash: i64, out: &mut Vec<u64>) -> Result<()> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT first_sequence_number, members FROM factstr_payload_index \
             WHERE level IN ({LIVE_LEVELS}) AND key_hash = ?1"
        ))
        .map_err(backend)?;
    let mut rows = statement.query([hash]).map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        let first = row.get::<_, i64>(0).map_err(backend)? as u64;
        let members = row
            .get_ref(1)
            .map_err(backend)?
            .as_blob_or_null()
            .map_err(|e| Error::Backend(format!("payload index row is damaged: {e}")))?;
        decode_members(first, members, out);
    }
    Ok(())
}
