//! Restoring batches into PostgreSQL (see `crate::restore`): in one transaction, under the
//! append lock (`writes::lock_and_read`, the lock every writer takes), the head is checked and
//! every batch is written by the function the ordinary append calls (`factstr_append_batch_v2`, so
//! the same rows, boundaries and index entries, SPEC §9) with its own `occurred_at`. The calls go
//! many to a round trip, as literal SQL; a batch that cannot be literal goes alone.

use tokio_postgres::SimpleQueryMessage;

use super::pool::Conn;
use super::writes::{catch_up_index, lock_and_read, BatchArgs, Locked};
use super::PostgresStorage;
use crate::error::{Error, Result};
use crate::restore::{not_after_head, RestoredBatch};
use crate::sql::prepared::{prepare_events, FloatText, PreparedEvent};
use crate::types::AppendResult;

/// SQL text sent per round trip (about).
const ROUND_TRIP_BYTES: usize = 1 << 20;

impl PostgresStorage {
    /// `batches` were checked by `Store` (`restore::check_batches`), which reported `written`.
    pub(super) fn restore_after_head(
        &self,
        batches: &[RestoredBatch],
        written: AppendResult,
    ) -> Result<AppendResult> {
        let prepared: Vec<Vec<PreparedEvent>> = batches
            .iter()
            .map(|b| prepare_events(&b.events, FloatText::Fraction))
            .collect();
        let mut conn = self.pool.get()?;
        let result = restore_locked(&mut conn, batches, &prepared, written);
        if result.is_err() && conn.client.batch_execute("ROLLBACK").is_err() {
            // Never hand a connection with an open transaction back to the pool.
            conn.discard();
        }
        result
    }
}

fn restore_locked(
    conn: &mut Conn,
    batches: &[RestoredBatch],
    prepared: &[Vec<PreparedEvent>],
    written: AppendResult,
) -> Result<AppendResult> {
    let Locked {
        last_committed,
        indexed_through,
        ..
    } = lock_and_read(conn, &[])?;
    if last_committed + 1 != written.first_sequence_number {
        return Err(not_after_head(
            written.first_sequence_number,
            last_committed,
        ));
    }
    if indexed_through < last_committed {
        catch_up_index(conn, indexed_through, last_committed)?;
    }
    let mut pending = Pending::default();
    for (batch, events) in batches.iter().zip(prepared) {
        let args = BatchArgs::stamped(events, batch.occurred_at);
        match args.call_sql().filter(|_| !args.has_exact()) {
            Some(sql) => {
                pending.sql.push_str(&sql);
                pending.sql.push(';');
                pending.firsts.push(batch.first_sequence_number);
                if pending.sql.len() >= ROUND_TRIP_BYTES {
                    pending.send(conn)?;
                }
            }
            None => {
                pending.send(conn)?;
                let result = args.call(conn, true)?;
                expect_first(result.map(|r| r.first_sequence_number), batch)?;
                args.write_exact(conn, batch.first_sequence_number)?;
            }
        }
    }
    pending.send(conn)?;
    conn.client
        .batch_execute("COMMIT")
        .map_err(|e| conn.commit_error(e))?;
    Ok(written)
}

/// Function calls collected for one round trip, and the first numbers they must return.
#[derive(Default)]
struct Pending {
    sql: String,
    firsts: Vec<u64>,
}

impl Pending {
    fn send(&mut self, conn: &mut Conn) -> Result<()> {
        if self.firsts.is_empty() {
            return Ok(());
        }
        let messages = conn
            .client
            .simple_query(&self.sql)
            .map_err(|e| conn.error(e))?;
        let returned: Vec<u64> = messages
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => row.get(0).and_then(|t| t.parse::<u64>().ok()),
                _ => None,
            })
            .collect();
        if returned != self.firsts {
            return Err(Error::Backend(
                "restored batches were not numbered as exported (is another writer ignoring the append lock?)"
                    .to_owned(),
            ));
        }
        self.sql.clear();
        self.firsts.clear();
        Ok(())
    }
}

fn expect_first(first: Option<u64>, batch: &RestoredBatch) -> Result<()> {
    if first == Some(batch.first_sequence_number) {
        Ok(())
    } else {
        Err(Error::Backend(format!(
            "a restored batch was numbered {first:?} instead of {}",
            batch.first_sequence_number
        )))
    }
}
