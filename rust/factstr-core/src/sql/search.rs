//! Searching a log kept in a SQL database through its indexes: the planning and reading that
//! the SQLite and PostgreSQL stores share. A store provides the primitive look-ups
//! (`IndexedLog`); this module decides which candidates to read and checks every candidate with
//! the one matcher, so that both stores answer exactly like the Memory store.

use serde_json::Value;

use crate::condition::Condition;
use crate::error::Result;
use crate::payload_keys::selective_key_hashes;
use crate::types::{Batch, BatchPage, EventQuery, EventRecord, Timestamp};

/// Candidate counts are estimated up to this bound only: enough to tell a selective key from a
/// common one without counting a million rows.
const ESTIMATE_CAP: i64 = 2_000;

/// Payload candidates this few are read as they are: counting the type index to perhaps find
/// fewer would cost more than reading them.
const FEW_CANDIDATES: i64 = 256;

/// A predicate key with this few candidates is taken without estimating the predicate's other
/// keys: each estimate of a common key costs the SQL stores a statement or two (a round trip on
/// PostgreSQL), more than reading a few extra candidates. (An event-sourcing predicate such as
/// `{"originator_id": .., "originator_version": .., "recorder": ..}` has one rare key among
/// common ones.)
const SELECTIVE_ENOUGH: i64 = 32;

/// The most candidate rows fetched at once.
const MAX_FETCH_CHUNK: usize = 512;

/// A stored event, decoded.
pub struct Row {
    pub sequence_number: u64,
    pub occurred_at: Timestamp,
    pub event_type: String,
    pub payload: Value,
}

impl Row {
    pub fn into_record(self) -> EventRecord {
        EventRecord {
            sequence_number: self.sequence_number,
            occurred_at: self.occurred_at,
            event_type: self.event_type.into(),
            payload: std::sync::Arc::new(self.payload),
        }
    }
}

/// Called with each row a scan reads; returns whether to go on.
pub type Visit<'v> = &'v mut dyn FnMut(Row) -> Result<bool>;

/// The look-ups a SQL store offers, all within one snapshot of its log.
pub trait IndexedLog {
    /// The last committed sequence number (0 when empty).
    fn head(&mut self) -> Result<u64>;
    /// How far the payload index is current; later rows are candidates for any payload search.
    fn indexed_through(&mut self) -> Result<u64>;
    /// How many events have one of `types`, counted up to `cap`.
    fn count_types(&mut self, types: &[String], cap: i64) -> Result<i64>;
    /// How many index rows a payload key has, counted up to `cap`.
    fn count_key(&mut self, hash: i64, cap: i64) -> Result<i64>;
    /// Appends the sequence numbers above `after` of events with one of `types`.
    fn numbers_by_types(&mut self, types: &[String], after: u64, out: &mut Vec<u64>) -> Result<()>;
    /// Appends the sequence numbers indexed under a payload key (any order, any range).
    fn numbers_by_key(&mut self, hash: i64, out: &mut Vec<u64>) -> Result<()>;
    /// Appends every sequence number above `after`.
    fn numbers_after(&mut self, after: u64, out: &mut Vec<u64>) -> Result<()>;
    /// The rows of these sequence numbers, in the order given (missing ones left out).
    fn fetch(&mut self, numbers: &[u64]) -> Result<Vec<Row>>;
    /// Visits every row above `after` in order until `visit` returns false; `expected` is how
    /// many rows the caller expects to look at (a hint for stores that read in pages).
    fn scan(
        &mut self,
        after: u64,
        descending: bool,
        expected: usize,
        visit: Visit<'_>,
    ) -> Result<()>;
    /// The committed batch (first, last) that holds `number`.
    fn batch_of(&mut self, number: u64) -> Result<(u64, u64)>;
}

/// Which rows may match a query.
#[derive(Debug, PartialEq)]
pub enum Plan {
    /// Every row matches (a filter without conditions).
    Everything,
    /// Every row may match and must be checked (a predicate the index cannot narrow, like `{}`).
    Scan,
    /// No row can match.
    Nothing,
    /// The rows these sources yield.
    Candidates(Vec<Source>),
}

/// Where candidate sequence numbers come from.
#[derive(Debug, PartialEq)]
pub enum Source {
    Types(Vec<String>),
    Key(i64),
    /// Rows the payload index does not cover yet.
    After(u64),
}

struct Part {
    source: Source,
    estimate: i64,
}

pub fn plan(log: &mut dyn IndexedLog, query: &EventQuery) -> Result<Plan> {
    if query.matches_everything() {
        return Ok(Plan::Everything);
    }
    let mut sources = Vec::new();
    let mut uses_payload_index = false;
    for filter in query.filters.iter().flatten() {
        if filter.matches_nothing() {
            continue;
        }
        let by_payload = match &filter.payload_predicates {
            Some(predicates) => payload_parts(log, predicates)?,
            None => None,
        };
        // The type index only needs counting as far as the payload candidates go.
        let payload_estimate = by_payload
            .as_ref()
            .map(|p| p.iter().map(|x| x.estimate).sum::<i64>());
        let by_type = match &filter.event_types {
            Some(_) if payload_estimate.is_some_and(|e| e <= FEW_CANDIDATES) => None,
            Some(types) => {
                let cap = payload_estimate.map_or(ESTIMATE_CAP, |e| e + 1);
                Some(Part {
                    estimate: log.count_types(types, cap)?,
                    source: Source::Types(types.clone()),
                })
            }
            None => None,
        };
        match (by_type, by_payload) {
            (Some(t), Some(p)) if payload_estimate.unwrap_or(0) < t.estimate => {
                uses_payload_index = true;
                sources.extend(p.into_iter().map(|part| part.source));
            }
            (Some(t), _) => sources.push(t.source),
            (None, Some(p)) => {
                uses_payload_index = true;
                sources.extend(p.into_iter().map(|part| part.source));
            }
            (None, None) => return Ok(Plan::Scan),
        }
    }
    if uses_payload_index {
        let through = log.indexed_through()?;
        if through < log.head()? {
            sources.push(Source::After(through));
        }
    }
    if sources.is_empty() {
        return Ok(Plan::Nothing);
    }
    Ok(Plan::Candidates(sources))
}

/// One part per predicate (its rarest key), or `None` when some predicate has no indexed value
/// (e.g. `{}`), so that the index cannot narrow the filter.
fn payload_parts(log: &mut dyn IndexedLog, predicates: &[Value]) -> Result<Option<Vec<Part>>> {
    let mut parts = Vec::new();
    for predicate in predicates {
        let mut best: Option<Part> = None;
        for hash in selective_key_hashes(predicate) {
            let estimate = log.count_key(hash, ESTIMATE_CAP)?;
            if best.as_ref().is_none_or(|b| estimate < b.estimate) {
                best = Some(Part {
                    source: Source::Key(hash),
                    estimate,
                });
            }
            if estimate <= SELECTIVE_ENOUGH {
                break;
            }
        }
        match best {
            Some(part) => parts.push(part),
            None => return Ok(None),
        }
    }
    Ok(Some(parts))
}

/// The distinct candidate sequence numbers above `after`, ascending.
fn candidate_numbers(log: &mut dyn IndexedLog, sources: &[Source], after: u64) -> Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for source in sources {
        match source {
            Source::Types(types) => log.numbers_by_types(types, after, &mut numbers)?,
            Source::Key(hash) => log.numbers_by_key(*hash, &mut numbers)?,
            Source::After(through) => log.numbers_after((*through).max(after), &mut numbers)?,
        }
    }
    numbers.retain(|&n| n > after);
    numbers.sort_unstable();
    numbers.dedup();
    Ok(numbers)
}

/// Visits the rows that may match `plan` above `after` (ascending, or descending from the
/// top) until `visit` returns false. Candidates come from the indexes; their rows are fetched in
/// growing chunks, so a search that stops early (a context version, a limit) reads little.
pub fn visit_rows(
    log: &mut dyn IndexedLog,
    plan: &Plan,
    after: u64,
    descending: bool,
    expected: usize,
    visit: &mut dyn FnMut(Row) -> Result<bool>,
) -> Result<()> {
    let sources = match plan {
        Plan::Nothing => return Ok(()),
        Plan::Everything | Plan::Scan => return log.scan(after, descending, expected, visit),
        Plan::Candidates(sources) => sources,
    };
    let mut numbers = candidate_numbers(log, sources, after)?;
    if descending {
        numbers.reverse();
    }
    // The first chunk is what the caller expects to need (one row for a context version, all of
    // them for a whole query); later ones grow.
    let mut chunk = expected.clamp(1, MAX_FETCH_CHUNK);
    let mut rest = numbers.as_slice();
    while !rest.is_empty() {
        let (now, later) = rest.split_at(chunk.min(rest.len()));
        for row in log.fetch(now)? {
            if !visit(row)? {
                return Ok(());
            }
        }
        rest = later;
        chunk = (chunk * 8).min(MAX_FETCH_CHUNK);
    }
    Ok(())
}

/// The matching records above `after`, ascending, at most `limit`.
pub fn matching_records(
    log: &mut dyn IndexedLog,
    query: &EventQuery,
    plan: &Plan,
    after: u64,
    limit: usize,
) -> Result<Vec<EventRecord>> {
    let mut records = Vec::new();
    if limit == 0 {
        return Ok(records);
    }
    visit_rows(log, plan, after, false, limit, &mut |row| {
        if query.matches(&row.event_type, &row.payload) {
            records.push(row.into_record());
        }
        Ok(records.len() < limit)
    })?;
    Ok(records)
}

/// The highest matching sequence number, ignoring the query's lower bound.
pub fn context_version(
    log: &mut dyn IndexedLog,
    query: &EventQuery,
    plan: &Plan,
) -> Result<Option<u64>> {
    if matches!(plan, Plan::Everything) {
        return log.head().map(|h| (h > 0).then_some(h));
    }
    let mut found = None;
    visit_rows(log, plan, 0, true, 1, &mut |row| {
        if query.matches(&row.event_type, &row.payload) {
            found = Some(row.sequence_number);
            return Ok(false);
        }
        Ok(true)
    })?;
    Ok(found)
}

/// `Ok` when the condition holds for the context version of its query (the lower bound
/// ignored), else the conflict (SPEC §4). Runs inside the append's write transaction.
pub fn check_context(log: &mut dyn IndexedLog, condition: Condition<'_>) -> Result<()> {
    let context = condition.context().without_min();
    let plan = plan(log, &context)?;
    condition.check(context_version(log, &context, &plan)?)
}

/// A query's records (at most `limit`) and context version, from one snapshot.
pub fn query(
    log: &mut dyn IndexedLog,
    query: &EventQuery,
    limit: Option<usize>,
) -> Result<crate::types::QueryResult> {
    let plan = plan(log, query)?;
    let after = query.min_sequence_number.unwrap_or(0);
    let limit = limit.unwrap_or(usize::MAX);
    let event_records = matching_records(log, query, &plan, after, limit)?;
    // Every matching record read (from the start, or every one above the bound, and some): the
    // last one is the context version, the highest match whatever the bound.
    let complete = event_records.len() < limit;
    let current_context_version = if complete && (after == 0 || !event_records.is_empty()) {
        event_records.last().map(|r| r.sequence_number)
    } else {
        context_version(log, query, &plan)?
    };
    let head = log.head()?;
    Ok(crate::types::QueryResult {
        last_returned_sequence_number: event_records.last().map(|r| r.sequence_number),
        event_records,
        current_context_version,
        head_sequence_number: (head > 0).then_some(head),
    })
}

/// The committed batches after `position` with their matching events (SPEC §5, §6), about
/// `max_events` records at most, in whole batches.
pub fn read_batches(
    log: &mut dyn IndexedLog,
    position: u64,
    query: &EventQuery,
    max_events: usize,
) -> Result<BatchPage> {
    let head = log.head()?;
    let plan = plan(log, query)?;
    let after = position.max(query.min_sequence_number.unwrap_or(0));
    let mut scanned_to = head;
    let mut matched = Vec::new();
    let mut stopped_early = false;
    visit_rows(log, &plan, after, false, max_events + 1, &mut |row| {
        if row.sequence_number > head {
            return Ok(false);
        }
        if query.matches(&row.event_type, &row.payload) {
            matched.push(row);
        }
        stopped_early = matched.len() > max_events;
        Ok(!stopped_early)
    })?;
    if stopped_early {
        // The last batch may be cut short. Leave it for the next page, unless it is the only
        // one: then complete it, however large.
        let last = matched.last().map_or(0, |r| r.sequence_number);
        let (first_of_last, end_of_last) = log.batch_of(last)?;
        if matched[0].sequence_number < first_of_last {
            matched.retain(|r| r.sequence_number < first_of_last);
            scanned_to = first_of_last - 1;
        } else {
            visit_rows(
                log,
                &plan,
                last,
                false,
                (end_of_last - last) as usize,
                &mut |row| {
                    if row.sequence_number > end_of_last {
                        return Ok(false);
                    }
                    if query.matches(&row.event_type, &row.payload) {
                        matched.push(row);
                    }
                    Ok(true)
                },
            )?;
            scanned_to = end_of_last;
        }
    }
    let mut batches: Vec<Batch> = Vec::new();
    let mut current: Option<(u64, u64)> = None;
    for row in matched {
        let s = row.sequence_number;
        if !current.is_some_and(|(first, last)| first <= s && s <= last) {
            let range = log.batch_of(s)?;
            current = Some(range);
            batches.push(Batch {
                records: Vec::new(),
                last_sequence_number: range.1,
            });
        }
        batches
            .last_mut()
            .expect("a batch was started above")
            .records
            .push(row.into_record());
    }
    Ok(BatchPage {
        batches,
        scanned_to,
    })
}

#[cfg(test)]
mod tests {
    //! The planner against a fake index: which sources it picks for what estimates.

    use std::collections::HashMap;

    use serde_json::{json, Value};

    use super::*;
    use crate::types::EventFilter;

    /// An index with made-up sizes; it records what the planner counted.
    #[derive(Default)]
    struct FakeIndex {
        head: u64,
        indexed_through: u64,
        per_type: HashMap<String, i64>,
        per_key: HashMap<i64, i64>,
        counted_types: usize,
    }

    impl FakeIndex {
        fn new(head: u64) -> Self {
            Self {
                head,
                indexed_through: head,
                ..Self::default()
            }
        }

        fn with_type(mut self, event_type: &str, rows: i64) -> Self {
            self.per_type.insert(event_type.to_owned(), rows);
            self
        }

        /// Gives every key of `predicate` `rows` index rows.
        fn with_keys(mut self, predicate: Value, rows: i64) -> Self {
            for hash in selective_key_hashes(&predicate) {
                self.per_key.insert(hash, rows);
            }
            self
        }
    }

    impl IndexedLog for FakeIndex {
        fn head(&mut self) -> Result<u64> {
            Ok(self.head)
        }
        fn indexed_through(&mut self) -> Result<u64> {
            Ok(self.indexed_through)
        }
        fn count_types(&mut self, types: &[String], cap: i64) -> Result<i64> {
            self.counted_types += 1;
            let all: i64 = types.iter().filter_map(|t| self.per_type.get(t)).sum();
            Ok(all.min(cap))
        }
        fn count_key(&mut self, hash: i64, cap: i64) -> Result<i64> {
            Ok(self.per_key.get(&hash).copied().unwrap_or(0).min(cap))
        }
        fn numbers_by_types(&mut self, _: &[String], _: u64, _: &mut Vec<u64>) -> Result<()> {
            unreachable!("planning reads no rows")
        }
        fn numbers_by_key(&mut self, _: i64, _: &mut Vec<u64>) -> Result<()> {
            unreachable!("planning reads no rows")
        }
        fn numbers_after(&mut self, _: u64, _: &mut Vec<u64>) -> Result<()> {
            unreachable!("planning reads no rows")
        }
        fn fetch(&mut self, _: &[u64]) -> Result<Vec<Row>> {
            unreachable!("planning reads no rows")
        }
        fn scan(&mut self, _: u64, _: bool, _: usize, _: Visit<'_>) -> Result<()> {
            unreachable!("planning reads no rows")
        }
        fn batch_of(&mut self, _: u64) -> Result<(u64, u64)> {
            unreachable!("planning reads no rows")
        }
    }

    fn filter(types: Option<&[&str]>, predicates: Option<Vec<Value>>) -> EventFilter {
        EventFilter {
            event_types: types.map(|t| t.iter().map(|s| (*s).to_owned()).collect()),
            payload_predicates: predicates,
        }
    }

    fn query(filters: Vec<EventFilter>) -> EventQuery {
        EventQuery {
            filters: Some(filters),
            min_sequence_number: None,
        }
    }

    fn key_of(predicate: Value) -> i64 {
        let hashes = selective_key_hashes(&predicate);
        assert_eq!(hashes.len(), 1, "one key in {predicate}");
        hashes[0]
    }

    fn plan_of(index: &mut FakeIndex, query: &EventQuery) -> Plan {
        plan(index, query).expect("plans")
    }

    #[test]
    fn everything_nothing_and_scan() {
        let mut index = FakeIndex::new(100);
        assert_eq!(plan_of(&mut index, &EventQuery::all()), Plan::Everything);
        assert_eq!(
            plan_of(&mut index, &query(vec![filter(Some(&[]), None)])),
            Plan::Nothing,
            "an explicit empty type list matches nothing"
        );
        assert_eq!(
            plan_of(&mut index, &query(vec![filter(None, Some(vec![]))])),
            Plan::Nothing
        );
        // `{}` has no indexed key: the index cannot narrow it.
        assert_eq!(
            plan_of(
                &mut index,
                &query(vec![filter(None, Some(vec![json!({})]))])
            ),
            Plan::Scan
        );
    }

    #[test]
    fn a_selective_payload_key_wins_over_a_common_type_without_counting_the_type() {
        let mut index = FakeIndex::new(10_000)
            .with_type("common", 9_000)
            .with_keys(json!({"order": "o-1"}), 3);
        let plan = plan_of(
            &mut index,
            &query(vec![filter(
                Some(&["common"]),
                Some(vec![json!({"order": "o-1"})]),
            )]),
        );
        assert_eq!(
            plan,
            Plan::Candidates(vec![Source::Key(key_of(json!({"order": "o-1"})))])
        );
        assert_eq!(
            index.counted_types, 0,
            "few payload candidates: no type count"
        );
    }

    #[test]
    fn a_rare_type_wins_over_a_common_payload_key() {
        let mut index = FakeIndex::new(100_000)
            .with_type("rare", 5)
            .with_keys(json!({"tenant": "t"}), 50_000);
        let plan = plan_of(
            &mut index,
            &query(vec![filter(
                Some(&["rare"]),
                Some(vec![json!({"tenant": "t"})]),
            )]),
        );
        assert_eq!(
            plan,
            Plan::Candidates(vec![Source::Types(vec!["rare".to_owned()])])
        );
    }

    #[test]
    fn each_predicate_uses_its_rarest_key_and_filters_add_up() {
        let mut index = FakeIndex::new(100_000)
            .with_keys(json!({"tenant": "t"}), 50_000)
            .with_keys(json!({"order": "o-7"}), 2)
            .with_type("Refund", 40);
        let plan = plan_of(
            &mut index,
            &query(vec![
                filter(None, Some(vec![json!({"tenant": "t", "order": "o-7"})])),
                filter(Some(&["Refund"]), None),
            ]),
        );
        assert_eq!(
            plan,
            Plan::Candidates(vec![
                Source::Key(key_of(json!({"order": "o-7"}))),
                Source::Types(vec!["Refund".to_owned()]),
            ])
        );
    }

    #[test]
    fn rows_the_payload_index_does_not_cover_yet_are_candidates_too() {
        let mut index = FakeIndex::new(120).with_keys(json!({"k": 1}), 4);
        index.indexed_through = 100;
        let plan = plan_of(
            &mut index,
            &query(vec![filter(None, Some(vec![json!({"k": 1})]))]),
        );
        assert_eq!(
            plan,
            Plan::Candidates(vec![
                Source::Key(key_of(json!({"k": 1}))),
                Source::After(100)
            ])
        );
        // A plan on the type index alone needs no such rows.
        let mut index = FakeIndex::new(120).with_type("a", 3);
        index.indexed_through = 100;
        assert_eq!(
            plan_of(&mut index, &query(vec![filter(Some(&["a"]), None)])),
            Plan::Candidates(vec![Source::Types(vec!["a".to_owned()])])
        );
    }
}
