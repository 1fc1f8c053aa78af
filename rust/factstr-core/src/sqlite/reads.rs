//! Reading the SQLite log: which rows can match a query (using the type index and the payload
//! index instead of scanning), and turning rows into records, checked by the one matcher.

use std::sync::Arc;

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};
use serde_json::Value;

use super::{backend, payload_index, sql_int};
use crate::clock::parse_rfc3339;
use crate::error::{Error, Result};
use crate::payload_keys::selective_key_hashes;
use crate::types::{Batch, BatchPage, EventQuery, EventRecord};

/// Candidate counts are estimated up to this bound only: enough to tell a selective key from a
/// common one without counting a million rows.
const ESTIMATE_CAP: i64 = 2_000;

/// Which rows may match a query.
pub enum Plan {
    /// Every row matches (a filter without conditions).
    Everything,
    /// Every row may match and must be checked (a predicate the index cannot narrow, like `{}`).
    Scan,
    /// No row can match.
    Nothing,
    /// The rows whose sequence numbers these sources yield.
    Candidates(Vec<Source>),
}

/// Where candidate sequence numbers come from.
pub enum Source {
    /// A query on `events` selecting `sequence_number`.
    Rows { sql: String, params: Vec<SqlValue> },
    /// The payload index rows of one key.
    Key(i64),
}

struct Part {
    source: Source,
    estimate: i64,
}

pub fn plan(connection: &Connection, query: &EventQuery) -> Result<Plan> {
    if query.matches_everything() {
        return Ok(Plan::Everything);
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut uses_payload_index = false;
    for filter in query.filters.iter().flatten() {
        if filter.matches_nothing() {
            continue;
        }
        let by_payload = match &filter.payload_predicates {
            Some(predicates) => payload_parts(connection, predicates)?,
            None => None,
        };
        // The type index only needs counting as far as the payload candidates go.
        let payload_estimate = by_payload.as_ref().map(|p| p.iter().map(|x| x.estimate).sum::<i64>());
        let by_type = match &filter.event_types {
            Some(types) => Some(type_part(connection, types, payload_estimate.map_or(ESTIMATE_CAP, |e| e + 1))?),
            None => None,
        };
        match (by_type, by_payload) {
            (Some(t), Some(p)) if payload_estimate.unwrap_or(0) < t.estimate => {
                uses_payload_index = true;
                parts.extend(p);
            }
            (Some(t), _) => parts.push(t),
            (None, Some(p)) => {
                uses_payload_index = true;
                parts.extend(p);
            }
            (None, None) => return Ok(Plan::Scan),
        }
    }
    if uses_payload_index {
        // Rows appended by writers that do not maintain the payload index (the upstream crates)
        // are not in it yet: they are candidates too.
        let indexed_through: i64 = connection
            .query_row("SELECT indexed_through FROM factstr_payload_index_state WHERE id = 1", [], |row| row.get(0))
            .map_err(backend)?;
        parts.push(Part {
            source: Source::Rows {
                sql: "SELECT sequence_number FROM events WHERE sequence_number > ?".to_owned(),
                params: vec![SqlValue::Integer(indexed_through)],
            },
            estimate: 0,
        });
    }
    if parts.is_empty() {
        return Ok(Plan::Nothing);
    }
    Ok(Plan::Candidates(parts.into_iter().map(|p| p.source).collect()))
}

fn type_part(connection: &Connection, types: &[String], cap: i64) -> Result<Part> {
    let marks = vec!["?"; types.len()].join(", ");
    let sql = format!("SELECT sequence_number FROM events WHERE event_type IN ({marks})");
    let params: Vec<SqlValue> = types.iter().map(|t| SqlValue::Text(t.clone())).collect();
    let estimate = bounded_count(connection, &sql, &params, cap)?;
    Ok(Part { source: Source::Rows { sql, params }, estimate })
}

/// One part per predicate (its rarest key), or `None` when some predicate has no scalar to look
/// up (e.g. `{}`), so that the index cannot narrow the filter.
fn payload_parts(connection: &Connection, predicates: &[Value]) -> Result<Option<Vec<Part>>> {
    let mut parts = Vec::new();
    for predicate in predicates {
        let mut best: Option<Part> = None;
        for hash in selective_key_hashes(predicate) {
            // Rows, not events: a row stands for one or more events of one batch.
            let estimate = payload_index::estimate(connection, hash, ESTIMATE_CAP)?;
            if best.as_ref().is_none_or(|b| estimate < b.estimate) {
                best = Some(Part { source: Source::Key(hash), estimate });
            }
        }
        match best {
            Some(part) => parts.push(part),
            None => return Ok(None),
        }
    }
    Ok(Some(parts))
}

fn bounded_count(connection: &Connection, sql: &str, params: &[SqlValue], cap: i64) -> Result<i64> {
    let counting = format!("SELECT count(*) FROM ({sql} LIMIT ?)");
    let mut statement = connection.prepare_cached(&counting).map_err(backend)?;
    let params = params.iter().cloned().chain([SqlValue::Integer(cap)]);
    statement.query_row(params_from_iter(params), |row| row.get(0)).map_err(backend)
}

/// A stored row, before its payload is parsed.
pub struct Row {
    pub sequence_number: u64,
    pub occurred_at: String,
    pub event_type: String,
    pub payload: String,
}

impl Row {
    pub fn into_record(self, payload: Value) -> Result<EventRecord> {
        let occurred_at = parse_rfc3339(&self.occurred_at).ok_or_else(|| {
            Error::Backend(format!(
                "event {} has an unreadable occurred_at {:?}",
                self.sequence_number, self.occurred_at
            ))
        })?;
        Ok(EventRecord {
            sequence_number: self.sequence_number,
            occurred_at,
            event_type: Arc::from(self.event_type),
            payload: Arc::new(payload),
        })
    }
}

pub fn parse_payload(sequence_number: u64, text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| Error::Backend(format!("event {sequence_number} has a payload that is not JSON: {e}")))
}

/// Visits the rows that may match `plan` after `after` (ascending, or descending from the
/// top), until `visit` returns false.
pub fn visit_rows(
    connection: &Connection,
    plan: &Plan,
    after: u64,
    descending: bool,
    mut visit: impl FnMut(Row) -> Result<bool>,
) -> Result<()> {
    let order = if descending { "DESC" } else { "ASC" };
    let after = SqlValue::Integer(sql_int(after));
    match plan {
        Plan::Nothing => Ok(()),
        Plan::Everything | Plan::Scan => {
            let sql = format!(
                "SELECT sequence_number, occurred_at, event_type, payload FROM events \
                 WHERE sequence_number > ? ORDER BY sequence_number {order}"
            );
            let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
            let mut rows = statement.query([after]).map_err(backend)?;
            while let Some(row) = rows.next().map_err(backend)? {
                if !visit(read_row(row)?)? {
                    break;
                }
            }
            Ok(())
        }
        // Candidates come from the indexes alone; each row is then fetched by its key, one at
        // a time, so a search that stops early (a context version, a limit) reads only the rows
        // it looks at.
        Plan::Candidates(sources) => {
            let mut numbers = candidate_numbers(connection, sources, &after)?;
            if descending {
                numbers.reverse();
            }
            let mut fetch = connection
                .prepare_cached(
                    "SELECT sequence_number, occurred_at, event_type, payload FROM events WHERE sequence_number = ?",
                )
                .map_err(backend)?;
            for number in numbers {
                let mut rows = fetch.query([sql_int(number)]).map_err(backend)?;
                if let Some(row) = rows.next().map_err(backend)? {
                    if !visit(read_row(row)?)? {
                        break;
                    }
                }
            }
            Ok(())
        }
    }
}

/// The distinct candidate sequence numbers above `after`, ascending.
fn candidate_numbers(connection: &Connection, sources: &[Source], after: &SqlValue) -> Result<Vec<u64>> {
    let SqlValue::Integer(floor) = *after else { unreachable!("bounds are integers") };
    let mut numbers = Vec::new();
    for source in sources {
        match source {
            Source::Rows { sql, params } => {
                let sql = format!("SELECT sequence_number FROM ({sql}) WHERE sequence_number > ?");
                let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
                let params = params.iter().cloned().chain([after.clone()]);
                let rows = statement.query_map(params_from_iter(params), |row| row.get::<_, i64>(0)).map_err(backend)?;
                for row in rows {
                    numbers.push(row.map_err(backend)? as u64);
                }
            }
            Source::Key(hash) => {
                let start = numbers.len();
                payload_index::lookup(connection, *hash, &mut numbers)?;
                let mut kept = start;
                for i in start..numbers.len() {
                    if numbers[i] as i64 > floor {
                        numbers[kept] = numbers[i];
                        kept += 1;
                    }
                }
                numbers.truncate(kept);
            }
        }
    }
    numbers.sort_unstable();
    numbers.dedup();
    Ok(numbers)
}

fn read_row(row: &rusqlite::Row<'_>) -> Result<Row> {
    Ok(Row {
        sequence_number: row.get::<_, i64>(0).map_err(backend)? as u64,
        occurred_at: row.get(1).map_err(backend)?,
        event_type: row.get(2).map_err(backend)?,
        payload: row.get(3).map_err(backend)?,
    })
}

/// The matching records after `after`, ascending, at most `limit`.
pub fn matching_records(
    connection: &Connection,
    query: &EventQuery,
    plan: &Plan,
    after: u64,
    limit: usize,
) -> Result<Vec<EventRecord>> {
    let mut records = Vec::new();
    if limit == 0 {
        return Ok(records);
    }
    visit_rows(connection, plan, after, false, |row| {
        let payload = parse_payload(row.sequence_number, &row.payload)?;
        if query.matches(&row.event_type, &payload) {
            records.push(row.into_record(payload)?);
        }
        Ok(records.len() < limit)
    })?;
    Ok(records)
}

/// The highest matching sequence number, ignoring the query's lower bound.
pub fn context_version(connection: &Connection, query: &EventQuery, plan: &Plan) -> Result<Option<u64>> {
    if matches!(plan, Plan::Everything) {
        return head(connection).map(|h| (h > 0).then_some(h));
    }
    let mut found = None;
    visit_rows(connection, plan, 0, true, |row| {
        let payload = parse_payload(row.sequence_number, &row.payload)?;
        if query.matches(&row.event_type, &payload) {
            found = Some(row.sequence_number);
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok(found)
}

pub fn head(connection: &Connection) -> Result<u64> {
    let head: i64 = connection
        .query_row("SELECT COALESCE(MAX(sequence_number), 0) FROM events", [], |row| row.get(0))
        .map_err(backend)?;
    Ok(head as u64)
}

/// The committed batches after `position` with their matching events (SPEC §5, §6). Batch
/// boundaries are sparse: a multi-event batch has an `append_batches` row, a sequence number
/// without one is a batch of its own.
pub fn read_batches(connection: &Connection, position: u64, query: &EventQuery, max_events: usize) -> Result<BatchPage> {
    let head = head(connection)?;
    let plan = plan(connection, query)?;
    let after = position.max(query.min_sequence_number.unwrap_or(0));
    let mut page = BatchPage { batches: Vec::new(), scanned_to: head };
    let mut taken = 0usize;
    let mut boundary = connection
        .prepare_cached(
            "SELECT first_sequence_number, last_sequence_number FROM append_batches \
             WHERE first_sequence_number <= ?1 ORDER BY first_sequence_number DESC LIMIT 1",
        )
        .map_err(backend)?;
    let mut current: Option<(u64, u64)> = None;
    visit_rows(connection, &plan, after, false, |row| {
        if row.sequence_number > head {
            return Ok(false);
        }
        let payload = parse_payload(row.sequence_number, &row.payload)?;
        if !query.matches(&row.event_type, &payload) {
            return Ok(true);
        }
        let s = row.sequence_number;
        if !current.is_some_and(|(first, last)| first <= s && s <= last) {
            let found: Option<(i64, i64)> =
                boundary.query_row([s as i64], |r| Ok((r.get(0)?, r.get(1)?))).ok();
            let range = match found {
                Some((first, last)) if (first as u64) <= s && s <= last as u64 => (first as u64, last as u64),
                _ => (s, s),
            };
            if taken >= max_events {
                // Stop at a batch boundary: everything before this batch has been looked at.
                page.scanned_to = range.0 - 1;
                return Ok(false);
            }
            current = Some(range);
            page.batches.push(Batch { records: Vec::new(), last_sequence_number: range.1 });
        }
        taken += 1;
        let record = row.into_record(payload)?;
        page.batches.last_mut().expect("a batch was started above").records.push(record);
        Ok(true)
    })?;
    Ok(page)
}
