//! The PostgreSQL store: the whole contract on a PostgreSQL database, on the table layout of
//! `factstr-postgres` 0.5.2, for many processes on many machines.
//!
//! - Connections: a pool shared by the store's threads (`pool`) of connections whose every wait
//!   has a deadline (`client`), TLS by rustls (`tls`), URLs with libpq's TLS modes and without
//!   passwords in any message (`url`).
//! - Writes: serialised by the append lock, which also keeps upstream writers out (`writes`); an
//!   append with an idempotency key takes the locked path with its key (`idempotency`);
//!   concurrent appends of the store's threads share one transaction (`group`).
//! - Reads: the shared `sql::search` over this database's indexes (`reads`), one snapshot per
//!   call: queries read the log's state in one statement and ignore rows above its head, streams
//!   read in a REPEATABLE READ transaction.
//! - Streams: a LISTEN connection wakes them at every commit, anyone's (`listener`).
//! - Durable streams: cursors in the upstream table, exclusivity by advisory lock (`durable`).

mod bulk;
mod client;
mod durable;
mod group;
mod idempotency;
mod listener;
mod literals;
mod pool;
mod postings;
mod reads;
mod restore;
mod schema;
mod size;
mod tls;
mod url;
mod writes;

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::restore::RestoredBatch;
use crate::signal::CommitSignal;
use crate::sql::numbers;
use crate::sql::prepared::{prepare_events, FloatText};
use crate::sql::search;
use crate::store::{AppendRequest, Storage, Store};
use crate::types::{
    AppendResult, BatchPage, DurableStreamInfo, EventQuery, EventRecord, QueryResult,
};
use client::Client;
use pool::{Conn, Deadlines, Pool, Pooled};
use reads::PgLog;

pub use url::redact as redact_url;

#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections the store's threads share.
    pub pool_size: usize,
    /// How long connecting to the server may take, everything included (TCP, TLS, startup,
    /// authentication).
    pub connect_timeout: Duration,
    /// How long the store waits for the server's answer to one round trip (one statement, or a
    /// few sent together) before it gives up on the connection: a bound per round trip, not per
    /// call, so long reads made of many round trips are not cut short.
    pub statement_timeout: Duration,
    /// How long a stream keeps retrying while the database is unreachable before it reports
    /// the failure.
    pub reconnect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            reconnect_timeout: Duration::from_secs(30),
        }
    }
}

/// The PostgreSQL store (see `store` for what every store shares).
pub type PostgresStore = Store<PostgresStorage>;

pub struct PostgresStorage {
    /// Shared with the listener, which holds it weakly (it ends when the store is gone).
    pool: Arc<Pool>,
    options: PostgresOptions,
    shown_url: String,
    listening: AtomicBool,
}

impl PostgresStorage {
    /// Runs `work` in a read-only REPEATABLE READ transaction: one snapshot for the whole call.
    fn read<T>(&self, work: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut conn = self.pool.get()?;
        conn.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(|e| conn.error(e))?;
        let out = guarded(&mut conn, work);
        let ended = conn
            .client
            .batch_execute(if out.is_ok() { "COMMIT" } else { "ROLLBACK" });
        if ended.is_err() {
            conn.discard();
        }
        let out = out?;
        ended.map_err(|e| conn.error(e))?;
        Ok(out)
    }

    /// Runs `work` on the log as one statement found it (`reads::read_state` for the payload
    /// keys of `query`, with the first `limit` candidate rows), without a transaction: rows above
    /// that head are ignored, so the whole call reads one snapshot (see `reads`). A query of a
    /// context is usually that one round trip.
    fn read_at_head<T>(
        &self,
        query: &EventQuery,
        limit: Option<usize>,
        work: impl FnOnce(&mut PgLog<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.pool.get()?;
        let prefetch = reads::Prefetch::for_query(query, limit);
        let state = reads::read_state(&mut conn, None, Some(query), prefetch)?;
        guarded(&mut conn, |conn| work(&mut PgLog::at(conn, state, true)))
    }

    /// Runs `work` on a pooled connection (a statement of its own, or a transaction it manages).
    fn with_conn<T>(&self, work: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let mut conn = self.pool.get()?;
        work(&mut conn)
    }
}

/// Runs `work`; a panic (a bug) must not reach the caller as one, nor leave this connection in a
/// transaction: it becomes an error, and the connection is closed instead of pooled.
fn guarded<T>(conn: &mut Pooled<'_>, work: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
    match panic::catch_unwind(AssertUnwindSafe(|| work(conn))) {
        Ok(out) => out,
        Err(panic) => {
            conn.discard();
            Err(Error::Backend(format!(
                "internal error while reading: {}",
                panic_message(&*panic)
            )))
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic")
}

/// A pool of `size` connections to the database `url` names.
fn connection_pool(
    url: &str,
    options: &PostgresOptions,
    size: usize,
) -> Result<(Pool, url::ParsedUrl)> {
    let parsed = url::parse(url)?;
    let mut config: tokio_postgres::Config =
        parsed
            .driver_url
            .parse()
            .map_err(|e: tokio_postgres::Error| {
                let reason = url::scrub(&e.to_string(), parsed.password.as_deref());
                Error::InvalidInput(format!(
                    "invalid PostgreSQL URL {}: {reason}",
                    parsed.redacted
                ))
            })?;
    config.connect_timeout(options.connect_timeout);
    if config.get_application_name().is_none() {
        config.application_name("factstr");
    }
    let tls = tls::connector(parsed.ssl_mode, parsed.root_cert.as_deref())?;
    let deadlines = Deadlines {
        connect: options.connect_timeout,
        round_trip: options.statement_timeout,
    };
    Ok((
        Pool::new(config, tls, deadlines, parsed.password.clone(), size),
        parsed,
    ))
}

impl PostgresStore {
    /// Connects to the database `url` names and creates the schema when missing.
    pub fn open(url: &str, options: PostgresOptions) -> Result<Self> {
        let (pool, parsed) = connection_pool(url, &options, options.pool_size)?;
        schema::prepare(&pool, &parsed.redacted)?;
        Ok(Store::from_storage(PostgresStorage {
            pool: Arc::new(pool),
            options,
            shown_url: parsed.redacted,
            listening: AtomicBool::new(false),
        }))
    }

    /// Creates the database `database_name` on the server `server_url` names (unless it
    /// exists) and opens a store on it.
    pub fn bootstrap(
        server_url: &str,
        database_name: &str,
        options: PostgresOptions,
    ) -> Result<Self> {
        let (server, _) = connection_pool(server_url, &options, 1)?;
        schema::create_database(&server, database_name)?;
        Self::open(&url::with_database(server_url, database_name), options)
    }

    /// The URL without its password.
    pub fn shown_url(&self) -> &str {
        &self.storage().shown_url
    }
}

impl Storage for PostgresStorage {
    /// A connection of its own holding the name's session advisory lock (see `durable`).
    type NameLock = Client;
    const BOUND_TO_PROCESS: bool = true;
    const LARGEST_NUMBER: u64 = numbers::LARGEST;

    fn append(&self, request: AppendRequest<'_>) -> Result<AppendResult> {
        let prepared = prepare_events(&request.events, FloatText::Fraction);
        let mut conn = self.pool.get()?;
        let result = match &request.idempotency_key {
            Some(key) => idempotency::append(&mut conn, &prepared, request.condition, key),
            None => writes::append(&mut conn, &prepared, request.condition),
        };
        if result.is_err() && conn.client.batch_execute("ROLLBACK").is_err() {
            // Never hand a connection with an open transaction back to the pool.
            conn.discard();
        }
        result
    }

    /// One transaction and one append lock for the whole group (see `group`).
    fn append_group(&self, requests: Vec<AppendRequest<'_>>) -> Vec<Result<AppendResult>> {
        self.append_in_one_transaction(requests)
    }

    fn query(&self, query: &EventQuery, limit: Option<usize>) -> Result<QueryResult> {
        self.read_at_head(query, limit, |log| search::query(log, query, limit))
    }

    fn query_page(&self, query: &EventQuery, limit: usize) -> Result<Vec<EventRecord>> {
        self.read_at_head(query, Some(limit), |log| {
            let plan = search::plan(log, query)?;
            let after = query.min_sequence_number.unwrap_or(0);
            search::matching_records(log, query, &plan, after, limit)
        })
    }

    fn read_batches(&self, after: u64, query: &EventQuery, max_events: usize) -> Result<BatchPage> {
        self.read(|conn| {
            search::read_batches(&mut PgLog::new(conn, None), after, query, max_events)
        })
    }

    fn restore(&self, batches: Vec<RestoredBatch>, written: AppendResult) -> Result<AppendResult> {
        self.restore_after_head(&batches, written)
    }

    fn head(&self) -> Result<u64> {
        self.with_conn(reads::head)
    }

    fn storage_size(&self) -> Result<Option<u64>> {
        self.with_conn(size::storage_size)
    }

    fn check_replayable(&self) -> Result<()> {
        self.with_conn(durable::check_batch_format)
    }

    fn stored_query(&self, name: &str) -> Result<Option<EventQuery>> {
        self.with_conn(|conn| durable::stored_query(conn, name))
    }

    fn lock_name(&self, name: &str) -> Result<Client> {
        durable::lock_name(&self.pool, name)
    }

    fn renew_lock(&self, name: &str, lock: &mut Client) -> Result<()> {
        // The lock lives as long as its connection: after a server restart, take it again (or
        // learn that someone else has it now).
        if lock.is_closed() {
            *lock = durable::lock_name(&self.pool, name)?;
        }
        Ok(())
    }

    fn release_lock(&self, name: &str, lock: Client) {
        durable::unlock_name(lock, name);
    }

    fn create_cursor(&self, name: &str, query: &EventQuery) -> Result<(EventQuery, u64)> {
        self.with_conn(|conn| durable::load_or_create(conn, name, query))
    }

    fn advance_cursor(&self, name: &str, position: u64) -> Result<()> {
        self.with_conn(|conn| durable::advance(conn, name, position))
    }

    fn durable_streams(&self) -> Result<Vec<DurableStreamInfo>> {
        self.with_conn(durable::list)
    }

    fn reset_cursor(&self, name: &str, position: u64) -> Result<bool> {
        self.with_conn(|conn| durable::reset(conn, name, position))
    }

    fn delete_cursor(&self, name: &str) -> Result<()> {
        self.with_conn(|conn| durable::delete(conn, name))
    }

    fn watch_commits(&self, signal: Weak<CommitSignal>) {
        if !self.listening.swap(true, Ordering::AcqRel) {
            listener::spawn(Arc::downgrade(&self.pool), signal);
        }
    }

    fn release_idle(&self) {
        // Streams take a connection from the pool again when they read.
        self.pool.clear();
    }

    fn reconnect_window(&self) -> Duration {
        self.options.reconnect_timeout
    }

    fn close(&self) -> Result<()> {
        self.pool.clear();
        Ok(())
    }
}

/// Checks a store URL without connecting (what `open` refuses before any I/O), for callers that
/// must report a bad URL at once and connect later (`factstr.aio`).
pub fn check_url(url: &str) -> Result<()> {
    url::parse(url).map(|_| ())
}
