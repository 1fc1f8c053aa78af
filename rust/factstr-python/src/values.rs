//! The immutable value classes of the public API (SPEC §11). Each holds the engine's own value,
//! validated once at construction, and builds Python objects on access.

use factstr_core as core;
use factstr_core::matching::{filters_equal, json_equal, queries_equal};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use pyo3::types::{PyDateTime, PyList, PyString, PyTzInfo};

use crate::convert::{list_items, non_empty_str, optional_sequence_number, to_json, to_python};
use crate::time::datetime_from_micros;

/// The Python repr of a value, for `__repr__` implementations.
fn repr_of<'py>(py: Python<'py>, value: impl IntoPyObject<'py>) -> String {
    match value.into_bound_py_any(py) {
        Ok(object) => object.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".to_owned()),
        Err(_) => "?".to_owned(),
    }
}

#[pyclass(module = "factstr", name = "NewEvent", frozen)]
pub struct NewEvent {
    pub inner: core::NewEvent,
}

#[pymethods]
impl NewEvent {
    #[new]
    fn new(event_type: &Bound<'_, PyAny>, payload: &Bound<'_, PyAny>) -> PyResult<Self> {
        let event_type = non_empty_str(event_type, "event_type")?;
        let payload = to_json(payload, "payload")?;
        Ok(Self { inner: core::NewEvent::new(event_type, payload) })
    }

    #[getter]
    fn event_type(&self) -> &str {
        &self.inner.event_type
    }

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

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "NewEvent(event_type={}, payload={})",
            repr_of(py, &*self.inner.event_type),
            self.payload(py)?.repr()?
        ))
    }
}

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
    fn new(event_types: Option<&Bound<'_, PyAny>>, payload_predicates: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
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
        Ok(Self { inner: core::EventFilter { event_types, payload_predicates } })
    }

    #[getter]
    fn event_types(&self) -> Option<Vec<String>> {
        self.inner.event_types.clone()
    }

    #[getter]
    fn payload_predicates<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyList>>> {
        let Some(predicates) = &self.inner.payload_predicates else { return Ok(None) };
        let items = predicates.iter().map(|p| to_python(py, p)).collect::<PyResult<Vec<_>>>()?;
        Ok(Some(PyList::new(py, items)?))
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<EventFilter>().is_ok_and(|o| filters_equal(&o.get().inner, &self.inner))
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

#[pyclass(module = "factstr", name = "EventQuery", frozen)]
#[derive(Clone)]
pub struct EventQuery {
    pub inner: core::EventQuery,
}

fn filters_from_python(filters: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<core::EventFilter>>> {
    match filters {
        Some(filters) if !filters.is_none() => Some(
            list_items(filters, "filters")?
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    f.cast::<EventFilter>().map(|f| f.get().inner.clone()).map_err(|_| {
                        crate::errors::type_error(format!("filters[{i}] must be an EventFilter"))
                    })
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
    fn new(filters: Option<&Bound<'_, PyAny>>, min_sequence_number: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(Self {
            inner: core::EventQuery {
                filters: filters_from_python(filters)?,
                min_sequence_number: optional_sequence_number(min_sequence_number, "min_sequence_number")?,
            },
        })
    }

    /// The query that matches every fact.
    #[staticmethod]
    fn all() -> Self {
        Self { inner: core::EventQuery::all() }
    }

    /// One filter matching any of `types`.
    #[staticmethod]
    fn for_event_types(types: &Bound<'_, PyAny>) -> PyResult<Self> {
        let filter = EventFilter::new(Some(types), None)?;
        Ok(Self { inner: core::EventQuery { filters: Some(vec![filter.inner]), min_sequence_number: None } })
    }

    fn with_filters(&self, filters: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(Self {
            inner: core::EventQuery {
                filters: filters_from_python(filters)?,
                min_sequence_number: self.inner.min_sequence_number,
            },
        })
    }

    fn with_min_sequence_number(&self, min_sequence_number: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        Ok(Self {
            inner: core::EventQuery {
                filters: self.inner.filters.clone(),
                min_sequence_number: optional_sequence_number(min_sequence_number, "min_sequence_number")?,
            },
        })
    }

    #[getter]
    fn filters(&self) -> Option<Vec<EventFilter>> {
        self.inner.filters.as_ref().map(|f| f.iter().cloned().map(EventFilter::from_core).collect())
    }

    #[getter]
    fn min_sequence_number(&self) -> Option<u64> {
        self.inner.min_sequence_number
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<EventQuery>().is_ok_and(|o| queries_equal(&o.get().inner, &self.inner))
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

/// A query argument: an `EventQuery`, or `None` for "everything".
pub fn query_arg(query: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<core::EventQuery> {
    match query {
        None => Ok(core::EventQuery::all()),
        Some(q) if q.is_none() => Ok(core::EventQuery::all()),
        Some(q) => q
            .cast::<EventQuery>()
            .map(|q| q.get().inner.clone())
            .map_err(|_| crate::errors::type_error(format!("{what} must be an EventQuery or None"))),
    }
}

#[pyclass(module = "factstr", name = "EventRecord", frozen)]
pub struct EventRecord {
    sequence_number: u64,
    occurred_at: Py<PyDateTime>,
    event_type: Py<PyString>,
    payload: Py<PyAny>,
}

#[pymethods]
impl EventRecord {
    #[new]
    fn new(
        sequence_number: &Bound<'_, PyAny>,
        occurred_at: Bound<'_, PyDateTime>,
        event_type: Bound<'_, PyString>,
        payload: Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        Ok(Self {
            sequence_number: crate::convert::sequence_number(sequence_number, "sequence_number")?,
            occurred_at: occurred_at.unbind(),
            event_type: event_type.unbind(),
            payload: payload.unbind(),
        })
    }

    #[getter]
    fn sequence_number(&self) -> u64 {
        self.sequence_number
    }

    #[getter]
    fn occurred_at<'py>(&self, py: Python<'py>) -> Bound<'py, PyDateTime> {
        self.occurred_at.bind(py).clone()
    }

    #[getter]
    fn event_type<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        self.event_type.bind(py).clone()
    }

    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.payload.bind(py).clone()
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<EventRecord>() else { return Ok(false) };
        let other = other.get();
        Ok(self.sequence_number == other.sequence_number
            && self.event_type.bind(py).as_any().eq(other.event_type.bind(py))?
            && self.occurred_at.bind(py).as_any().eq(other.occurred_at.bind(py))?
            && self.payload.bind(py).eq(other.payload.bind(py))?)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "EventRecord(sequence_number={}, occurred_at={}, event_type={}, payload={})",
            self.sequence_number,
            self.occurred_at.bind(py).repr()?,
            self.event_type.bind(py).repr()?,
            self.payload.bind(py).repr()?
        ))
    }
}

/// Builds the Python records of engine records. Records of one batch share their commit time,
/// so one `datetime` object serves a run of equal times.
pub fn records_to_python<'py>(py: Python<'py>, records: &[core::EventRecord]) -> PyResult<Bound<'py, PyList>> {
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
            payload: to_python(py, &record.payload)?.unbind(),
        };
        out.push(Bound::new(py, record)?);
    }
    PyList::new(py, out)
}

#[pyclass(module = "factstr", name = "QueryResult", frozen)]
pub struct QueryResult {
    event_records: Py<PyList>,
    last_returned_sequence_number: Option<u64>,
    current_context_version: Option<u64>,
    head_sequence_number: Option<u64>,
}

impl QueryResult {
    pub fn from_core(py: Python<'_>, result: &core::QueryResult) -> PyResult<Self> {
        Ok(Self {
            event_records: records_to_python(py, &result.event_records)?.unbind(),
            last_returned_sequence_number: result.last_returned_sequence_number,
            current_context_version: result.current_context_version,
            head_sequence_number: result.head_sequence_number,
        })
    }
}

#[pymethods]
impl QueryResult {
    #[getter]
    fn event_records<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        self.event_records.bind(py).clone()
    }

    #[getter]
    fn last_returned_sequence_number(&self) -> Option<u64> {
        self.last_returned_sequence_number
    }

    #[getter]
    fn current_context_version(&self) -> Option<u64> {
        self.current_context_version
    }

    /// The last sequence number of the whole store in the query's snapshot (`None`: empty).
    #[getter]
    fn head_sequence_number(&self) -> Option<u64> {
        self.head_sequence_number
    }

    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let Ok(other) = other.cast::<QueryResult>() else { return Ok(false) };
        let other = other.get();
        Ok(self.last_returned_sequence_number == other.last_returned_sequence_number
            && self.current_context_version == other.current_context_version
            && self.head_sequence_number == other.head_sequence_number
            && self.event_records.bind(py).as_any().eq(other.event_records.bind(py))?)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "QueryResult(event_records={}, last_returned_sequence_number={}, current_context_version={}, head_sequence_number={})",
            self.event_records.bind(py).repr()?,
            repr_of(py, self.last_returned_sequence_number),
            repr_of(py, self.current_context_version),
            repr_of(py, self.head_sequence_number)
        ))
    }
}

#[pyclass(module = "factstr", name = "AppendResult", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub struct AppendResult {
    #[pyo3(get)]
    first_sequence_number: u64,
    #[pyo3(get)]
    last_sequence_number: u64,
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
    fn __repr__(&self) -> String {
        format!(
            "AppendResult(first_sequence_number={}, last_sequence_number={}, committed_count={})",
            self.first_sequence_number, self.last_sequence_number, self.committed_count
        )
    }
}

#[pyclass(module = "factstr", name = "DurableStream", frozen, eq, hash)]
#[derive(PartialEq, Eq, Hash)]
pub struct DurableStream {
    #[pyo3(get)]
    name: String,
}

#[pymethods]
impl DurableStream {
    #[new]
    fn new(name: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Self { name: non_empty_str(name, "durable stream name")? })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("DurableStream({})", repr_of(py, &self.name))
    }
}

/// A durable name argument: a `str` or a `DurableStream`.
pub fn durable_name(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(stream) = value.cast::<DurableStream>() {
        return Ok(stream.get().name.clone());
    }
    if value.cast::<PyString>().is_err() {
        return Err(crate::errors::type_error("a durable stream must be named by a str or a DurableStream"));
    }
    non_empty_str(value, "durable stream name")
}

#[pyclass(module = "factstr", name = "DurableStreamInfo", frozen)]
pub struct DurableStreamInfo {
    #[pyo3(get)]
    name: String,
    query: core::EventQuery,
    #[pyo3(get)]
    last_processed_sequence_number: u64,
}

impl From<core::DurableStreamInfo> for DurableStreamInfo {
    fn from(info: core::DurableStreamInfo) -> Self {
        Self { name: info.name, query: info.query, last_processed_sequence_number: info.last_processed_sequence_number }
    }
}

#[pymethods]
impl DurableStreamInfo {
    #[getter]
    fn query(&self) -> EventQuery {
        EventQuery { inner: self.query.clone() }
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<DurableStreamInfo>().is_ok_and(|o| {
            let o = o.get();
            o.name == self.name
                && o.last_processed_sequence_number == self.last_processed_sequence_number
                && queries_equal(&o.query, &self.query)
        })
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

/// The `NewEvent`s of an `events` argument (a list or tuple of them).
pub fn events_arg(events: &Bound<'_, PyAny>) -> PyResult<Vec<core::NewEvent>> {
    if events.cast::<NewEvent>().is_ok() {
        return Err(crate::errors::type_error("events must be a list of NewEvent, not a single NewEvent"));
    }
    let items = list_items(events, "events")?;
    items
        .iter()
        .enumerate()
        .map(|(i, e)| {
            e.cast::<NewEvent>()
                .map(|e| e.get().inner.clone())
                .map_err(|_| crate::errors::type_error(format!("events[{i}] must be a NewEvent")))
        })
        .collect()
}

