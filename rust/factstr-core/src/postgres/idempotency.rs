//! The PostgreSQL store's idempotency keys (see `crate::idempotency`): a table of our own beside
//! the upstream layout, read and written inside the append's transaction after it took the
//! append lock (`writes::LOCK_APPENDS`), so the lookup, the batch and its key are one atomic
//! step across processes. Every keyed append holds that lock, which
//! is what makes `key_number` (the highest plus one) dense and race-free.
//!
//! The statements are SQL text with literals (see `literals`), to ride in round trips the
//! append sends anyway: a plain keyed append is one round trip (lock, lookup, the batch and its
//! key only for a new key, commit); a conditional one sends the lookup with the first round trip
//! (after the lock) and the key's row (and now and then a prune) with the one that commits. A
//! key that committed is answered from the first round trip, and nothing is written.

use tokio_postgres::{SimpleQueryMessage, SimpleQueryRow};

use super::literals;
use super::pool::Conn;
use super::writes::{self, BatchArgs, BEGIN, LOCK_APPENDS};
use crate::clock::now_micros;
use crate::condition::Condition;
use crate::error::{Error, Result};
use crate::idempotency::{prunes_at, IdempotencyKey, Retention, PRUNE_AT_MOST};
use crate::sql::numbers::to_sql;
use crate::sql::prepared::PreparedEvent;
use crate::types::{AppendResult, Timestamp};

/// A keyed append in a transaction of its own (the caller rolls back on an error). A plain one is
/// one round trip when it can (`append_at_once`). Otherwise, round trips: begin, the append lock
/// and the lookup; then `writes::append_locked`'s (the check and the batch); then the key's row
/// and COMMIT. A key that committed already is answered after the
/// first, and the transaction ends having written nothing. A break of the last round trip is
/// `CommitOutcomeUnknown` (SPEC §2.7): the caller retries with the same key to learn the outcome.
pub fn append(
    conn: &mut Conn,
    events: &[PreparedEvent],
    condition: Option<Condition<'_>>,
    key: &IdempotencyKey,
) -> Result<AppendResult> {
    if condition.is_none() {
        if let AtOnce::Decided(result) = append_at_once(conn, events, key)? {
            return Ok(result);
        }
    }
    let lookup = look_up(conn, &format!("{BEGIN}; {LOCK_APPENDS}; "), key)?;
    if let Some(committed) = lookup.committed {
        conn.client
            .batch_execute("COMMIT")
            .map_err(|e| conn.error(e))?;
        return Ok(committed);
    }
    let result = writes::append_locked(conn, events, condition)?;
    let record = record_sql(key, &lookup, &result, now_micros(), Retention::current())?;
    conn.client
        .simple_query(&format!("{record} COMMIT"))
        .map_err(|e| conn.commit_error(e))?;
    Ok(result)
}

/// What the one-round-trip keyed append found out.
enum AtOnce {
    /// The key's earlier result, or the batch just committed with the key.
    Decided(AppendResult),
    /// Nothing was written (the function declined, see `factstr_append_batch_v2`, or the values
    /// cannot be literals) and the transaction is over: take the general path.
    Undecided,
}

/// A keyed plain append in one round trip: begin, the append lock, the lookup, the batch (only
/// when the key is new) with the key's row, and COMMIT. A break of that round trip is
/// `CommitOutcomeUnknown`. When the key's number is a multiple of `PRUNE_EVERY`, a prune follows
/// in a statement of its own (after the commit: a failed prune loses nothing).
fn append_at_once(
    conn: &mut Conn,
    events: &[PreparedEvent],
    key: &IdempotencyKey,
) -> Result<AtOnce> {
    let stamp = now_micros().max(0);
    let args = BatchArgs::stamped(events, stamp);
    let Some(call) = args.call_sql().filter(|_| !args.has_exact()) else {
        return Ok(AtOnce::Undecided);
    };
    let literal = key_literal(key)?;
    let count = events.len();
    // The batch is written only for a new key; its key's row only when the function wrote it.
    let sql = format!(
        "{BEGIN}; {LOCK_APPENDS}; {lookup}; \
         WITH batch AS ({call} AS first WHERE NOT EXISTS \
             (SELECT 1 FROM factstr_idempotency_keys WHERE idempotency_key = {literal})) \
         INSERT INTO factstr_idempotency_keys \
         (idempotency_key, key_number, first_sequence_number, last_sequence_number, committed_at) \
         SELECT {literal}, (SELECT COALESCE(MAX(key_number), 0) + 1 FROM factstr_idempotency_keys), \
             first, first + {count} - 1, {stamp} FROM batch WHERE first > 0 \
         RETURNING first_sequence_number, key_number; COMMIT",
        lookup = lookup_sql(key)?,
    );
    let messages = conn
        .client
        .simple_query(&sql)
        .map_err(|e| conn.commit_error(e))?;
    let mut lookup = None;
    let mut written = None;
    for row in messages.iter().filter_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    }) {
        if is_lookup_row(row) {
            lookup = Some(parse_lookup(row)?);
        } else if row.len() == 2 {
            let number = |i| row.get(i).and_then(|t| t.parse::<u64>().ok());
            written = number(0).zip(number(1));
        }
    }
    if let Some(committed) = lookup.and_then(|l| l.committed) {
        return Ok(AtOnce::Decided(committed));
    }
    let Some((first, key_number)) = written else {
        return Ok(AtOnce::Undecided);
    };
    if prunes_at(key_number) {
        let prune = prune_sql(key_number, stamp, Retention::current())?;
        // Committed already: a prune that fails is tried again at the next multiple.
        let _ = conn.client.batch_execute(&prune);
    }
    Ok(AtOnce::Decided(AppendResult {
        first_sequence_number: first,
        last_sequence_number: first + count as u64 - 1,
        committed_count: count as u64,
    }))
}

/// A keyed append inside a transaction that holds the append lock (`writes::begin_locked`), for
/// several appends committed together (group commit; each between SAVEPOINT and RELEASE): the
/// lookup sees the keys of the appends before it in the transaction. No commit.
pub fn append_locked(
    conn: &mut Conn,
    events: &[PreparedEvent],
    condition: Option<Condition<'_>>,
    key: &IdempotencyKey,
) -> Result<AppendResult> {
    let lookup = look_up(conn, "", key)?;
    if let Some(committed) = lookup.committed {
        return Ok(committed);
    }
    let result = writes::append_locked(conn, events, condition)?;
    let record = record_sql(key, &lookup, &result, now_micros(), Retention::current())?;
    conn.client
        .batch_execute(&record)
        .map_err(|e| conn.error(e))?;
    Ok(result)
}

/// Sends `before` (statements to run first in the same round trip, or nothing) and the lookup.
fn look_up(conn: &mut Conn, before: &str, key: &IdempotencyKey) -> Result<Lookup> {
    let sql = format!("{before}{}", lookup_sql(key)?);
    let messages = conn.client.simple_query(&sql).map_err(|e| conn.error(e))?;
    let row = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) if is_lookup_row(row) => Some(row),
            _ => None,
        })
        .ok_or_else(|| Error::Backend("the idempotency key could not be looked up".to_owned()))?;
    parse_lookup(row)
}

/// `key_number` numbers the keys densely in commit order: the retention counts keys by it.
/// `committed_at` is in microseconds since 1970 (UTC), the batch's `occurred_at`.
pub const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS factstr_idempotency_keys (
        idempotency_key TEXT PRIMARY KEY,
        key_number BIGINT NOT NULL UNIQUE,
        first_sequence_number BIGINT NOT NULL,
        last_sequence_number BIGINT NOT NULL,
        committed_at BIGINT NOT NULL
    );
";

/// What the lookup read: the key's committed result, if any, and the newest key number.
#[derive(Debug, Clone, PartialEq)]
struct Lookup {
    committed: Option<AppendResult>,
    newest: u64,
}

/// One statement answering one row: the key's first and last sequence numbers (NULL when the
/// key is new), the newest key number, and a marker that tells the row from others.
fn lookup_sql(key: &IdempotencyKey) -> Result<String> {
    Ok(format!(
        "SELECT k.first_sequence_number, k.last_sequence_number, n.newest, 'factstr-key' \
         FROM (SELECT COALESCE(MAX(key_number), 0) AS newest FROM factstr_idempotency_keys) AS n \
         LEFT JOIN factstr_idempotency_keys AS k ON k.idempotency_key = {}",
        key_literal(key)?
    ))
}

/// Whether a row of a simple query's answer is the lookup's (its marker column).
fn is_lookup_row(row: &SimpleQueryRow) -> bool {
    row.len() == 4 && row.get(3) == Some("factstr-key")
}

/// The lookup's row, read.
fn parse_lookup(row: &SimpleQueryRow) -> Result<Lookup> {
    let number = |i: usize| -> Result<Option<u64>> {
        row.get(i)
            .map(|text| {
                text.parse::<u64>().map_err(|_| {
                    Error::Backend(format!(
                        "an idempotency key row holds {text:?}, not a number"
                    ))
                })
            })
            .transpose()
    };
    let committed = match (number(0)?, number(1)?) {
        (Some(first), Some(last)) => Some(AppendResult {
            first_sequence_number: first,
            last_sequence_number: last,
            committed_count: last - first + 1,
        }),
        _ => None,
    };
    Ok(Lookup {
        committed,
        newest: number(2)?.unwrap_or(0),
    })
}

/// Statements that write `key` for the batch `result` (committed at `committed_at`) in the
/// caller's transaction, after the batch was inserted, and now and then prune the keys
/// `retention` lets go. The key's row is written only when the batch's last event is there, so
/// a batch that was not written (see `factstr_append_batch`) leaves no key either.
fn record_sql(
    key: &IdempotencyKey,
    lookup: &Lookup,
    result: &AppendResult,
    committed_at: Timestamp,
    retention: Retention,
) -> Result<String> {
    let key_number = lookup.newest + 1;
    let last = to_sql(result.last_sequence_number, "sequence number")?;
    let mut sql = format!(
        "INSERT INTO factstr_idempotency_keys \
         (idempotency_key, key_number, first_sequence_number, last_sequence_number, committed_at) \
         SELECT {}, {}, {}, {last}, {committed_at} \
         WHERE EXISTS (SELECT 1 FROM events WHERE sequence_number = {last});",
        key_literal(key)?,
        to_sql(key_number, "key number")?,
        to_sql(result.first_sequence_number, "sequence number")?,
    );
    if prunes_at(key_number) {
        sql.push_str(&prune_sql(key_number, committed_at, retention)?);
    }
    Ok(sql)
}

/// The statement that deletes the keys `retention` lets go once key `newest` was written at
/// `now`: at most PRUNE_AT_MOST of the oldest numbers are read, whatever their age.
fn prune_sql(newest: u64, now: Timestamp, retention: Retention) -> Result<String> {
    Ok(format!(
        " DELETE FROM factstr_idempotency_keys WHERE key_number <= LEAST({}, \
             (SELECT MIN(key_number) FROM factstr_idempotency_keys) + {} - 1) \
         AND committed_at < {};",
        to_sql(retention.newest_kept_from(newest), "key number")?,
        PRUNE_AT_MOST,
        retention.horizon(now),
    ))
}

fn key_literal(key: &IdempotencyKey) -> Result<String> {
    // `IdempotencyKey` refuses U+0000, the one text a literal cannot hold.
    literals::text(key.as_str())
        .ok_or_else(|| Error::InvalidInput("idempotency_key must not contain U+0000".to_owned()))
}
