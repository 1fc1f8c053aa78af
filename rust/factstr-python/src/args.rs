//! The arguments of the store methods, converted and checked once: each type below is what a
//! `#[pymethods]` parameter of that kind is declared as, so the methods read like the stub
//! (`_factstr.pyi`). Bad input raises `TypeError` (wrong type) or `ValueError` (bad value) with
//! the argument's name. Arguments whose name is not always the same (`context_query`, a
//! sequence number) are converted by the functions at the end, used with
//! `#[pyo3(from_py_with = ...)]`; the other functions are the conversions themselves, for
//! callers that hold a plain Python object (the asyncio surface).
//!
//! The value classes themselves are in `values`; the JSON conversion in `convert`; durations
//! in `seconds` (`seconds_or`: their messages name the option, and each option has its own rule
//! about zero).

use factstr_core as core;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::convert::{list_items, non_empty_str, sequence_number};
use crate::errors::{type_error, value_error};
use crate::values::{DurableStream, EventQuery, NewEvent};

/// `events`: a list or tuple of `NewEvent` (a single `NewEvent` is refused, not wrapped).
pub struct Events(pub Vec<core::NewEvent>);

impl<'py> FromPyObject<'_, 'py> for Events {
    type Error = PyErr;

    fn extract(events: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        events_arg(&events).map(Self)
    }
}

/// `query`: an `EventQuery`, or `None` for every fact.
pub struct Query(pub core::EventQuery);

impl<'py> FromPyObject<'_, 'py> for Query {
    type Error = PyErr;

    fn extract(query: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        query_arg(Some(&query), "query").map(Self)
    }
}

impl Query {
    /// The query of an optional `query=None` argument (left out: every fact).
    pub fn or_all(query: Option<Query>) -> core::EventQuery {
        query.map_or_else(core::EventQuery::all, |q| q.0)
    }
}

/// A durable stream's name: a `str` or a `DurableStream`.
pub struct DurableName(pub String);

impl<'py> FromPyObject<'_, 'py> for DurableName {
    type Error = PyErr;

    fn extract(name: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        durable_name(&name).map(Self)
    }
}

/// `handler`: a callable taking one argument, a list of `EventRecord`.
pub struct Handler(pub Py<PyAny>);

impl<'py> FromPyObject<'_, 'py> for Handler {
    type Error = PyErr;

    fn extract(handler: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        if !handler.is_callable() {
            return Err(type_error(
                "handler must be callable with one argument, a list of EventRecord",
            ));
        }
        Ok(Self(handler.to_owned().unbind()))
    }
}

/// `limit`: how many records a query returns at most, an int >= 0 (`None`: no limit).
pub struct Limit(pub usize);

impl<'py> FromPyObject<'_, 'py> for Limit {
    type Error = PyErr;

    fn extract(limit: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let n = sequence_number(&limit, "limit").map_err(|_| {
            value_error(format!(
                "limit must be an int >= 0 or None, got {}",
                limit.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?;
        Ok(Self(usize::try_from(n).unwrap_or(usize::MAX)))
    }
}

impl Limit {
    /// The limit of an optional `limit=None` argument.
    pub fn or_none(limit: Option<Limit>) -> Option<usize> {
        limit.map(|l| l.0)
    }
}

/// `idempotency_key` of the append operations: a `str` (its value is checked by the engine,
/// `core::IdempotencyKey`) or `None`.
pub struct IdempotencyKey(pub String);

impl<'py> FromPyObject<'_, 'py> for IdempotencyKey {
    type Error = PyErr;

    fn extract(key: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        idempotency_key_arg(&key).map(Self)
    }
}

impl IdempotencyKey {
    /// The key of an optional `idempotency_key=None` argument.
    pub fn or_none(key: &Option<IdempotencyKey>) -> Option<&str> {
        key.as_ref().map(|k| k.0.as_str())
    }
}

/// The text of an `idempotency_key` argument (not `None`).
pub fn idempotency_key_arg(key: &Bound<'_, PyAny>) -> PyResult<String> {
    match key.cast::<PyString>() {
        Ok(text) => Ok(text.to_str()?.to_owned()),
        Err(_) => Err(type_error(format!(
            "idempotency_key must be a str or None, not {}",
            key.get_type().name()?
        ))),
    }
}

/// The `NewEvent`s of an `events` argument (a list or tuple of them).
pub fn events_arg(events: &Bound<'_, PyAny>) -> PyResult<Vec<core::NewEvent>> {
    if events.cast::<NewEvent>().is_ok() {
        return Err(type_error(
            "events must be a list of NewEvent, not a single NewEvent",
        ));
    }
    list_items(events, "events")?
        .iter()
        .enumerate()
        .map(|(i, e)| {
            e.cast::<NewEvent>()
                .map(|e| e.get().inner.clone())
                .map_err(|_| type_error(format!("events[{i}] must be a NewEvent")))
        })
        .collect()
}

/// A query argument named `what`: an `EventQuery`, or `None` (or left out) for every fact.
pub fn query_arg(query: Option<&Bound<'_, PyAny>>, what: &str) -> PyResult<core::EventQuery> {
    match query {
        None => Ok(core::EventQuery::all()),
        Some(q) if q.is_none() => Ok(core::EventQuery::all()),
        Some(q) => q
            .cast::<EventQuery>()
            .map(|q| q.get().inner.clone())
            .map_err(|_| type_error(format!("{what} must be an EventQuery or None"))),
    }
}

/// A durable name argument: a `str` or a `DurableStream`.
pub fn durable_name(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(stream) = value.cast::<DurableStream>() {
        return Ok(stream.get().name.clone());
    }
    if value.cast::<PyString>().is_err() {
        return Err(type_error(
            "a durable stream must be named by a str or a DurableStream",
        ));
    }
    non_empty_str(value, "durable stream name")
}

/// `append_if`'s `context_query`.
pub fn context_query(query: &Bound<'_, PyAny>) -> PyResult<core::EventQuery> {
    query_arg(Some(query), "context_query")
}

/// `append_unless`'s `fail_if_events_match`.
pub fn fail_if_events_match(query: &Bound<'_, PyAny>) -> PyResult<core::EventQuery> {
    query_arg(Some(query), "fail_if_events_match")
}

/// `append_if`'s `expected_context_version`: an int >= 0 or `None` (no matching fact yet).
pub fn expected_context_version(version: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    crate::convert::optional_sequence_number(Some(version), "expected_context_version")
}

/// `append_unless`'s `after`: an int >= 0, or `None` (any matching fact conflicts).
pub fn after(after: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    crate::convert::optional_sequence_number(Some(after), "after")
}

/// `reset_durable_stream`'s `sequence_number`: an int >= 0, or `None` (0, from the start).
pub fn cursor_position(position: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    crate::convert::optional_sequence_number(Some(position), "sequence_number")
}
