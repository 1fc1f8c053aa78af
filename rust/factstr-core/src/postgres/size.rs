//! The disk size of a PostgreSQL store (`factstr info`, SPEC §14): the store's tables in the
//! connection's `current_schema()` with their indexes and TOAST (`pg_total_relation_size`), not
//! the whole database, which may hold other things. `None` when the role may not read sizes
//! (the function's EXECUTE revoked from it): then the size is unknown, not an error.

use tokio_postgres::error::SqlState;

use super::pool::Conn;
use crate::error::Result;

/// Every table `schema::CREATE` makes (a missing one counts nothing).
const SIZE: &str = "
    SELECT COALESCE(SUM(pg_total_relation_size(r)), 0)::bigint
    FROM unnest(ARRAY['events', 'append_batches', 'store_metadata', 'durable_stream_cursors',
        'factstr_payload_index', 'factstr_exact_payloads', 'factstr_payload_index_state']) AS name,
        LATERAL to_regclass(format('%I.%I', current_schema(), name)) AS r
    WHERE r IS NOT NULL";

pub fn storage_size(conn: &mut Conn) -> Result<Option<u64>> {
    match conn.query_one(SIZE, &[]) {
        Ok(row) => Ok(u64::try_from(row.get::<_, i64>(0)).ok()),
        Err(error)
            if error
                .as_db_error()
                .is_some_and(|db| *db.code() == SqlState::INSUFFICIENT_PRIVILEGE) =>
        {
            Ok(None)
        }
        Err(error) => Err(conn.error(error)),
    }
}
