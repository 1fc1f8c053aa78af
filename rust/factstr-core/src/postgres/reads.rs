//! The PostgreSQL log's look-ups for `sql::search` (which plans and checks): the type index, the
//! payload index, rows by sequence number, and batch boundaries. A search runs inside one
//! transaction (REPEATABLE READ for reads, or the append's own), so it sees one snapshot.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::Value;

use super::client::DbError;
use super::pool::{describe, Conn, Params};
use crate::clock::from_system_time;
use crate::error::{Error, Result};
use crate::sql::members::decode_members;
use crate::sql::numbers::{from_sql, to_sql};
use crate::sql::search::{IndexedLog, Row, Visit};

pub struct PgLog<'a> {
    conn: &'a mut Conn,
    /// The head and how far the payload index is current, when the caller already read them
    /// under its lock (an append) or with the statement that began its snapshot (a query):
    /// saves two round trips.
    known: Option<(u64, u64)>,
    /// Keys whose postings were read whole (few of them, by `count_key` or in advance by an
    /// append): their row count and sequence numbers, so no further round trip needs them.
    key_numbers: HashMap<i64, (i64, Vec<u64>)>,
}

/// Payload index rows of one key, read whole: (first sequence number, members) per row.
pub type IndexRows = Vec<(u64, Option<Vec<u8>>)>;

/// A key with fewer postings than this is read whole when counted: one round trip for both.
pub const READ_WHOLE_BELOW: i64 = 256;

/// The columns `read_row` reads, from `ROWS`: an event and, rarely, its payload's exact text.
const COLUMNS: &str = "e.sequence_number, e.occurred_at, e.event_type, e.payload, x.payload";
const ROWS: &str =
    "events AS e LEFT JOIN factstr_exact_payloads AS x ON x.sequence_number = e.sequence_number";

/// The largest page of a scan, in rows.
const MAX_SCAN_PAGE: i64 = 8_192;

/// A sequence number as the column type (see `sql::numbers`).
fn as_i64(number: u64) -> Result<i64> {
    to_sql(number, "sequence number")
}

fn read_row(row: &tokio_postgres::Row) -> Result<Row> {
    let sequence_number = from_sql(row.get(0));
    Ok(Row {
        sequence_number,
        occurred_at: from_system_time(row.get::<_, SystemTime>(1)),
        event_type: row.get(2),
        payload: match row.get::<_, Option<&str>>(4) {
            Some(exact) => serde_json::from_str(exact).map_err(|e| {
                Error::Backend(format!(
                    "event {sequence_number} has an exact payload that is not JSON: {e}"
                ))
            })?,
            None => read_payload(row, 3, sequence_number)?,
        },
    })
}

/// The `jsonb` payload in column `index`. `try_get`, not `get`: a payload the JSON parser
/// refuses (a number out of range of a double, written by another writer) is an error of this
/// call, not a panic that would unwind through the open transaction.
pub fn read_payload(
    row: &tokio_postgres::Row,
    index: usize,
    sequence_number: u64,
) -> Result<Value> {
    row.try_get::<_, Value>(index).map_err(|e| {
        Error::Backend(format!(
            "event {sequence_number} has a payload that cannot be read: {}",
            describe(&DbError::Driver(e))
        ))
    })
}

impl<'a> PgLog<'a> {
    pub fn new(conn: &'a mut Conn, known: Option<(u64, u64)>) -> Self {
        Self {
            conn,
            known,
            key_numbers: HashMap::new(),
        }
    }

    /// Takes a key's postings read in advance in this snapshot (all of them, fewer than
    /// `READ_WHOLE_BELOW` rows): (first sequence number, members) per row.
    pub fn read_whole(&mut self, hash: i64, rows: &[(u64, Option<Vec<u8>>)]) {
        let mut numbers = Vec::new();
        for (first, members) in rows {
            decode_members(*first, members.as_deref(), &mut numbers);
        }
        self.key_numbers.insert(hash, (rows.len() as i64, numbers));
    }

    fn numbers(&mut self, sql: &str, params: Params<'_>, out: &mut Vec<u64>) -> Result<()> {
        let rows = self
            .conn
            .query(sql, params)
            .map_err(|e| self.conn.error(e))?;
        out.extend(rows.iter().map(|row| from_sql(row.get(0))));
        Ok(())
    }

    fn count(&mut self, sql: &str, params: Params<'_>) -> Result<i64> {
        self.conn
            .query_one(sql, params)
            .map(|row| row.get(0))
            .map_err(|e| self.conn.error(e))
    }
}

/// Appends the sequence numbers of payload index rows (first_sequence_number, members).
fn decode_rows(rows: &[tokio_postgres::Row], out: &mut Vec<u64>) {
    for row in rows {
        let members: Option<&[u8]> = row.get(1);
        decode_members(from_sql(row.get(0)), members, out);
    }
}

pub fn head(conn: &mut Conn) -> Result<u64> {
    conn.query_one("SELECT COALESCE(MAX(sequence_number), 0) FROM events", &[])
        .map(|row| from_sql(row.get(0)))
        .map_err(|e| conn.error(e))
}

impl IndexedLog for PgLog<'_> {
    fn head(&mut self) -> Result<u64> {
        match self.known {
            Some((head, _)) => Ok(head),
            None => head(self.conn),
        }
    }

    fn indexed_through(&mut self) -> Result<u64> {
        match self.known {
            Some((_, through)) => Ok(through),
            None => self
                .count(
                    "SELECT indexed_through FROM factstr_payload_index_state WHERE id = 1",
                    &[],
                )
                .map(from_sql),
        }
    }

    fn count_types(&mut self, types: &[String], cap: i64) -> Result<i64> {
        // Per type, in index order, so that the count stops at `cap` rows of the index.
        self.count(
            "SELECT count(*) FROM (SELECT 1 FROM unnest($1::text[]) AS t(event_type), LATERAL ( \
                 SELECT 1 FROM events AS e WHERE e.event_type = t.event_type \
                 ORDER BY e.sequence_number LIMIT $2) AS found LIMIT $2) AS counted",
            &[&types, &cap],
        )
    }

    fn count_key(&mut self, hash: i64, cap: i64) -> Result<i64> {
        if let Some((rows, _)) = self.key_numbers.get(&hash) {
            return Ok(*rows);
        }
        let few = self
            .conn
            .query(
                "SELECT first_sequence_number, members FROM factstr_payload_index WHERE key_hash = $1 LIMIT $2",
                &[&hash, &READ_WHOLE_BELOW],
            )
            .map_err(|e| self.conn.error(e))?;
        if (few.len() as i64) < READ_WHOLE_BELOW {
            let mut numbers = Vec::new();
            decode_rows(&few, &mut numbers);
            self.key_numbers.insert(hash, (few.len() as i64, numbers));
            return Ok(few.len() as i64);
        }
        self.count(
            "SELECT count(*) FROM (SELECT 1 FROM factstr_payload_index WHERE key_hash = $1 LIMIT $2) AS t",
            &[&hash, &cap],
        )
    }

    fn numbers_by_types(&mut self, types: &[String], after: u64, out: &mut Vec<u64>) -> Result<()> {
        self.numbers(
            "SELECT sequence_number FROM events WHERE event_type = ANY($1) AND sequence_number > $2",
            &[&types, &as_i64(after)?],
            out,
        )
    }

    fn numbers_by_key(&mut self, hash: i64, out: &mut Vec<u64>) -> Result<()> {
        if let Some((_, numbers)) = self.key_numbers.get(&hash) {
            out.extend(numbers);
            return Ok(());
        }
        let rows = self
            .conn
            .query("SELECT first_sequence_number, members FROM factstr_payload_index WHERE key_hash = $1", &[&hash])
            .map_err(|e| self.conn.error(e))?;
        decode_rows(&rows, out);
        Ok(())
    }

    fn numbers_after(&mut self, after: u64, out: &mut Vec<u64>) -> Result<()> {
        self.numbers(
            "SELECT sequence_number FROM events WHERE sequence_number > $1",
            &[&as_i64(after)?],
            out,
        )
    }

    fn fetch(&mut self, numbers: &[u64]) -> Result<Vec<Row>> {
        let wanted = numbers
            .iter()
            .map(|&n| as_i64(n))
            .collect::<Result<Vec<i64>>>()?;
        let rows = self
            .conn
            .query(
                &format!("SELECT {COLUMNS} FROM {ROWS} WHERE e.sequence_number = ANY($1)"),
                &[&wanted],
            )
            .map_err(|e| self.conn.error(e))?;
        let mut by_number = HashMap::with_capacity(rows.len());
        for row in &rows {
            let row = read_row(row)?;
            by_number.insert(row.sequence_number, row);
        }
        Ok(numbers.iter().filter_map(|n| by_number.remove(n)).collect())
    }

    fn scan(
        &mut self,
        after: u64,
        descending: bool,
        expected: usize,
        visit: Visit<'_>,
    ) -> Result<()> {
        // In pages: a result set read only in part would still be sent whole by the server (and
        // drained by the driver), so an early stop must not leave an unbounded query behind.
        // The first page is what the caller expects to need; later ones grow.
        let (mut low, mut high) = (as_i64(after)?, i64::MAX);
        let order = if descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {COLUMNS} FROM {ROWS} WHERE e.sequence_number > $1 AND e.sequence_number < $2 \
             ORDER BY e.sequence_number {order} LIMIT $3"
        );
        let mut page = (expected as i64).clamp(16, MAX_SCAN_PAGE);
        loop {
            let rows = self
                .conn
                .query(&sql, &[&low, &high, &page])
                .map_err(|e| self.conn.error(e))?;
            let full = rows.len() as i64 == page;
            page = (page * 2).min(MAX_SCAN_PAGE);
            for row in &rows {
                let row = read_row(row)?;
                let number = as_i64(row.sequence_number)?;
                if descending {
                    high = number;
                } else {
                    low = number;
                }
                if !visit(row)? {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn batch_of(&mut self, number: u64) -> Result<(u64, u64)> {
        // Sparse boundaries: a multi-event batch has a row; a number without one is a batch alone.
        let found = self
            .conn
            .query_opt(
                "SELECT first_sequence_number, last_sequence_number FROM append_batches \
                 WHERE first_sequence_number <= $1 ORDER BY first_sequence_number DESC LIMIT 1",
                &[&as_i64(number)?],
            )
            .map_err(|e| self.conn.error(e))?;
        Ok(match found {
            Some(row) => {
                let (first, last) = (from_sql(row.get(0)), from_sql(row.get(1)));
                if first <= number && number <= last {
                    (first, last)
                } else {
                    (number, number)
                }
            }
            None => (number, number),
        })
    }
}
