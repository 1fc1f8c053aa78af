//! factstr-core: the engine of factstr for Python, with no Python in it.
//!
//! - `types`, `error`: the contract's values and its one error type;
//! - `matching`: which facts a query selects (SPEC §3), used by every store;
//! - `store`: the one generic store (`Store`), the rules every store shares, and the `Storage`
//!   interface each kind implements; `condition`: the tests of `append_if` and `append_unless`;
//!   `lifecycle`: closed and forked-off stores; `group_commit`: concurrent appends in one
//!   transaction; `idempotency`: idempotency keys and how long they are kept (SPEC §2.8);
//! - `memory`, `sqlite`, `postgres`: the storages; `sql`: what only the SQL ones share (query
//!   planning, number bounds, the shared layout, serialised events);
//! - `payload_keys`: index keys of payloads (the Memory and SQL indexes); `clock`: commit times;
//! - `signal`, `subscriber`: stream dispatch, shared by every store;
//! - `restore`: writing an exported log back (internal, for `factstr import`); `canonical_json`:
//!   whether a stored payload text can be exported as it is.
//!
//! The public modules and re-exports are what the binding (`rust/factstr-python`) uses.

pub mod canonical_json;
pub mod clock;
mod condition;
pub mod error;
mod group_commit;
pub mod idempotency;
mod lifecycle;
pub mod matching;
mod memory;
mod payload_keys;
mod postgres;
pub mod restore;
mod signal;
mod sql;
mod sqlite;
mod store;
mod subscriber;
pub mod types;

pub use condition::Condition;
pub use error::{Error, Result};
pub use group_commit::after_fork_in_child as group_commit_after_fork_in_child;
pub use idempotency::IdempotencyKey;
pub use memory::{MemoryStorage, MemoryStore};
pub use postgres::{
    check_url as check_postgres_url, redact_url, PostgresOptions, PostgresStorage, PostgresStore,
};
pub use signal::CommitSignal;
pub use sqlite::fork_gate as sqlite_fork_gate;
pub use sqlite::{SqliteOptions, SqliteStorage, SqliteStore, Synchronous, MAX_BUSY_TIMEOUT};
pub use store::{AppendRequest, AtOnce, EventStore, LeaseId, Storage, Store};
pub use subscriber::Subscriber;
pub use types::*;
