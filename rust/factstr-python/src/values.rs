//! The immutable value classes of the public API (SPEC §11). Each holds the engine's own value,
//! validated once at construction, and builds Python objects on access: a payload read from a
//! value is a fresh copy, so it cannot change the value (see README, "Payloads are copies").
//! Every class hashes consistently with its equality (`hashing`), pickles through `__reduce__`
//! (its constructor and its fields, in `__match_args__` order), and copies as itself (immutable).

use factstr_core as core;
use factstr_core::matching::{filters_equal, json_equal, queries_equal};
use pyo3::prelude::*;
use pyo3::types::{PyDateTime, PyIterator, PyList, PyString, PyTuple, PyTzInfo};
use pyo3::IntoPyObjectExt;

use crate::convert::{list_items, non_empty_str, optional_sequence_number, to_json, to_python};
use crate::errors::type_error;
use crate::hashing::{combine, filter_hash, json_hash, query_hash, text_hash};
use crate::time::datetime_from_micros;

/// `(type(self), args)`: what `pickle` and `copy` need to rebuild a value through its constructor.
fn reduce<'py>(
    slf: &Bound<'py, PyAny>,
    args: impl IntoPyObject<'py>,
) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        slf.py(),
        [slf.get_type().into_any(), args.into_bound_py_any(slf.py())?],
    )
}

/// The Python repr of a value, for `__repr__` implementations.
fn repr_of<'py>(py: Python<'py>, value: impl IntoPyObject<'py>) -> String {
    match value.into_bound_py_any(py) {
        Ok(object) => object
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "?".to_owned()),
        Err(_) => "?".to_owned(),
    }
}

/// An event to append: its type and its JSON payload, validated (and copied) at construction.
/// `default`, like `json.dumps`'s, turns a non-JSON value into one that is converted in turn
/// (`factstr.json_default` handles datetimes, UUIDs, decimals, enums, dataclasses, pydantic).
#[pyclass(module = "factstr", name = "NewEvent", frozen)]
pub struct NewEvent {
    pub inner: core::NewEvent,
}

#[pymethods]
impl NewEvent {
    #[new]
    #[pyo3(signature = (event_type, payload, *, default=None))]
    fn new(
        event_type: &Bound<'_, PyAny>,
        payload: &Bound<'_, PyAny>,
        default: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let event_type = non_empty_str(event_type, "event_type")?;
        let payload = crate::convert::to_json_with_default(payload, "payload", default)?;
        Ok(Self {
            inner: core::NewEvent::new(event_type, payload),
        })
    }

    /// The event type (a non-empty str).
    #[getter]
    fn event_type(&self) -> &str {
        &self.inner.event_type
    }

    /// The JSON payload; each access returns a fresh copy.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.inner.payload)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<NewEvent>().is_ok_and(|o| {
            let o = &o.get().inner;
            o.event_type == self.inner.event_type && json_equal(&o.payload, &self.inner.payload)
        })
    }

    fn __hash__(&self) -> u64 {
        combine(&[
            text_hash(&self.inner.event_type),
            json_hash(&self.inner.payload),
        ])
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let this = slf.get();
        reduce(slf.as_any(), (this.event_type(), this.payload(slf.py())?))
    }

    /// The field names for `match` by position, in the order of the constructor.
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("event_type", "payload")
    }

    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "NewEvent(event_type={}, payload={})",
            repr_of(py, &*self.inner.event_type),
            self.payload(py)?.repr()?
        ))
    }
}

/// Facts whose type is one of `event_types` AND whose payload contains one of
/// `payload_predicates`. `None` means any; `[]` means nothing.
#[pyclass(module = "factstr", name = "EventFilter", frozen)]
#[derive(Clone)]
pub struct EventFilter {
    pub inner: core::EventFilter,
}

impl EventFilter {
    pub fn from_core(inner: core::EventFilter) -> Self {
        Self { inner }
    }
}

#[pymethods]
impl EventFilter {
    #[new]
    #[pyo3(signature = (event_types=None, payload_predicates=None))]
    fn new(
        event_types: Option<&Bound<'_, PyAny>>,
        payload_predicates: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let event_types = match event_types {
            Some(types) if !types.is_none() => Some(
                list_items(types, "event_types")?
                    .iter()
                    .enumerate()
                    .map(|(i, t)| non_empty_str(t, &format!("event_types[{i}]")))
                    .collect::<PyResult<Vec<_>>>()?,
            ),
            _ => None,
        };
        let payload_predicates = match payload_predicates {
            Some(predicates) if !predicates.is_none() => Some(
                list_items(predicates, "payload_predicates")?
                    .iter()
                    .enumerate()
                    .map(|(i, p)| to_json(p, &format!("payload_predicates[{i}]")))
                    .collect::<PyResult<Vec<_>>>()?,
            ),
            _ => None,
        };
        Ok(Self {
            inner: core::EventFilter {
                event_types,
                payload_predicates,
            },
        })
    }

    /// The accepted event types (any of them), or `None` for any type.
    #[getter]
    fn event_types(&self) -> Option<Vec<String>> {
        self.inner.event_types.clone()
    }

    /// The payload predicates (a payload must contain one of them), or `None` for any payload.
    #[getter]
    fn payload_predicates<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let Some(predicates) = &self.inner.payload_predicates else {
            return Ok(None);
        };
        let items = predicates
            .iter()
            .map(|p| to_python(py, p))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Some(PyList::new(py, items)?))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<EventFilter>()
            .is_ok_and(|o| filters_equal(&o.get().inner, &self.inner))
    }

    fn __hash__(&self) -> u64 {
        filter_hash(&self.inner)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let this = slf.get();
        reduce(
            slf.as_any(),
            (this.event_types(), this.payload_predicates(slf.py())?),
        )
    }

    /// The field names for `match` by position, in the order of the constructor.
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("event_types", "payload_predicates")
    }

    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "EventFilter(event_types={}, payload_predicates={})",
            repr_of(py, self.event_types()),
            match self.payload_predicates(py)? {
                Some(list) => list.repr()?.to_string(),
                None => "None".to_owned(),
            }
        ))
    }
}

/// Facts matching any of `filters` (all facts when `None` or empty), after
/// `min_sequence_number` when given.
#[pyclass(module = "factstr", name = "EventQuery", frozen)]
#[derive(Clone)]
pub struct EventQuery {
    pub inner: core::EventQuery,
}

fn filters_from_python(
    filters: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Vec<core::EventFilter>>> {
    match filters {
        Some(filters) if !filters.is_none() => Some(
            list_items(filters, "filters")?
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    f.cast::<EventFilter>()
                        .map(|f| f.get().inner.clone())
                        .map_err(|_| type_error(format!("filters[{i}] must be an EventFilter")))
                })
                .collect::<PyResult<Vec<_>>>(),
        )
        .transpose(),
        _ => Ok(None),
    }
}

#[pymethods]
impl EventQuery {
    #[new]
    #[pyo3(signature = (filters=None, min_sequence_number=None))]
    fn new(
        filters: Option<&Bound<'_, PyAny>>,
        min_sequence_number: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: core::EventQuery {
                filters: filters_from_python(filters)?,
                min_sequence_number: optional_sequence_number(
                    min_sequence_number,
                    "min_sequence_number",
                )?,
            },
        })
    }

    /// The query that matches every fact.
    #[staticmethod]
    fn all() -> Self {
        Self {
            inner: core::EventQuery::all(),
        }
    }

    /// One filter matching any of `types`.
    #[staticmethod]
    fn for_event_types(types: &Bound<'_, PyAny>) -> PyResult<Self> {
        let filter = EventFilter::new(Some(types), None)?;
        Ok(Self {
            inner: core::EventQuery {
                filters: Some(vec![filter.inner]),
                min_sequence_number: None,
            },
        })
    }

    /// A copy of this query with other filters.
    fn with_filters(&self, filters: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(Self {
            inner: core::EventQuery {
                filters: filters_from_python(filters)?,
                min_sequence_number: self.inner.min_sequence_number,
            },
        })
    }

    /// A copy of this query with another lower bound (`None`: from the start).
    fn with_min_sequence_number(
        &self,
        min_sequence_number: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Self {
            inner: core::EventQuery {
                filters: self.inner.filters.clone(),
                min_sequence_number: optional_sequence_number(
                    min_sequence_number,
                    "min_sequence_number",
                )?,
            },
        })
    }

    /// The filters (a fact matches if it matches any), or `None` for every fact.
    #[getter]
    fn filters(&self) -> Option<Vec<EventFilter>> {
        self.inner
            .filters
            .as_ref()
            .map(|f| f.iter().cloned().map(EventFilter::from_core).collect())
    }

    /// Only facts with a greater sequence number are returned; `None` for all.
    #[getter]
    fn min_sequence_number(&self) -> Option<u64> {
        self.inner.min_sequence_number
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<EventQuery>()
            .is_ok_and(|o| queries_equal(&o.get().inner, &self.inner))
    }

    fn __hash__(&self) -> u64 {
        query_hash(&self.inner)
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let this = slf.get();
        reduce(slf.as_any(), (this.filters(), this.min_sequence_number()))
    }

    /// The field names for `match` by position, in the order of the constructor.
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str) {
        ("filters", "min_sequence_number")
    }

    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let filters = match &self.inner.filters {
            None => "None".to_owned(),
            Some(filters) => {
                let parts = filters
                    .iter()
                    .map(|f| EventFilter::from_core(f.clone()).__repr__(py))
                    .collect::<PyResult<Vec<_>>>()?;
                format!("[{}]", parts.join(", "))
            }
        };
        Ok(format!(
            "EventQuery(filters={filters}, min_sequence_number={})",
            repr_of(py, self.inner.min_sequence_number)
        ))
    }
}

/// A committed fact: its sequence number, commit time (UTC), type and JSON payload.
#[pyclass(module = "factstr", name = "EventRecord", frozen)]
pub struct EventRecord {
    sequence_number: u64,
    occurred_at: Py<PyDateTime>,
    event_type: Py<PyString>,
    // Kept as JSON and converted on each access: the record's payload cannot be changed through
    // the record, nor through the object it was built from (README, "Payloads are copies").
    payload: std::sync::Arc<serde_json::Value>,
}

#[pymethods]
impl EventRecord {
    #[new]
    fn new(
        sequence_number: &Bound<'_, PyAny>,
        occurred_at: Bound<'_, PyDateTime>,
        event_type: Bound<'_, PyString>,
        payload: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        Ok(Self {
            sequence_number: crate::convert::sequence_number(sequence_number, "sequence_number")?,
            occurred_at: occurred_at.unbind(),
            event_type: event_type.unbind(),
            payload: std::sync::Arc::new(to_json(payload, "payload")?),
        })
    }

    /// The fact's position in the log (1, 2, ...).
    #[getter]
    fn sequence_number(&self) -> u64 {
        self.sequence_number
    }

    /// The commit time of the fact's batch, a timezone-aware UTC `datetime`.
    #[getter]
    fn occurred_at<'py>(&self, py: Python<'py>) -> Bound<'py, PyDateTime> {
        self.occurred_at.bind(py).clone()
    }

    /// The event type.
    #[getter]
    fn event_type<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.event_type.bind(py).clone()
    }

    /// The JSON payload; each access returns a fresh copy.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_python(py, &self.payload)
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<EventRecord>() else {
            return Ok(false);
        };
        let other = other.get();
        Ok(self.sequence_number == other.sequence_number
            && json_equal(&self.payload, &other.payload)
            && self
                .event_type
                .bind(py)
                .as_any()
                .eq(other.event_type.bind(py))?
            && self
                .occurred_at
                .bind(py)
                .as_any()
                .eq(other.occurred_at.bind(py))?)
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(combine(&[
            self.sequence_number,
            self.occurred_at.bind(py).hash()? as u64,
            self.event_type.bind(py).hash()? as u64,
            json_hash(&self.payload),
        ]))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let this = slf.get();
        reduce(
            slf.as_any(),
            (
                this.sequence_number,
                this.occurred_at(py),
                this.event_type(py),
                this.payload(py)?,
            ),
        )
    }

    /// The field names for `match` by position, in the order of the constructor.
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str, &'static str) {
        ("sequence_number", "occurred_at", "event_type", "payload")
    }

    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "EventRecord(sequence_number={}, occurred_at={}, event_type={}, payload={})",
            self.sequence_number,
            self.occurred_at.bind(py).repr()?,
            self.event_type.bind(py).repr()?,
            self.payload(py)?.repr()?
        ))
    }
}

/// Builds the Python records of engine records. Records of one batch share their commit time,
/// so one `datetime` object serves a run of equal times.
pub fn records_to_python<'py>(
    py: Python<'py>,
    records: &[core::EventRecord],
) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, record_objects(py, records.iter().cloned())?)
}

pub fn record_objects<'py>(
    py: Python<'py>,
    records: impl ExactSizeIterator<Item = core::EventRecord>,
) -> PyResult<Vec<Bound<'py, EventRecord>>> {
    let utc = PyTzInfo::utc(py)?;
    let mut last_time: Option<(i64, Bound<'py, PyDateTime>)> = None;
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let occurred_at = match &last_time {
            Some((micros, datetime)) if *micros == record.occurred_at => datetime.clone(),
            _ => {
                let datetime = datetime_from_micros(py, record.occurred_at, &utc)?;
                last_time = Some((record.occurred_at, datetime.clone()));
                datetime
            }
        };
        let record = EventRecord {
            sequence_number: record.sequence_number,
            occurred_at: occurred_at.unbind(),
            event_type: PyString::new(py, &record.event_type).unbind(),
            payload: record.payload,
        };
        out.push(Bound::new(py, record)?);
    }
    Ok(out)
}

/// What `query` returns: the matching records and the two figures of the same snapshot.
/// `len()` is the number of records; iterating yields them in order.
#[pyclass(module = "factstr", name = "QueryResult", frozen)]
pub struct QueryResult {
    // A tuple, so no one can change the result; `event_records` hands out a new list.
    event_records: Py<PyTuple>,
    last_returned_sequence_number: Option<u64>,
    current_context_version: Option<u64>,
    head_sequence_number: Option<u64>,
}

impl QueryResult {
    pub fn from_core(py: Python<'_>, result: core::QueryResult) -> PyResult<Self> {
        Ok(Self {
            event_records: PyTuple::new(py, record_objects(py, result.event_records.into_iter())?)?
                .unbind(),
            last_returned_sequence_number: result.last_returned_sequence_number,
            current_context_version: result.current_context_version,
            head_sequence_number: result.head_sequence_number,
        })
    }
}

#[pymethods]
impl QueryResult {
    #[new]
    #[pyo3(signature = (event_records, last_returned_sequence_number, current_context_version, head_sequence_number=None))]
    fn new(
        event_records: &Bound<'_, PyAny>,
        last_returned_sequence_number: Option<&Bound<'_, PyAny>>,
        current_context_version: Option<&Bound<'_, PyAny>>,
        head_sequence_number: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let records = list_items(event_records, "event_records")?;
        for (i, record) in records.iter().enumerate() {
            if record.cast::<EventRecord>().is_err() {
                return Err(type_error(format!(
                    "event_records[{i}] must be an EventRecord"
                )));
            }
        }
        Ok(Self {
            event_records: PyTuple::new(event_records.py(), records)?.unbind(),
            last_returned_sequence_number: optional_sequence_number(
                last_returned_sequence_number,
                "last_returned_sequence_number",
            )?,
            current_context_version: optional_sequence_number(
                current_context_version,
                "current_context_version",
            )?,
            head_sequence_number: optional_sequence_number(
                head_sequence_number,
                "head_sequence_number",
            )?,
        })
    }

    /// The matching records in ascending sequence order (a new list on each access).
    #[getter]
    fn event_records<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.event_records.bind(py))
    }

    /// The sequence number of the last returned record, or `None` when none was returned.
    #[getter]
    fn last_returned_sequence_number(&self) -> Option<u64> {
        self.last_returned_sequence_number
    }

    /// The highest sequence number of all matching facts (ignoring `min_sequence_number` and
    /// `limit`), or `None`: the version `append_if` expects.
    #[getter]
    fn current_context_version(&self) -> Option<u64> {
        self.current_context_version
    }

    /// The last sequence number of the whole store in the query's snapshot (`None`: empty).
    #[getter]
    fn head_sequence_number(&self) -> Option<u64> {
        self.head_sequence_number
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.event_records.bind(py).len()
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        self.event_records.bind(py).as_any().try_iter()
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<QueryResult>() else {
            return Ok(false);
        };
        let other = other.get();
        Ok(
            self.last_returned_sequence_number == other.last_returned_sequence_number
                && self.current_context_version == other.current_context_version
                && self.head_sequence_number == other.head_sequence_number
                && self
                    .event_records
                    .bind(py)
                    .as_any()
                    .eq(other.event_records.bind(py))?,
        )
    }

    fn __hash__(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(combine(&[
            self.event_records.bind(py).hash()? as u64,
            self.last_returned_sequence_number
                .map_or(0, |n| n.wrapping_add(1)),
            self.current_context_version
                .map_or(0, |n| n.wrapping_add(1)),
            self.head_sequence_number.map_or(0, |n| n.wrapping_add(1)),
        ]))
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let this = slf.get();
        let records = this.event_records(slf.py())?;
        reduce(
            slf.as_any(),
            (
                records,
                this.last_returned_sequence_number,
                this.current_context_version,
                this.head_sequence_number,
            ),
        )
    }

    /// The field names for `match` by position, in the order of the constructor.
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str, &'static str) {
        (
            "event_records",
            "last_returned_sequence_number",
            "current_context_version",
            "head_sequence_number",
        )
    }

    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "QueryResult(event_records={}, last_returned_sequence_number={}, current_context_version={}, head_sequence_number={})",
            self.event_records(py)?.repr()?,
            repr_of(py, self.last_returned_sequence_number),
            repr_of(py, self.current_context_version),
            repr_of(py, self.head_sequence_number)
        ))
    }
}

/// What an append returns: the first and last sequence numbers given and how many facts.
#[pyclass(module = "factstr", name = "AppendResult", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub struct AppendResult {
    /// The sequence number of the batch's first fact.
    #[pyo3(get)]
    first_sequence_number: u64,
    /// The sequence number of the batch's last fact.
    #[pyo3(get)]
    last_sequence_number: u64,
    /// How many facts the batch committed.
    #[pyo3(get)]
    committed_count: u64,
}

impl From<core::AppendResult> for AppendResult {
    fn from(r: core::AppendResult) -> Self {
        Self {
            first_sequence_number: r.first_sequence_number,
            last_sequence_number: r.last_sequence_number,
            committed_count: r.committed_count,
        }
    }
}

#[pymethods]
impl AppendResult {
    #[new]
    fn new(
        first_sequence_number: &Bound<'_, PyAny>,
        last_sequence_number: &Bound<'_, PyAny>,
        committed_count: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        use crate::convert::sequence_number;
        Ok(Self {
            first_sequence_number: sequence_number(first_sequence_number, "first_sequence_number")?,
            last_sequence_number: sequence_number(last_sequence_number, "last_sequence_number")?,
            committed_count: sequence_number(committed_count, "committed_count")?,
        })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let this = slf.get();
        reduce(
            slf.as_any(),
            (
                this.first_sequence_number,
                this.last_sequence_number,
                this.committed_count,
            ),
        )
    }

    /// The field names for `match` by position, in the order of the constructor.
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str) {
        (
            "first_sequence_number",
            "last_sequence_number",
            "committed_count",
        )
    }

    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }

    fn __repr__(&self) -> String {
        format!(
            "AppendResult(first_sequence_number={}, last_sequence_number={}, committed_count={})",
            self.first_sequence_number, self.last_sequence_number, self.committed_count
        )
    }
}

/// The identity of a durable stream; a plain `str` name works wherever one is taken.
#[pyclass(module = "factstr", name = "DurableStream", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub struct DurableStream {
    /// The durable stream's name (its cursor's key in the store).
    #[pyo3(get)]
    pub(crate) name: String,
}

#[pymethods]
impl DurableStream {
    #[new]
    fn new(name: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self {
            name: non_empty_str(name, "durable stream name")?,
        })
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        reduce(slf.as_any(), (slf.get().name.clone(),))
    }

    /// The field names for `match` by position, in the order of the constructor.
    #[classattr]
    fn __match_args__() -> (&'static str,) {
        ("name",)
    }

    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("DurableStream({})", repr_of(py, &self.name))
    }
}

/// A durable stream's stored cursor: its name, its query and the last sequence number it processed.
#[pyclass(module = "factstr", name = "DurableStreamInfo", frozen)]
pub struct DurableStreamInfo {
    /// The durable stream's name.
    #[pyo3(get)]
    name: String,
    query: core::EventQuery,
    /// The last sequence number its handler finished (0: nothing yet).
    #[pyo3(get)]
    last_processed_sequence_number: u64,
}

impl From<core::DurableStreamInfo> for DurableStreamInfo {
    fn from(info: core::DurableStreamInfo) -> Self {
        Self {
            name: info.name,
            query: info.query,
            last_processed_sequence_number: info.last_processed_sequence_number,
        }
    }
}

#[pymethods]
impl DurableStreamInfo {
    #[new]
    fn new(
        name: &Bound<'_, PyAny>,
        query: &Bound<'_, PyAny>,
        last_processed_sequence_number: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        Ok(Self {
            name: non_empty_str(name, "name")?,
            query: query
                .cast::<EventQuery>()
                .map(|q| q.get().inner.clone())
                .map_err(|_| type_error("query must be an EventQuery"))?,
            last_processed_sequence_number: crate::convert::sequence_number(
                last_processed_sequence_number,
                "last_processed_sequence_number",
            )?,
        })
    }

    /// The query the durable stream was registered with.
    #[getter]
    fn query(&self) -> EventQuery {
        EventQuery {
            inner: self.query.clone(),
        }
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<DurableStreamInfo>().is_ok_and(|o| {
            let o = o.get();
            o.name == self.name
                && o.last_processed_sequence_number == self.last_processed_sequence_number
                && queries_equal(&o.query, &self.query)
        })
    }

    fn __hash__(&self) -> u64 {
        combine(&[
            text_hash(&self.name),
            query_hash(&self.query),
            self.last_processed_sequence_number,
        ])
    }

    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let this = slf.get();
        reduce(
            slf.as_any(),
            (
                this.name.clone(),
                this.query(),
                this.last_processed_sequence_number,
            ),
        )
    }

    /// The field names for `match` by position, in the order of the constructor.
    #[classattr]
    fn __match_args__() -> (&'static str, &'static str, &'static str) {
        ("name", "query", "last_processed_sequence_number")
    }

    fn __copy__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __deepcopy__<'py>(slf: Bound<'py, Self>, _memo: &Bound<'py, PyAny>) -> Bound<'py, Self> {
        slf
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "DurableStreamInfo(name={}, query={}, last_processed_sequence_number={})",
            repr_of(py, &self.name),
            self.query().__repr__(py)?,
            self.last_processed_sequence_number
        ))
    }
}
