//! Group commit on PostgreSQL (see `group_commit`): several callers' appends in one transaction
//! on one connection, so they share one commit (one WAL flush). The append lock is taken once
//! (`writes::lock_and_read`), then each request is checked and numbered after the ones before it,
//! as `writes::append` would alone. Round trips are saved where nothing needs an answer in
//! between: the batches of requests without a condition (and of conditional ones once checked)
//! are written together, in four statements for all of them (`write_run`: what
//! `factstr_append_batch_v2` writes for one batch; keep the two in step), and the last round trip
//! carries the COMMIT.
//!
//! Failures:
//! - A conflict fails its own request only (it is found before anything of it is written).
//! - An insert the server refuses: the round trip that carried it ran inside a savepoint; it is
//!   undone and its inserts are sent again one at a time, each in a savepoint of its own, so
//!   that only the refused request fails.
//! - The connection breaking (or a wait running out) in the round trip that carried the COMMIT:
//!   every request gets `CommitOutcomeUnknown` (SPEC §2.7), whatever it would have got alone.
//! - Anything else that loses the transaction (the connection breaks earlier, the COMMIT is
//!   refused) fails every request with that error: nothing of the group was written.

use super::idempotency;
use super::literals;
use super::pool::Conn;
use super::postings::{batch_postings, Posting};
use super::reads::PgLog;
use super::writes::{catch_up_index, lock_and_read, BatchArgs, Locked};
use super::PostgresStorage;
use crate::clock::{format_rfc3339, now_micros};
use crate::condition::Condition;
use crate::error::{Error, Result};
use crate::idempotency::IdempotencyKey;
use crate::sql::prepared::{prepare_events, FloatText, PreparedEvent};
use crate::sql::search;
use crate::store::AppendRequest;
use crate::types::AppendResult;

/// The savepoint around one pipelined round trip of inserts.
const ROUND: &str = "factstr_group_round";
/// The savepoint around one request's insert sent alone.
const MEMBER: &str = "factstr_group_member";

/// One request of the group, ready to send.
struct Member<'a> {
    events: &'a [PreparedEvent],
    /// `occurred_at` of its events.
    stamp: i64,
    /// The batch as `factstr_append_batch_v2` takes it, for a request sent alone.
    args: BatchArgs<'a>,
    condition: Option<Condition<'a>>,
    /// With a key, the request takes the keyed path alone (see `Group::keyed_alone`).
    key: Option<&'a IdempotencyKey>,
}

impl Member<'_> {
    fn count(&self) -> u64 {
        self.events.len() as u64
    }
}

impl PostgresStorage {
    /// See `Storage::append_group`.
    pub(super) fn append_in_one_transaction(
        &self,
        requests: Vec<AppendRequest<'_>>,
    ) -> Vec<Result<AppendResult>> {
        let count = requests.len();
        let prepared: Vec<Vec<PreparedEvent>> = requests
            .iter()
            .map(|r| prepare_events(&r.events, FloatText::Fraction))
            .collect();
        let members: Vec<Member<'_>> = prepared
            .iter()
            .zip(&requests)
            .map(|(events, request)| {
                let stamp = now_micros().max(0);
                Member {
                    events,
                    stamp,
                    args: BatchArgs::stamped(events, stamp),
                    condition: request.condition,
                    key: request.idempotency_key.as_ref(),
                }
            })
            .collect();
        let mut conn = match self.pool.get() {
            Ok(conn) => conn,
            Err(error) => return vec![Err(error); count],
        };
        match run(&mut conn, &members) {
            Ok(results) => results,
            Err(error) => {
                if conn.client.batch_execute("ROLLBACK").is_err() {
                    // Never hand a connection with an open transaction back to the pool.
                    conn.discard();
                }
                vec![Err(error); count]
            }
        }
    }
}

/// The group's transaction: `Err` when it was lost as a whole (the caller rolls back).
fn run(conn: &mut Conn, members: &[Member<'_>]) -> Result<Vec<Result<AppendResult>>> {
    let Locked {
        last_committed,
        indexed_through,
        ..
    } = lock_and_read(conn, None)?;
    if indexed_through < last_committed {
        catch_up_index(conn, indexed_through, last_committed)?;
    }
    let mut group = Group {
        head: last_committed,
        results: members.iter().map(|_| None).collect(),
        pending: Vec::new(),
    };
    for (index, member) in members.iter().enumerate() {
        if let Some(key) = member.key {
            group.flush(conn, members, false)?;
            group.keyed_alone(conn, members, index, key)?;
            continue;
        }
        if let Some(condition) = member.condition {
            // The check reads the log as the inserts before it left it.
            group.flush(conn, members, false)?;
            let head = group.head;
            match search::check_context(&mut PgLog::new(&mut *conn, Some((head, head))), condition)
            {
                Ok(()) => {}
                Err(conflict @ Error::ConditionalAppendConflict { .. }) => {
                    group.results[index] = Some(Err(conflict));
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
        if member.args.has_exact() {
            // Payloads written beside need the batch's number first (see `BatchArgs`).
            group.flush(conn, members, false)?;
            group.insert_alone(conn, members, index)?;
        } else {
            group.pending.push(index);
        }
    }
    group.flush(conn, members, true)?;
    Ok(group
        .results
        .into_iter()
        .map(|result| result.unwrap_or_else(|| Err(unnumbered())))
        .collect())
}

struct Group {
    /// The last sequence number written so far (committed before, or by this group).
    head: u64,
    results: Vec<Option<Result<AppendResult>>>,
    /// Requests checked and ready, whose inserts are not sent yet.
    pending: Vec<usize>,
}

impl Group {
    /// Writes the pending requests' batches in one round trip, in a savepoint, and with `commit`
    /// the COMMIT after them (see `write_run`).
    fn flush(&mut self, conn: &mut Conn, members: &[Member<'_>], commit: bool) -> Result<()> {
        if self.pending.is_empty() && !commit {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let run = if pending.is_empty() {
            Some((String::new(), self.head))
        } else {
            write_run(members, &pending, self.head)
        };
        let Some((writes, last)) = run else {
            // A text that cannot be a literal: each with bound parameters instead.
            for index in pending {
                self.insert_alone(conn, members, index)?;
            }
            return if commit { self.commit(conn) } else { Ok(()) };
        };
        let mut sql = String::new();
        if !pending.is_empty() {
            sql.push_str(&format!("SAVEPOINT {ROUND}; {writes} RELEASE {ROUND}; "));
        }
        if commit {
            sql.push_str("COMMIT");
        }
        match conn.client.simple_query(&sql) {
            Ok(_) => {
                for index in pending {
                    let count = members[index].count();
                    self.results[index] = Some(Ok(AppendResult {
                        first_sequence_number: self.head + 1,
                        last_sequence_number: self.head + count,
                        committed_count: count,
                    }));
                    self.head += count;
                }
                debug_assert_eq!(self.head, last);
                Ok(())
            }
            Err(error) => {
                let error = if commit {
                    // Unless the server answered with an ERROR, the COMMIT may have happened.
                    conn.commit_error(error)
                } else {
                    conn.error(error)
                };
                if matches!(error, Error::CommitOutcomeUnknown(_)) || pending.is_empty() {
                    return Err(error);
                }
                // A write was refused (or the COMMIT, which then ended the transaction: undoing
                // the savepoint fails and the group fails with the error). Each request again,
                // alone, so that only the refused one fails.
                undo(conn, ROUND).map_err(|_| error)?;
                for index in pending {
                    self.insert_alone(conn, members, index)?;
                }
                if commit {
                    self.commit(conn)?;
                }
                Ok(())
            }
        }
    }

    fn commit(&self, conn: &mut Conn) -> Result<()> {
        conn.client
            .batch_execute("COMMIT")
            .map_err(|e| conn.commit_error(e))
    }

    /// Inserts one request in a savepoint of its own: refused, it fails alone.
    fn insert_alone(
        &mut self,
        conn: &mut Conn,
        members: &[Member<'_>],
        index: usize,
    ) -> Result<()> {
        let args = &members[index].args;
        conn.client
            .batch_execute(&format!("SAVEPOINT {MEMBER}"))
            .map_err(|e| conn.error(e))?;
        let attempt = args.call(conn, true).and_then(|written| {
            let written = written.ok_or_else(unnumbered)?;
            if args.has_exact() {
                args.write_exact(conn, written.first_sequence_number)?;
            }
            Ok(written)
        });
        match attempt {
            Ok(written) => {
                conn.client
                    .batch_execute(&format!("RELEASE {MEMBER}"))
                    .map_err(|e| conn.error(e))?;
                self.numbered(members, index, written.first_sequence_number as i64)
            }
            Err(error) => {
                // When the savepoint cannot be undone, the transaction is lost.
                undo(conn, MEMBER)?;
                self.results[index] = Some(Err(error));
                Ok(())
            }
        }
    }

    /// A request with an idempotency key, in a savepoint of its own, through the keyed locked
    /// append (`idempotency::append_locked`: the key looked up, also among the group's earlier
    /// keys, the condition checked, the key written with the batch).
    fn keyed_alone(
        &mut self,
        conn: &mut Conn,
        members: &[Member<'_>],
        index: usize,
        key: &IdempotencyKey,
    ) -> Result<()> {
        let member = &members[index];
        conn.client
            .batch_execute(&format!("SAVEPOINT {MEMBER}"))
            .map_err(|e| conn.error(e))?;
        match idempotency::append_locked(conn, member.events, member.condition, key) {
            Ok(result) => {
                conn.client
                    .batch_execute(&format!("RELEASE {MEMBER}"))
                    .map_err(|e| conn.error(e))?;
                if result.first_sequence_number > self.head {
                    // Written now (a key committed before returns an older range).
                    self.numbered(members, index, result.first_sequence_number as i64)
                } else {
                    self.results[index] = Some(Ok(result));
                    Ok(())
                }
            }
            Err(error) => {
                undo(conn, MEMBER)?;
                self.results[index] = Some(Err(error));
                Ok(())
            }
        }
    }

    /// Records that request `index` was written from `first` on (which must follow the head).
    fn numbered(&mut self, members: &[Member<'_>], index: usize, first: i64) -> Result<()> {
        let count = members[index].count();
        let first = u64::try_from(first).unwrap_or(0);
        if first != self.head + 1 {
            return Err(unnumbered());
        }
        self.head += count;
        self.results[index] = Some(Ok(AppendResult {
            first_sequence_number: first,
            last_sequence_number: self.head,
            committed_count: count,
        }));
        Ok(())
    }
}

/// The statements that write the batches of the requests `run`, numbered one after another from
/// `head + 1`, and the last number: what `factstr_append_batch_v2` (see `schema`) writes for one
/// batch (events, payload index postings, the batch row of a batch of several, the index state),
/// for all of them in four statements instead of a function call each (the calls' server time
/// was most of a group's). The numbers are known: the group's transaction holds the append lock
/// and has written everything after the head it read. `None` when a text cannot be a literal.
fn write_run(members: &[Member<'_>], run: &[usize], head: u64) -> Option<(String, u64)> {
    let mut numbers: Vec<i64> = Vec::new();
    let mut stamps: Vec<String> = Vec::new();
    let mut types: Vec<&str> = Vec::new();
    let mut payloads: Vec<&str> = Vec::new();
    let mut postings: Vec<Posting> = Vec::new();
    let mut batch_rows: (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
    let mut last = head;
    for member in run.iter().map(|index| &members[*index]) {
        let first = last + 1;
        let stamp = format_rfc3339(member.stamp);
        let mut keys = Vec::new();
        for (event, number) in member.events.iter().zip(first..) {
            numbers.push(i64::try_from(number).ok()?);
            stamps.push(stamp.clone());
            types.push(&event.event_type);
            payloads.push(&event.payload_text);
            keys.extend(event.key_hashes.iter().map(|hash| (*hash, number)));
        }
        // One posting row per key and batch, as a lone append writes them.
        postings.extend(batch_postings(keys));
        last += member.count();
        if member.count() > 1 {
            batch_rows.0.push(i64::try_from(first).ok()?);
            batch_rows.1.push(i64::try_from(last).ok()?);
        }
    }
    let mut sql = format!(
        "INSERT INTO events (sequence_number, occurred_at, event_type, payload) \
         SELECT u.n, u.s::timestamptz, u.t, u.p::jsonb FROM unnest({}, {}, {}, {}) AS u(n, s, t, p); ",
        literals::bigint_array(&numbers),
        literals::text_array(stamps.iter().map(String::as_str))?,
        literals::text_array(types)?,
        literals::text_array(payloads)?,
    );
    if !postings.is_empty() {
        let hashes: Vec<i64> = postings.iter().map(|p| p.key_hash).collect();
        let firsts: Vec<i64> = postings.iter().map(|p| p.first).collect();
        let encoded: Vec<Option<&[u8]>> = postings.iter().map(|p| p.members.as_deref()).collect();
        sql.push_str(&format!(
            "INSERT INTO factstr_payload_index (key_hash, first_sequence_number, members) \
             SELECT * FROM unnest({}, {}, {}); ",
            literals::bigint_array(&hashes),
            literals::bigint_array(&firsts),
            literals::bytea_array(&encoded),
        ));
    }
    if !batch_rows.0.is_empty() {
        sql.push_str(&format!(
            "INSERT INTO append_batches (first_sequence_number, last_sequence_number) \
             SELECT * FROM unnest({}, {}); ",
            literals::bigint_array(&batch_rows.0),
            literals::bigint_array(&batch_rows.1),
        ));
    }
    sql.push_str(&format!(
        "UPDATE factstr_payload_index_state SET indexed_through = {last} WHERE id = 1; "
    ));
    Some((sql, last))
}

/// Undoes what was written since the savepoint `name` (and drops it).
fn undo(conn: &mut Conn, name: &str) -> Result<()> {
    conn.client
        .batch_execute(&format!("ROLLBACK TO {name}; RELEASE {name}"))
        .map_err(|e| conn.error(e))
}

fn unnumbered() -> Error {
    Error::Backend(
        "an append of the group could not be numbered after the head read under the lock"
            .to_owned(),
    )
}
