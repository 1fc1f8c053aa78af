//! The store classes. `EventStore` carries every operation of SPEC §11 once, over the engine's
//! store interface; `MemoryStore`, `SqliteStore` and `PostgresStore` only construct it (and show
//! their location). The arguments are converted by the types of `args`.

use std::sync::Arc;

use factstr_core as core;
use factstr_core::Subscriber;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::args::{self, DurableName, Events, Handler, IdempotencyKey, Limit, Query};
use crate::errors::{detached, type_error, value_error};
use crate::seconds::{seconds_or, Zero};
use crate::stream::{replay, EventStream};
use crate::subscription::Subscription;
use crate::values::{AppendResult, DurableStreamInfo, QueryResult};

/// The operations every store offers (SPEC §11): append, query, conditional appends, live and
/// durable streams, subscriptions, cursor management and close.
#[pyclass(module = "factstr", name = "EventStore", subclass, frozen)]
pub struct EventStore {
    pub inner: Arc<dyn core::EventStore>,
    /// How the store shows itself (its repr while open), for the unclosed-store warning.
    label: String,
}

impl Drop for EventStore {
    /// SPEC §5 keeps registrations running when their store object is dropped; their threads,
    /// descriptors and connections then stay until the process ends. Say so, like an unclosed
    /// file does: a `ResourceWarning` (shown with `-W default` or `python -X dev`).
    fn drop(&mut self) {
        if self.inner.is_closed() || crate::exit::closing() {
            return;
        }
        let live = crate::stream::live_registrations(&self.inner);
        if live == 0 {
            return;
        }
        // Keep the cost small: only the registrations use the store from now on.
        self.inner.release_idle();
        let message = format!(
            "unclosed store {} with {live} live stream registration(s): its threads and connections stay \
             until the process ends; call close() or use `with store:`",
            self.label
        );
        // Dropped while the object is deallocated: the interpreter is attached.
        Python::attach(|py| {
            let category = py.get_type::<pyo3::exceptions::PyResourceWarning>();
            let Ok(message) = std::ffi::CString::new(message) else {
                return;
            };
            if let Err(error) = PyErr::warn(py, &category, &message, 1) {
                error.write_unraisable(py, None);
            }
        });
    }
}

/// `text` quoted as Python's `repr` quotes it (the stores' reprs are Python-style).
fn python_repr(text: &str) -> String {
    Python::attach(|py| {
        pyo3::types::PyString::new(py, text)
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_default()
    })
}

impl EventStore {
    fn start_live(
        &self,
        py: Python<'_>,
        query: core::EventQuery,
        handler: Handler,
    ) -> PyResult<EventStream> {
        let store = self.inner.clone();
        let subscriber = detached(py, || Subscriber::live(store, query))?;
        EventStream::start(py, subscriber, handler.0)
    }

    fn start_durable(
        &self,
        py: Python<'_>,
        durable: DurableName,
        query: core::EventQuery,
        handler: Handler,
    ) -> PyResult<EventStream> {
        let store = self.inner.clone();
        let mut subscriber = detached(py, || Subscriber::durable(store, &durable.0, query))?;
        replay(py, &mut subscriber, handler.0.bind(py))?;
        EventStream::start(py, subscriber, handler.0)
    }
}

#[pymethods]
impl EventStore {
    /// Commits `events` as one batch with consecutive sequence numbers. With an
    /// `idempotency_key` that committed before, returns that commit's result and writes nothing.
    #[pyo3(signature = (events, *, idempotency_key=None))]
    fn append(
        &self,
        py: Python<'_>,
        events: Events,
        idempotency_key: Option<IdempotencyKey>,
    ) -> PyResult<AppendResult> {
        let key = IdempotencyKey::or_none(&idempotency_key);
        detached(py, || self.inner.append_keyed(events.0, None, key)).map(AppendResult::from)
    }

    /// Commits `events` only if the context version of `context_query` is
    /// `expected_context_version`; raises `ConditionalAppendConflict` otherwise. With an
    /// `idempotency_key` that committed before, returns that commit's result (nothing checked).
    #[pyo3(signature = (events, context_query, expected_context_version, *, idempotency_key=None))]
    fn append_if(
        &self,
        py: Python<'_>,
        events: Events,
        #[pyo3(from_py_with = args::context_query)] context_query: core::EventQuery,
        #[pyo3(from_py_with = args::expected_context_version)] expected_context_version: Option<
            u64,
        >,
        idempotency_key: Option<IdempotencyKey>,
    ) -> PyResult<AppendResult> {
        let key = IdempotencyKey::or_none(&idempotency_key);
        let condition = core::Condition::VersionIs {
            context: &context_query,
            expected: expected_context_version,
        };
        detached(py, || {
            self.inner.append_keyed(events.0, Some(condition), key)
        })
        .map(AppendResult::from)
    }

    /// Commits `events` unless a fact matching `fail_if_events_match` has a sequence number
    /// above `after` (`None`: any matching fact); raises `ConditionalAppendConflict` otherwise.
    /// With an `idempotency_key` that committed before, returns that commit's result.
    #[pyo3(signature = (events, fail_if_events_match, after=None, *, idempotency_key=None))]
    fn append_unless(
        &self,
        py: Python<'_>,
        events: Events,
        #[pyo3(from_py_with = args::fail_if_events_match)] fail_if_events_match: core::EventQuery,
        #[pyo3(from_py_with = args::after)] after: Option<u64>,
        idempotency_key: Option<IdempotencyKey>,
    ) -> PyResult<AppendResult> {
        let key = IdempotencyKey::or_none(&idempotency_key);
        let condition = core::Condition::NoneAfter {
            context: &fail_if_events_match,
            after,
        };
        detached(py, || {
            self.inner.append_keyed(events.0, Some(condition), key)
        })
        .map(AppendResult::from)
    }

    /// The matching facts in sequence order (at most `limit`), with the context version.
    #[pyo3(signature = (query=None, *, limit=None))]
    fn query(
        &self,
        py: Python<'_>,
        query: Option<Query>,
        limit: Option<Limit>,
    ) -> PyResult<QueryResult> {
        let (query, limit) = (Query::or_all(query), Limit::or_none(limit));
        let result = detached(py, || self.inner.query(&query, limit))?;
        QueryResult::from_core(py, result)
    }

    /// The matching records one by one in ascending order, read `page_size` at a time (each
    /// page a snapshot of its own: a record committed meanwhile may appear; none is skipped or
    /// repeated). Holds about `page_size` records, however many match.
    #[pyo3(signature = (query=None, *, page_size=None), text_signature = "($self, query=None, *, page_size=10000)")]
    fn iter_query<'py>(
        &self,
        py: Python<'py>,
        query: Option<Query>,
        page_size: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        crate::pages::iter_query(py, Arc::clone(&self.inner), Query::or_all(query), page_size)
    }

    /// Calls `handler` with every batch committed from now on.
    fn stream_all(&self, py: Python<'_>, handler: Handler) -> PyResult<EventStream> {
        self.start_live(py, core::EventQuery::all(), handler)
    }

    /// Calls `handler` with the matching events of every batch committed from now on.
    fn stream_to(
        &self,
        py: Python<'_>,
        query: Option<Query>,
        handler: Handler,
    ) -> PyResult<EventStream> {
        self.start_live(py, Query::or_all(query), handler)
    }

    /// Replays every batch after the stored cursor of `durable`, then goes on live.
    fn stream_all_durable(
        &self,
        py: Python<'_>,
        durable: DurableName,
        handler: Handler,
    ) -> PyResult<EventStream> {
        self.start_durable(py, durable, core::EventQuery::all(), handler)
    }

    /// Like `stream_to`, delivering from the durable stream's saved cursor and saving it after
    /// each handled batch, so a restart resumes where it stopped.
    fn stream_to_durable(
        &self,
        py: Python<'_>,
        durable: DurableName,
        query: Option<Query>,
        handler: Handler,
    ) -> PyResult<EventStream> {
        self.start_durable(py, durable, Query::or_all(query), handler)
    }

    /// An iterator of batches: live, or durable (replaying from the stored cursor) when
    /// `durable` names a stream.
    #[pyo3(signature = (query=None, *, durable=None))]
    fn subscribe(
        &self,
        py: Python<'_>,
        query: Option<Query>,
        durable: Option<DurableName>,
    ) -> PyResult<Subscription> {
        let query = Query::or_all(query);
        let store = self.inner.clone();
        let subscriber = match durable {
            Some(name) => detached(py, || Subscriber::durable(store, &name.0, query))?,
            None => detached(py, || Subscriber::live(store, query))?,
        };
        Ok(Subscription::new(subscriber))
    }

    /// The stored durable cursors (name, query, last processed sequence number).
    fn durable_streams(&self, py: Python<'_>) -> PyResult<Vec<DurableStreamInfo>> {
        let streams = detached(py, || self.inner.durable_streams())?;
        Ok(streams.into_iter().map(DurableStreamInfo::from).collect())
    }

    /// Sets the cursor of an inactive durable stream (0: replay everything again).
    #[pyo3(signature = (name, sequence_number=None))]
    fn reset_durable_stream(
        &self,
        py: Python<'_>,
        name: DurableName,
        #[pyo3(from_py_with = args::cursor_position)] sequence_number: Option<u64>,
    ) -> PyResult<()> {
        let position = sequence_number.unwrap_or(0);
        detached(py, || self.inner.reset_durable_stream(&name.0, position))
    }

    /// Deletes a durable stream's cursor (refused while it is running).
    fn delete_durable_stream(&self, py: Python<'_>, name: DurableName) -> PyResult<()> {
        detached(py, || self.inner.delete_durable_stream(&name.0))
    }

    /// Internal, for the `factstr` command (see `transfer`): the whole batches after `after` as
    /// export lines (when `lines`), with `(lines, scanned_to, facts, batches, checksum)`.
    fn _export_page(
        &self,
        py: Python<'_>,
        after: u64,
        max_events: usize,
        lines: bool,
    ) -> PyResult<crate::transfer::ExportPageTuple> {
        crate::transfer::export_page_py(py, &self.inner, after, max_events, lines)
    }

    /// Internal, for the `factstr` command: `(last read, facts, checksum)` of a query page.
    fn _checksum_page(
        &self,
        py: Python<'_>,
        after: u64,
        limit: usize,
    ) -> PyResult<(u64, u64, u64)> {
        crate::transfer::checksum_page_py(py, &self.inner, after, limit)
    }

    /// Internal, for `factstr info`: the bytes the store takes on disk (`None`: cannot tell).
    fn _storage_size(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        detached(py, || self.inner.storage_size())
    }

    /// Internal, for `factstr import`: a writer of export lines into this store.
    #[pyo3(signature = (write_events=20_000))]
    fn _restorer(&self, write_events: usize) -> crate::transfer::Restorer {
        crate::transfer::Restorer::new(self.inner.clone(), write_events)
    }

    /// Internal, for `factstr import`: creates a durable stream with a given query and cursor
    /// (refused when the name exists).
    fn _restore_durable_stream(
        &self,
        py: Python<'_>,
        name: DurableName,
        query: Option<Query>,
        cursor: u64,
    ) -> PyResult<()> {
        let query = Query::or_all(query);
        let store = self.inner.clone();
        detached(py, move || {
            core::restore::restore_durable_stream(&*store, &name.0, &query, cursor)
        })
    }

    /// Closes the store: later calls raise `StoreClosedError`, streams and iterations end.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        detached(py, || self.inner.close())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, PyTuple>) -> PyResult<()> {
        self.close(py)
    }
}

/// The whole contract in process memory; facts live as long as the store object.
#[pyclass(module = "factstr", name = "MemoryStore", extends = EventStore, frozen)]
pub struct MemoryStore;

#[pymethods]
impl MemoryStore {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        let label = "MemoryStore()".to_owned();
        PyClassInitializer::from(EventStore {
            inner: Arc::new(core::MemoryStore::new()),
            label,
        })
        .add_subclass(Self)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        let closed = slf.as_super().get().inner.is_closed();
        format!("MemoryStore(){}", if closed { " [closed]" } else { "" })
    }
}

/// The whole contract in one SQLite file (WAL), shared by processes; the layout of
/// `factstr-sqlite` 0.5.2.
#[pyclass(module = "factstr", name = "SqliteStore", extends = EventStore, frozen)]
pub struct SqliteStore {
    path: std::path::PathBuf,
}

/// The options of `SqliteStore(...)`; those left out (None) take the engine's defaults.
pub(crate) fn sqlite_options(
    synchronous: &str,
    poll_interval: Option<&Bound<'_, PyAny>>,
    busy_timeout: Option<&Bound<'_, PyAny>>,
) -> PyResult<core::SqliteOptions> {
    let defaults = core::SqliteOptions::default();
    let synchronous = match synchronous.to_ascii_lowercase().as_str() {
        "full" => core::Synchronous::Full,
        "normal" => core::Synchronous::Normal,
        other => {
            return Err(value_error(format!(
                "synchronous must be \"full\" or \"normal\", not {other:?}"
            )))
        }
    };
    Ok(core::SqliteOptions {
        synchronous,
        poll_interval: seconds_or(
            poll_interval,
            "poll_interval",
            Zero::Refused,
            defaults.poll_interval,
        )?,
        busy_timeout: seconds_or(
            busy_timeout,
            "busy_timeout",
            Zero::Allowed,
            defaults.busy_timeout,
        )?,
    })
}

impl SqliteStore {
    /// The Python object of an opened engine store (also built by `factstr.aio`).
    pub(crate) fn initializer(
        path: std::path::PathBuf,
        store: core::SqliteStore,
    ) -> PyClassInitializer<Self> {
        let label = format!("SqliteStore({})", python_repr(&path.display().to_string()));
        PyClassInitializer::from(EventStore {
            inner: Arc::new(store),
            label,
        })
        .add_subclass(Self { path })
    }
}

#[pymethods]
impl SqliteStore {
    #[new]
    // Options left out take the engine's defaults (`SqliteOptions::default()`), which the
    // text signature shows.
    #[pyo3(
        signature = (path, *, synchronous="full", poll_interval=None, busy_timeout=None),
        text_signature = "(path, *, synchronous='full', poll_interval=0.01, busy_timeout=5.0)"
    )]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        synchronous: &str,
        poll_interval: Option<&Bound<'_, PyAny>>,
        busy_timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let options = sqlite_options(synchronous, poll_interval, busy_timeout)?;
        let opened_path = path.clone();
        let store = detached(py, move || core::SqliteStore::open(&opened_path, options))?;
        Ok(Self::initializer(path, store))
    }

    /// The database file.
    #[getter]
    fn path(&self) -> std::path::PathBuf {
        self.path.clone()
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        let store = slf.as_super().get();
        format!(
            "{}{}",
            store.label,
            if store.inner.is_closed() {
                " [closed]"
            } else {
                ""
            }
        )
    }
}

/// The whole contract on a PostgreSQL database, for many processes on many machines; the
/// layout of `factstr-postgres` 0.5.2.
#[pyclass(module = "factstr", name = "PostgresStore", extends = EventStore, frozen)]
pub struct PostgresStore {
    shown_url: String,
}

/// The options of `PostgresStore(...)` and `bootstrap(...)`; those left out (None) take the
/// engine's defaults (`PostgresOptions::default()`), which the text signatures show.
pub(crate) fn postgres_options(
    pool_size: Option<&Bound<'_, PyAny>>,
    connect_timeout: Option<&Bound<'_, PyAny>>,
    statement_timeout: Option<&Bound<'_, PyAny>>,
    reconnect_timeout: Option<&Bound<'_, PyAny>>,
) -> PyResult<core::PostgresOptions> {
    let defaults = core::PostgresOptions::default();
    let pool_size = match pool_size {
        Some(size) if !size.is_none() => {
            // bool is an int in Python: refused first, like everywhere a count is taken.
            if size.is_instance_of::<pyo3::types::PyBool>()
                || !size.is_instance_of::<pyo3::types::PyInt>()
            {
                return Err(type_error(format!(
                    "pool_size must be an int, not {}",
                    size.get_type().name()?
                )));
            }
            match size.extract::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(value_error(format!(
                        "pool_size must be an int >= 1, got {size}"
                    )))
                }
            }
        }
        _ => defaults.pool_size,
    };
    Ok(core::PostgresOptions {
        pool_size,
        // Zero would fail every connection attempt at once.
        connect_timeout: seconds_or(
            connect_timeout,
            "connect_timeout",
            Zero::Refused,
            defaults.connect_timeout,
        )?,
        // Zero would fail every statement at once.
        statement_timeout: seconds_or(
            statement_timeout,
            "statement_timeout",
            Zero::Refused,
            defaults.statement_timeout,
        )?,
        // Zero reports the first failure of a stream instead of retrying.
        reconnect_timeout: seconds_or(
            reconnect_timeout,
            "reconnect_timeout",
            Zero::Allowed,
            defaults.reconnect_timeout,
        )?,
    })
}

impl PostgresStore {
    pub(crate) fn initializer(store: core::PostgresStore) -> PyClassInitializer<Self> {
        let shown_url = store.shown_url().to_owned();
        let label = format!("PostgresStore({})", python_repr(&shown_url));
        PyClassInitializer::from(EventStore {
            inner: Arc::new(store),
            label,
        })
        .add_subclass(Self { shown_url })
    }
}

#[pymethods]
impl PostgresStore {
    #[new]
    #[pyo3(
        signature = (url, *, pool_size=None, connect_timeout=None, reconnect_timeout=None, statement_timeout=None),
        text_signature = "(url, *, pool_size=4, connect_timeout=5.0, reconnect_timeout=30.0, statement_timeout=30.0)"
    )]
    fn new(
        py: Python<'_>,
        url: &str,
        pool_size: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        reconnect_timeout: Option<&Bound<'_, PyAny>>,
        statement_timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let options = postgres_options(
            pool_size,
            connect_timeout,
            statement_timeout,
            reconnect_timeout,
        )?;
        let url = url.to_owned();
        let store = detached(py, move || core::PostgresStore::open(&url, options))?;
        Ok(Self::initializer(store))
    }

    /// Creates the database `database_name` on the server `server_url` names when it is
    /// missing, and returns a store on it.
    #[staticmethod]
    #[pyo3(
        signature = (server_url, database_name, *, pool_size=None, connect_timeout=None, reconnect_timeout=None, statement_timeout=None),
        text_signature = "(server_url, database_name, *, pool_size=4, connect_timeout=5.0, reconnect_timeout=30.0, statement_timeout=30.0)"
    )]
    fn bootstrap(
        py: Python<'_>,
        server_url: &str,
        database_name: &str,
        pool_size: Option<&Bound<'_, PyAny>>,
        connect_timeout: Option<&Bound<'_, PyAny>>,
        reconnect_timeout: Option<&Bound<'_, PyAny>>,
        statement_timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PostgresStore>> {
        let options = postgres_options(
            pool_size,
            connect_timeout,
            statement_timeout,
            reconnect_timeout,
        )?;
        let (server_url, database_name) = (server_url.to_owned(), database_name.to_owned());
        let store = detached(py, move || {
            core::PostgresStore::bootstrap(&server_url, &database_name, options)
        })?;
        Py::new(py, Self::initializer(store))
    }

    /// The URL of the database, without its password.
    #[getter]
    fn url(&self) -> &str {
        &self.shown_url
    }

    fn __repr__(slf: &Bound<'_, Self>) -> String {
        let store = slf.as_super().get();
        format!(
            "{}{}",
            store.label,
            if store.inner.is_closed() {
                " [closed]"
            } else {
                ""
            }
        )
    }
}

/// Tests only: shortens the idempotency key retention of every store in this process (at least
/// `min_keys` newest keys, and every key younger than `min_age` seconds), so that tests can see
/// keys pruned. The contract's retention is 1,000,000 keys and 24 hours (SPEC §2.8).
#[pyfunction]
pub fn _set_idempotency_retention(min_keys: u64, min_age: f64) -> PyResult<()> {
    let min_age = std::time::Duration::try_from_secs_f64(min_age)
        .map_err(|e| value_error(format!("min_age: {e}")))?;
    core::idempotency::Retention::set_for_tests(core::idempotency::Retention { min_age, min_keys });
    Ok(())
}
