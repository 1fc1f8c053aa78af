//! Writing restored batches (see `restore`) with `COPY ... FROM STDIN`: the rows an ordinary
//! append writes (`factstr_append_batch`, see `schema`), for many batches at once, in the
//! caller's transaction, which holds the append lock and has checked that the first batch starts
//! directly after the head. COPY is the server's cheapest way in: no SQL text to parse per value,
//! and rows go into the table pages several at a time.
//!
//! Per batch: its events (their own numbers and `occurred_at`), its payload index postings (one
//! row per key, see `postings`), its `append_batches` row when it has more than one event, and
//! the exact text of payloads `jsonb` would change (`factstr_exact_payloads`); at the end, the
//! index state's `indexed_through`. Events go about `ROUND_TRIP_BYTES` at a time; the postings
//! of the whole call go at the end, sorted by key (see `Rows::send_rest`).

use std::fmt::Write;

use super::pool::Conn;
use super::postings::{batch_postings, Posting};
use crate::clock::format_rfc3339;
use crate::error::Result;
use crate::restore::RestoredBatch;
use crate::sql::numbers::to_sql;
use crate::sql::prepared::PreparedEvent;

/// Bytes of event rows sent per round trip (about); the other rows go at the end.
const ROUND_TRIP_BYTES: usize = 1 << 20;

/// Rows being gathered for one round trip, as COPY text.
#[derive(Default)]
struct Rows {
    events: Vec<u8>,
    postings: Vec<Posting>,
    boundaries: Vec<u8>,
    exact: Vec<u8>,
}

/// Writes `batches` (their events prepared as `prepared`); the caller commits.
pub(super) fn copy_batches(
    conn: &mut Conn,
    batches: &[RestoredBatch],
    prepared: &[Vec<PreparedEvent>],
) -> Result<()> {
    let mut rows = Rows::default();
    for (batch, events) in batches.iter().zip(prepared) {
        let first = batch.first_sequence_number;
        let stamp = format_rfc3339(batch.occurred_at);
        for (event, number) in events.iter().zip(first..) {
            let number = number.to_string();
            let payload = Some(event.payload_text.as_str());
            push_row(
                &mut rows.events,
                &[
                    Some(&number),
                    Some(&stamp),
                    Some(&event.event_type),
                    payload,
                ],
            );
            if event.negative_zero {
                push_row(&mut rows.exact, &[Some(&number), payload]);
            }
        }
        rows.postings.extend(batch_postings(
            events
                .iter()
                .zip(first..)
                .flat_map(|(event, number)| event.key_hashes.iter().map(move |h| (*h, number)))
                .collect(),
        ));
        if events.len() > 1 {
            let last = first + events.len() as u64 - 1;
            push_row(
                &mut rows.boundaries,
                &[Some(&first.to_string()), Some(&last.to_string())],
            );
        }
        if rows.events.len() >= ROUND_TRIP_BYTES {
            rows.send_events(conn)?;
        }
    }
    rows.send_events(conn)?;
    rows.send_rest(conn)?;
    // What the append function records too: the index covers the log up to here.
    if let Some(last) = batches.last().map(RestoredBatch::last_sequence_number) {
        conn.execute(
            "UPDATE factstr_payload_index_state SET indexed_through = $1 WHERE id = 1",
            &[&to_sql(last, "sequence number")?],
        )
        .map_err(|e| conn.error(e))?;
    }
    Ok(())
}

impl Rows {
    fn send_events(&mut self, conn: &mut Conn) -> Result<()> {
        copy_in(
            conn,
            "COPY events (sequence_number, occurred_at, event_type, payload) FROM STDIN",
            std::mem::take(&mut self.events),
        )
    }

    /// Everything but the events, once for the whole call: the postings sorted together, so
    /// that a B-tree page of the index takes as many of them as fall on it at once (keys are
    /// hashes, spread over the whole index: sent in small groups, nearly every posting would
    /// dirty a page of its own, and after a checkpoint write all of it to the WAL again).
    fn send_rest(&mut self, conn: &mut Conn) -> Result<()> {
        copy_in(
            conn,
            "COPY factstr_payload_index (key_hash, first_sequence_number, members) FROM STDIN",
            posting_rows(std::mem::take(&mut self.postings)),
        )?;
        copy_in(
            conn,
            "COPY append_batches (first_sequence_number, last_sequence_number) FROM STDIN",
            std::mem::take(&mut self.boundaries),
        )?;
        copy_in(
            conn,
            "COPY factstr_exact_payloads (sequence_number, payload) FROM STDIN",
            std::mem::take(&mut self.exact),
        )
    }
}

fn copy_in(conn: &mut Conn, sql: &str, data: Vec<u8>) -> Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    conn.client.copy_in(sql, data).map_err(|e| conn.error(e))?;
    Ok(())
}

/// The postings as COPY rows, sorted by key (`members` as bytea's hex form, or NULL).
fn posting_rows(mut postings: Vec<Posting>) -> Vec<u8> {
    postings.sort_unstable_by_key(|p| (p.key_hash, p.first));
    let mut data = Vec::with_capacity(postings.len() * 32);
    for posting in &postings {
        let members = posting.members.as_ref().map(|bytes| {
            let mut hex = String::with_capacity(2 + 2 * bytes.len());
            hex.push_str("\\x");
            for byte in bytes {
                let _ = write!(hex, "{byte:02x}");
            }
            hex
        });
        push_row(
            &mut data,
            &[
                Some(&posting.key_hash.to_string()),
                Some(&posting.first.to_string()),
                members.as_deref(),
            ],
        );
    }
    data
}

/// One row of COPY's text format: the fields separated by tabs, `None` as NULL (`\N`), each
/// text with backslash, tab, newline and carriage return escaped (the only bytes the format
/// gives a meaning).
fn push_row(data: &mut Vec<u8>, fields: &[Option<&str>]) {
    for (index, field) in fields.iter().enumerate() {
        if index > 0 {
            data.push(b'\t');
        }
        let Some(text) = field else {
            data.extend_from_slice(b"\\N");
            continue;
        };
        for &byte in text.as_bytes() {
            match byte {
                b'\\' => data.extend_from_slice(b"\\\\"),
                b'\t' => data.extend_from_slice(b"\\t"),
                b'\n' => data.extend_from_slice(b"\\n"),
                b'\r' => data.extend_from_slice(b"\\r"),
                _ => data.push(byte),
            }
        }
    }
    data.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_the_format_gives_a_meaning() {
        let mut data = Vec::new();
        push_row(
            &mut data,
            &[Some("a\tb"), Some("c\\d\ne\rf"), None, Some("é\"{}")],
        );
        assert_eq!(data, b"a\\tb\tc\\\\d\\ne\\rf\t\\N\t\xc3\xa9\"{}\n".to_vec());
    }

    #[test]
    fn postings_are_sorted_by_key_with_members_as_hex_or_null() {
        let rows = posting_rows(vec![
            Posting {
                key_hash: 7,
                first: 3,
                members: Some(vec![0x01, 0xff]),
            },
            Posting {
                key_hash: -2,
                first: 5,
                members: None,
            },
        ]);
        assert_eq!(
            String::from_utf8(rows).unwrap(),
            "-2\t5\t\\N\n7\t3\t\\\\x01ff\n"
        );
    }
}
