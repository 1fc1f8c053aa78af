//! A blocking PostgreSQL connection with a deadline on every wait (SPEC §7: a server that stops
//! answering must end in `BackendError`, never in a hang).
//!
//! tokio-postgres speaks the protocol; each connection drives it on a small runtime of its own
//! (as the `postgres` crate does), which lets every wait be bounded by a client-side timer:
//! - connecting (TCP, TLS, startup, authentication) within `connect_timeout`: tokio-postgres
//!   bounds only the TCP connect, so a server that accepts and never answers would hang;
//! - every round trip within the store's `statement_timeout`: a stopped backend's kernel still
//!   acknowledges TCP, so keepalives never fire, and a stopped backend enforces no server-side
//!   timeout either; only the client's own clock can tell.
//!
//! A connection whose wait ran out is broken for good (the server may still answer the abandoned
//! request): every later call on it fails at once, and the pool drops it.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use tokio::time::error::Elapsed;
use tokio::time::timeout;
use tokio_postgres::types::ToSql;
use tokio_postgres::{
    AsyncMessage, Config, Notification, Row, SimpleQueryMessage, Statement, ToStatement,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// A failed wait on the server.
#[derive(Debug)]
pub enum DbError {
    /// The driver's error: the server's answer, or a broken connection.
    Driver(tokio_postgres::Error),
    /// No complete answer within the bound, the store option `option`; the connection was
    /// abandoned.
    TimedOut {
        bound: Duration,
        option: &'static str,
    },
    /// An earlier wait on this connection ran out.
    Abandoned,
    /// The connection ended (the server closed it, or it broke).
    Closed,
    /// The connection's runtime could not be made (out of threads or descriptors).
    Runtime(std::io::Error),
}

impl DbError {
    /// The server's error report, when the server answered with one.
    pub fn as_db_error(&self) -> Option<&tokio_postgres::error::DbError> {
        match self {
            DbError::Driver(error) => error.as_db_error(),
            _ => None,
        }
    }

    /// Whether the server answered this request with an ERROR and the session goes on: the
    /// request's transaction failed and did not commit. Anything else (FATAL, a broken or
    /// abandoned connection) leaves a commit sent in the same round trip unknown.
    pub fn statement_failed(&self) -> bool {
        self.as_db_error()
            .is_some_and(|db| db.severity() == "ERROR")
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        DbError::Driver(error)
    }
}

pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub struct Client {
    runtime: Runtime,
    inner: Option<tokio_postgres::Client>,
    /// Drives the protocol while a call waits (the runtime runs it only then).
    connection: tokio::task::JoinHandle<()>,
    notifications: mpsc::UnboundedReceiver<Notification>,
    round_trip: Duration,
    abandoned: bool,
}

/// Runs `work` on `runtime` for at most `bound` (the timer is made inside the runtime, which
/// owns the clock).
fn within<F: Future>(runtime: &Runtime, bound: Duration, work: F) -> Result<F::Output, Elapsed> {
    runtime.block_on(async { timeout(bound, work).await })
}

/// How long closing waits for the goodbye (`Terminate`) message to be sent.
const GOODBYE: Duration = Duration::from_secs(1);

impl Client {
    /// Connects, everything up to a ready session within `connect_timeout`.
    pub fn connect(
        config: &Config,
        tls: MakeRustlsConnect,
        connect_timeout: Duration,
        round_trip: Duration,
    ) -> Result<Client, DbError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(DbError::Runtime)?;
        let connected = within(&runtime, connect_timeout, config.connect(tls));
        let (inner, mut connection) = match connected {
            Ok(pair) => pair?,
            Err(_) => {
                return Err(DbError::TimedOut {
                    bound: connect_timeout,
                    option: "connect_timeout",
                })
            }
        };
        let (sender, notifications) = mpsc::unbounded_channel();
        let connection = runtime.spawn(async move {
            while let Some(Ok(message)) = poll_fn(|cx| connection.poll_message(cx)).await {
                if let AsyncMessage::Notification(notification) = message {
                    let _ = sender.send(notification);
                }
            }
        });
        Ok(Client {
            runtime,
            inner: Some(inner),
            connection,
            notifications,
            round_trip,
            abandoned: false,
        })
    }

    fn inner(&self) -> &tokio_postgres::Client {
        self.inner.as_ref().expect("present until dropped")
    }

    /// Fails at once on a connection abandoned earlier.
    fn check(&self) -> Result<(), DbError> {
        if self.abandoned {
            Err(DbError::Abandoned)
        } else {
            Ok(())
        }
    }

    /// The outcome of a round trip waited for within `bound`; a wait that ran out abandons the
    /// connection.
    fn finish<T>(
        &mut self,
        bound: Duration,
        outcome: Result<Result<T, tokio_postgres::Error>, Elapsed>,
    ) -> Result<T, DbError> {
        match outcome {
            Ok(result) => Ok(result?),
            Err(_) => {
                self.abandoned = true;
                Err(DbError::TimedOut {
                    bound,
                    option: "statement_timeout",
                })
            }
        }
    }

    pub fn prepare(&mut self, sql: &str) -> Result<Statement, DbError> {
        self.check()?;
        let outcome = within(&self.runtime, self.round_trip, self.inner().prepare(sql));
        self.finish(self.round_trip, outcome)
    }

    pub fn query<T: ?Sized + ToStatement>(
        &mut self,
        statement: &T,
        params: Params<'_>,
    ) -> Result<Vec<Row>, DbError> {
        self.check()?;
        let outcome = within(
            &self.runtime,
            self.round_trip,
            self.inner().query(statement, params),
        );
        self.finish(self.round_trip, outcome)
    }

    pub fn query_one<T: ?Sized + ToStatement>(
        &mut self,
        statement: &T,
        params: Params<'_>,
    ) -> Result<Row, DbError> {
        self.check()?;
        let outcome = within(
            &self.runtime,
            self.round_trip,
            self.inner().query_one(statement, params),
        );
        self.finish(self.round_trip, outcome)
    }

    pub fn query_opt<T: ?Sized + ToStatement>(
        &mut self,
        statement: &T,
        params: Params<'_>,
    ) -> Result<Option<Row>, DbError> {
        self.check()?;
        let outcome = within(
            &self.runtime,
            self.round_trip,
            self.inner().query_opt(statement, params),
        );
        self.finish(self.round_trip, outcome)
    }

    pub fn execute<T: ?Sized + ToStatement>(
        &mut self,
        statement: &T,
        params: Params<'_>,
    ) -> Result<u64, DbError> {
        self.check()?;
        let outcome = within(
            &self.runtime,
            self.round_trip,
            self.inner().execute(statement, params),
        );
        self.finish(self.round_trip, outcome)
    }

    /// Sends `batch`, if any (simple-protocol statements, e.g. `BEGIN; LOCK ...`), and then `statements`
    /// (bound, prepared) without waiting in between: one round trip for all (the driver pipelines
    /// requests whose futures are polled together). The server runs them in order; when the batch
    /// fails, its error is the one reported (the statements then fail in the aborted transaction).
    pub fn pipelined(
        &mut self,
        batch: Option<&str>,
        statements: &[(&Statement, Params<'_>)],
    ) -> Result<Vec<Vec<Row>>, DbError> {
        self.check()?;
        let inner = self.inner();
        let work = async {
            let mut first = pin!(async {
                match batch {
                    Some(batch) => inner.batch_execute(batch).await,
                    None => Ok(()),
                }
            });
            let mut rest: Vec<_> = statements
                .iter()
                .map(|(statement, params)| Box::pin(inner.query(*statement, params)))
                .collect();
            let mut first_out = None;
            let mut rest_out: Vec<Option<_>> = rest.iter().map(|_| None).collect();
            poll_fn(|cx| {
                if first_out.is_none() {
                    if let Poll::Ready(out) = first.as_mut().poll(cx) {
                        first_out = Some(out);
                    }
                }
                for (future, out) in rest.iter_mut().zip(rest_out.iter_mut()) {
                    if out.is_none() {
                        if let Poll::Ready(done) = future.as_mut().poll(cx) {
                            *out = Some(done);
                        }
                    }
                }
                if first_out.is_some() && rest_out.iter().all(Option::is_some) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            first_out.expect("polled to the end")?;
            rest_out
                .into_iter()
                .map(|out| out.expect("polled to the end"))
                .collect::<Result<Vec<_>, _>>()
        };
        let outcome = within(&self.runtime, self.round_trip, work);
        self.finish(self.round_trip, outcome)
    }

    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<SimpleQueryMessage>, DbError> {
        self.check()?;
        let outcome = within(
            &self.runtime,
            self.round_trip,
            self.inner().simple_query(sql),
        );
        self.finish(self.round_trip, outcome)
    }

    /// `COPY ... FROM STDIN` (`sql`) with `data`, its whole input, in one round trip; returns
    /// the rows copied.
    pub fn copy_in(&mut self, sql: &str, data: Vec<u8>) -> Result<u64, DbError> {
        use futures_util::SinkExt;
        self.check()?;
        let inner = self.inner();
        let work = async move {
            let sink = inner.copy_in::<_, bytes::Bytes>(sql).await?;
            futures_util::pin_mut!(sink);
            sink.send(bytes::Bytes::from(data)).await?;
            sink.finish().await
        };
        let outcome = within(&self.runtime, self.round_trip, work);
        self.finish(self.round_trip, outcome)
    }

    pub fn batch_execute(&mut self, sql: &str) -> Result<(), DbError> {
        self.batch_execute_within(sql, self.round_trip)
    }

    /// `batch_execute` with a longer bound, for statements whose work grows with the database
    /// (creating indexes over an existing log when a store first opens it).
    pub fn batch_execute_within(&mut self, sql: &str, bound: Duration) -> Result<(), DbError> {
        self.check()?;
        let bound = bound.max(self.round_trip);
        let outcome = within(&self.runtime, bound, self.inner().batch_execute(sql));
        self.finish(bound, outcome)
    }

    /// The next notification within `wait`: `Ok(None)` when none came.
    pub fn next_notification(&mut self, wait: Duration) -> Result<Option<Notification>, DbError> {
        if let Ok(notification) = self.notifications.try_recv() {
            return Ok(Some(notification));
        }
        if self.abandoned {
            return Err(DbError::Abandoned);
        }
        match within(&self.runtime, wait, self.notifications.recv()) {
            Ok(Some(notification)) => Ok(Some(notification)),
            Ok(None) => Err(DbError::Closed),
            Err(_) => Ok(None),
        }
    }

    /// Whether the connection can no longer be used, as far as this client has seen.
    pub fn is_closed(&self) -> bool {
        self.abandoned || self.inner().is_closed()
    }

    /// Whether the connection is still usable, after reading what the server sent while it sat
    /// idle: a server that shut down or ended the session has sent its goodbye and closed the
    /// socket, so a pooled connection is replaced before a request is sent on it (a request sent
    /// on a dead connection would leave a commit's outcome unknown). No round trip.
    pub fn is_usable(&self) -> bool {
        if self.is_closed() {
            return false;
        }
        // Two yields: the first lets the runtime poll the socket (yielding defers the task until
        // the I/O driver ran), the second lets the connection task handle what arrived.
        self.runtime.block_on(async {
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
        });
        !self.is_closed()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Dropping the last handle makes the connection send `Terminate` and end, so the server
        // ends the session (and releases its locks) now rather than when it notices the socket
        // closed. Skipped when the server stopped answering.
        drop(self.inner.take());
        if !self.abandoned {
            let _ = within(&self.runtime, GOODBYE, &mut self.connection);
        }
    }
}
