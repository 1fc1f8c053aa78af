//! A small pool of PostgreSQL connections shared by a store's threads. A connection that broke
//! (server restart, network, a wait that ran out) is dropped instead of returned, so the next
//! call opens a new one.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio_postgres::{Config, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::client::{Client, DbError};
use super::url::scrub;
use crate::error::{Error, Result};

/// How long a call waits for a free connection when all are in use.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long connecting and each round trip may take (see `client`).
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub connect: Duration,
    pub round_trip: Duration,
}

/// Turns driver errors into backend errors that never show the password (SPEC §7). The pool and
/// every connection it hands out carry one, so that code on a connection needs nothing else to
/// report an error.
#[derive(Clone)]
pub struct Redactor {
    password: Option<Arc<str>>,
}

impl Redactor {
    /// Maps a driver error to a backend error that never shows the password.
    pub fn error(&self, error: DbError) -> Error {
        Error::Backend(scrub(&describe(&error), self.password.as_deref()))
    }

    /// Maps an error of the round trip that carried a commit (SPEC §2.7): unless the server
    /// answered that the statement failed, the commit may have happened.
    pub fn commit_error(&self, error: DbError) -> Error {
        if error.statement_failed() {
            self.error(error)
        } else {
            Error::CommitOutcomeUnknown(scrub(&describe(&error), self.password.as_deref()))
        }
    }
}

pub struct Pool {
    config: Config,
    tls: MakeRustlsConnect,
    deadlines: Deadlines,
    redactor: Redactor,
    size: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

/// A connection and the statements prepared on it (each statement is parsed once per
/// connection, not once per call: a round trip saved on every call).
pub struct Conn {
    pub client: Client,
    statements: HashMap<String, Statement>,
    redactor: Redactor,
}

pub use super::client::Params;

impl Conn {
    fn new(client: Client, redactor: Redactor) -> Self {
        Self {
            client,
            statements: HashMap::new(),
            redactor,
        }
    }

    /// See `Redactor::error`.
    pub fn error(&self, error: DbError) -> Error {
        self.redactor.error(error)
    }

    /// See `Redactor::commit_error`.
    pub fn commit_error(&self, error: DbError) -> Error {
        self.redactor.commit_error(error)
    }

    pub fn statement(&mut self, sql: &str) -> std::result::Result<Statement, DbError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub fn query(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> std::result::Result<Vec<Row>, DbError> {
        let statement = self.statement(sql)?;
        self.client.query(&statement, params)
    }

    pub fn query_one(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> std::result::Result<Row, DbError> {
        let statement = self.statement(sql)?;
        self.client.query_one(&statement, params)
    }

    pub fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> std::result::Result<Option<Row>, DbError> {
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params)
    }

    /// `batch` (if any) and then the statements `sql` (prepared once per connection), in one
    /// round trip (see `Client::pipelined`); the rows of each statement.
    pub fn pipelined(
        &mut self,
        batch: Option<&str>,
        sql: &[(&str, Params<'_>)],
    ) -> std::result::Result<Vec<Vec<Row>>, DbError> {
        let statements = sql
            .iter()
            .map(|(sql, _)| self.statement(sql))
            .collect::<std::result::Result<Vec<Statement>, DbError>>()?;
        let bound: Vec<(&Statement, Params<'_>)> = statements
            .iter()
            .zip(sql)
            .map(|(statement, (_, params))| (statement, *params))
            .collect();
        self.client.pipelined(batch, &bound)
    }

    pub fn execute(&mut self, sql: &str, params: Params<'_>) -> std::result::Result<u64, DbError> {
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params)
    }
}

struct PoolState {
    idle: Vec<Conn>,
    /// Connections out of the pool or idle in it.
    open: usize,
}

impl Pool {
    pub fn new(
        config: Config,
        tls: MakeRustlsConnect,
        deadlines: Deadlines,
        password: Option<String>,
        size: usize,
    ) -> Self {
        Self {
            config,
            tls,
            deadlines,
            redactor: Redactor {
                password: password.map(Arc::from),
            },
            size: size.max(1),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        }
    }

    /// See `Redactor::error` (for connections outside the pool: listeners, durable leases).
    pub fn error(&self, error: DbError) -> Error {
        self.redactor.error(error)
    }

    /// A new connection outside the pool (listeners, durable leases).
    pub fn connect(&self) -> Result<Client> {
        Client::connect(
            &self.config,
            self.tls.clone(),
            self.deadlines.connect,
            self.deadlines.round_trip,
        )
        .map_err(|e| self.error(e))
    }

    pub fn get(&self) -> Result<Pooled<'_>> {
        let mut state = self.state.lock();
        loop {
            while let Some(conn) = state.idle.pop() {
                if conn.client.is_usable() {
                    return Ok(Pooled {
                        pool: self,
                        conn: Some(conn),
                        broken: false,
                    });
                }
                state.open -= 1;
            }
            if state.open < self.size {
                state.open += 1;
                drop(state);
                return match self.connect() {
                    Ok(client) => Ok(Pooled {
                        pool: self,
                        conn: Some(Conn::new(client, self.redactor.clone())),
                        broken: false,
                    }),
                    Err(error) => {
                        self.state.lock().open -= 1;
                        self.freed.notify_one();
                        Err(error)
                    }
                };
            }
            if self
                .freed
                .wait_for(&mut state, CHECKOUT_TIMEOUT)
                .timed_out()
            {
                return Err(Error::Backend(format!(
                    "all {} pooled connections stayed busy for {} s",
                    self.size,
                    CHECKOUT_TIMEOUT.as_secs()
                )));
            }
        }
    }

    pub fn clear(&self) {
        let mut state = self.state.lock();
        let dropped = state.idle.len();
        state.idle.clear();
        state.open -= dropped;
    }
}

/// A connection on loan from the pool.
pub struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<Conn>,
    broken: bool,
}

impl Pooled<'_> {
    /// Marks the connection as unusable (for example, stuck in a failed transaction).
    pub fn discard(&mut self) {
        self.broken = true;
    }
}

impl Deref for Pooled<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let conn = self.conn.take().expect("present until dropped");
        let mut state = self.pool.state.lock();
        // A connection dropped by a panic may be inside a transaction (a read's READ ONLY one,
        // or an append's, holding the table lock): never hand it out again.
        if self.broken || conn.client.is_closed() || std::thread::panicking() {
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}

/// A readable account of a driver error, with the server's code when there is one.
pub fn describe(error: &DbError) -> String {
    let error = match error {
        DbError::Driver(error) => error,
        DbError::TimedOut { bound, option } => {
            let waited = if *option == "connect_timeout" {
                "did not complete the connection"
            } else {
                "did not answer"
            };
            return format!(
                "the server {waited} within {} s ({option}); the connection was closed",
                bound.as_secs_f64()
            );
        }
        DbError::Abandoned => return "the connection was closed after a wait ran out".to_owned(),
        DbError::Closed => return "the connection to the server was closed".to_owned(),
        DbError::Runtime(error) => {
            return format!("cannot start the connection's runtime: {error}")
        }
    };
    if let Some(db) = error.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
