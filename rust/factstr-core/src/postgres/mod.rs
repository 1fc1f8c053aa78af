//! The PostgreSQL store: the whole contract on a PostgreSQL database, on the table layout of
//! `factstr-postgres` 0.5.2, for many processes on many machines.
//!
//! - Connections: a pool shared by the store's threads (`pool`) of connections whose every wait
//!   has a deadline (`client`), TLS by rustls (`tls`), URLs with libpq's TLS modes and without
//!   passwords in any message (`url`).
//! - Writes: serialised by the upstream table lock (`writes`).
//! - Reads: the shared `search` over this database's indexes (`reads`), one snapshot per call.
//! - Streams: a LISTEN connection wakes them at every commit, anyone's (`listener`).
//! - Durable streams: cursors in the upstream table, exclusivity by advisory lock (`durable`).

mod client;
mod durable;
mod listener;
mod literals;
mod pool;
mod reads;
mod restore;
mod schema;
mod tls;
mod url;
mod writes;

use std::any::Any;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::condition::Condition;
use crate::error::{Error, Result};
use crate::lifecycle::Lifecycle;
use crate::prepared::{prepare_events, FloatText};
use crate::search;
use crate::signal::CommitSignal;
use crate::sql_numbers;
use crate::store::{EventStore, LeaseId};
use crate::types::{AppendResult, BatchPage, DurableStreamInfo, EventQuery, NewEvent, QueryResult};
use client::Client;
use pool::{Conn, Deadlines, Pool};
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

pub struct PostgresStore {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pool: Pool,
    options: PostgresOptions,
    shown_url: String,
    signal: CommitSignal,
    lifecycle: Lifecycle,
    listening: AtomicBool,
    leases: Mutex<HashMap<LeaseId, (String, Client)>>,
    next_lease: AtomicU64,
}

impl Shared {
    fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }

    fn check_open(&self) -> Result<()> {
        self.lifecycle.check_open()
    }

    /// Runs `work` in a read-only REPEATABLE READ transaction: one snapshot for the whole call.
    fn read<T>(&self, work: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        self.read_begun(false, |conn, _| work(conn))
    }

    /// `read`; with `with_head`, the head and how far the payload index is current are read in
    /// the round trip that begins the transaction (its first statement, so of its snapshot) and
    /// given to `work`: a query reports the head (SPEC §3) at no extra round trip.
    fn read_begun<T>(
        &self,
        with_head: bool,
        work: impl FnOnce(&mut Conn, Option<(u64, u64)>) -> Result<T>,
    ) -> Result<T> {
        const BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
        self.check_open()?;
        let mut conn = self.pool.get()?;
        let known = if with_head {
            let messages = conn
                .client
                .simple_query(&format!(
                    "{BEGIN}; SELECT COALESCE(MAX(sequence_number), 0), \
                     (SELECT indexed_through FROM factstr_payload_index_state WHERE id = 1) FROM events"
                ))
                .map_err(|e| {
                    // The transaction may have begun: never pool a connection inside one.
                    conn.discard();
                    self.pool.error(e)
                })?;
            let number = |text: Option<&str>| text.and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
            messages.iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    Some((number(row.get(0)), number(row.get(1))))
                }
                _ => None,
            })
        } else {
            conn.client
                .batch_execute(BEGIN)
                .map_err(|e| self.pool.error(e))?;
            None
        };
        // A panic (a bug) must not reach the caller as one, nor leave this connection in its
        // transaction: it becomes an error, and the connection is closed instead of pooled.
        let out = match panic::catch_unwind(AssertUnwindSafe(|| work(&mut conn, known))) {
            Ok(out) => out,
            Err(panic) => {
                conn.discard();
                return Err(Error::Backend(format!(
                    "internal error while reading: {}",
                    panic_message(&*panic)
                )));
            }
        };
        let ended = conn
            .client
            .batch_execute(if out.is_ok() { "COMMIT" } else { "ROLLBACK" });
        if ended.is_err() {
            conn.discard();
        }
        let out = out?;
        ended.map_err(|e| self.pool.error(e))?;
        Ok(out)
    }

    /// Runs `work` on a pooled connection (a statement of its own, or a transaction it manages).
    fn with_conn<T>(&self, work: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        self.check_open()?;
        let mut conn = self.pool.get()?;
        work(&mut conn)
    }

    fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<Condition<'_>>,
    ) -> Result<AppendResult> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        let prepared = prepare_events(&events, FloatText::Fraction);
        self.check_open()?;
        let mut conn = self.pool.get()?;
        let result = writes::append(&mut conn, &self.pool, &prepared, condition);
        if result.is_err() && conn.client.batch_execute("ROLLBACK").is_err() {
            // Never hand a connection with an open transaction back to the pool.
            conn.discard();
        }
        if result.is_ok() {
            self.signal.notify();
        }
        result
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
        Ok(Self {
            shared: Arc::new(Shared {
                pool,
                options,
                shown_url: parsed.redacted,
                signal: CommitSignal::new(),
                lifecycle: Lifecycle::process_bound(),
                listening: AtomicBool::new(false),
                leases: Mutex::new(HashMap::new()),
                next_lease: AtomicU64::new(1),
            }),
        })
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
        &self.shared.shown_url
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if self.shared.lifecycle.inherited() {
            // In a forked child, dropping would close the parent's connections (SPEC §7).
            std::mem::forget(Arc::clone(&self.shared));
        }
    }
}

impl EventStore for PostgresStore {
    fn append(&self, events: Vec<NewEvent>) -> Result<AppendResult> {
        self.shared.append(events, None)
    }

    fn append_if(
        &self,
        events: Vec<NewEvent>,
        context: &EventQuery,
        expected: Option<u64>,
    ) -> Result<AppendResult> {
        if !events.is_empty() {
            sql_numbers::check(expected, "expected_context_version")?;
        }
        self.shared
            .append(events, Some(Condition::VersionIs { context, expected }))
    }

    fn append_unless(
        &self,
        events: Vec<NewEvent>,
        context: &EventQuery,
        after: Option<u64>,
    ) -> Result<AppendResult> {
        if !events.is_empty() {
            sql_numbers::check(after, "after")?;
        }
        self.shared
            .append(events, Some(Condition::NoneAfter { context, after }))
    }

    fn query(&self, query: &EventQuery, limit: Option<usize>) -> Result<QueryResult> {
        sql_numbers::check_query(query)?;
        let pool = &self.shared.pool;
        self.shared.read_begun(true, |conn, known| {
            search::query(&mut PgLog::new(conn, pool, known), query, limit)
        })
    }

    fn read_batches(
        &self,
        position: u64,
        query: &EventQuery,
        max_events: usize,
    ) -> Result<BatchPage> {
        sql_numbers::check_query(query)?;
        let pool = &self.shared.pool;
        self.shared.read(|conn| {
            search::read_batches(
                &mut PgLog::new(conn, pool, None),
                position,
                query,
                max_events,
            )
        })
    }

    fn restore_batches(&self, batches: Vec<crate::restore::RestoredBatch>) -> Result<AppendResult> {
        self.shared.restore(&batches)
    }

    fn head(&self) -> Result<u64> {
        let pool = &self.shared.pool;
        self.shared.with_conn(|conn| reads::head(conn, pool))
    }

    fn commit_signal(&self) -> &CommitSignal {
        &self.shared.signal
    }

    fn watch_commits(&self) {
        if self.shared.is_closed() {
            return;
        }
        if !self.shared.listening.swap(true, Ordering::AcqRel) {
            listener::spawn(Arc::downgrade(&self.shared));
        }
    }

    fn release_idle(&self) {
        // Streams take a connection from the pool again when they read.
        self.shared.pool.clear();
    }

    fn reconnect_window(&self) -> Duration {
        self.shared.options.reconnect_timeout
    }

    fn acquire_durable(&self, name: &str, query: &EventQuery) -> Result<(LeaseId, u64)> {
        self.shared.check_open()?;
        let pool = &self.shared.pool;
        self.shared.with_conn(|conn| {
            durable::check_query(conn, pool, name, query)?;
            durable::check_batch_format(conn, pool)
        })?;
        let lock = durable::lock_name(pool, name)?;
        let cursor = self
            .shared
            .with_conn(|conn| durable::load_or_create(conn, pool, name, query))?;
        let lease = self.shared.next_lease.fetch_add(1, Ordering::Relaxed);
        self.shared
            .leases
            .lock()
            .insert(lease, (name.to_owned(), lock));
        Ok((lease, cursor))
    }

    fn save_durable_cursor(&self, name: &str, lease: LeaseId, position: u64) -> Result<()> {
        if self.shared.lifecycle.inherited() {
            return Err(Error::StoreClosed);
        }
        {
            let mut leases = self.shared.leases.lock();
            let Some((held, lock)) = leases.get_mut(&lease) else {
                return Ok(());
            };
            if held != name {
                return Ok(());
            }
            // The lock lives as long as its connection: after a server restart, take it again
            // (or learn that someone else has it now).
            if lock.is_closed() {
                *lock = durable::lock_name(&self.shared.pool, name)?;
            }
        }
        let pool = &self.shared.pool;
        self.shared
            .with_conn(|conn| durable::advance(conn, pool, name, position))
    }

    fn release_durable(&self, _name: &str, lease: LeaseId) -> Result<()> {
        if self.shared.lifecycle.inherited() {
            return Ok(()); // the parent holds the name
        }
        let released = self.shared.leases.lock().remove(&lease);
        if let Some((name, client)) = released {
            durable::unlock_name(client, &name);
        }
        Ok(())
    }

    fn durable_streams(&self) -> Result<Vec<DurableStreamInfo>> {
        let pool = &self.shared.pool;
        self.shared.with_conn(|conn| durable::list(conn, pool))
    }

    fn reset_durable_stream(&self, name: &str, sequence_number: u64) -> Result<()> {
        self.shared.check_open()?;
        sql_numbers::to_sql(sequence_number, "sequence_number")?;
        let pool = &self.shared.pool;
        if durable::with_name_locked(pool, name, |conn| {
            durable::reset(conn, pool, name, sequence_number)
        })? {
            Ok(())
        } else {
            Err(Error::DurableStream(format!(
                "unknown durable stream {name:?}"
            )))
        }
    }

    fn delete_durable_stream(&self, name: &str) -> Result<()> {
        self.shared.check_open()?;
        let pool = &self.shared.pool;
        durable::with_name_locked(pool, name, |conn| durable::delete(conn, pool, name))
    }

    fn close(&self) -> Result<()> {
        self.shared.lifecycle.close();
        if self.shared.lifecycle.inherited() {
            // A forked child's copy: the connections and locks are the parent's (SPEC §7).
            return Ok(());
        }
        self.shared.signal.close();
        let leases: Vec<(String, Client)> = self
            .shared
            .leases
            .lock()
            .drain()
            .map(|(_, held)| held)
            .collect();
        for (name, client) in leases {
            durable::unlock_name(client, &name);
        }
        self.shared.pool.clear();
        Ok(())
    }

    fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }
}
