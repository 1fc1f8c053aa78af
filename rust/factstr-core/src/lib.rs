//! factstr-core: the engine of factstr for Python, with no Python in it.
//!
//! - `types`, `error`: the contract's values and its one error type;
//! - `matching`: which facts a query selects (SPEC §3), used by every store;
//! - `store`: the interface every store implements; `condition`: the tests of `append_if` and
//!   `append_unless`;
//! - `memory`, `sqlite`, `postgres`: the stores; `search`: query planning shared by the SQL stores;
//! - `payload_keys`, `query_json`, `clock`: storage helpers shared by the stores;
//! - `restore`: writing an exported log back (internal, for `factstr import`); `canonical_json`:
//!   whether a stored payload text can be exported as it is;
//! - `sql_numbers`: the largest sequence number the SQL stores hold (2**63-1);
//! - `signal`, `subscriber`, `durable`: stream dispatch, shared by every store.

pub mod canonical_json;
pub mod clock;
pub mod condition;
pub mod durable;
pub mod error;
pub mod lifecycle;
pub mod matching;
pub mod memory;
pub mod payload_keys;
pub mod postgres;
pub mod postings;
pub mod prepared;
pub mod query_json;
pub mod restore;
pub mod search;
pub mod signal;
pub mod sql_numbers;
pub mod sqlite;
pub mod store;
pub mod subscriber;
pub mod types;

pub use condition::Condition;
pub use error::{Error, Result};
pub use memory::MemoryStore;
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::fork_gate as sqlite_fork_gate;
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};
pub use store::EventStore;
pub use subscriber::Subscriber;
pub use types::*;
