//! Group commit on PostgreSQL (see `group_commit`): several callers' appends in one transaction
//! on one connection, so they share one commit (one WAL flush). The append lock is taken once,
//! then each request is checked and numbered after the ones before it, as `writes::append` would
//! alone. Round trips are saved where nothing needs an answer in between: the inserts of
//! requests without a condition (and of conditional ones once checked) go together in one round
//! trip, and the last of them carries the COMMIT.
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

use tokio_postgres::SimpleQueryMessage;

use super::pool::Conn;
use super::reads::PgLog;
use super::writes::{catch_up_index, lock_and_read, BatchArgs, Locked};
use super::PostgresStorage;
use crate::clock::now_micros;
use crate::condition::Condition;
use crate::error::{Error, Result};
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
    args: BatchArgs<'a>,
    /// How many events the batch holds.
    count: u64,
    condition: Option<Condition<'a>>,
    /// The call as SQL text, when it can be pipelined (see `BatchArgs::call_sql`; not with
    /// payloads written beside, which need the batch's number first).
    sql: Option<String>,
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
                let args = BatchArgs::stamped(events, now_micros().max(0));
                let sql = if args.has_exact() {
                    None
                } else {
                    args.call_sql()
                };
                Member {
                    args,
                    count: events.len() as u64,
                    condition: request.condition,
                    sql,
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
    } = lock_and_read(conn, &[])?;
    if indexed_through < last_committed {
        catch_up_index(conn, indexed_through, last_committed)?;
    }
    let mut group = Group {
        head: last_committed,
        results: members.iter().map(|_| None).collect(),
        pending: Vec::new(),
    };
    for (index, member) in members.iter().enumerate() {
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
        if member.sql.is_some() {
            group.pending.push(index);
        } else {
            group.flush(conn, members, false)?;
            group.insert_alone(conn, members, index)?;
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
    /// Sends the pending inserts in one round trip, in a savepoint, and with `commit` the
    /// COMMIT after them.
    fn flush(&mut self, conn: &mut Conn, members: &[Member<'_>], commit: bool) -> Result<()> {
        if self.pending.is_empty() && !commit {
            return Ok(());
        }
        let mut sql = String::new();
        if !self.pending.is_empty() {
            sql.push_str(&format!("SAVEPOINT {ROUND}; "));
            for index in &self.pending {
                sql.push_str(members[*index].sql.as_deref().unwrap_or_default());
                sql.push_str("; ");
            }
            sql.push_str(&format!("RELEASE {ROUND}; "));
        }
        if commit {
            sql.push_str("COMMIT");
        }
        let pending = std::mem::take(&mut self.pending);
        match conn.client.simple_query(&sql) {
            Ok(messages) => {
                let firsts = messages.iter().filter_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row.get(0).and_then(|t| t.parse().ok())),
                    _ => None,
                });
                let mut answered = 0;
                let mut numbered = Ok(());
                for (index, first) in pending.iter().zip(firsts) {
                    answered += 1;
                    numbered = numbered.and(self.numbered(members, *index, first.unwrap_or(0)));
                }
                if answered != pending.len() {
                    numbered = Err(unnumbered());
                }
                match numbered {
                    // Committed already: what was written is not known (never claim nothing was).
                    Err(error) if commit => Err(Error::CommitOutcomeUnknown(error.to_string())),
                    other => other,
                }
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
                // An insert was refused (or the COMMIT, which then ended the transaction: undoing
                // the savepoint fails and the group fails with the error).
                undo(conn, ROUND).map_err(|_| error)?;
                for index in pending {
                    self.insert_alone(conn, members, index)?;
                }
                if commit {
                    conn.client
                        .batch_execute("COMMIT")
                        .map_err(|e| conn.commit_error(e))?;
                }
                Ok(())
            }
        }
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

    /// Records that request `index` was written from `first` on (which must follow the head).
    fn numbered(&mut self, members: &[Member<'_>], index: usize, first: i64) -> Result<()> {
        let count = members[index].count;
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
