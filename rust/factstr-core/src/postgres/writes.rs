//! Appending to the PostgreSQL log. Appends are serialised with
//! `LOCK TABLE events, append_batches IN EXCLUSIVE MODE`, the lock `factstr-postgres` 0.5.2
//! takes, so our writers and theirs share one order: numbering by `MAX(sequence_number) + 1`
//! under the lock makes commit order sequence order in every process (SPEC §2.6), and a failed
//! append burns no number. Events, index postings, the batch row and the index state go in one
//! statement. A plain append is one round trip (the function `factstr_append_batch`, see `schema`);
//! a conditional append is four: begin, lock and read the head and its context's rare keys; read
//! the newest candidate rows; insert; commit.

use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use postgres::SimpleQueryMessage;

use super::pool::{Conn, Pool};
use super::reads::{PgLog, READ_WHOLE_BELOW};
use crate::clock::now_micros;
use crate::error::{Error, Result};
use crate::payload_keys::selective_key_hashes;
use crate::postings::batch_postings;
use crate::prepared::PreparedEvent;
use crate::search;
use crate::types::{AppendResult, EventQuery};

/// Appends in a transaction of its own; with a context, only if its version is `expected`.
/// On any error the caller rolls back.
pub fn append(
    conn: &mut Conn,
    pool: &Pool,
    events: &[PreparedEvent],
    condition: Option<(&EventQuery, Option<u64>)>,
) -> Result<AppendResult> {
    if condition.is_none() {
        if let Some(result) = append_in_one_statement(conn, pool, events, false)? {
            return Ok(result);
        }
    }
    // One round trip takes the lock, reads the head and, for a condition, the postings of its
    // predicates' keys (a rare key's whole; a common one is counted later, as in a query).
    let context_keys: Vec<i64> = condition.map(|(context, _)| predicate_keys(context)).unwrap_or_default();
    let mut sql = String::from(
        "BEGIN; LOCK TABLE events, append_batches IN EXCLUSIVE MODE; \
         SELECT COALESCE(MAX(sequence_number), 0), \
                (SELECT indexed_through FROM factstr_payload_index_state WHERE id = 1) FROM events;",
    );
    if !context_keys.is_empty() {
        let list: Vec<String> = context_keys.iter().map(i64::to_string).collect();
        sql.push_str(&format!(
            " SELECT k, p.first_sequence_number, encode(p.members, 'hex') FROM unnest(ARRAY[{}]::bigint[]) AS k, \
             LATERAL (SELECT first_sequence_number, members FROM factstr_payload_index WHERE key_hash = k LIMIT {}) AS p;",
            list.join(","),
            READ_WHOLE_BELOW
        ));
    }
    let messages = conn.client.simple_query(&sql).map_err(|e| pool.error(e))?;
    let mut rows = messages.iter().filter_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    });
    let (last_committed, indexed_through) = rows
        .next()
        .map(|row| (number(row.get(0)), number(row.get(1))))
        .ok_or_else(|| Error::Backend("the head of the log could not be read".to_owned()))?;
    let mut postings: HashMap<i64, Vec<(u64, Option<Vec<u8>>)>> = context_keys.iter().map(|k| (*k, Vec::new())).collect();
    for row in rows {
        let key = row.get(0).and_then(|t| t.parse::<i64>().ok());
        let members = row.get(2).map(decode_hex).transpose()?;
        if let Some(found) = key.and_then(|k| postings.get_mut(&k)) {
            found.push((number(row.get(1)), members));
        }
    }
    if indexed_through < last_committed {
        catch_up_index(conn, pool, indexed_through, last_committed)?;
        postings.clear(); // read before the catch-up: incomplete
    }
    if let Some((context, expected)) = condition {
        // The index is current now: the head read under the lock is all a search needs.
        let log = &mut PgLog::new(&mut *conn, pool, Some((last_committed, last_committed)));
        for (key, rows) in &postings {
            if (rows.len() as i64) < READ_WHOLE_BELOW {
                log.read_whole(*key, rows);
            }
        }
        search::check_context(log, context, expected)?;
    }
    // Inside this transaction, under the lock already held: the function numbers after the same
    // head, and the index is current.
    let result = append_in_one_statement(conn, pool, events, true)?
        .filter(|result| result.first_sequence_number == last_committed + 1)
        .ok_or_else(|| Error::Backend("the append could not be numbered after the head read under the lock".to_owned()))?;
    conn.client.batch_execute("COMMIT").map_err(|e| pool.error(e))?;
    Ok(result)
}

/// Every key of every payload predicate of `query`.
fn predicate_keys(query: &EventQuery) -> Vec<i64> {
    let mut keys: Vec<i64> = query
        .filters
        .iter()
        .flatten()
        .flat_map(|filter| filter.payload_predicates.iter().flatten())
        .flat_map(selective_key_hashes)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Bytes from PostgreSQL's `encode(..., 'hex')`.
fn decode_hex(text: &str) -> Result<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => digit(*high).zip(digit(*low)).map(|(h, l)| h << 4 | l),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| Error::Backend("a payload index row did not decode (members)".to_owned()))
}

/// The events as one call of `factstr_append_batch` (see `schema`): one round trip, in a
/// transaction of its own unless the caller has one open and `locked` (holds the append lock,
/// taken before its snapshot). `None` when nothing was written: the index must first catch up
/// with foreign rows, or the session's isolation level needs the explicit transaction.
fn append_in_one_statement(conn: &mut Conn, pool: &Pool, events: &[PreparedEvent], locked: bool) -> Result<Option<AppendResult>> {
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let payloads: Vec<&str> = events.iter().map(|e| e.payload_text.as_str()).collect();
    // Postings numbered by offset in the batch; the function adds the batch's first number.
    let keys = events
        .iter()
        .zip(0u64..)
        .flat_map(|(event, offset)| event.key_hashes.iter().map(move |hash| (*hash, offset)))
        .collect();
    let postings = batch_postings(keys);
    let hashes: Vec<i64> = postings.iter().map(|p| p.0).collect();
    let offsets: Vec<i64> = postings.iter().map(|p| p.1).collect();
    let members: Vec<Option<&[u8]>> = postings.iter().map(|p| p.2.as_deref()).collect();
    let occurred_at = UNIX_EPOCH + Duration::from_micros(now_micros().max(0) as u64);
    let first: i64 = conn
        .query_one(
            "SELECT factstr_append_batch($1, $2, $3, $4, $5, $6, $7)",
            &[&locked, &occurred_at, &types, &payloads, &hashes, &offsets, &members],
        )
        .map_err(|e| pool.error(e))?
        .get(0);
    if first <= 0 {
        return Ok(None);
    }
    let count = events.len() as u64;
    let first = first as u64;
    Ok(Some(AppendResult { first_sequence_number: first, last_sequence_number: first + count - 1, committed_count: count }))
}

fn number(text: Option<&str>) -> u64 {
    text.and_then(|t| t.parse().ok()).unwrap_or(0)
}

/// Foreign rows a catch-up reads (and indexes) at a time, so a long history needs little memory.
const CATCH_UP_PAGE: i64 = 10_000;

/// Indexes the events that writers without our index (the upstream crates) appended.
fn catch_up_index(conn: &mut Conn, pool: &Pool, indexed_through: u64, last_committed: u64) -> Result<()> {
    let mut after = indexed_through as i64;
    loop {
        let rows = conn
            .query(
                "SELECT sequence_number, payload FROM events WHERE sequence_number > $1 ORDER BY sequence_number LIMIT $2",
                &[&after, &CATCH_UP_PAGE],
            )
            .map_err(|e| pool.error(e))?;
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        let mut keys = Vec::new();
        for row in &rows {
            let number = row.get::<_, i64>(0) as u64;
            let payload: serde_json::Value = row.get(1);
            keys.extend(selective_key_hashes(&payload).into_iter().map(|hash| (hash, number)));
        }
        let postings = batch_postings(keys);
        let hashes: Vec<i64> = postings.iter().map(|p| p.0).collect();
        let firsts: Vec<i64> = postings.iter().map(|p| p.1).collect();
        let members: Vec<Option<&[u8]>> = postings.iter().map(|p| p.2.as_deref()).collect();
        conn.execute(
            "INSERT INTO factstr_payload_index (key_hash, first_sequence_number, members) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) ON CONFLICT DO NOTHING",
            &[&hashes, &firsts, &members],
        )
        .map_err(|e| pool.error(e))?;
        if (rows.len() as i64) < CATCH_UP_PAGE {
            break;
        }
    }
    conn.execute(
        "UPDATE factstr_payload_index_state SET indexed_through = $1 WHERE id = 1",
        &[&(last_committed as i64)],
    )
    .map_err(|e| pool.error(e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_from_postgres_decodes_or_is_refused() {
        assert_eq!(decode_hex("").expect("empty"), Vec::<u8>::new());
        assert_eq!(decode_hex("00ff7fA0").expect("bytes"), vec![0x00, 0xff, 0x7f, 0xa0]);
        assert!(decode_hex("abc").is_err());
        assert!(decode_hex("zz").is_err());
    }
}
