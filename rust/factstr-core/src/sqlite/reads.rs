//! The SQLite log's look-ups for `sql::search` (which plans and checks): the type index, the payload
//! index, rows by sequence number, and batch boundaries. Everything runs on one connection
//! inside one transaction, so a search sees one snapshot; within it, what does not change (the
//! head, how far the index is current, a key's postings) is read once.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde_json::Value;

use super::{backend, payload_index};
use crate::clock::parse_rfc3339;
use crate::error::{Error, Result};
use crate::sql::numbers::{from_sql, to_sql};
use crate::sql::search::{IndexedLog, Row, Visit};

/// The log as one transaction sees it; lives no longer than that transaction (it keeps what it
/// read).
pub struct SqliteLog<'c> {
    connection: &'c Connection,
    head: Option<u64>,
    indexed_through: Option<u64>,
    index: payload_index::IndexReader,
}

impl<'c> SqliteLog<'c> {
    /// `connection` must be inside a transaction for as long as the log is used.
    pub fn new(connection: &'c Connection) -> Self {
        Self {
            connection,
            head: None,
            indexed_through: None,
            index: payload_index::IndexReader::default(),
        }
    }

    /// A log whose head and `indexed_through` its transaction has read already.
    pub fn knowing(mut self, head: u64, indexed_through: u64) -> Self {
        self.head = Some(head);
        self.indexed_through = Some(indexed_through);
        self
    }
}

const COLUMNS: &str = "sequence_number, occurred_at, event_type, payload";

/// `COLUMNS` of the table aliased `e`.
const EVENT_COLUMNS: &str = "e.sequence_number, e.occurred_at, e.event_type, e.payload";

/// `rows` (distinct) in the order of `numbers` (distinct), missing ones left out: `fetch`'s
/// statement yields them in that order already (its plan walks the list); should a plan ever
/// not, they are put in order here.
fn in_given_order(numbers: &[u64], mut rows: Vec<Row>) -> Vec<Row> {
    let mut given = numbers.iter();
    if rows
        .iter()
        .all(|row| given.any(|&number| number == row.sequence_number))
    {
        return rows;
    }
    rows.sort_unstable_by_key(|row| row.sequence_number);
    let mut slots: Vec<(u64, Option<Row>)> = rows
        .into_iter()
        .map(|r| (r.sequence_number, Some(r)))
        .collect();
    numbers
        .iter()
        .filter_map(|n| {
            let at = slots.binary_search_by_key(n, |(number, _)| *number).ok()?;
            slots[at].1.take()
        })
        .collect()
}

impl SqliteLog<'_> {
    fn types_sql(types: &[String]) -> String {
        format!(
            "SELECT sequence_number FROM events WHERE event_type IN ({})",
            vec!["?"; types.len()].join(", ")
        )
    }

    fn collect_numbers(&self, sql: &str, params: Vec<SqlValue>, out: &mut Vec<u64>) -> Result<()> {
        let mut statement = self.connection.prepare_cached(sql).map_err(backend)?;
        let rows = statement
            .query_map(params_from_iter(params), |row| row.get::<_, i64>(0))
            .map_err(backend)?;
        for row in rows {
            out.push(from_sql(row.map_err(backend)?));
        }
        Ok(())
    }
}

fn text_params(types: &[String]) -> Vec<SqlValue> {
    types.iter().map(|t| SqlValue::Text(t.clone())).collect()
}

pub fn parse_payload(sequence_number: u64, text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        Error::Backend(format!(
            "event {sequence_number} has a payload that is not JSON: {e}"
        ))
    })
}

fn read_row(row: &rusqlite::Row<'_>) -> Result<Row> {
    let sequence_number = from_sql(row.get(0).map_err(backend)?);
    let occurred_at: String = row.get(1).map_err(backend)?;
    let payload: String = row.get(3).map_err(backend)?;
    Ok(Row {
        sequence_number,
        occurred_at: parse_rfc3339(&occurred_at).ok_or_else(|| {
            Error::Backend(format!(
                "event {sequence_number} has an unreadable occurred_at {occurred_at:?}"
            ))
        })?,
        event_type: row.get(2).map_err(backend)?,
        payload: parse_payload(sequence_number, &payload)?,
    })
}

pub fn head(connection: &Connection) -> Result<u64> {
    let head: i64 = connection
        .prepare_cached("SELECT COALESCE(MAX(sequence_number), 0) FROM events")
        .map_err(backend)?
        .query_row([], |row| row.get(0))
        .map_err(backend)?;
    Ok(from_sql(head))
}

impl IndexedLog for SqliteLog<'_> {
    fn head(&mut self) -> Result<u64> {
        if self.head.is_none() {
            self.head = Some(head(self.connection)?);
        }
        Ok(self.head.unwrap_or_default())
    }

    fn indexed_through(&mut self) -> Result<u64> {
        if self.indexed_through.is_none() {
            let through: i64 = self
                .connection
                .prepare_cached(
                    "SELECT indexed_through FROM factstr_payload_index_state WHERE id = 1",
                )
                .map_err(backend)?
                .query_row([], |row| row.get(0))
                .map_err(backend)?;
            self.indexed_through = Some(from_sql(through));
        }
        Ok(self.indexed_through.unwrap_or_default())
    }

    fn count_types(&mut self, types: &[String], cap: i64) -> Result<i64> {
        let sql = format!("SELECT count(*) FROM ({} LIMIT ?)", Self::types_sql(types));
        let mut params = text_params(types);
        params.push(SqlValue::Integer(cap));
        let mut statement = self.connection.prepare_cached(&sql).map_err(backend)?;
        statement
            .query_row(params_from_iter(params), |row| row.get(0))
            .map_err(backend)
    }

    fn count_key(&mut self, hash: i64, cap: i64) -> Result<i64> {
        self.index.estimate(self.connection, hash, cap)
    }

    fn numbers_by_types(&mut self, types: &[String], after: u64, out: &mut Vec<u64>) -> Result<()> {
        let sql = format!("{} AND sequence_number > ?", Self::types_sql(types));
        let mut params = text_params(types);
        params.push(SqlValue::Integer(to_sql(after, "sequence number")?));
        self.collect_numbers(&sql, params, out)
    }

    fn numbers_by_key(&mut self, hash: i64, out: &mut Vec<u64>) -> Result<()> {
        self.index.lookup(self.connection, hash, out)
    }

    fn numbers_after(&mut self, after: u64, out: &mut Vec<u64>) -> Result<()> {
        self.collect_numbers(
            "SELECT sequence_number FROM events WHERE sequence_number > ?",
            vec![SqlValue::Integer(to_sql(after, "sequence number")?)],
            out,
        )
    }

    fn fetch(&mut self, numbers: &[u64]) -> Result<Vec<Row>> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for all of them, not one per row (running a statement costs about as
        // much as reading its row): the numbers go in as one JSON array, and SQLite seeks each
        // one's row as it walks the array.
        let mut list = String::with_capacity(numbers.len() * 8 + 2);
        list.push('[');
        for (i, &number) in numbers.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            list.push_str(&to_sql(number, "sequence number")?.to_string());
        }
        list.push(']');
        let mut statement = self
            .connection
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM json_each(?1) AS wanted \
                 JOIN events AS e ON e.sequence_number = wanted.value"
            ))
            .map_err(backend)?;
        let mut rows = statement.query([list]).map_err(backend)?;
        let mut found = Vec::with_capacity(numbers.len());
        while let Some(row) = rows.next().map_err(backend)? {
            found.push(read_row(row)?);
        }
        Ok(in_given_order(numbers, found))
    }

    fn scan(&mut self, after: u64, descending: bool, _: usize, visit: Visit<'_>) -> Result<()> {
        // SQLite steps lazily: stopping early reads nothing more.
        let order = if descending { "DESC" } else { "ASC" };
        let sql = format!("SELECT {COLUMNS} FROM events WHERE sequence_number > ? ORDER BY sequence_number {order}");
        let mut statement = self.connection.prepare_cached(&sql).map_err(backend)?;
        let mut rows = statement
            .query([to_sql(after, "sequence number")?])
            .map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            if !visit(read_row(row)?)? {
                break;
            }
        }
        Ok(())
    }

    fn batch_of(&mut self, number: u64) -> Result<(u64, u64)> {
        // Sparse boundaries: a multi-event batch has a row; a number without one is a batch alone.
        let found: Option<(i64, i64)> = self
            .connection
            .prepare_cached(
                "SELECT first_sequence_number, last_sequence_number FROM append_batches \
                 WHERE first_sequence_number <= ?1 ORDER BY first_sequence_number DESC LIMIT 1",
            )
            .map_err(backend)?
            .query_row([to_sql(number, "sequence number")?], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(backend)?;
        Ok(
            match found.map(|(first, last)| (from_sql(first), from_sql(last))) {
                Some((first, last)) if first <= number && number <= last => (first, last),
                _ => (number, number),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(count: u64) -> Connection {
        let connection = Connection::open_in_memory().expect("opens");
        connection
            .execute_batch(
                "CREATE TABLE events (sequence_number INTEGER PRIMARY KEY, occurred_at TEXT NOT NULL, \
                 event_type TEXT NOT NULL, payload TEXT NOT NULL)",
            )
            .expect("creates");
        for n in 1..=count {
            connection
                .execute(
                    "INSERT INTO events VALUES (?1, '2026-01-01T00:00:00.000000Z', 'a', ?2)",
                    (n as i64, format!("{{\"n\":{n}}}")),
                )
                .expect("inserts");
        }
        connection
    }

    fn fetched(connection: &Connection, numbers: &[u64]) -> Vec<u64> {
        let rows = SqliteLog::new(connection).fetch(numbers).expect("fetches");
        for row in &rows {
            assert_eq!(
                row.payload["n"], row.sequence_number,
                "each row's own payload"
            );
        }
        rows.iter().map(|r| r.sequence_number).collect()
    }

    /// Rows come back in the order asked for, whatever the statement size, missing ones left
    /// out.
    #[test]
    fn fetch_keeps_the_order_given_and_leaves_out_missing_rows() {
        let connection = log_of(1_200);
        assert_eq!(fetched(&connection, &[7]), vec![7]);
        assert_eq!(fetched(&connection, &[3, 9, 2_000, 11]), vec![3, 9, 11]);
        assert_eq!(fetched(&connection, &[11, 9, 3]), vec![11, 9, 3]);
        assert_eq!(
            fetched(&connection, &[9, 3, 11, 5000, 1]),
            vec![9, 3, 11, 1]
        );
        let ascending: Vec<u64> = (1..=1_100).collect();
        assert_eq!(fetched(&connection, &ascending), ascending);
        let descending: Vec<u64> = (1..=1_150).rev().collect();
        assert_eq!(fetched(&connection, &descending), descending);
        let sizes: Vec<u64> = (1..=64).collect();
        assert_eq!(fetched(&connection, &sizes), sizes);
        assert!(fetched(&connection, &[]).is_empty());
    }

    #[test]
    fn rows_in_another_order_are_put_in_the_order_given() {
        let connection = log_of(10);
        let rows = SqliteLog::new(&connection)
            .fetch(&[2, 4, 6])
            .expect("fetches");
        let numbers = |rows: &[Row]| rows.iter().map(|r| r.sequence_number).collect::<Vec<_>>();
        let reordered = in_given_order(&[6, 9, 2, 4], rows);
        assert_eq!(numbers(&reordered), vec![6, 2, 4]);
    }
}
