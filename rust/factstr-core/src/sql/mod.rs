//! What only the SQL stores (SQLite, PostgreSQL) share:
//!
//! - `layout`: the upstream tables both layouts have, and the batch-format marker (SPEC §9);
//! - `numbers`: sequence numbers as the signed 64-bit columns hold them (at most 2**63-1);
//! - `search`: query planning and reading over a log's indexes (`IndexedLog`);
//! - `prepared`: events serialised before the write lock is taken;
//! - `members`: the form of a payload index row's sequence numbers;
//! - `query_json`: a durable stream's query as the upstream cursor tables store it.

pub mod layout;
pub mod members;
pub mod numbers;
pub mod prepared;
pub mod query_json;
pub mod search;
