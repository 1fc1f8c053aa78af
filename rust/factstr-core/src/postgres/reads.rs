//! The PostgreSQL log's look-ups for `sql::search` (which plans and checks): the type index, the
//! payload index, rows by sequence number, and batch boundaries.
//!
//! A search starts from the log's state (`read_state`): the head, how far the payload index is
//! current, the index rows of the query's payload keys and the candidate rows the search will
//! most likely fetch first, read by one statement, so in one snapshot and one round trip: a
//! query of a context usually needs no other. A query runs without a transaction: its later
//! statements (when it needs more rows) may see newer rows, and ignore every row above the head
//! it started from (`PgLog::at`, the ceiling). That is one consistent snapshot because every
//! writer numbers `MAX + 1` under the append lock (see `writes`): a row at or below the head
//! committed before the head was read. An append reads the same state under its lock, in its own
//! transaction.

use std::collections::HashMap;
use std::time::SystemTime;

use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::client::DbError;
use super::pool::{describe, Conn, Params};
use crate::clock::from_system_time;
use crate::error::{Error, Result};
use crate::payload_keys::selective_key_hashes;
use crate::sql::members::decode_members;
use crate::sql::numbers::{from_sql, to_sql};
use crate::sql::search::{IndexedLog, Row, Visit};
use crate::types::EventQuery;

pub struct PgLog<'a> {
    conn: &'a mut Conn,
    /// The head and how far the payload index is current, when the caller already read them
    /// under its lock (an append) or with the statement that began its snapshot (a query):
    /// saves two round trips.
    known: Option<(u64, u64)>,
    /// Keys whose postings were read whole (few of them, by `count_key` or with the log's state):
    /// their row count and sequence numbers, so no further round trip needs them.
    key_numbers: HashMap<i64, (i64, Vec<u64>)>,
    /// Candidate rows read with the log's state (see `read_state`).
    prefetched: HashMap<u64, Row>,
    /// Rows above this number are not part of this read (a query without a transaction).
    ceiling: Option<u64>,
}

/// A key with fewer postings than this is read whole with the log's state (or when counted).
pub const READ_WHOLE_BELOW: i64 = 256;

/// `sql::search`'s `SELECTIVE_ENOUGH`: the planner takes a predicate's first key with this few
/// index rows without weighing its later keys. `read_state` mirrors that choice.
const SELECTIVE_ENOUGH: i64 = 32;

/// The most candidate rows `read_state` reads ahead: `sql::search`'s largest fetch chunk.
const MAX_PREFETCH: i64 = 512;

/// A chosen key's candidates are read ahead only when its index rows' members take at most this
/// many bytes (about one number each): the server decodes them row by row, far slower than the
/// engine, so a key shared by large batches is left to a round trip of its own.
const MAX_DECODED_BYTES: i64 = 4096;

/// The log's state in one statement (so one snapshot), for `keys` payload keys, one row per
/// thing read, the first column telling which (see `read_state`):
/// - `0`: the head and how far the payload index is current;
/// - `1`: an index row (key, first sequence number, members) among the newest
///   `READ_WHOLE_BELOW` of each key;
/// - `2`: an event row (number, occurred_at, type, payload, exact payload): the candidates the
///   search will most likely fetch first, so that it needs no round trip of its own for them.
///
/// Parameters: `$1` the lower bound of the candidates, `$2` how many, then per key its hash,
/// its payload predicate (`grp`, NULL when the key is only counted) and its place among the
/// predicate's keys (`pos`). Which candidates: per predicate the key the planner will pick
/// (`payload_parts`: the first with at most `SELECTIVE_ENOUGH` rows, else the first of the
/// fewest), when read whole and its members are few (`MAX_DECODED_BYTES`); their sequence
/// numbers above `$1`, the oldest `$2` and the newest (a query), or the newest `$2` (an append's
/// check). Should the engine plan otherwise (a rarer event type, rows the index does not cover
/// yet), `fetch` finds what it wants missing and reads it in a round trip of its own: reading
/// ahead never changes a result.
/// An index row without members is its one event; the others are decoded on the server
/// (`factstr_members_after`, about 20 microseconds a row: less than a second round trip, which
/// also sent every number back).
///
/// The keys are `VALUES` rows, one set of parameters each (one statement text per number of
/// keys), so that the server's plan, which it keeps for the connection, counts on as many keys
/// as there are (an array parameter looks like 100 to its generic plan). The rows go to the
/// events' primary key as an array (as a join, the planner would rather scan the table). The
/// exact payload (rare) is looked up only when that table has any row: a join would
/// hash the table on every call.
fn state_sql(keys: usize, newest_first: bool) -> String {
    if keys == 0 {
        return format!("{HEAD_AND_THROUGH}, NULL::bytea, NULL::timestamptz, NULL::text, NULL::jsonb, NULL::text");
    }
    let values = (0..keys)
        .map(|i| {
            let at = 3 + 3 * i;
            format!("(${at}::bigint, ${}::int, ${}::int)", at + 1, at + 2)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let read_ahead = format!("n < {READ_WHOLE_BELOW} AND bytes <= {MAX_DECODED_BYTES}");
    // The numbers of the chosen keys' index rows: all of them for the oldest; for the newest,
    // only each key's newest `$2` rows, which hold its newest numbers (a key's rows are of
    // distinct batches, so the members of one all lie below the first of the next).
    let rows = if newest_first {
        format!(
            "w AS (SELECT p.first_sequence_number, p.members \
                FROM (SELECT DISTINCT key_hash FROM chosen WHERE {read_ahead}) AS ch, \
                LATERAL (SELECT first_sequence_number, members FROM r WHERE r.key_hash = ch.key_hash \
                    ORDER BY first_sequence_number DESC LIMIT $2) AS p)"
        )
    } else {
        format!(
            "w AS (SELECT first_sequence_number, members FROM r \
                WHERE key_hash IN (SELECT key_hash FROM chosen WHERE {read_ahead}))"
        )
    };
    let decoded = "numbers AS (SELECT first_sequence_number AS n FROM w \
            UNION ALL SELECT m.n FROM w, \
                LATERAL factstr_members_after(w.first_sequence_number, w.members) AS m(n) \
            WHERE w.members IS NOT NULL)";
    // Ascending, the newest too: a query whose limit cuts its records short reads its context
    // version newest first.
    let chosen = if newest_first {
        "c AS (SELECT DISTINCT n FROM numbers WHERE n > $1 ORDER BY n DESC LIMIT $2)"
    } else {
        "c AS ((SELECT DISTINCT n FROM numbers WHERE n > $1 ORDER BY n LIMIT $2) \
            UNION SELECT max(n) FROM numbers)"
    };
    let numbers = format!("{rows}, {decoded}, {chosen}");
    format!(
        "WITH k(key_hash, grp, pos) AS (VALUES {values}), \
         r AS MATERIALIZED (SELECT d.key_hash, p.first_sequence_number, p.members \
            FROM (SELECT DISTINCT key_hash FROM k) AS d, \
            LATERAL (SELECT first_sequence_number, members FROM factstr_payload_index \
                WHERE key_hash = d.key_hash ORDER BY first_sequence_number DESC \
                LIMIT {READ_WHOLE_BELOW}) AS p), \
         counted AS (SELECT k.grp, k.pos, k.key_hash, COALESCE(t.n, 0) AS n, \
                COALESCE(t.bytes, 0) AS bytes \
            FROM k LEFT JOIN (SELECT key_hash, count(*) AS n, \
                    sum(octet_length(members)) AS bytes FROM r GROUP BY key_hash) AS t \
                USING (key_hash) \
            WHERE k.grp IS NOT NULL), \
         chosen AS (SELECT DISTINCT ON (grp) key_hash, n, bytes FROM counted \
            ORDER BY grp, n > {SELECTIVE_ENOUGH}, CASE WHEN n <= {SELECTIVE_ENOUGH} THEN pos END, n, pos), \
         {numbers} \
         {HEAD_AND_THROUGH}, NULL::bytea, NULL::timestamptz, NULL::text, NULL::jsonb, NULL::text \
         UNION ALL SELECT 1, r.key_hash, r.first_sequence_number, r.members, NULL, NULL, NULL, NULL FROM r \
         UNION ALL SELECT 2, e.sequence_number, NULL, NULL, e.occurred_at, e.event_type, e.payload, {EXACT} \
            FROM events AS e WHERE e.sequence_number = ANY (ARRAY(SELECT n FROM c))"
    )
}

/// The first row of `state_sql`: kind 0, the head and how far the payload index is current.
const HEAD_AND_THROUGH: &str = "SELECT 0, (SELECT COALESCE(MAX(sequence_number), 0) FROM events), \
    (SELECT indexed_through FROM factstr_payload_index_state WHERE id = 1)";

/// The exact payload text of event `e`, when it has one (see `factstr_exact_payloads` in
/// `schema`): looked up only when the table has rows, which it rarely has.
const EXACT: &str = "CASE WHEN (SELECT EXISTS (SELECT FROM factstr_exact_payloads)) THEN \
    (SELECT x.payload FROM factstr_exact_payloads AS x WHERE x.sequence_number = e.sequence_number) END";

/// Which candidate rows `read_state` reads ahead with the log's state.
#[derive(Clone, Copy)]
pub enum Prefetch {
    /// The oldest `count` above `after` (a query reading ascending from `after`).
    Oldest { after: u64, count: usize },
    /// The newest `count` (an append's check of a context version).
    Newest { count: usize },
}

impl Prefetch {
    /// The first chunk a query of at most `limit` records reads (see `sql::search::visit_rows`).
    pub fn for_query(query: &EventQuery, limit: Option<usize>) -> Self {
        Prefetch::Oldest {
            after: query.min_sequence_number.unwrap_or(0),
            count: limit.unwrap_or(usize::MAX),
        }
    }
}

/// What a search starts from, read in one snapshot (see `read_state`).
pub struct LogState {
    pub head: u64,
    pub indexed_through: u64,
    /// The sequence numbers of each key read whole (fewer than `READ_WHOLE_BELOW` index rows),
    /// with its row count.
    key_numbers: HashMap<i64, (i64, Vec<u64>)>,
    /// Candidate rows read ahead (see `Prefetch`).
    candidates: Vec<Row>,
}

impl LogState {
    /// Forgets what was read of the payload index (after a catch-up indexed more rows).
    pub fn forget_postings(&mut self) {
        self.key_numbers.clear();
        self.candidates.clear();
    }
}

/// Reads the log's state for a search of `query` (its payload keys, see `search_keys`), with
/// the candidate rows `prefetch` asks for; after `batch` (e.g. `BEGIN; LOCK ...`), all in one
/// round trip.
pub fn read_state(
    conn: &mut Conn,
    batch: Option<&str>,
    query: Option<&EventQuery>,
    prefetch: Prefetch,
) -> Result<LogState> {
    let keys = query.map(search_keys).unwrap_or_default();
    let (after, count, newest_first) = match prefetch {
        Prefetch::Oldest { after, count } => (after, count, false),
        Prefetch::Newest { count } => (0, count, true),
    };
    let after = as_i64(after)?;
    let count = i64::try_from(count).unwrap_or(i64::MAX).min(MAX_PREFETCH);
    let sql = state_sql(keys.len(), newest_first);
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(2 + 3 * keys.len());
    if !keys.is_empty() {
        params.push(&after);
        params.push(&count);
        for key in &keys {
            params.push(&key.hash);
            params.push(&key.group);
            params.push(&key.position);
        }
    }
    let results = conn
        .pipelined(batch, &[(&sql, &params)])
        .map_err(|e| conn.error(e))?;
    let mut head = None;
    let mut indexed_through = 0;
    let mut found: HashMap<i64, (i64, Vec<u64>)> = HashMap::new();
    let mut rows = Vec::new();
    for row in &results[0] {
        match row.get::<_, i32>(0) {
            0 => {
                head = Some(from_sql(row.get(1)));
                indexed_through = row.get::<_, Option<i64>>(2).map_or(0, from_sql);
            }
            1 => {
                let entry = found.entry(row.get(1)).or_default();
                entry.0 += 1;
                decode_members(
                    from_sql(row.get(2)),
                    row.get::<_, Option<&[u8]>>(3),
                    &mut entry.1,
                );
            }
            _ => rows.push(read_row_at(row, [1, 4, 5, 6, 7])?),
        }
    }
    let head =
        head.ok_or_else(|| Error::Backend("the head of the log could not be read".to_owned()))?;
    // A key without index rows has none at all: read whole too. One with as many rows as were
    // read may have more: counted and read when the search needs them.
    for key in &keys {
        found.entry(key.hash).or_default();
    }
    found.retain(|_, (count, _)| *count < READ_WHOLE_BELOW);
    Ok(LogState {
        head,
        indexed_through,
        key_numbers: found,
        candidates: rows,
    })
}

/// A payload key as `sql::search::plan` weighs it: the predicate it belongs to (`None`: its
/// filter cannot use the payload index, the key is only counted) and its place among that
/// predicate's keys.
struct SearchKey {
    hash: i64,
    group: Option<i32>,
    position: i32,
}

/// The payload keys whose counts `sql::search::plan` asks for on `query`, in its order: per
/// payload predicate of each filter that can match, its keys (`selective_key_hashes`).
fn search_keys(query: &EventQuery) -> Vec<SearchKey> {
    let mut keys = Vec::new();
    let mut group = 0;
    for filter in query.filters.iter().flatten() {
        if filter.matches_nothing() {
            continue;
        }
        let predicates = filter.payload_predicates.iter().flatten();
        let hashes: Vec<Vec<i64>> = predicates.map(selective_key_hashes).collect();
        // A predicate without keys (`{}`) makes the planner scan instead: its filter's keys are
        // counted (those before it) but no candidates of theirs are read.
        let indexable = hashes.iter().all(|h| !h.is_empty());
        for predicate in hashes {
            for (position, hash) in predicate.into_iter().enumerate() {
                keys.push(SearchKey {
                    hash,
                    group: indexable.then_some(group),
                    position: i32::try_from(position).unwrap_or(i32::MAX),
                });
            }
            group += 1;
        }
    }
    keys
}

/// The columns `read_row` reads, from `ROWS`: an event and, rarely, its payload's exact text
/// (joined: a scan reads many rows; `fetch` reads few and looks it up, see `EXACT`).
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
    read_row_at(row, [0, 1, 2, 3, 4])
}

/// An event from the columns at `at`: sequence number, occurred_at, type, payload, exact payload.
fn read_row_at(row: &tokio_postgres::Row, at: [usize; 5]) -> Result<Row> {
    let sequence_number = from_sql(row.get(at[0]));
    Ok(Row {
        sequence_number,
        occurred_at: from_system_time(row.get::<_, SystemTime>(at[1])),
        event_type: row.get(at[2]),
        payload: match row.get::<_, Option<&str>>(at[4]) {
            Some(exact) => serde_json::from_str(exact).map_err(|e| {
                Error::Backend(format!(
                    "event {sequence_number} has an exact payload that is not JSON: {e}"
                ))
            })?,
            None => read_payload(row, at[3], sequence_number)?,
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
    /// A log read inside a transaction (one snapshot): `known` as for `LogState`, when read.
    pub fn new(conn: &'a mut Conn, known: Option<(u64, u64)>) -> Self {
        Self {
            conn,
            known,
            key_numbers: HashMap::new(),
            prefetched: HashMap::new(),
            ceiling: None,
        }
    }

    /// The log as `state` found it. With `ceiling` (a read outside a transaction), rows above
    /// its head are ignored; without, the caller's transaction holds the append lock and the
    /// index is current up to the head (an append, after any catch-up).
    pub fn at(conn: &'a mut Conn, state: LogState, ceiling: bool) -> Self {
        let through = if ceiling {
            state.indexed_through
        } else {
            state.head
        };
        Self {
            conn,
            known: Some((state.head, through)),
            key_numbers: state.key_numbers,
            prefetched: state
                .candidates
                .into_iter()
                .map(|row| (row.sequence_number, row))
                .collect(),
            ceiling: ceiling.then_some(state.head),
        }
    }

    /// Drops the numbers above the ceiling from `out[from..]`.
    fn below_ceiling(&self, out: &mut Vec<u64>, from: usize) {
        if let Some(ceiling) = self.ceiling {
            let mut index = from;
            while index < out.len() {
                if out[index] > ceiling {
                    out.swap_remove(index);
                } else {
                    index += 1;
                }
            }
        }
    }

    fn numbers(&mut self, sql: &str, params: Params<'_>, out: &mut Vec<u64>) -> Result<()> {
        let rows = self
            .conn
            .query(sql, params)
            .map_err(|e| self.conn.error(e))?;
        let from = out.len();
        out.extend(rows.iter().map(|row| from_sql(row.get(0))));
        self.below_ceiling(out, from);
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
        let from = out.len();
        decode_rows(&rows, out);
        self.below_ceiling(out, from);
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
        if !self.prefetched.is_empty() && numbers.iter().all(|n| self.prefetched.contains_key(n)) {
            return Ok(numbers
                .iter()
                .filter_map(|n| self.prefetched.remove(n))
                .collect());
        }
        let wanted = numbers
            .iter()
            .map(|&n| as_i64(n))
            .collect::<Result<Vec<i64>>>()?;
        let rows = self
            .conn
            .query(
                &format!(
                    "SELECT e.sequence_number, e.occurred_at, e.event_type, e.payload, {EXACT} \
                     FROM events AS e WHERE e.sequence_number = ANY($1)"
                ),
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
        // The first page is what the caller expects to need; later ones grow, but ask for no
        // more than the caller still expects while it expects any (a limited read, such as a
        // page of `iter_query`, must not pull a whole extra page from the server).
        let high = match self.ceiling {
            Some(ceiling) => as_i64(ceiling)?.saturating_add(1),
            None => i64::MAX,
        };
        let (mut low, mut high) = (as_i64(after)?, high);
        let order = if descending { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {COLUMNS} FROM {ROWS} WHERE e.sequence_number > $1 AND e.sequence_number < $2 \
             ORDER BY e.sequence_number {order} LIMIT $3"
        );
        let mut page = (expected as i64).clamp(16, MAX_SCAN_PAGE);
        let mut still_expected = i64::try_from(expected).unwrap_or(i64::MAX);
        loop {
            let limit = if still_expected > 0 {
                page.min(still_expected.max(16))
            } else {
                page
            };
            let rows = self
                .conn
                .query(&sql, &[&low, &high, &limit])
                .map_err(|e| self.conn.error(e))?;
            let full = rows.len() as i64 == limit;
            page = (page * 2).min(MAX_SCAN_PAGE);
            still_expected -= rows.len() as i64;
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
