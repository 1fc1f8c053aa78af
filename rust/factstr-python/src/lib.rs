//! The private native module `factstr._factstr`. The public API is the `factstr` package,
//! which re-exports these classes. Layout: `convert` (Python <-> JSON), `errors` (the one
//! error mapping), `args` (the store methods' arguments), `values` (value classes; their hashes
//! `hashing`), `store`, `stream` (handler threads), `exit` (interpreter exit), `subscription`
//! (blocking iterators), `pages` (`iter_query`), `time` (commit times), `seconds` (timeouts),
//! `transfer` (the command line's export/import/copy paths, internal), `aio` (the engine side of
//! `factstr.aio`).

mod aio;
mod args;
mod convert;
mod errors;
mod exit;
mod hashing;
mod pages;
mod seconds;
mod store;
mod stream;
mod subscription;
mod time;
mod transfer;
mod values;

use pyo3::prelude::*;

#[pymodule]
fn _factstr(module: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::import_classes(module.py())?;
    module.add_class::<values::NewEvent>()?;
    module.add_class::<values::EventFilter>()?;
    module.add_class::<values::EventQuery>()?;
    module.add_class::<values::EventRecord>()?;
    module.add_class::<values::QueryResult>()?;
    module.add_class::<values::AppendResult>()?;
    module.add_class::<values::DurableStream>()?;
    module.add_class::<values::DurableStreamInfo>()?;
    module.add_class::<store::EventStore>()?;
    module.add_class::<store::MemoryStore>()?;
    module.add_class::<store::SqliteStore>()?;
    module.add_class::<store::PostgresStore>()?;
    module.add_class::<stream::EventStream>()?;
    module.add_class::<subscription::Subscription>()?;
    module.add_class::<transfer::Restorer>()?;
    aio::add_to(module)?;
    module.add_function(wrap_pyfunction!(stream::_exit_streams, module)?)?;
    module.add_function(wrap_pyfunction!(stream::_after_fork_in_child, module)?)?;
    module.add_function(wrap_pyfunction!(stream::_before_fork, module)?)?;
    module.add_function(wrap_pyfunction!(stream::_after_fork_in_parent, module)?)?;
    module.add_function(wrap_pyfunction!(store::_set_idempotency_retention, module)?)?;
    Ok(())
}
