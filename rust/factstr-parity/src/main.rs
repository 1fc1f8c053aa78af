//! `factstr-parity`: the upstream FACTSTR 0.5.2 stores behind a JSON-lines protocol.
//!
//! Dev-only (see Cargo.toml). The parity tests in `tests/parity/` run this binary as a
//! subprocess and send the same operations to it and to our own `factstr` stores.
//!
//! Protocol: one JSON object per line on stdin, one JSON object per line on stdout.
//!
//! * The first line opens a store: `{"open":"memory"}`, `{"open":"sqlite","path":P}` or
//!   `{"open":"postgres","url":U}`. Answer: `{"ok":"<kind>"}` or `{"error":E}`.
//! * Every further line is one operation, `{"op":NAME, ...}`, answered by `{"ok":VALUE}` or
//!   `{"error":E}`. `E` is `{"kind":"EmptyAppend"}`,
//!   `{"kind":"Conflict","expected":N|null,"actual":N|null}`,
//!   `{"kind":"BackendFailure","message":S}`, `{"kind":"NotImplemented","message":S}`,
//!   `{"kind":"Unsupported","message":S}` (an operation upstream has no API for) or
//!   `{"kind":"BadRequest","message":S}` (a malformed line).
//!
//! Values: an event is `{"type":S,"payload":J}`; a query is
//! `{"filters":null|[{"event_types":null|[S..],"payload_predicates":null|[J..]}..],"min":null|N}`
//! (a missing key means null); a record is `{"seq":N,"type":S,"payload":J,"at":RFC3339}`.
//!
//! Operations:
//! * `append {events}` -> `{"first","last","count"}`
//! * `append_if {events, query, expected}` -> the same
//! * `query {query}` -> `{"records":[R..],"last":N|null,"version":N|null}`
//! * `stream {id, query}` (query null: `stream_all`) -> `{"id":S}`
//! * `durable {id, name, query, fail_on}` (query null: `stream_all_durable`) ->
//!   `{"id":S,"replay":[[R..]..]}`, the batches the handler received while the registration ran
//!   (the replay). With `fail_on: {"seq":N,"delay_ms":M}` the handler waits M ms and then fails
//!   on a batch holding sequence number N (every other batch succeeds).
//! * `durable {name, count_only: true}` -> `{"events":N,"seconds":S}`: a `stream_all_durable`
//!   replay timed in-process (benchmarks), then unsubscribed.
//! * `deliveries {id}` -> `{"batches":[[R..]..]}`: waits until every batch this process committed
//!   has been through the delivery thread, then returns (and forgets) what stream `id` received
//!   since its registration or the last `deliveries`.
//! * `unsubscribe {id}` -> `null`
//! * `forget {id}` -> `null`: drops the `EventStream` handle (what dropping it does upstream)
//!   but keeps what the stream received readable through `deliveries`.
//! * `cursors` -> `Unsupported` (upstream 0.5.2 cannot list durable cursors)
//! * `race_append_if {threads, rounds}` -> `{"rounds","double_commits"}`: per round, `threads`
//!   threads call `append_if(.., context, None)` at once on a context of their own round; counts
//!   the rounds where more than one of them succeeded (an atomic check-and-append allows one).
//! * `race_durable {rounds}` -> `{"streams","final","with_gaps","behind","missing"}`: registers
//!   `rounds` `stream_all_durable` streams while another thread keeps appending single events,
//!   then counts the streams whose replay plus live deliveries reached the last number but
//!   skipped some (`missing`: those of the first such stream), and those that never caught up.
//! * `close` -> `null`, then the process exits.
//!
//! How `deliveries` knows that deliveries are done: upstream runs one delivery thread per store
//! that hands each committed batch to the subscribers in registration order. This binary keeps
//! a hidden `stream_all` registration ("tail marker") that it re-registers after every stream
//! registration, so it is always the last subscriber; once a tail marker has received the
//! last batch this process committed, every earlier subscriber has been handed every batch.

use std::collections::HashMap;
use std::io::{self, BufRead, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::{Duration, Instant};

use factstr::{
    DurableStream, EventFilter, EventQuery, EventRecord, EventStore, EventStoreError, EventStream,
    HandleStream, NewEvent, StreamHandlerError,
};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;

/// How long `deliveries` waits for the delivery thread before answering with an error.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(10);

/// At most this many appends by the writer thread of `race_durable` (bounds its work).
const RACE_DURABLE_APPENDS: u64 = 20_000;

type Reply = Result<Value, Value>;

fn bad(message: impl Into<String>) -> Value {
    json!({"kind": "BadRequest", "message": message.into()})
}

fn store_error(error: EventStoreError) -> Value {
    match error {
        EventStoreError::EmptyAppend => json!({"kind": "EmptyAppend"}),
        EventStoreError::ConditionalAppendConflict { expected, actual } => {
            json!({"kind": "Conflict", "expected": expected, "actual": actual})
        }
        EventStoreError::BackendFailure { message } => {
            json!({"kind": "BackendFailure", "message": message})
        }
        other @ EventStoreError::NotImplemented { .. } => {
            json!({"kind": "NotImplemented", "message": other.to_string()})
        }
    }
}

// ---- decoding requests ------------------------------------------------------------------

fn field<'a>(line: &'a Map<String, Value>, key: &str) -> &'a Value {
    line.get(key).unwrap_or(&Value::Null)
}

fn as_str<'a>(value: &'a Value, what: &str) -> Result<&'a str, Value> {
    value
        .as_str()
        .ok_or_else(|| bad(format!("{what} must be a string")))
}

fn opt_u64(value: &Value, what: &str) -> Result<Option<u64>, Value> {
    match value {
        Value::Null => Ok(None),
        other => other
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("{what} must be null or a non-negative integer"))),
    }
}

fn opt_list<'a>(value: &'a Value, what: &str) -> Result<Option<&'a Vec<Value>>, Value> {
    match value {
        Value::Null => Ok(None),
        Value::Array(items) => Ok(Some(items)),
        _ => Err(bad(format!("{what} must be null or a list"))),
    }
}

fn decode_events(value: &Value) -> Result<Vec<NewEvent>, Value> {
    let items = value
        .as_array()
        .ok_or_else(|| bad("events must be a list"))?;
    items
        .iter()
        .map(|item| {
            let object = item
                .as_object()
                .ok_or_else(|| bad("an event must be an object"))?;
            let event_type = as_str(field(object, "type"), "event type")?;
            Ok(NewEvent::new(event_type, field(object, "payload").clone()))
        })
        .collect()
}

fn decode_filter(value: &Value) -> Result<EventFilter, Value> {
    let object = value
        .as_object()
        .ok_or_else(|| bad("a filter must be an object"))?;
    let event_types = opt_list(field(object, "event_types"), "event_types")?
        .map(|types| {
            types
                .iter()
                .map(|t| as_str(t, "an event type").map(str::to_owned))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let payload_predicates =
        opt_list(field(object, "payload_predicates"), "payload_predicates")?.cloned();
    Ok(EventFilter {
        event_types,
        payload_predicates,
    })
}

fn decode_query(value: &Value) -> Result<EventQuery, Value> {
    let object = value
        .as_object()
        .ok_or_else(|| bad("a query must be an object"))?;
    let filters = opt_list(field(object, "filters"), "filters")?
        .map(|filters| {
            filters
                .iter()
                .map(decode_filter)
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(EventQuery {
        filters,
        min_sequence_number: opt_u64(field(object, "min"), "min")?,
    })
}

/// `null` is "no query" (the `*_all` variants); anything else must be a query.
fn decode_optional_query(value: &Value) -> Result<Option<EventQuery>, Value> {
    match value {
        Value::Null => Ok(None),
        other => decode_query(other).map(Some),
    }
}

// ---- encoding results -------------------------------------------------------------------

fn encode_record(record: &EventRecord) -> Value {
    let at = record
        .occurred_at
        .format(&Rfc3339)
        .unwrap_or_else(|error| format!("unformattable: {error}"));
    json!({
        "seq": record.sequence_number,
        "type": record.event_type,
        "payload": record.payload,
        "at": at,
    })
}

fn encode_batch(batch: &[EventRecord]) -> Value {
    Value::Array(batch.iter().map(encode_record).collect())
}

// ---- streams ----------------------------------------------------------------------------

/// What the handlers of one registration received, batch by batch (already encoded).
type Inbox = Arc<Mutex<Vec<Value>>>;

/// A handler failure on request: the batch holding `seq` fails after `delay`.
#[derive(Clone, Copy)]
struct FailOn {
    seq: u64,
    delay: Duration,
}

fn collecting_handler(inbox: Inbox, fail_on: Option<FailOn>) -> HandleStream {
    HandleStream::new(move |batch: Vec<EventRecord>| {
        let fails = fail_on.filter(|f| batch.iter().any(|r| r.sequence_number == f.seq));
        let outcome = match fails {
            Some(f) => {
                std::thread::sleep(f.delay);
                Err(StreamHandlerError::new(format!(
                    "refusing sequence number {}",
                    f.seq
                )))
            }
            None => {
                inbox.lock().expect("inbox lock").push(encode_batch(&batch));
                Ok(())
            }
        };
        std::future::ready(outcome)
    })
}

fn decode_fail_on(value: &Value) -> Result<Option<FailOn>, Value> {
    match value {
        Value::Null => Ok(None),
        Value::Object(object) => Ok(Some(FailOn {
            seq: opt_u64(field(object, "seq"), "fail_on.seq")?.ok_or_else(|| bad("fail_on.seq"))?,
            delay: Duration::from_millis(
                opt_u64(field(object, "delay_ms"), "fail_on.delay_ms")?.unwrap_or(0),
            ),
        })),
        _ => Err(bad("fail_on must be null or an object")),
    }
}

/// The highest sequence number any tail marker has received, with a condition to wait on.
#[derive(Default)]
struct Marker {
    seen: Mutex<u64>,
    changed: Condvar,
}

struct Session {
    store: Arc<dyn EventStore + Send + Sync>,
    streams: HashMap<String, (Option<EventStream>, Inbox)>,
    tail: Option<EventStream>,
    marker: Arc<Marker>,
    /// The last sequence number this process committed while a tail marker was registered
    /// (upstream delivers only a process's own commits, to the subscribers registered then).
    committed: u64,
}

impl Session {
    fn new(store: Arc<dyn EventStore + Send + Sync>) -> Self {
        Self {
            store,
            streams: HashMap::new(),
            tail: None,
            marker: Arc::new(Marker::default()),
            committed: 0,
        }
    }

    /// Replaces the tail marker by a new registration, which is then the last subscriber.
    fn renew_tail(&mut self) -> Result<(), Value> {
        let marker = Arc::clone(&self.marker);
        let handle = HandleStream::new(move |batch: Vec<EventRecord>| {
            if let Some(last) = batch.last() {
                let mut seen = marker.seen.lock().expect("marker lock");
                *seen = (*seen).max(last.sequence_number);
                marker.changed.notify_all();
            }
            std::future::ready(Ok(()))
        });
        let tail = self.store.stream_all(handle).map_err(store_error)?;
        if let Some(old) = self.tail.replace(tail) {
            old.unsubscribe();
        }
        Ok(())
    }

    fn wait_delivered(&self) -> Result<(), Value> {
        let deadline = Instant::now() + DELIVERY_DEADLINE;
        let mut seen = self.marker.seen.lock().expect("marker lock");
        while *seen < self.committed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(json!({
                    "kind": "Timeout",
                    "message": format!("deliveries up to {} not done (at {})", self.committed, *seen),
                }));
            }
            seen = self
                .marker
                .changed
                .wait_timeout(seen, left)
                .expect("marker lock")
                .0;
        }
        Ok(())
    }

    /// Notes a commit of this process. Only batches committed while a tail marker exists are
    /// delivered to anyone, so only those are waited for.
    fn committed_through(&mut self, last: u64) {
        if self.tail.is_some() {
            self.committed = self.committed.max(last);
        }
    }

    fn new_stream_id(&self, line: &Map<String, Value>) -> Result<String, Value> {
        let id = as_str(field(line, "id"), "id")?.to_owned();
        if self.streams.contains_key(&id) {
            return Err(bad(format!("stream id {id} is already in use")));
        }
        Ok(id)
    }

    fn run(&mut self, line: &Map<String, Value>) -> Reply {
        let op = as_str(field(line, "op"), "op")?;
        match op {
            "append" => {
                let events = decode_events(field(line, "events"))?;
                let result = self.store.append(events).map_err(store_error)?;
                self.committed_through(result.last_sequence_number);
                Ok(json!({
                    "first": result.first_sequence_number,
                    "last": result.last_sequence_number,
                    "count": result.committed_count,
                }))
            }
            "append_if" => {
                let events = decode_events(field(line, "events"))?;
                let query = decode_query(field(line, "query"))?;
                let expected = opt_u64(field(line, "expected"), "expected")?;
                let result = self
                    .store
                    .append_if(events, &query, expected)
                    .map_err(store_error)?;
                self.committed_through(result.last_sequence_number);
                Ok(json!({
                    "first": result.first_sequence_number,
                    "last": result.last_sequence_number,
                    "count": result.committed_count,
                }))
            }
            "query" => {
                let query = decode_query(field(line, "query"))?;
                let result = self.store.query(&query).map_err(store_error)?;
                Ok(json!({
                    "records": encode_batch(&result.event_records),
                    "last": result.last_returned_sequence_number,
                    "version": result.current_context_version,
                }))
            }
            "stream" => {
                let id = self.new_stream_id(line)?;
                let query = decode_optional_query(field(line, "query"))?;
                let inbox = Inbox::default();
                let handle = collecting_handler(Arc::clone(&inbox), None);
                let stream = match &query {
                    None => self.store.stream_all(handle),
                    Some(query) => self.store.stream_to(query, handle),
                }
                .map_err(store_error)?;
                self.streams.insert(id.clone(), (Some(stream), inbox));
                self.renew_tail()?;
                Ok(json!({"id": id}))
            }
            "durable" if field(line, "count_only").as_bool() == Some(true) => {
                // Benchmarks: time a replay in-process, counting what the handler receives.
                let durable = DurableStream::new(as_str(field(line, "name"), "name")?);
                let received = Arc::new(AtomicU64::new(0));
                let counter = Arc::clone(&received);
                let handle = HandleStream::new(move |batch: Vec<EventRecord>| {
                    counter.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    std::future::ready(Ok(()))
                });
                let started = Instant::now();
                let stream = self
                    .store
                    .stream_all_durable(&durable, handle)
                    .map_err(store_error)?;
                let seconds = started.elapsed().as_secs_f64();
                stream.unsubscribe();
                Ok(json!({"events": received.load(Ordering::Relaxed), "seconds": seconds}))
            }
            "durable" => {
                let id = self.new_stream_id(line)?;
                let durable = DurableStream::new(as_str(field(line, "name"), "name")?);
                let query = decode_optional_query(field(line, "query"))?;
                let inbox = Inbox::default();
                let fail_on = decode_fail_on(field(line, "fail_on"))?;
                let handle = collecting_handler(Arc::clone(&inbox), fail_on);
                let stream = match &query {
                    None => self.store.stream_all_durable(&durable, handle),
                    Some(query) => self.store.stream_to_durable(&durable, query, handle),
                }
                .map_err(store_error)?;
                let replay = std::mem::take(&mut *inbox.lock().expect("inbox lock"));
                self.streams.insert(id.clone(), (Some(stream), inbox));
                self.renew_tail()?;
                Ok(json!({"id": id, "replay": replay}))
            }
            "deliveries" => {
                let id = as_str(field(line, "id"), "id")?;
                self.wait_delivered()?;
                let (_, inbox) = self
                    .streams
                    .get(id)
                    .ok_or_else(|| bad(format!("unknown stream id {id}")))?;
                let batches = std::mem::take(&mut *inbox.lock().expect("inbox lock"));
                Ok(json!({"batches": batches}))
            }
            "unsubscribe" => {
                let id = as_str(field(line, "id"), "id")?;
                let (stream, _) = self
                    .streams
                    .remove(id)
                    .ok_or_else(|| bad(format!("unknown stream id {id}")))?;
                if let Some(stream) = stream {
                    stream.unsubscribe();
                }
                Ok(Value::Null)
            }
            "forget" => {
                let id = as_str(field(line, "id"), "id")?;
                let (stream, _) = self
                    .streams
                    .get_mut(id)
                    .ok_or_else(|| bad(format!("unknown stream id {id}")))?;
                drop(stream.take());
                Ok(Value::Null)
            }
            "cursors" => Err(json!({
                "kind": "Unsupported",
                "message": "factstr 0.5.2 has no API to list durable cursors",
            })),
            "race_append_if" => {
                let threads = opt_u64(field(line, "threads"), "threads")?.unwrap_or(2) as usize;
                let rounds = opt_u64(field(line, "rounds"), "rounds")?.unwrap_or(100);
                let doubles = race_append_if(&self.store, threads, rounds);
                Ok(json!({"rounds": rounds, "double_commits": doubles}))
            }
            "race_durable" => {
                let rounds = opt_u64(field(line, "rounds"), "rounds")?.unwrap_or(20);
                race_durable(&self.store, rounds)
            }
            other => Err(bad(format!("unknown op {other}"))),
        }
    }
}

/// See `race_append_if` in the module documentation.
fn race_append_if(store: &Arc<dyn EventStore + Send + Sync>, threads: usize, rounds: u64) -> u64 {
    let mut doubles = 0;
    for round in 0..rounds {
        let event_type = format!("race-append-if-{round}");
        let context = EventQuery::for_event_types([event_type.clone()]);
        let barrier = Barrier::new(threads);
        let successes = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        let event = NewEvent::new(event_type.clone(), json!({}));
                        store.append_if(vec![event], &context, None).is_ok()
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join())
                .filter(|joined| matches!(joined, Ok(true)))
                .count()
        });
        if successes > 1 {
            doubles += 1;
        }
    }
    doubles
}

/// See `race_durable` in the module documentation.
fn race_durable(store: &Arc<dyn EventStore + Send + Sync>, rounds: u64) -> Reply {
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let writer = {
        let store = Arc::clone(store);
        let stop = Arc::clone(&stop);
        let progress = Arc::clone(&progress);
        std::thread::spawn(move || {
            let mut last = 0;
            let mut appended = 0;
            while !stop.load(Ordering::SeqCst) && appended < RACE_DURABLE_APPENDS {
                appended += 1;
                if let Ok(result) = store.append(vec![NewEvent::new("tick", json!({}))]) {
                    last = result.last_sequence_number;
                    progress.store(last, Ordering::SeqCst);
                }
            }
            last
        })
    };
    // Register while the writer is busy.
    while progress.load(Ordering::SeqCst) < 1_000 {
        std::thread::yield_now();
    }
    let mut streams = Vec::new();
    for round in 0..rounds {
        let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
        let sink = Arc::clone(&seen);
        let handle = HandleStream::new(move |batch: Vec<EventRecord>| {
            sink.lock()
                .expect("seen lock")
                .extend(batch.iter().map(|r| r.sequence_number));
            std::future::ready(Ok(()))
        });
        let durable = DurableStream::new(format!("race-durable-{round}"));
        let stream = store
            .stream_all_durable(&durable, handle)
            .map_err(store_error)?;
        streams.push((stream, seen));
    }
    stop.store(true, Ordering::SeqCst);
    let last = writer.join().map_err(|_| bad("writer thread panicked"))?;
    // Every stream should end at `last`; give the delivery thread time to get there.
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    while Instant::now() < deadline
        && streams
            .iter()
            .any(|(_, seen)| seen.lock().expect("seen lock").last().copied().unwrap_or(0) < last)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    // A stream has a gap when it reached `last` in increasing order but skipped numbers.
    let mut with_gaps = 0;
    let mut behind = 0;
    let mut missing_example: Vec<u64> = Vec::new();
    for (_, seen) in &streams {
        let seen = seen.lock().expect("seen lock");
        if seen.last().copied().unwrap_or(0) < last {
            behind += 1;
            continue;
        }
        let increasing = seen.windows(2).all(|pair| pair[0] < pair[1]);
        if !increasing || seen.len() as u64 != last {
            with_gaps += 1;
            if missing_example.is_empty() {
                let mut present = vec![false; last as usize + 1];
                for &s in seen.iter() {
                    present[s as usize] = true;
                }
                missing_example = (1..=last).filter(|&s| !present[s as usize]).collect();
            }
        }
    }
    Ok(json!({
        "streams": rounds,
        "final": last,
        "with_gaps": with_gaps,
        "behind": behind,
        "missing": missing_example,
    }))
}

fn open(
    line: &Map<String, Value>,
) -> Result<(Arc<dyn EventStore + Send + Sync>, &'static str), Value> {
    let backend = |error: &dyn std::fmt::Display| json!({"kind": "BackendFailure", "message": error.to_string()});
    match as_str(field(line, "open"), "open")? {
        "memory" => Ok((Arc::new(factstr_memory::MemoryStore::new()), "memory")),
        "sqlite" => {
            let path = as_str(field(line, "path"), "path")?;
            let store = factstr_sqlite::SqliteStore::open(path).map_err(|e| backend(&e))?;
            Ok((Arc::new(store), "sqlite"))
        }
        "postgres" => {
            let url = as_str(field(line, "url"), "url")?;
            let store = factstr_postgres::PostgresStore::connect(url).map_err(|e| backend(&e))?;
            Ok((Arc::new(store), "postgres"))
        }
        other => Err(bad(format!("unknown store {other}"))),
    }
}

fn answer(out: &mut impl Write, reply: Reply) -> io::Result<()> {
    let line = match reply {
        Ok(value) => json!({"ok": value}),
        Err(error) => json!({"error": error}),
    };
    writeln!(out, "{line}")?;
    out.flush()
}

fn parse(text: &str) -> Result<Map<String, Value>, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(bad("a request must be a JSON object")),
        Err(error) => Err(bad(format!("invalid JSON: {error}"))),
    }
}

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut out = io::stdout().lock();
    let mut session: Option<Session> = None;
    for text in stdin.lock().lines() {
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        let line = match parse(&text) {
            Ok(line) => line,
            Err(error) => {
                answer(&mut out, Err(error))?;
                continue;
            }
        };
        match session.as_mut() {
            None => {
                let reply = open(&line).map(|(store, kind)| {
                    session = Some(Session::new(store));
                    Value::from(kind)
                });
                answer(&mut out, reply)?;
            }
            Some(current) => {
                if field(&line, "op").as_str() == Some("close") {
                    // Unsubscribe everything, then drop the store (joins its threads).
                    if let Some(mut closing) = session.take() {
                        closing.tail.take();
                        closing.streams.clear();
                        drop(closing);
                    }
                    answer(&mut out, Ok(Value::Null))?;
                    return Ok(());
                }
                let reply = current.run(&line);
                answer(&mut out, reply)?;
            }
        }
    }
    Ok(())
}
