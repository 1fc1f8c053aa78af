//! The payload index of the SQLite store: which events have a given scalar at a given path.
//!
//! Rows are (key, batch) postings (see `postings`), kept as a small log-structured merge tree,
//! one table (B-tree) per level: level 0 takes every append and stays small, so a commit dirties
//! only a few of its pages; when a level outgrows its capacity it is merged, in key order, into
//! the next level, eight times larger. (One table per level rather than a level column keeps the
//! keys two columns wide: about 15% cheaper appends, measured.) Writing a key-ordered index one commit at a time would instead
//! dirty a page for nearly every key of the batch (a page per key, written to the WAL at each
//! commit), which costs more than the events themselves. A lookup seeks once per level.

use rusqlite::{Connection, ToSql};

use super::backend;
use crate::postings::decode_members;
use crate::error::{Error, Result};

pub const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS factstr_payload_index_levels (
        level INTEGER PRIMARY KEY,
        row_count INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS factstr_payload_level_0 (
        key_hash INTEGER NOT NULL,
        first_sequence_number INTEGER NOT NULL,
        members BLOB,
        PRIMARY KEY (key_hash, first_sequence_number)
    ) WITHOUT ROWID;
";

/// The table of one level: a B-tree of its own, ordered by key.
fn table(level: i64) -> String {
    format!("factstr_payload_level_{level}")
}

fn create_level(connection: &Connection, level: i64) -> Result<()> {
    connection
        .execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (key_hash INTEGER NOT NULL, first_sequence_number INTEGER NOT NULL, \
             members BLOB, PRIMARY KEY (key_hash, first_sequence_number)) WITHOUT ROWID",
            table(level)
        ))
        .map_err(backend)
}

/// Drops every table of the index (before a rebuild).
pub fn drop_all(connection: &Connection) -> Result<()> {
    let names: Vec<String> = {
        let mut statement = connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE 'factstr_payload_level_%' OR name = 'factstr_payload_index' OR name = 'factstr_payload_index_levels')")
            .map_err(backend)?;
        let rows = statement.query_map([], |row| row.get(0)).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)?
    };
    for name in names {
        connection.execute_batch(&format!("DROP TABLE {name}")).map_err(backend)?;
    }
    Ok(())
}

fn live_levels(connection: &Connection) -> Result<Vec<i64>> {
    let mut statement = connection
        .prepare_cached("SELECT level FROM factstr_payload_index_levels WHERE row_count > 0 ORDER BY level")
        .map_err(backend)?;
    let rows = statement.query_map([], |row| row.get(0)).map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

/// Rows level 0 may hold before it is merged into level 1; each further level holds
/// `GROWTH` times more.
const LEVEL0_ROWS: i64 = 4096;
const GROWTH: i64 = 8;

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
        "INSERT INTO factstr_payload_level_0 (key_hash, first_sequence_number, members) VALUES ",
        "(?,?,?)",
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
        create_level(connection, level + 1)?;
        connection
            .execute_batch(&format!(
                "INSERT INTO {next} (key_hash, first_sequence_number, members) \
                 SELECT key_hash, first_sequence_number, members FROM {this} ORDER BY key_hash, first_sequence_number; \
                 DELETE FROM {this};",
                next = table(level + 1),
                this = table(level)
            ))
            .map_err(backend)?;
        add_to_count(connection, level, -rows)?;
        add_to_count(connection, level + 1, rows)?;
        level += 1;
        capacity = capacity.saturating_mul(GROWTH);
    }
}

/// How many rows a key has, counted up to `cap`.
pub fn estimate(connection: &Connection, hash: i64, cap: i64) -> Result<i64> {
    let mut total = 0;
    for level in live_levels(connection)? {
        if total >= cap {
            break;
        }
        let sql = format!("SELECT count(*) FROM (SELECT 1 FROM {} WHERE key_hash = ?1 LIMIT ?2)", table(level));
        let count: i64 = connection
            .prepare_cached(&sql)
            .map_err(backend)?
            .query_row((hash, cap - total), |row| row.get(0))
            .map_err(backend)?;
        total += count;
    }
    Ok(total)
}

/// Appends every sequence number indexed under `hash` to `out` (unordered).
pub fn lookup(connection: &Connection, hash: i64, out: &mut Vec<u64>) -> Result<()> {
    for level in live_levels(connection)? {
        let sql = format!("SELECT first_sequence_number, members FROM {} WHERE key_hash = ?1", table(level));
        let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
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
    }
    Ok(())
}
