//! The SQLite store's idempotency keys (see `crate::idempotency`): a table of our own beside the
//! upstream layout, read and written inside the append's `BEGIN IMMEDIATE` transaction (which
//! holds the database's write lock), so the lookup, the batch and its key are one atomic step
//! across processes. Inside a larger transaction (several appends committed together) a lookup
//! sees the keys of the appends before it.

use rusqlite::{Connection, OptionalExtension};

use super::backend;
use crate::error::Result;
use crate::idempotency::{prunes_at, IdempotencyKey, Retention, PRUNE_AT_MOST};
use crate::sql::numbers::{from_sql, to_sql};
use crate::types::{AppendResult, Timestamp};

/// `key_number` numbers the keys densely in commit order (the highest plus one, under the write
/// lock): the retention counts keys by it. `committed_at` is in microseconds since 1970 (UTC).
pub const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS factstr_idempotency_keys (
        idempotency_key TEXT PRIMARY KEY,
        key_number INTEGER NOT NULL UNIQUE,
        first_sequence_number INTEGER NOT NULL,
        last_sequence_number INTEGER NOT NULL,
        committed_at INTEGER NOT NULL
    );
";

/// The result `key` committed with, if it did.
pub fn find(connection: &Connection, key: &IdempotencyKey) -> Result<Option<AppendResult>> {
    let found: Option<(i64, i64)> = connection
        .prepare_cached(
            "SELECT first_sequence_number, last_sequence_number FROM factstr_idempotency_keys \
             WHERE idempotency_key = ?1",
        )
        .map_err(backend)?
        .query_row([key.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .map_err(backend)?;
    Ok(found.map(|(first, last)| {
        let (first, last) = (from_sql(first), from_sql(last));
        AppendResult {
            first_sequence_number: first,
            last_sequence_number: last,
            committed_count: last - first + 1,
        }
    }))
}

/// Writes `key` with the batch `result` (in the caller's transaction), and now and then prunes
/// the keys `retention` lets go.
pub fn record(
    connection: &Connection,
    key: &IdempotencyKey,
    result: &AppendResult,
    committed_at: Timestamp,
    retention: Retention,
) -> Result<()> {
    let key_number: i64 = connection
        .prepare_cached(
            "INSERT INTO factstr_idempotency_keys \
             (idempotency_key, key_number, first_sequence_number, last_sequence_number, committed_at) \
             VALUES (?1, (SELECT COALESCE(MAX(key_number), 0) + 1 FROM factstr_idempotency_keys), ?2, ?3, ?4) \
             RETURNING key_number",
        )
        .map_err(backend)?
        .query_row(
            (
                key.as_str(),
                to_sql(result.first_sequence_number, "sequence number")?,
                to_sql(result.last_sequence_number, "sequence number")?,
                committed_at,
            ),
            |row| row.get(0),
        )
        .map_err(backend)?;
    let newest = from_sql(key_number);
    if prunes_at(newest) {
        prune(connection, newest, retention, committed_at)?;
    }
    Ok(())
}

/// Deletes at most `PRUNE_AT_MOST` of the oldest keys, those that `retention` lets go: bounded
/// work (the range read is the oldest `PRUNE_AT_MOST` numbers, whatever their age).
fn prune(connection: &Connection, newest: u64, retention: Retention, now: Timestamp) -> Result<()> {
    let outside_newest = to_sql(retention.newest_kept_from(newest), "key number")?;
    connection
        .prepare_cached(
            "DELETE FROM factstr_idempotency_keys WHERE key_number <= MIN(?1, \
                 (SELECT MIN(key_number) FROM factstr_idempotency_keys) + ?2 - 1) \
             AND committed_at < ?3",
        )
        .map_err(backend)?
        .execute((outside_newest, PRUNE_AT_MOST as i64, retention.horizon(now)))
        .map_err(backend)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::tests::result;
    use crate::idempotency::PRUNE_EVERY;
    use std::time::Duration;

    #[test]
    fn pruning_forgets_only_old_keys_beyond_the_newest_ones() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(CREATE).unwrap();
        let key = |n: u64| IdempotencyKey::new(format!("k{n}")).unwrap();
        let retention = Retention {
            min_age: Duration::from_secs(1),
            min_keys: 10,
        };
        let count = || -> i64 {
            connection
                .query_row("SELECT COUNT(*) FROM factstr_idempotency_keys", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        // Young keys are kept, however many (a prune ran at 64 and 128 and deleted nothing).
        for n in 1..=130 {
            record(&connection, &key(n), &result(n), 10_000_000, retention).unwrap();
        }
        assert_eq!(count(), 130);
        // Old now: each prune deletes at most PRUNE_AT_MOST of the oldest, never the newest 10.
        for n in 131..=2 * PRUNE_EVERY * 4 {
            record(&connection, &key(n), &result(n), 20_000_000, retention).unwrap();
        }
        // Keys 1..=130 are old, the later ones young: the prune at 192 deleted exactly the old.
        assert_eq!(count(), 2 * PRUNE_EVERY as i64 * 4 - 130);
        assert_eq!(find(&connection, &key(130)).unwrap(), None);
        assert_eq!(find(&connection, &key(131)).unwrap(), Some(result(131)));
        // Each key two seconds after the one before: everything but the newest is old, and the
        // prunes (each at most PRUNE_AT_MOST keys) leave only the newest ten.
        for n in 2 * PRUNE_EVERY * 4 + 1..=3 * PRUNE_EVERY * 4 {
            let at = 40_000_000 + 2_000_000 * n as i64;
            record(&connection, &key(n), &result(n), at, retention).unwrap();
        }
        let last = 3 * PRUNE_EVERY * 4;
        assert!(find(&connection, &key(last - 9)).unwrap().is_some());
        assert_eq!(find(&connection, &key(last - 10)).unwrap(), None);
        assert_eq!(count(), 10);
    }
}
