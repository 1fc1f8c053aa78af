//! The PostgreSQL schema: the tables of `factstr-postgres` 0.5.2, exactly, in the connection's
//! `current_schema()`, plus our payload index, its state, and a trigger that wakes listeners on
//! every insert into `events` (also by writers that are not ours). Creation runs in one
//! transaction under an advisory lock, so processes starting at once do not race.

use std::time::Duration;

use super::client::{Client, DbError};
use super::pool::Pool;
use crate::error::{Error, Result};
use crate::sql::layout::{self, BATCH_FORMAT_KEY, BATCH_FORMAT_SPARSE};

pub const NOTIFY_CHANNEL: &str = "factstr_commits";
/// The `store_metadata` marker of sparse batch boundaries (see `durable::check_batch_format`).
/// Bumped when the payload key encoding changes; the index is then rebuilt.
pub const PAYLOAD_KEY_FORMAT: i32 = 1;

const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS events (
        sequence_number BIGINT PRIMARY KEY,
        occurred_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
        event_type TEXT NOT NULL,
        payload JSONB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS append_batches (
        first_sequence_number BIGINT PRIMARY KEY,
        last_sequence_number BIGINT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS store_metadata (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS durable_stream_cursors (
        durable_stream_id TEXT PRIMARY KEY,
        event_query TEXT NOT NULL,
        last_processed_sequence_number BIGINT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS idx_events_type ON events(event_type);
    CREATE INDEX IF NOT EXISTS idx_events_occurred_at ON events(occurred_at);
    CREATE INDEX IF NOT EXISTS idx_events_payload_gin ON events USING gin(payload);

    -- Events of a type in sequence order: with the upstream index on event_type alone, reading
    -- the events of a type after some position (streams) or counting a few of them reads every
    -- event of the type.
    CREATE INDEX IF NOT EXISTS factstr_events_type_sequence ON events (event_type, sequence_number);

    -- Which events have a given string or number at a given path: one row per (key, batch),
    -- see `sql::members` and `postgres::postings`. Keys are 32-bit hashes computed by the engine.
    CREATE TABLE IF NOT EXISTS factstr_payload_index (
        key_hash BIGINT NOT NULL,
        first_sequence_number BIGINT NOT NULL,
        members BYTEA,
        PRIMARY KEY (key_hash, first_sequence_number)
    );
    -- The exact JSON text of the payloads that jsonb would change: numeric has no negative
    -- zero, so a float -0.0 would read back as 0.0. Rare; a read prefers this text when present.
    CREATE TABLE IF NOT EXISTS factstr_exact_payloads (
        sequence_number BIGINT PRIMARY KEY,
        payload TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS factstr_payload_index_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        key_format INTEGER NOT NULL,
        indexed_through BIGINT NOT NULL
    );
    -- A whole append in one statement, so one round trip: the append lock (see `writes`),
    -- numbering after the head, the events, their index postings (first sequence numbers given
    -- as offsets into the batch), the batch row and the index state, all in the statement's own
    -- transaction. Returns the first sequence number, or 0 (having written nothing) when rows of
    -- writers that do not keep the index must first be indexed by the engine.
    -- An existing definition is kept (see ALL_PRESENT): a changed body needs a new name (v1,
    -- `factstr_append_batch`, took upstream's EXCLUSIVE lock, which waits for autovacuum).
    -- Called on its own (`p_locked_by_caller` false), it must run at READ COMMITTED: at a higher
    -- isolation level the calling statement's snapshot predates the lock, so the head it reads
    -- could be stale; it then returns 0 too, and the engine appends in an explicit transaction
    -- that takes the lock before its snapshot.
    CREATE OR REPLACE FUNCTION factstr_append_batch_v2(
        p_locked_by_caller BOOLEAN, p_stamp TIMESTAMPTZ, p_types TEXT[], p_payloads TEXT[],
        p_key_hashes BIGINT[], p_first_offsets BIGINT[], p_members BYTEA[]
    ) RETURNS BIGINT LANGUAGE plpgsql AS $$
    DECLARE
        v_head BIGINT;
        v_through BIGINT;
        v_count BIGINT := cardinality(p_types);
    BEGIN
        IF NOT p_locked_by_caller THEN
            IF current_setting('transaction_isolation') <> 'read committed' THEN
                RETURN 0;
            END IF;
            -- `writes::LOCK_APPENDS`, in its order.
            LOCK TABLE events, append_batches IN ROW EXCLUSIVE MODE;
            PERFORM pg_advisory_xact_lock(hashtextextended('factstr-append:' || current_schema(), 0));
        END IF;
        SELECT COALESCE(MAX(sequence_number), 0) INTO v_head FROM events;
        SELECT indexed_through INTO v_through FROM factstr_payload_index_state WHERE id = 1;
        IF v_through IS NULL OR v_through < v_head THEN
            RETURN 0;
        END IF;
        INSERT INTO events (sequence_number, occurred_at, event_type, payload)
            SELECT v_head + u.o, p_stamp, u.t, u.p::jsonb
            FROM unnest(p_types, p_payloads) WITH ORDINALITY AS u(t, p, o);
        INSERT INTO factstr_payload_index (key_hash, first_sequence_number, members)
            SELECT x.k, v_head + 1 + x.f, x.m FROM unnest(p_key_hashes, p_first_offsets, p_members) AS x(k, f, m);
        IF v_count > 1 THEN
            INSERT INTO append_batches (first_sequence_number, last_sequence_number)
                VALUES (v_head + 1, v_head + v_count);
        END IF;
        UPDATE factstr_payload_index_state SET indexed_through = v_head + v_count WHERE id = 1;
        RETURN v_head + 1;
    END
    $$;
    -- The last sequence number of a payload index row: `first` plus every LEB128 gap of
    -- `members` (see `sql::members`), for reading the newest candidate of a key with its rows.
    CREATE OR REPLACE FUNCTION factstr_last_member(p_first BIGINT, p_members BYTEA)
    RETURNS BIGINT LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
    DECLARE
        v_number BIGINT := p_first;
        v_gap BIGINT := 0;
        v_shift INTEGER := 0;
        v_byte INTEGER;
    BEGIN
        IF p_members IS NULL THEN
            RETURN p_first;
        END IF;
        FOR i IN 0 .. length(p_members) - 1 LOOP
            v_byte := get_byte(p_members, i);
            v_gap := v_gap | ((v_byte & 127)::BIGINT << v_shift);
            IF v_byte < 128 THEN
                v_number := v_number + v_gap;
                v_gap := 0;
                v_shift := 0;
            ELSE
                v_shift := v_shift + 7;
            END IF;
        END LOOP;
        RETURN v_number;
    END
    $$;
    CREATE OR REPLACE FUNCTION factstr_notify_commit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('factstr_commits', current_schema());
        RETURN NULL;
    END
    $$;
";

/// Whether every table, index and function of `CREATE` exists in the current schema.
const ALL_PRESENT: &str = "
    SELECT bool_and(to_regclass(format('%I.%I', current_schema(), name)) IS NOT NULL)
        AND to_regprocedure(format('%I.factstr_notify_commit()', current_schema())) IS NOT NULL
        AND to_regprocedure(format(
            '%I.factstr_append_batch_v2(boolean, timestamptz, text[], text[], bigint[], bigint[], bytea[])',
            current_schema())) IS NOT NULL
        AND to_regprocedure(format('%I.factstr_last_member(bigint, bytea)', current_schema())) IS NOT NULL
    FROM unnest(ARRAY['events', 'append_batches', 'store_metadata', 'durable_stream_cursors',
        'idx_events_type', 'idx_events_occurred_at', 'idx_events_payload_gin',
        'factstr_events_type_sequence', 'factstr_payload_index', 'factstr_payload_index_state',
        'factstr_exact_payloads']) AS name";

/// How long creating the schema may take: the store's `statement_timeout` is meant for its
/// calls, and the indexes built on first opening an existing log grow with it.
const CREATE_BOUND: Duration = Duration::from_secs(600);

/// The upstream cursor table of this layout; the other upstream tables are `sql::layout`'s.
const CURSOR_TABLE: (&str, &[&str]) = (
    "durable_stream_cursors",
    &[
        "durable_stream_id",
        "event_query",
        "last_processed_sequence_number",
    ],
);

pub fn prepare(pool: &Pool, shown_url: &str) -> Result<()> {
    let mut conn = pool.get()?;
    let client = &mut conn.client;
    let result = prepare_in(client, shown_url).map_err(|e| match e {
        Prepared::Db(error) => pool.error(error),
        Prepared::Refused(error) => error,
    });
    if result.is_err() {
        let _ = client.batch_execute("ROLLBACK");
    }
    result
}

enum Prepared {
    Db(DbError),
    Refused(Error),
}

impl From<DbError> for Prepared {
    fn from(error: DbError) -> Self {
        Prepared::Db(error)
    }
}

fn prepare_in(client: &mut Client, shown_url: &str) -> std::result::Result<(), Prepared> {
    client.batch_execute(
        "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('factstr-schema:' || current_schema(), 0));",
    )?;
    let schema: Option<String> = client
        .query_one("SELECT current_schema()::text", &[])?
        .get(0);
    let Some(schema) = schema else {
        return Err(Prepared::Refused(Error::Backend(format!(
            "{shown_url}: no schema to create tables in (the search_path names no existing schema)"
        ))));
    };
    let existing: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
            &[],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let is_new = !existing.iter().any(|t| t == "events");
    for (table, columns) in layout::expected_tables(CURSOR_TABLE) {
        if !existing.iter().any(|t| t == table) {
            continue;
        }
        let found: Vec<String> = client
            .query(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                &[&table],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if found != *columns {
            return Err(Prepared::Refused(Error::Backend(format!(
                "schema {schema:?} of {shown_url} is not a factstr store: table `{table}` has columns {found:?}, expected {columns:?}"
            ))));
        }
    }
    // Creating what exists already still needs its ownership (`CREATE INDEX IF NOT EXISTS`,
    // `CREATE OR REPLACE FUNCTION`): skip it when everything is there, so that a role that may
    // only use the tables (granted by their owner) can open the store.
    let complete: bool = client.query_one(ALL_PRESENT, &[])?.get(0);
    if !complete {
        // Indexing an existing log (written by the upstream crates) takes time in proportion to it.
        client.batch_execute_within(CREATE, CREATE_BOUND)?;
    }
    let has_trigger = client
        .query_opt(
            "SELECT 1 FROM pg_trigger WHERE tgname = 'factstr_notify_commit' AND tgrelid = (current_schema() || '.events')::regclass",
            &[],
        )?
        .is_some();
    if !has_trigger {
        client.batch_execute(
            "CREATE TRIGGER factstr_notify_commit AFTER INSERT ON events \
             FOR EACH STATEMENT EXECUTE FUNCTION factstr_notify_commit()",
        )?;
    }
    client.execute(
        "INSERT INTO store_metadata (key, value) VALUES ('store_format_version', '1') ON CONFLICT (key) DO NOTHING",
        &[],
    )?;
    if is_new {
        client.execute(
            "INSERT INTO store_metadata (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            &[&BATCH_FORMAT_KEY, &BATCH_FORMAT_SPARSE],
        )?;
    }
    let version: String = client
        .query_one(
            "SELECT value FROM store_metadata WHERE key = 'store_format_version'",
            &[],
        )?
        .get(0);
    if version != "1" {
        return Err(Prepared::Refused(Error::Backend(format!(
            "{shown_url} has store_format_version {version:?}; this factstr reads version 1"
        ))));
    }
    let key_format: Option<i32> = client
        .query_opt(
            "SELECT key_format FROM factstr_payload_index_state WHERE id = 1",
            &[],
        )?
        .map(|row| row.get(0));
    if key_format != Some(PAYLOAD_KEY_FORMAT) {
        client.batch_execute(
            "TRUNCATE factstr_payload_index; DELETE FROM factstr_payload_index_state;",
        )?;
        client.execute(
            "INSERT INTO factstr_payload_index_state (id, key_format, indexed_through) VALUES (1, $1, 0)",
            &[&PAYLOAD_KEY_FORMAT],
        )?;
    }
    client.batch_execute("COMMIT")?;
    Ok(())
}

/// Creates the database `name` on the server unless it exists (SPEC §11 `bootstrap`).
pub fn create_database(server: &Pool, name: &str) -> Result<()> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63;
    if !valid {
        return Err(Error::InvalidInput(format!(
            "database name {name:?} must match [A-Za-z_][A-Za-z0-9_]* (at most 63 characters)"
        )));
    }
    let mut client = server.connect()?;
    let exists = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&name],
        )
        .map_err(|e| server.error(e))?
        .get::<_, bool>(0);
    if exists {
        return Ok(());
    }
    match client.batch_execute(&format!("CREATE DATABASE \"{name}\"")) {
        Ok(()) => Ok(()),
        // Another process created it first.
        Err(e)
            if e.as_db_error()
                .is_some_and(|db| db.code().code() == "42P04" || db.code().code() == "23505") =>
        {
            Ok(())
        }
        Err(e) => Err(server.error(e)),
    }
}
