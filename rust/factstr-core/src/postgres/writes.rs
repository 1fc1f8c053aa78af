//! Appending to the PostgreSQL log.
//!
//! # The append lock
//! Every writer of this log, ours and `factstr-postgres` 0.5.2's, numbers a batch
//! `MAX(sequence_number) + 1` under one lock held to its commit, so commit order is sequence order
//! in every process (SPEC §2.6) and a failed append burns no number. Upstream takes
//! `LOCK TABLE events, append_batches IN EXCLUSIVE MODE`. That mode also conflicts with the
//! SHARE UPDATE EXCLUSIVE lock of (auto)vacuum, so appends taking it wait whenever autovacuum
//! works on `events` (the server cancels autovacuum only after `deadlock_timeout`, 1 s). Ours is
//! two locks, always taken in this order (`LOCK_APPENDS`):
//! 1. `LOCK TABLE events, append_batches IN ROW EXCLUSIVE MODE`: conflicts with upstream's
//!    EXCLUSIVE, so an upstream writer and ours exclude each other, but not with vacuum, nor with
//!    other ROW EXCLUSIVE holders;
//! 2. `pg_advisory_xact_lock` on `factstr-append:<schema>`: serialises our writers among themselves.
//!
//! Never the other way round: a writer of ours holding the advisory lock while queued for ROW
//! EXCLUSIVE behind an upstream writer's EXCLUSIVE request, which itself waits for another writer
//! of ours that holds ROW EXCLUSIVE and waits for the advisory lock, would be a deadlock. In this
//! order a writer waiting for the advisory lock holds only ROW EXCLUSIVE, which the advisory
//! holder never waits for (it holds ROW EXCLUSIVE itself; the tables it writes besides are ours
//! and upstream never locks them). The transaction runs at READ COMMITTED whatever the session's
//! default, so the head read after the locks comes from a snapshot taken after them. Every path
//! takes this lock: `begin_locked`, `append_unless_at_once`, the function
//! `factstr_append_batch_v2` (see `schema`) when called alone, and `restore`.
//!
//! # The shape
//! - `begin_locked(conn)`: BEGIN and the append lock, one round trip.
//! - `append_locked(conn, events, condition)`: inside a transaction holding the append lock, reads
//!   the head (and the context's index rows), checks the condition and writes one batch numbered
//!   after the head; no commit. A later call in the same transaction numbers after the batches
//!   earlier ones wrote. On an error the batch may be partly written: a caller that goes on with
//!   the transaction runs each call between `SAVEPOINT` and `RELEASE` / `ROLLBACK TO SAVEPOINT`
//!   (group commit).
//! - `append(conn, events, condition)`: one append in a transaction of its own, the same steps
//!   fused into fewer round trips. A plain append is one (`factstr_append_batch_v2` alone); a
//!   conditional one two: (begin, lock, read the head, the context's index rows and its newest
//!   candidate row: `reads::read_state`), then (insert and commit, values as literals, see
//!   `literals`). `append_unless` is one when it can (`append_unless_at_once`): the server reads
//!   the few rows above `after` that could match and appends only when there are none.
//!
//! Events, index postings, the batch row and the index state go in one statement.

use tokio_postgres::SimpleQueryMessage;

use super::literals;
use super::pool::Conn;
use super::postings::batch_postings;
use super::reads::{read_payload, read_state, LogState, PgLog, Prefetch};
use crate::clock::{format_rfc3339, now_micros, to_system_time};
use crate::condition::Condition;
use crate::error::{Error, Result};
use crate::payload_keys::selective_key_hashes;
use crate::sql::numbers::{from_sql, to_sql};
use crate::sql::prepared::PreparedEvent;
use crate::sql::search;
use crate::types::{AppendResult, EventQuery};

/// Begins an append's transaction (see the module header for why READ COMMITTED).
pub(super) const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

/// The append lock, in its order (see the module header). The same two locks are in
/// `factstr_append_batch_v2` (see `schema`).
pub(super) const LOCK_APPENDS: &str = "LOCK TABLE events, append_batches IN ROW EXCLUSIVE MODE; \
     SELECT pg_advisory_xact_lock(hashtextextended('factstr-append:' || current_schema(), 0))";

/// Begins a transaction and takes the append lock: one round trip. The caller commits or rolls
/// back; on an error it rolls back.
#[allow(dead_code)] // the entry of group commit (several `append_locked` in one transaction)
pub fn begin_locked(conn: &mut Conn) -> Result<()> {
    conn.client
        .batch_execute(&format!("{BEGIN}; {LOCK_APPENDS}"))
        .map_err(|e| conn.error(e))
}

/// Appends in a transaction of its own; with a condition, only if it holds.
/// On any error the caller rolls back.
pub fn append(
    conn: &mut Conn,
    events: &[PreparedEvent],
    condition: Option<Condition<'_>>,
) -> Result<AppendResult> {
    let args = BatchArgs::new(events);
    if let Some(Condition::NoneAfter { context, after }) = condition {
        if let AtOnce::Decided(outcome) = append_unless_at_once(conn, &args, context, after)? {
            return outcome;
        }
    }
    // A plain append is one statement, unless it declines (see `BatchArgs::call`) or has exact
    // payloads to write beside; then, like a conditional one, it runs in an explicit transaction
    // that takes the lock first.
    if condition.is_none() && args.exact_offsets.is_empty() {
        if let Some(result) = args.call(conn, false)? {
            return Ok(result);
        }
    }
    let locked = lock_and_read(conn, condition.map(|c| c.context()))?;
    write_locked(conn, &args, locked, condition, true)
}

/// Inside a transaction that holds the append lock (`begin_locked`): checks `condition` and
/// writes the batch numbered after the current head, without committing. Two round trips (read,
/// write), more only when a context's check must read more rows. On an error the batch may be
/// partly written: roll back (to a savepoint).
#[allow(dead_code)] // see `begin_locked`
pub fn append_locked(
    conn: &mut Conn,
    events: &[PreparedEvent],
    condition: Option<Condition<'_>>,
) -> Result<AppendResult> {
    let args = BatchArgs::new(events);
    let context = condition.map(|c| c.context());
    let state = read_state(conn, None, context, CONTEXT_VERSION)?;
    write_locked(conn, &args, Locked::from(state), condition, false)
}

/// What an append's check reads ahead with the log's state: the newest candidate of its
/// context, usually the context version (`sql::search::context_version` reads newest first).
const CONTEXT_VERSION: Prefetch = Prefetch::Newest { count: 1 };

/// Checks `condition` and writes the batch after the head `locked` read under the lock; with
/// `commit`, commits too (in the same round trip when it can).
fn write_locked(
    conn: &mut Conn,
    args: &BatchArgs<'_>,
    mut locked: Locked,
    condition: Option<Condition<'_>>,
    commit: bool,
) -> Result<AppendResult> {
    let last_committed = locked.last_committed;
    if locked.indexed_through < last_committed {
        catch_up_index(conn, locked.indexed_through, last_committed)?;
        locked.state.forget_postings(); // read before the catch-up: incomplete
    }
    if let Some(condition) = condition {
        // The index is current now: the head read under the lock is all a search needs.
        let log = &mut PgLog::at(&mut *conn, locked.state, false);
        search::check_context(log, condition)?;
    }
    // Inside this transaction, under the lock already held: the function numbers after the same
    // head, and the index is current. Insert and commit go in one round trip when they can.
    let committed = if commit && args.exact_offsets.is_empty() {
        args.call_and_commit(conn)?
    } else {
        Sent::Skipped
    };
    let result = match committed {
        Sent::Appended(result) => Some(result),
        Sent::Declined => None,
        Sent::Skipped => {
            let result = args.call(conn, true)?;
            if let Some(written) = &result {
                if args.has_exact() {
                    args.write_exact(conn, written.first_sequence_number)?;
                }
            }
            if commit {
                conn.client
                    .batch_execute("COMMIT")
                    .map_err(|e| conn.commit_error(e))?;
            }
            result
        }
    };
    result
        .filter(|result| result.first_sequence_number == last_committed + 1)
        .ok_or_else(|| {
            Error::Backend(
                "the append could not be numbered after the head read under the lock".to_owned(),
            )
        })
}

/// Rows above `after` that the one-round-trip `append_unless` reads back to tell a conflict from
/// a row that only looked like one.
const UNLESS_ROWS: usize = 64;

/// `append_unless` in one round trip: begin, take the append lock, read the newest rows above
/// `after` that could match (by type only: a superset of the matching rows, so the server needs
/// no payload matching), append and commit only when there are none. The client then checks the
/// rows read with the one matcher: a match is the conflict (its number the context version,
/// since the rows come newest first). `Undecided` (nothing written) when this could not decide: rows
/// that looked like a match but are not one, an index that must first catch up with foreign
/// rows, or values that cannot be literals; then the caller takes the general locked path.
fn append_unless_at_once(
    conn: &mut Conn,
    args: &BatchArgs<'_>,
    context: &EventQuery,
    after: Option<u64>,
) -> Result<AtOnce> {
    if !args.exact_offsets.is_empty() {
        return Ok(AtOnce::Undecided);
    }
    let Some(could_match) = type_superset(context) else {
        return Ok(AtOnce::Undecided);
    };
    if could_match == "TRUE" && after.is_none() {
        // Every row could match and there is no bound: only an empty log would pass, so on any
        // other the attempt would cost a round trip and 64 rows for nothing (eventsourcing's
        // duplicate check, a payload condition without `after`, is this case).
        return Ok(AtOnce::Undecided);
    }
    let after_sql = after.map_or(Ok(0), |a| to_sql(a, "after"))?;
    let above =
        format!("FROM events AS e WHERE e.sequence_number > {after_sql} AND ({could_match})");
    let guard = format!("WHERE NOT EXISTS (SELECT 1 {above})");
    let Some(append) = args.call_and_commit_sql(&guard) else {
        return Ok(AtOnce::Undecided);
    };
    let sql = format!(
        "{BEGIN}; {LOCK_APPENDS}; \
         SELECT e.sequence_number, e.event_type, COALESCE(x.payload, e.payload::text) {above_joined} \
         ORDER BY e.sequence_number DESC LIMIT {UNLESS_ROWS}; {append}",
        above_joined = above.replacen(
            "FROM events AS e",
            "FROM events AS e LEFT JOIN factstr_exact_payloads AS x ON x.sequence_number = e.sequence_number",
            1
        ),
    );
    let messages = conn
        .client
        .simple_query(&sql)
        .map_err(|e| conn.commit_error(e))?;
    let mut appended = None;
    let mut newest_match = None;
    for row in messages.iter().filter_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    }) {
        if row.len() == 1 {
            // The function's answer (the advisory lock's row is empty text: no number).
            if let Some(first) = row.get(0).and_then(|t| t.parse::<i64>().ok()) {
                appended = args.result(first);
            }
            continue;
        }
        let sequence_number = number(row.get(0));
        let payload: serde_json::Value = serde_json::from_str(row.get(2).unwrap_or("null"))
            .map_err(|e| {
                Error::Backend(format!(
                    "event {sequence_number} has a payload that is not JSON: {e}"
                ))
            })?;
        if newest_match.is_none() && context.matches(row.get(1).unwrap_or_default(), &payload) {
            newest_match = Some(sequence_number);
        }
    }
    if let Some(result) = appended {
        return Ok(AtOnce::Decided(Ok(result)));
    }
    if let Some(actual) = newest_match {
        // Every row read is above `after`: a match is the conflict.
        return Ok(AtOnce::Decided(Err(Error::ConditionalAppendConflict {
            expected: after,
            actual: Some(actual),
        })));
    }
    Ok(AtOnce::Undecided)
}

/// A SQL condition on `e.event_type` that every fact matching `query` meets (types only, payload
/// predicates left to the matcher); `None` when a type cannot be a literal.
fn type_superset(query: &EventQuery) -> Option<String> {
    if query.matches_everything() {
        return Some("TRUE".to_owned());
    }
    let mut types: Vec<&str> = Vec::new();
    for filter in query
        .filters
        .iter()
        .flatten()
        .filter(|f| !f.matches_nothing())
    {
        match &filter.event_types {
            None => return Some("TRUE".to_owned()),
            Some(named) => types.extend(named.iter().map(String::as_str)),
        }
    }
    if types.is_empty() {
        return Some("FALSE".to_owned());
    }
    literals::text_array(types).map(|array| format!("e.event_type = ANY({array})"))
}

/// What an append reads under the lock before it writes.
pub(super) struct Locked {
    pub(super) last_committed: u64,
    pub(super) indexed_through: u64,
    /// The rest of the state (the context's index rows, its newest candidates).
    state: LogState,
}

impl From<LogState> for Locked {
    fn from(state: LogState) -> Self {
        Self {
            last_committed: state.head,
            indexed_through: state.indexed_through,
            state,
        }
    }
}

/// Begins, takes the append lock, and reads the log's state for a check of `context` (with its
/// newest candidate row): one round trip.
pub(super) fn lock_and_read(conn: &mut Conn, context: Option<&EventQuery>) -> Result<Locked> {
    let begin = format!("{BEGIN}; {LOCK_APPENDS}");
    let state = read_state(conn, Some(&begin), context, CONTEXT_VERSION)?;
    Ok(Locked::from(state))
}

/// What `BatchArgs::call_and_commit` did.
enum Sent {
    /// The batch was written and committed.
    Appended(AppendResult),
    /// The function wrote nothing (see `BatchArgs::call`); the transaction is still open.
    Declined,
    /// Nothing was sent: a text cannot be a literal.
    Skipped,
}

/// What the one-round-trip `append_unless` found out.
enum AtOnce {
    /// It decided: the batch committed, or the conflict.
    Decided(Result<AppendResult>),
    /// Nothing was written and nothing decided: take the general locked path.
    Undecided,
}

/// The arguments of one `factstr_append_batch_v2` call (see `schema`) for a batch of events.
pub(super) struct BatchArgs<'a> {
    stamp: i64,
    types: Vec<&'a str>,
    payloads: Vec<&'a str>,
    hashes: Vec<i64>,
    /// Postings numbered by offset in the batch; the function adds the batch's first number.
    offsets: Vec<i64>,
    members: Vec<Option<Vec<u8>>>,
    /// The payloads `jsonb` would change (see `PreparedEvent::negative_zero`), by offset in the
    /// batch, for `factstr_exact_payloads`.
    exact_offsets: Vec<i64>,
    exact_texts: Vec<&'a str>,
}

impl<'a> BatchArgs<'a> {
    fn new(events: &'a [PreparedEvent]) -> Self {
        Self::stamped(events, now_micros().max(0))
    }

    /// The arguments with a given `occurred_at` (a restored batch keeps its own, see `restore`).
    pub(super) fn stamped(events: &'a [PreparedEvent], stamp: i64) -> Self {
        let keys = events
            .iter()
            .zip(0u64..)
            .flat_map(|(event, offset)| event.key_hashes.iter().map(move |hash| (*hash, offset)))
            .collect();
        let postings = batch_postings(keys);
        Self {
            stamp,
            types: events.iter().map(|e| e.event_type.as_str()).collect(),
            payloads: events.iter().map(|e| e.payload_text.as_str()).collect(),
            hashes: postings.iter().map(|p| p.key_hash).collect(),
            offsets: postings.iter().map(|p| p.first).collect(),
            members: postings.into_iter().map(|p| p.members).collect(),
            exact_offsets: (0..)
                .zip(events)
                .filter(|(_, e)| e.negative_zero)
                .map(|(offset, _)| offset)
                .collect(),
            exact_texts: events
                .iter()
                .filter(|e| e.negative_zero)
                .map(|e| e.payload_text.as_str())
                .collect(),
        }
    }

    /// Writes the exact text of the payloads `jsonb` would change, in the caller's transaction,
    /// for the batch numbered from `first`.
    pub(super) fn write_exact(&self, conn: &mut Conn, first: u64) -> Result<()> {
        conn.execute(
            "INSERT INTO factstr_exact_payloads (sequence_number, payload) \
             SELECT $1 + u.o, u.p FROM unnest($2::bigint[], $3::text[]) AS u(o, p)",
            &[
                &to_sql(first, "sequence number")?,
                &self.exact_offsets,
                &self.exact_texts,
            ],
        )
        .map_err(|e| conn.error(e))?;
        Ok(())
    }

    /// The function's answer as a result; `None` for 0 (nothing was written).
    fn result(&self, first: i64) -> Option<AppendResult> {
        let count = self.types.len() as u64;
        let first = u64::try_from(first).ok().filter(|first| *first > 0)?;
        Some(AppendResult {
            first_sequence_number: first,
            last_sequence_number: first + count - 1,
            committed_count: count,
        })
    }

    /// Calls the function with bound parameters: one round trip, in a transaction of its own
    /// unless the caller has one open and `locked` (holds the append lock, taken before its
    /// snapshot). `None` when nothing was written: the index must first catch up with foreign
    /// rows, or the session's isolation level needs the explicit transaction.
    pub(super) fn call(&self, conn: &mut Conn, locked: bool) -> Result<Option<AppendResult>> {
        let occurred_at = to_system_time(self.stamp);
        let members: Vec<Option<&[u8]>> = self.members.iter().map(Option::as_deref).collect();
        // Preparing sends nothing of the batch; the call itself commits when it runs alone.
        let statement = conn
            .statement("SELECT factstr_append_batch_v2($1, $2, $3, $4, $5, $6, $7)")
            .map_err(|e| conn.error(e))?;
        let first: i64 = conn
            .client
            .query_one(
                &statement,
                &[
                    &locked,
                    &occurred_at,
                    &self.types,
                    &self.payloads,
                    &self.hashes,
                    &self.offsets,
                    &members,
                ],
            )
            .map_err(|e| {
                if locked {
                    conn.error(e)
                } else {
                    conn.commit_error(e)
                }
            })?
            .get(0);
        Ok(self.result(first))
    }

    /// Calls the function and commits the caller's transaction (which holds the append lock) in
    /// one round trip, the values written as literals (see `literals`).
    fn call_and_commit(&self, conn: &mut Conn) -> Result<Sent> {
        let Some(sql) = self.call_and_commit_sql("") else {
            return Ok(Sent::Skipped);
        };
        let messages = conn
            .client
            .simple_query(&sql)
            .map_err(|e| conn.commit_error(e))?;
        let first = messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).and_then(|t| t.parse::<i64>().ok()),
            _ => None,
        });
        Ok(match first.and_then(|first| self.result(first)) {
            Some(result) => Sent::Appended(result),
            None => Sent::Declined,
        })
    }

    /// The SQL of `call_and_commit`, the call made only where `guard` (a `WHERE` clause, or
    /// empty) holds; `None` when a text cannot be a literal.
    fn call_and_commit_sql(&self, guard: &str) -> Option<String> {
        Some(format!("{} {guard}; COMMIT", self.call_sql()?))
    }

    /// Whether payloads `jsonb` would change need writing beside (`write_exact`).
    pub(super) fn has_exact(&self) -> bool {
        !self.exact_offsets.is_empty()
    }

    /// The function call as one SQL statement (values as literals, the caller holding the lock);
    /// `None` when a text cannot be a literal.
    pub(super) fn call_sql(&self) -> Option<String> {
        let types = literals::text_array(self.types.iter().copied())?;
        let payloads = literals::text_array(self.payloads.iter().copied())?;
        let members: Vec<Option<&[u8]>> = self.members.iter().map(Option::as_deref).collect();
        Some(format!(
            "SELECT factstr_append_batch_v2(true, '{}'::timestamptz, {types}, {payloads}, {}, {}, {})",
            format_rfc3339(self.stamp),
            literals::bigint_array(&self.hashes),
            literals::bigint_array(&self.offsets),
            literals::bytea_array(&members),
        ))
    }
}

fn number(text: Option<&str>) -> u64 {
    text.and_then(|t| t.parse().ok()).unwrap_or(0)
}

/// Foreign rows a catch-up reads (and indexes) at a time, so a long history needs little memory.
const CATCH_UP_PAGE: i64 = 10_000;

/// Indexes the events that writers without our index (the upstream crates) appended.
pub(super) fn catch_up_index(
    conn: &mut Conn,
    indexed_through: u64,
    last_committed: u64,
) -> Result<()> {
    let mut after = to_sql(indexed_through, "sequence number")?;
    loop {
        let rows = conn
            .query(
                "SELECT sequence_number, payload FROM events WHERE sequence_number > $1 ORDER BY sequence_number LIMIT $2",
                &[&after, &CATCH_UP_PAGE],
            )
            .map_err(|e| conn.error(e))?;
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        let mut keys = Vec::new();
        for row in &rows {
            let number = from_sql(row.get(0));
            let payload = read_payload(row, 1, number)?;
            keys.extend(
                selective_key_hashes(&payload)
                    .into_iter()
                    .map(|hash| (hash, number)),
            );
        }
        let postings = batch_postings(keys);
        let hashes: Vec<i64> = postings.iter().map(|p| p.key_hash).collect();
        let firsts: Vec<i64> = postings.iter().map(|p| p.first).collect();
        let members: Vec<Option<&[u8]>> = postings.iter().map(|p| p.members.as_deref()).collect();
        conn.execute(
            "INSERT INTO factstr_payload_index (key_hash, first_sequence_number, members) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) ON CONFLICT DO NOTHING",
            &[&hashes, &firsts, &members],
        )
        .map_err(|e| conn.error(e))?;
        if (rows.len() as i64) < CATCH_UP_PAGE {
            break;
        }
    }
    conn.execute(
        "UPDATE factstr_payload_index_state SET indexed_through = $1 WHERE id = 1",
        &[&to_sql(last_committed, "sequence number")?],
    )
    .map_err(|e| conn.error(e))?;
    Ok(())
}
