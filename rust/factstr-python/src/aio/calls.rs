//! The awaitable store calls of `factstr.aio`: each converts its arguments on the loop thread
//! with the sync store's converters, runs the engine call on an engine thread and resolves an
//! `asyncio.Future` on the loop with the same result types as the sync store.
//!
//! A call that was cancelled by its caller still runs to its end on the engine thread (an
//! append commits its whole batch or nothing, SPEC §12) and its result is dropped; nothing is
//! retried.

use std::sync::Arc;

use factstr_core as core;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::completions::{settle, Completions, Outcome};
use super::ready::ready;
use crate::args::{durable_name, events_arg, query_arg, IdempotencyKey, Limit, Query};
use crate::convert::optional_sequence_number;
use crate::errors::{to_py_err, unwound};
use crate::store::{postgres_options, sqlite_options, EventStore};
use crate::values::{AppendResult, DurableStreamInfo, QueryResult};

/// An outcome that converts the engine's result with `convert` on the loop thread.
pub fn outcome<T: Send + 'static>(
    result: core::Result<T>,
    convert: impl FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
) -> Outcome {
    Box::new(move |py, future| {
        let value = match result {
            Ok(value) => convert(py, value).map(|v| v.into_bound(py)),
            Err(error) => Err(to_py_err(py, error)),
        };
        settle(py, future, value)
    })
}

fn engine(store: &Bound<'_, EventStore>) -> Arc<dyn core::EventStore> {
    store.get().inner.clone()
}

fn none(py: Python<'_>, _: ()) -> PyResult<Py<PyAny>> {
    Ok(py.None())
}

fn append_result(py: Python<'_>, result: core::AppendResult) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, AppendResult::from(result))?.into_any())
}

#[pyfunction]
#[pyo3(signature = (completions, store, events, idempotency_key=None))]
fn _aio_append<'py>(
    py: Python<'py>,
    completions: &Bound<'py, Completions>,
    store: &Bound<'py, EventStore>,
    events: &Bound<'py, PyAny>,
    idempotency_key: Option<IdempotencyKey>,
) -> PyResult<Bound<'py, PyAny>> {
    let events = events_arg(events)?;
    let store = engine(store);
    // The fast path (see `ready`): done on the loop when the engine can do it without waiting.
    // A keyed append always goes to an engine thread: its key lookup belongs to the storage's
    // append path, which the fast path does not take.
    let events = if idempotency_key.is_some() {
        events
    } else {
        match store.try_append_at_once(events) {
            core::AtOnce::Done(result) => return ready(py, result, append_result),
            core::AtOnce::Busy(events) => events,
        }
    };
    completions.get().run(py, move || {
        let key = IdempotencyKey::or_none(&idempotency_key);
        outcome(
            unwound(|| store.append_keyed(events, None, key)),
            append_result,
        )
    })
}

#[pyfunction]
#[pyo3(signature = (completions, store, events, context_query, expected_context_version, idempotency_key=None))]
fn _aio_append_if<'py>(
    py: Python<'py>,
    completions: &Bound<'py, Completions>,
    store: &Bound<'py, EventStore>,
    events: &Bound<'py, PyAny>,
    context_query: &Bound<'py, PyAny>,
    expected_context_version: &Bound<'py, PyAny>,
    idempotency_key: Option<IdempotencyKey>,
) -> PyResult<Bound<'py, PyAny>> {
    let events = events_arg(events)?;
    let context = query_arg(Some(context_query), "context_query")?;
    let expected =
        optional_sequence_number(Some(expected_context_version), "expected_context_version")?;
    let store = engine(store);
    completions.get().run(py, move || {
        let key = IdempotencyKey::or_none(&idempotency_key);
        let condition = core::Condition::VersionIs {
            context: &context,
            expected,
        };
        outcome(
            unwound(|| store.append_keyed(events, Some(condition), key)),
            append_result,
        )
    })
}

#[pyfunction]
#[pyo3(signature = (completions, store, events, fail_if_events_match, after=None, idempotency_key=None))]
fn _aio_append_unless<'py>(
    py: Python<'py>,
    completions: &Bound<'py, Completions>,
    store: &Bound<'py, EventStore>,
    events: &Bound<'py, PyAny>,
    fail_if_events_match: &Bound<'py, PyAny>,
    after: Option<&Bound<'py, PyAny>>,
    idempotency_key: Option<IdempotencyKey>,
) -> PyResult<Bound<'py, PyAny>> {
    let events = events_arg(events)?;
    let context = query_arg(Some(fail_if_events_match), "fail_if_events_match")?;
    let after = optional_sequence_number(after, "after")?;
    let store = engine(store);
    completions.get().run(py, move || {
        let key = IdempotencyKey::or_none(&idempotency_key);
        let condition = core::Condition::NoneAfter {
            context: &context,
            after,
        };
        outcome(
            unwound(|| store.append_keyed(events, Some(condition), key)),
            append_result,
        )
    })
}

#[pyfunction]
#[pyo3(signature = (completions, store, query=None, limit=None))]
fn _aio_query<'py>(
    py: Python<'py>,
    completions: &Bound<'py, Completions>,
    store: &Bound<'py, EventStore>,
    query: Option<Query>,
    limit: Option<Limit>,
) -> PyResult<Bound<'py, PyAny>> {
    let (query, limit) = (Query::or_all(query), Limit::or_none(limit));
    let store = engine(store);
    completions.get().run(py, move || {
        outcome(unwound(|| store.query(&query, limit)), |py, result| {
            Ok(Py::new(py, QueryResult::from_core(py, result)?)?.into_any())
        })
    })
}

/// The records of a query as a list (for `iter_query`'s pages: no `QueryResult` around them).
#[pyfunction]
fn _aio_query_page<'py>(
    py: Python<'py>,
    completions: &Bound<'py, Completions>,
    store: &Bound<'py, EventStore>,
    query: &Bound<'py, PyAny>,
    after: u64,
    limit: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let mut query = query_arg(Some(query), "query")?;
    query.min_sequence_number = Some(after);
    let store = engine(store);
    completions.get().run(py, move || {
        outcome(
            unwound(|| store.query(&query, Some(limit))),
            |py, result| {
                Ok(crate::values::records_to_python(py, &result.event_records)?
                    .into_any()
                    .unbind())
            },
        )
    })
}

#[pyfunction]
fn _aio_durable_streams<'py>(
    py: Python<'py>,
    completions: &Bound<'py, Completions>,
    store: &Bound<'py, EventStore>,
) -> PyResult<Bound<'py, PyAny>> {
    let store = engine(store);
    completions.get().run(py, move || {
        outcome(unwound(|| store.durable_streams()), |py, streams| {
            let infos = streams
                .into_iter()
                .map(|info| Py::new(py, DurableStreamInfo::from(info)))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, infos)?.into_any().unbind())
        })
    })
}

#[pyfunction]
#[pyo3(signature = (completions, store, name, sequence_number=None))]
fn _aio_reset_durable_stream<'py>(
    py: Python<'py>,
    completions: &Bound<'py, Completions>,
    store: &Bound<'py, EventStore>,
    name: &Bound<'py, PyAny>,
    sequence_number: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let name = durable_name(name)?;
    let position = match sequence_number {
        Some(number) if !number.is_none() => {
            crate::convert::sequence_number(number, "sequence_number")?
        }
        _ => 0,
    };
    let store = engine(store);
    completions.get().run(py, move || {
        outcome(
            unwound(|| store.reset_durable_stream(&name, position)),
            none,
        )
    })
}

#[pyfunction]
fn _aio_delete_durable_stream<'py>(
    py: Python<'py>,
    completions: &Bound<'py, Completions>,
    store: &Bound<'py, EventStore>,
    name: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let name = durable_name(name)?;
    let store = engine(store);
    completions.get().run(py, move || {
        outcome(unwound(|| store.delete_durable_stream(&name)), none)
    })
}

#[pyfunction]
fn _aio_close<'py>(
    py: Python<'py>,
    completions: &Bound<'py, Completions>,
    store: &Bound<'py, EventStore>,
) -> PyResult<Bound<'py, PyAny>> {
    let store = engine(store);
    completions
        .get()
        .run(py, move || outcome(unwound(|| store.close()), none))
}

/// What an aio store opens on its first awaited call: the checked options of its constructor.
enum Target {
    Sqlite(std::path::PathBuf, core::SqliteOptions),
    Postgres(String, core::PostgresOptions),
    Bootstrap(String, String, core::PostgresOptions),
}

/// An unopened SQL store: its constructor's arguments, checked (SPEC §12: constructors do no
/// blocking I/O; bad arguments raise at once, an unreachable server on the first await).
#[pyclass(module = "factstr._factstr", name = "_AioOpener", frozen)]
pub struct AioOpener {
    target: Target,
}

enum Opened {
    Sqlite(std::path::PathBuf, core::SqliteStore),
    Postgres(core::PostgresStore),
}

#[pymethods]
impl AioOpener {
    #[staticmethod]
    #[pyo3(signature = (path, *, synchronous="full", poll_interval=None, busy_timeout=None))]
    fn sqlite(
        path: std::path::PathBuf,
        synchronous: &str,
        poll_interval: Option<&Bound<'_, PyAny>>,
        busy_timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let options = sqlite_options(synchronous, poll_interval, busy_timeout)?;
        Ok(Self {
            target: Target::Sqlite(path, options),
        })
    }

    #[staticmethod]
    #[pyo3(signature = (url, *, pool_size=None, connect_timeout=None, reconnect_timeout=None, statement_timeout=None))]
    fn postgres(
        py: Python<'_>,
        url: &str,
        pool_size: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        reconnect_timeout: Option<&Bound<'_, PyAny>>,
        statement_timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let options = postgres_options(
            pool_size,
            connect_timeout,
            statement_timeout,
            reconnect_timeout,
        )?;
        core::check_postgres_url(url).map_err(|e| to_py_err(py, e))?;
        Ok(Self {
            target: Target::Postgres(url.to_owned(), options),
        })
    }

    #[staticmethod]
    #[pyo3(signature = (server_url, database_name, *, pool_size=None, connect_timeout=None, reconnect_timeout=None, statement_timeout=None))]
    fn bootstrap(
        py: Python<'_>,
        server_url: &str,
        database_name: &str,
        pool_size: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        reconnect_timeout: Option<&Bound<'_, PyAny>>,
        statement_timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let options = postgres_options(
            pool_size,
            connect_timeout,
            statement_timeout,
            reconnect_timeout,
        )?;
        core::check_postgres_url(server_url).map_err(|e| to_py_err(py, e))?;
        Ok(Self {
            target: Target::Bootstrap(server_url.to_owned(), database_name.to_owned(), options),
        })
    }

    /// Opens the store on an engine thread; the future resolves with the sync store object.
    fn open<'py>(
        &self,
        py: Python<'py>,
        completions: &Bound<'py, Completions>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let target = match &self.target {
            Target::Sqlite(path, options) => Target::Sqlite(path.clone(), options.clone()),
            Target::Postgres(url, options) => Target::Postgres(url.clone(), options.clone()),
            Target::Bootstrap(server, name, options) => {
                Target::Bootstrap(server.clone(), name.clone(), options.clone())
            }
        };
        completions.get().run(py, move || {
            let opened = unwound(|| match target {
                Target::Sqlite(path, options) => {
                    core::SqliteStore::open(&path, options).map(|s| Opened::Sqlite(path, s))
                }
                Target::Postgres(url, options) => {
                    core::PostgresStore::open(&url, options).map(Opened::Postgres)
                }
                Target::Bootstrap(server, name, options) => {
                    core::PostgresStore::bootstrap(&server, &name, options).map(Opened::Postgres)
                }
            });
            outcome(opened, |py, opened| match opened {
                Opened::Sqlite(path, store) => Ok(Py::new(
                    py,
                    crate::store::SqliteStore::initializer(path, store),
                )?
                .into_any()),
                Opened::Postgres(store) => {
                    Ok(Py::new(py, crate::store::PostgresStore::initializer(store))?.into_any())
                }
            })
        })
    }
}

pub fn add_functions(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(_aio_append, module)?)?;
    module.add_function(wrap_pyfunction!(_aio_append_if, module)?)?;
    module.add_function(wrap_pyfunction!(_aio_append_unless, module)?)?;
    module.add_function(wrap_pyfunction!(_aio_query, module)?)?;
    module.add_function(wrap_pyfunction!(_aio_query_page, module)?)?;
    module.add_function(wrap_pyfunction!(_aio_durable_streams, module)?)?;
    module.add_function(wrap_pyfunction!(_aio_reset_durable_stream, module)?)?;
    module.add_function(wrap_pyfunction!(_aio_delete_durable_stream, module)?)?;
    module.add_function(wrap_pyfunction!(_aio_close, module)?)?;
    Ok(())
}
