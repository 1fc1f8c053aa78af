//! The parts of the upstream table layout (SPEC §9) that both SQL stores check the same way: the
//! tables `factstr-sqlite` and `factstr-postgres` 0.5.2 both have, with their columns in order,
//! and the `store_metadata` marker that says how batch boundaries are recorded.

use crate::error::{Error, Result};

/// The `store_metadata` key of the batch boundary format, and the one format we read and write:
/// an `append_batches` row for each multi-event batch only.
pub const BATCH_FORMAT_KEY: &str = "append_batch_boundary_format";
pub const BATCH_FORMAT_SPARSE: &str = "sparse_v1";

/// The tables both upstream layouts have, with their columns in order.
const SHARED_TABLES: [(&str, &[&str]); 3] = [
    (
        "events",
        &["sequence_number", "occurred_at", "event_type", "payload"],
    ),
    (
        "append_batches",
        &["first_sequence_number", "last_sequence_number"],
    ),
    ("store_metadata", &["key", "value"]),
];

/// Every upstream table of a layout whose cursor table is `cursors` (table, columns in order).
pub fn expected_tables(
    cursors: (&'static str, &'static [&'static str]),
) -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    SHARED_TABLES.into_iter().chain([cursors])
}

/// Fails with a backend error naming the marker unless `recorded` (the marker's value, if any)
/// says the sparse batch boundaries that replay reads. Without it, a database may predate them:
/// its batches could not be told apart, so the upstream crates refuse every durable replay there,
/// and so do we (before the cursor is created). Plain appends and queries need no boundaries and
/// go on working.
pub fn check_batch_format(recorded: Option<&str>) -> Result<()> {
    if recorded == Some(BATCH_FORMAT_SPARSE) {
        return Ok(());
    }
    Err(Error::Backend(format!(
        "durable replay requires store_metadata {BATCH_FORMAT_KEY}={BATCH_FORMAT_SPARSE}, which this database {}",
        if recorded.is_some() { "records otherwise" } else { "lacks" }
    )))
}
