//! The bulk paths of the command line's `export`, `import` and `copy` (SPEC §14), kept in Rust so
//! that a fact never becomes a Python object on the way (the command line only moves bytes and
//! shows progress). Internal: reached through the stores' private methods `_export_page`,
//! `_checksum_page` and `_restorer`; not part of the public API.
//!
//! - `export_page`: the next whole batches after a position as export lines (the format is
//!   documented in `python/factstr/cli/transfer.py`), with their count and checksum;
//! - `checksum_page`: count and checksum only, read by query pages (no batch boundaries needed);
//! - `Restorer`: parses export lines, groups them back into their batches and writes them with
//!   the engine's `restore_batches` (numbers, times and boundaries as exported), a bounded number
//!   of events per write; lines that are not facts are handed back to the caller.
//!
//! The checksum of a fact is FNV-1a (64 bit) over `sequence number \x1f event type \x1f payload`,
//! the payload as compact JSON with object keys sorted; a log's checksum is the sum of its facts'
//! (mod 2**64), so pages add up and any change of a number, type or payload shows.

use std::sync::Arc;

use factstr_core as core;
use factstr_core::canonical_json::is_canonical;
use factstr_core::clock::{parse_rfc3339, to_civil};
use factstr_core::restore::RestoredBatch;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use serde_json::Value;

use crate::errors::{detached, value_error};

/// One fact's part of the checksum.
pub fn fact_checksum(sequence_number: u64, event_type: &str, payload: &Value) -> u64 {
    let canonical = serde_json::to_vec(payload).unwrap_or_default();
    checksum_of(sequence_number, event_type, &canonical)
}

/// `fact_checksum` with the payload already written as compact JSON (serde_json writes object
/// keys sorted: it keeps objects in a `BTreeMap`).
fn checksum_of(sequence_number: u64, event_type: &str, canonical_payload: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let number = sequence_number.to_string();
    for part in [
        number.as_bytes(),
        b"\x1f",
        event_type.as_bytes(),
        b"\x1f",
        canonical_payload,
    ] {
        for byte in part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

/// `2026-11-30T07:53:29.123456Z`: RFC 3339 in UTC, always six fraction digits.
fn timestamp_text(micros: core::Timestamp) -> String {
    let c = to_civil(micros);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.microsecond
    )
}

/// What one export page holds.
pub struct ExportPage {
    pub lines: Vec<u8>,
    /// Every fact up to here is in this or an earlier page: the next page starts after it.
    pub scanned_to: u64,
    pub facts: u64,
    pub batches: u64,
    pub checksum: u64,
}

/// The whole batches after `after` (about `max_events` facts), as export lines when `lines`.
///
/// A store that keeps payloads as text (SQLite) hands them over unparsed: a text that is already
/// what serde_json writes for it (`is_canonical`, the common case) goes into the line and the
/// checksum as it is; any other is parsed and written again, as every payload of the other
/// stores is.
pub fn export_page(
    store: &Arc<dyn core::EventStore>,
    after: u64,
    max_events: usize,
    lines: bool,
) -> core::Result<ExportPage> {
    let mut out = ExportPage {
        lines: Vec::new(),
        scanned_to: 0,
        facts: 0,
        batches: 0,
        checksum: 0,
    };
    let take = |out: &mut ExportPage, record: &core::EventRecord, canonical: &[u8], batch_last| {
        out.facts += 1;
        out.checksum = out.checksum.wrapping_add(checksum_of(
            record.sequence_number,
            &record.event_type,
            canonical,
        ));
        if lines {
            write_line(&mut out.lines, record, canonical, batch_last);
        }
    };
    let mut payload = Vec::new();
    if let Some(page) = store.read_text_batches(after, max_events.max(1))? {
        out.scanned_to = page.scanned_to;
        out.batches = page.batches.len() as u64;
        for batch in page.batches {
            for text in batch.records {
                let record = core::EventRecord {
                    sequence_number: text.sequence_number,
                    occurred_at: text.occurred_at,
                    event_type: text.event_type.into(),
                    payload: Arc::new(Value::Null),
                };
                if is_canonical(text.payload_text.as_bytes()) {
                    take(
                        &mut out,
                        &record,
                        text.payload_text.as_bytes(),
                        batch.last_sequence_number,
                    );
                } else {
                    let value: Value = serde_json::from_str(&text.payload_text).map_err(|e| {
                        core::Error::Backend(format!(
                            "event {} has a payload that is not JSON: {e}",
                            text.sequence_number
                        ))
                    })?;
                    payload.clear();
                    serde_json::to_writer(&mut payload, &value).map_err(|e| {
                        core::Error::Backend(format!("cannot write a payload: {e}"))
                    })?;
                    take(&mut out, &record, &payload, batch.last_sequence_number);
                }
            }
        }
        return Ok(out);
    }
    let page = store.read_batches(after, &core::EventQuery::all(), max_events.max(1))?;
    out.scanned_to = page.scanned_to;
    out.batches = page.batches.len() as u64;
    for batch in &page.batches {
        for record in &batch.records {
            // The payload is written once: the checksum reads the same bytes the line holds.
            payload.clear();
            serde_json::to_writer(&mut payload, &*record.payload)
                .map_err(|e| core::Error::Backend(format!("cannot write a payload: {e}")))?;
            take(&mut out, record, &payload, batch.last_sequence_number);
        }
    }
    Ok(out)
}

/// One export line (keys in the documented order), the payload given as its JSON text.
fn write_line(out: &mut Vec<u8>, record: &core::EventRecord, payload: &[u8], batch_last: u64) {
    use std::io::Write;
    // Writing to a Vec cannot fail; a string is escaped by serde_json.
    let event_type = serde_json::to_string(&*record.event_type).unwrap_or_default();
    let _ = write!(
        out,
        "{{\"sequence_number\":{},\"occurred_at\":\"{}\",\"event_type\":{event_type},\"payload\":",
        record.sequence_number,
        timestamp_text(record.occurred_at)
    );
    out.extend_from_slice(payload);
    let _ = writeln!(out, ",\"batch_last_sequence_number\":{batch_last}}}");
}

/// `(lines or None, scanned_to, facts, batches, checksum)`: an export page as Python sees it.
pub type ExportPageTuple = (Option<Py<PyBytes>>, u64, u64, u64, u64);

/// An export page for Python (see `ExportPageTuple`).
pub fn export_page_py(
    py: Python<'_>,
    store: &Arc<dyn core::EventStore>,
    after: u64,
    max_events: usize,
    lines: bool,
) -> PyResult<ExportPageTuple> {
    let store = Arc::clone(store);
    let page = detached(py, move || export_page(&store, after, max_events, lines))?;
    let bytes = lines.then(|| PyBytes::new(py, &page.lines).unbind());
    Ok((
        bytes,
        page.scanned_to,
        page.facts,
        page.batches,
        page.checksum,
    ))
}

/// `(last sequence number read or after, facts, checksum)` of the next `limit` facts after
/// `after`, by a query page.
pub fn checksum_page_py(
    py: Python<'_>,
    store: &Arc<dyn core::EventStore>,
    after: u64,
    limit: usize,
) -> PyResult<(u64, u64, u64)> {
    let store = Arc::clone(store);
    detached(py, move || {
        let query = core::EventQuery {
            filters: None,
            min_sequence_number: Some(after),
        };
        let result = store.query(&query, Some(limit.max(1)))?;
        let checksum = result.event_records.iter().fold(0u64, |sum, r| {
            sum.wrapping_add(fact_checksum(r.sequence_number, &r.event_type, &r.payload))
        });
        Ok((
            result.last_returned_sequence_number.unwrap_or(after),
            result.event_records.len() as u64,
            checksum,
        ))
    })
}

/// A batch being read back from lines: its first fact's number, time and last number.
struct OpenBatch {
    batch: RestoredBatch,
    last_sequence_number: u64,
}

/// Writes export lines back into a store (see the module header). Not thread-safe by itself:
/// Python holds it behind the object's lock.
#[pyclass(module = "factstr._factstr", name = "_Restorer")]
pub struct Restorer {
    store: Arc<dyn core::EventStore>,
    /// Complete batches not written yet, and how many events they hold.
    ready: Vec<RestoredBatch>,
    ready_events: usize,
    open: Option<OpenBatch>,
    /// Write once this many events are ready.
    write_events: usize,
    /// The number the next fact line must have (0: none read yet).
    next_sequence_number: u64,
    facts: u64,
    checksum: u64,
    line_number: u64,
}

impl Restorer {
    pub fn new(store: Arc<dyn core::EventStore>, write_events: usize) -> Self {
        Self {
            store,
            ready: Vec::new(),
            ready_events: 0,
            open: None,
            write_events: write_events.max(1),
            next_sequence_number: 0,
            facts: 0,
            checksum: 0,
            line_number: 0,
        }
    }

    fn bad(&self, why: impl std::fmt::Display) -> PyErr {
        value_error(format!("line {}: {why}", self.line_number))
    }

    /// Takes one fact line (already parsed).
    fn take_fact(&mut self, mut object: serde_json::Map<String, Value>) -> PyResult<()> {
        let number = |object: &serde_json::Map<String, Value>, key: &str| {
            object.get(key).and_then(Value::as_u64)
        };
        let sequence_number = number(&object, "sequence_number")
            .ok_or_else(|| self.bad("sequence_number is not a non-negative integer"))?;
        let batch_last = number(&object, "batch_last_sequence_number")
            .ok_or_else(|| self.bad("batch_last_sequence_number is missing or not an integer"))?;
        let occurred_at = object
            .get("occurred_at")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
            .ok_or_else(|| self.bad("occurred_at is not an RFC 3339 time"))?;
        let event_type = match object.remove("event_type") {
            Some(Value::String(text)) if !text.is_empty() && !text.contains('\0') => text,
            _ => return Err(self.bad("event_type is not a non-empty string")),
        };
        let payload = object
            .remove("payload")
            .ok_or_else(|| self.bad("payload is missing"))?;
        if contains_nul(&payload) {
            return Err(self.bad("the payload contains U+0000, which cannot be stored"));
        }
        if self.next_sequence_number != 0 && sequence_number != self.next_sequence_number {
            return Err(self.bad(format!(
                "expected sequence number {}, got {sequence_number} (facts must be complete and in order)",
                self.next_sequence_number
            )));
        }
        if batch_last < sequence_number {
            return Err(self.bad("batch_last_sequence_number is below sequence_number"));
        }
        self.checksum =
            self.checksum
                .wrapping_add(fact_checksum(sequence_number, &event_type, &payload));
        let event = core::NewEvent::new(event_type, payload);
        if let Some(open) = &self.open {
            if open.last_sequence_number != batch_last {
                return Err(self.bad(format!(
                    "the batch ending at {} is cut short at {}",
                    open.last_sequence_number,
                    sequence_number - 1
                )));
            }
            if open.batch.occurred_at != occurred_at {
                return Err(self.bad(format!(
                    "fact {sequence_number} has another occurred_at than its batch (factstr keeps one per batch)"
                )));
            }
        }
        match &mut self.open {
            Some(open) => open.batch.events.push(event),
            None => {
                self.open = Some(OpenBatch {
                    batch: RestoredBatch {
                        first_sequence_number: sequence_number,
                        occurred_at,
                        events: vec![event],
                    },
                    last_sequence_number: batch_last,
                });
            }
        }
        self.next_sequence_number = sequence_number + 1;
        self.facts += 1;
        if batch_last == sequence_number {
            let open = self.open.take().expect("a batch is open");
            self.ready_events += open.batch.events.len();
            self.ready.push(open.batch);
        }
        Ok(())
    }

    fn write_ready(&mut self, py: Python<'_>) -> PyResult<()> {
        if self.ready.is_empty() {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.ready);
        self.ready_events = 0;
        let store = Arc::clone(&self.store);
        detached(py, move || store.restore_batches(batches))?;
        Ok(())
    }
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

#[pymethods]
impl Restorer {
    /// Takes a chunk of whole lines (bytes): writes the facts among them (whole batches, once
    /// enough are ready) and returns the other lines, parsed by Python's caller.
    fn feed(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<Vec<Py<PyBytes>>> {
        let mut others = Vec::new();
        for line in data.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.line_number += 1;
            let value: Value =
                serde_json::from_slice(line).map_err(|e| self.bad(format!("not JSON: {e}")))?;
            match value {
                Value::Object(object) if object.contains_key("sequence_number") => {
                    self.take_fact(object)?;
                    if self.ready_events >= self.write_events {
                        self.write_ready(py)?;
                    }
                }
                Value::Object(_) => others.push(PyBytes::new(py, line).unbind()),
                _ => return Err(self.bad("not a JSON object")),
            }
        }
        Ok(others)
    }

    /// How many facts were fed so far (written or ready to be).
    fn facts_fed(&self) -> u64 {
        self.facts
    }

    /// Writes what is left; fails when the last batch is incomplete. Returns
    /// `(facts, checksum, last sequence number)` of everything fed.
    fn finish(&mut self, py: Python<'_>) -> PyResult<(u64, u64, u64)> {
        if let Some(open) = &self.open {
            return Err(value_error(format!(
                "the input ends inside the batch ending at {} (at {}): it is incomplete",
                open.last_sequence_number,
                self.next_sequence_number - 1
            )));
        }
        self.write_ready(py)?;
        Ok((
            self.facts,
            self.checksum,
            self.next_sequence_number.saturating_sub(1),
        ))
    }
}
