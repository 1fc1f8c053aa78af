//! The payload index of the SQLite store: which events have a given scalar at a given path.
//!
//! Postings (key hash -> sequence numbers) live in blocks (`posting_block`), organised as a
//! small log-structured merge tree that only ever appends pages:
//! - Level 0 is in commit order: one row per append, holding its postings, so a commit adds one
//!   row at the end of a small table.
//! - When level 0 would hold more than `LEVEL0_NUMBERS` sequence numbers or `LEVEL0_ROWS` rows,
//!   its postings (with the append's) are sorted by key and written as a new *run* of level 1:
//!   consecutive blocks of a few hundred keys, in key order.
//! - When a level has `RUNS_PER_LEVEL` runs, they are merged into one run of the next level:
//!   small merges at once, large ones a slice at a time (see "Merging in slices" below).
//!
//! Each posting is so written once per level, always into fresh pages. (Keeping postings one per
//! row in key-ordered B-trees, as this index first did, dirtied a page per key range at every
//! commit or merge: measured, the index then cost more WAL bytes than the events themselves.)
//! A lookup reads level 0's few rows, then seeks one block per run (`IndexReader`: once per key
//! and snapshot, for the estimate and the lookup together).
//!
//! Tables: `factstr_payload_level_0` (level 0), `factstr_payload_runs` (which runs exist) and
//! `factstr_payload_blocks` (their blocks; the rowid is the run in the high 32 bits and the
//! block's largest key in the low ones, so one seek finds the block that may hold a key and a
//! new run is appended at the end of the table), `factstr_payload_merge` (the merge in slices
//! under way, if any).
//!
//! Merging in slices: a merge of more than `MERGE_AT_ONCE_NUMBERS` sequence numbers, done
//! inside the one append that fills the level, cost that append tens of milliseconds to seconds
//! (measured: one append writing 529 WAL pages in 50 ms at 100,000 facts, one writing 4,879
//! pages in 819 ms at 1,000,000; with slices the worst wrote 320 pages in 53 ms there). Such a merge instead marks its runs (level 0 in `factstr_payload_runs`: no
//! run is ever of level 0 otherwise), creates its target run (level 0 too until done) and then
//! every append moves the smallest keys of the marked runs into the target, at least
//! `MERGE_SLICE_NUMBERS` sequence numbers, each key whole. A key so lives in exactly one run of
//! the merge at any commit, and a lookup, which seeks every run, finds it wherever it is. Each
//! slice is part of its append's transaction: a crash leaves a committed slice or none.

use rusqlite::{Connection, OptionalExtension};

use super::{backend, posting_block};
use crate::error::{Error, Result};
use crate::sql::numbers::{from_sql, to_sql};

pub const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS factstr_payload_level_0 (
        first_sequence_number INTEGER PRIMARY KEY,
        number_count INTEGER NOT NULL,
        postings BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS factstr_payload_runs (
        run INTEGER PRIMARY KEY,
        level INTEGER NOT NULL,
        number_count INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS factstr_payload_blocks (
        id INTEGER PRIMARY KEY,
        first_key INTEGER NOT NULL,
        number_count INTEGER NOT NULL,
        postings BLOB NOT NULL
    );
    CREATE TABLE IF NOT EXISTS factstr_payload_merge (
        target INTEGER PRIMARY KEY,
        level INTEGER NOT NULL
    );
";

/// Drops every table this index (or an earlier layout of it) created, before a rebuild.
pub fn drop_all(connection: &Connection) -> Result<()> {
    let names: Vec<String> = {
        let mut statement = connection
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'factstr_payload_%' \
                 AND name <> 'factstr_payload_index_state'",
            )
            .map_err(backend)?;
        let rows = statement.query_map([], |row| row.get(0)).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)?
    };
    for name in names {
        connection
            .execute_batch(&format!("DROP TABLE {name}"))
            .map_err(backend)?;
    }
    Ok(())
}

/// Level 0 is written into a run when it would hold more sequence numbers or rows than this:
/// few rows keep a lookup's read of level 0 short.
const LEVEL0_NUMBERS: i64 = 4096;
const LEVEL0_ROWS: i64 = 32;
/// Runs a level holds before they are merged into one run of the next level.
const RUNS_PER_LEVEL: i64 = 8;
/// A merge that would hold more sequence numbers than this (in memory, inside one append's
/// transaction) does not happen: the level keeps more runs instead, and lookups seek a few more
/// blocks. (At three keys per event, levels reach this size after some 20 million events.)
const MAX_MERGED_NUMBERS: i64 = 1 << 23;
/// Merges of up to this many sequence numbers happen at once, inside the append that fills the
/// level (a few milliseconds); larger ones in slices, one per append (see the module header).
const MERGE_AT_ONCE_NUMBERS: i64 = 1 << 16;
/// Sequence numbers an append moves, at least, of a merge in slices: a merge of N numbers so
/// ends within N / 65,536 appends, long before its level is full again (which takes 8x as many
/// numbers as it merges). Measured: smaller slices cost more pages in all (every slice also
/// rewrites the block each source has across its bound, and the tables' inner pages).
const MERGE_SLICE_NUMBERS: usize = 1 << 16;
/// A run's blocks hold up to this many keys or sequence numbers (a block then fits in a page).
/// A key with more numbers gets a block of its own, which counting does not need to read.
const BLOCK_KEYS: usize = 256;
const BLOCK_NUMBERS: usize = 1024;

fn damaged(_: posting_block::Damaged) -> Error {
    Error::Backend("the payload index is damaged (a block does not decode)".into())
}

/// Adds `pairs` ((key hash, sequence number), any order) of one append, or of a catch-up over
/// several: as one row of level 0 while it has room, else with level 0's postings as a new run.
pub fn add(connection: &Connection, mut pairs: Vec<(i64, u64)>) -> Result<()> {
    pairs.sort_unstable();
    pairs.dedup();
    let Some(base) = pairs.iter().map(|(_, number)| *number).min() else {
        return Ok(());
    };
    let (rows, held): (i64, i64) = connection
        .prepare_cached(
            "SELECT count(*), COALESCE(SUM(number_count), 0) FROM factstr_payload_level_0",
        )
        .map_err(backend)?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(backend)?;
    let count = pairs.len() as i64;
    if rows < LEVEL0_ROWS && held + count <= LEVEL0_NUMBERS {
        let block = posting_block::encode(base, &pairs).map_err(damaged)?;
        connection
            .prepare_cached("INSERT INTO factstr_payload_level_0 (first_sequence_number, number_count, postings) VALUES (?1, ?2, ?3)")
            .map_err(backend)?
            .execute((to_sql(base, "sequence number")?, count, block))
            .map_err(backend)?;
    } else {
        fold_level0(connection, pairs)?;
    }
    // A large add (a catch-up's part, a huge batch) moves as much, so merges keep pace.
    advance_merge(connection, MERGE_SLICE_NUMBERS.max(count as usize))
}

/// Writes level 0's postings and `pairs` as a new run, then merges the levels that filled.
fn fold_level0(connection: &Connection, mut pairs: Vec<(i64, u64)>) -> Result<()> {
    for_level0(connection, |base, block| {
        posting_block::decode(block, base, &mut pairs).map_err(damaged)
    })?;
    connection
        .prepare_cached("DELETE FROM factstr_payload_level_0")
        .map_err(backend)?
        .execute([])
        .map_err(backend)?;
    pairs.sort_unstable();
    write_run(connection, level_for(pairs.len()), &pairs)?;
    merge_full_levels(connection)
}

/// The level a new run of `numbers` entries belongs to: level 1 holds runs of up to two level
/// 0's worth, each further level runs `RUNS_PER_LEVEL` times larger. A large run (a catch-up
/// over many foreign appends, a rebuild, a huge batch) so starts high and is not merged again
/// and again with small runs.
fn level_for(numbers: usize) -> i64 {
    let mut level = 1;
    let mut capacity = 2 * LEVEL0_NUMBERS as usize;
    while numbers > capacity {
        level += 1;
        capacity = capacity.saturating_mul(RUNS_PER_LEVEL as usize);
    }
    level
}

/// Writes `pairs` (sorted) as a new run of `level`, in blocks.
fn write_run(connection: &Connection, level: i64, pairs: &[(i64, u64)]) -> Result<()> {
    let run = new_run(connection, level, pairs.len() as i64)?;
    write_blocks(connection, run, pairs)
}

/// Registers a new run (the next number) of `level` holding `numbers` sequence numbers.
fn new_run(connection: &Connection, level: i64, numbers: i64) -> Result<i64> {
    let run: i64 = connection
        .prepare_cached("SELECT COALESCE(MAX(run), 0) + 1 FROM factstr_payload_runs")
        .map_err(backend)?
        .query_row([], |row| row.get(0))
        .map_err(backend)?;
    connection
        .prepare_cached(
            "INSERT INTO factstr_payload_runs (run, level, number_count) VALUES (?1, ?2, ?3)",
        )
        .map_err(backend)?
        .execute((run, level, numbers))
        .map_err(backend)?;
    Ok(run)
}

/// Writes `pairs` (sorted, every key above those `run` holds already) as blocks of `run`.
fn write_blocks(connection: &Connection, run: i64, pairs: &[(i64, u64)]) -> Result<()> {
    let mut insert = connection
        .prepare_cached("INSERT INTO factstr_payload_blocks (id, first_key, number_count, postings) VALUES (?1, ?2, ?3, ?4)")
        .map_err(backend)?;
    let mut rest = pairs;
    while !rest.is_empty() {
        let end = block_end(rest);
        let (block, after) = rest.split_at(end);
        let last_key = block[end - 1].0;
        let encoded = posting_block::encode(0, block).map_err(damaged)?;
        insert
            .execute((
                block_id(run, last_key),
                block[0].0,
                block.len() as i64,
                encoded,
            ))
            .map_err(backend)?;
        rest = after;
    }
    Ok(())
}

/// Where the block that starts `pairs` ends: at a key boundary (a key's postings never span
/// two blocks), before `BLOCK_KEYS` keys or `BLOCK_NUMBERS` numbers are exceeded, except that a
/// key with more numbers than that fills a block alone.
fn block_end(pairs: &[(i64, u64)]) -> usize {
    let mut keys = 0;
    let mut end = 0;
    while end < pairs.len() && keys < BLOCK_KEYS {
        let key = pairs[end].0;
        let key_end = end + pairs[end..].partition_point(|(k, _)| *k == key);
        if keys > 0 && key_end > BLOCK_NUMBERS {
            break;
        }
        end = key_end;
        keys += 1;
        if end >= BLOCK_NUMBERS {
            break;
        }
    }
    end
}

/// A block's rowid: its run, then its largest key (key hashes are 32-bit).
fn block_id(run: i64, last_key: i64) -> i64 {
    (run << 32) | last_key
}

/// Merges the runs of every level that reached `RUNS_PER_LEVEL` into one run of a higher level,
/// lowest level first, until no level is full: small merges at once, a large one by starting a
/// merge in slices (one at a time: a full level waits while another merges in slices).
fn merge_full_levels(connection: &Connection) -> Result<()> {
    loop {
        let full: Vec<(i64, i64)> = {
            let mut statement = connection
                .prepare_cached(
                    "SELECT level, sum(number_count) FROM factstr_payload_runs WHERE level > 0 \
                     GROUP BY level HAVING count(*) >= ?1 AND sum(number_count) <= ?2 ORDER BY level",
                )
                .map_err(backend)?;
            let rows = statement
                .query_map([RUNS_PER_LEVEL, MAX_MERGED_NUMBERS], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<_>>().map_err(backend)?
        };
        let slicing = merge_in_slices(connection)?.is_some();
        let Some(&(level, numbers)) = full
            .iter()
            .find(|(_, numbers)| *numbers <= MERGE_AT_ONCE_NUMBERS || !slicing)
        else {
            return Ok(());
        };
        if numbers <= MERGE_AT_ONCE_NUMBERS {
            merge_at_once(connection, level)?;
        } else {
            start_merge_in_slices(connection, level, numbers)?;
        }
    }
}

/// Merges the runs of `level` into one new run, in one go.
fn merge_at_once(connection: &Connection, level: i64) -> Result<()> {
    let runs: Vec<i64> = {
        let mut statement = connection
            .prepare_cached("SELECT run FROM factstr_payload_runs WHERE level = ?1")
            .map_err(backend)?;
        let rows = statement
            .query_map([level], |row| row.get(0))
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)?
    };
    let mut pairs = Vec::new();
    for &run in &runs {
        let mut statement = connection
            .prepare_cached(
                "SELECT postings FROM factstr_payload_blocks WHERE id >= ?1 AND id < ?2",
            )
            .map_err(backend)?;
        let mut rows = statement
            .query((block_id(run, 0), block_id(run + 1, 0)))
            .map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            posting_block::decode(blob(row, 0)?, 0, &mut pairs).map_err(damaged)?;
        }
        drop(rows);
        connection
            .prepare_cached("DELETE FROM factstr_payload_blocks WHERE id >= ?1 AND id < ?2")
            .map_err(backend)?
            .execute((block_id(run, 0), block_id(run + 1, 0)))
            .map_err(backend)?;
        connection
            .prepare_cached("DELETE FROM factstr_payload_runs WHERE run = ?1")
            .map_err(backend)?
            .execute([run])
            .map_err(backend)?;
    }
    pairs.sort_unstable();
    write_run(connection, level_for(pairs.len()).max(level + 1), &pairs)
}

/// The largest key of the next slice of a merge's `sources` (None when they are empty): the
/// smallest, over the sources, of the last key of the block in which the source reaches its
/// share of `budget` numbers. So each source moves at most its share and one block, and the
/// source setting the bound moves at least its share (or all it holds).
fn slice_bound(connection: &Connection, sources: &[i64], budget: usize) -> Result<Option<i64>> {
    let share = budget.div_ceil(sources.len().max(1)) as i64;
    let mut statement = connection
        .prepare_cached(
            "SELECT id, number_count FROM factstr_payload_blocks WHERE id >= ?1 AND id < ?2 ORDER BY id",
        )
        .map_err(backend)?;
    let mut bound: Option<i64> = None;
    for &run in sources {
        let mut rows = statement
            .query((block_id(run, 0), block_id(run + 1, 0)))
            .map_err(backend)?;
        let mut numbers = 0;
        let mut last = None;
        while let Some(row) = rows.next().map_err(backend)? {
            last = Some(row.get::<_, i64>(0).map_err(backend)? & 0xffff_ffff);
            numbers += row.get::<_, i64>(1).map_err(backend)?;
            if numbers >= share || bound.is_some_and(|b| last.is_some_and(|l| l >= b)) {
                break;
            }
        }
        if let Some(last) = last {
            bound = Some(bound.map_or(last, |b| b.min(last)));
        }
    }
    Ok(bound)
}

/// Moves every posting of `run` with a key up to `bound` into `moved`: the blocks wholly at or
/// below it are deleted, the one block across it keeps its larger keys (and so its id, its
/// largest key).
fn move_through(
    connection: &Connection,
    run: i64,
    bound: i64,
    moved: &mut Vec<(i64, u64)>,
) -> Result<()> {
    let across = {
        let mut statement = connection
            .prepare_cached(
                "SELECT id, postings FROM factstr_payload_blocks WHERE id >= ?1 AND id < ?2 ORDER BY id",
            )
            .map_err(backend)?;
        let mut rows = statement
            .query((block_id(run, 0), block_id(run + 1, 0)))
            .map_err(backend)?;
        let mut across = None;
        while let Some(row) = rows.next().map_err(backend)? {
            let id: i64 = row.get(0).map_err(backend)?;
            if id & 0xffff_ffff <= bound {
                posting_block::decode(blob(row, 1)?, 0, moved).map_err(damaged)?;
            } else {
                let mut pairs = Vec::new();
                posting_block::decode(blob(row, 1)?, 0, &mut pairs).map_err(damaged)?;
                across = Some((id, pairs));
                break;
            }
        }
        across
    };
    connection
        .prepare_cached("DELETE FROM factstr_payload_blocks WHERE id >= ?1 AND id <= ?2")
        .map_err(backend)?
        .execute((block_id(run, 0), block_id(run, bound)))
        .map_err(backend)?;
    let Some((id, pairs)) = across else {
        return Ok(());
    };
    let split = pairs.partition_point(|(key, _)| *key <= bound);
    if split == 0 {
        return Ok(());
    }
    moved.extend_from_slice(&pairs[..split]);
    let rest = &pairs[split..];
    connection
        .prepare_cached(
            "UPDATE factstr_payload_blocks SET first_key = ?2, number_count = ?3, postings = ?4 WHERE id = ?1",
        )
        .map_err(backend)?
        .execute((
            id,
            rest[0].0,
            rest.len() as i64,
            posting_block::encode(0, rest).map_err(damaged)?,
        ))
        .map_err(backend)?;
    Ok(())
}

/// The merge in slices under way: its target run and the level that run will have.
fn merge_in_slices(connection: &Connection) -> Result<Option<(i64, i64)>> {
    connection
        .prepare_cached("SELECT target, level FROM factstr_payload_merge")
        .map_err(backend)?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()
        .map_err(backend)
}

/// Marks the runs of `level` (`numbers` sequence numbers together) as the sources of a merge
/// in slices, and creates its (empty) target run.
fn start_merge_in_slices(connection: &Connection, level: i64, numbers: i64) -> Result<()> {
    connection
        .prepare_cached("UPDATE factstr_payload_runs SET level = 0 WHERE level = ?1")
        .map_err(backend)?
        .execute([level])
        .map_err(backend)?;
    let target = new_run(connection, 0, 0)?;
    let final_level = level_for(usize::try_from(numbers).unwrap_or(usize::MAX)).max(level + 1);
    connection
        .prepare_cached("INSERT INTO factstr_payload_merge (target, level) VALUES (?1, ?2)")
        .map_err(backend)?
        .execute((target, final_level))
        .map_err(backend)?;
    Ok(())
}

/// Moves at least `budget` sequence numbers (or all that are left) of the merge in slices, if
/// one is under way, from its sources into its target: the postings of every key up to a bound
/// (`slice_bound`), whole, from every source. Ends the merge when the sources are empty.
fn advance_merge(connection: &Connection, budget: usize) -> Result<()> {
    let Some((target, final_level)) = merge_in_slices(connection)? else {
        return Ok(());
    };
    let runs: Vec<i64> = {
        let mut statement = connection
            .prepare_cached("SELECT run FROM factstr_payload_runs WHERE level = 0")
            .map_err(backend)?;
        let rows = statement.query_map([], |row| row.get(0)).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)?
    };
    if !runs.contains(&target) {
        // Not ours any more (a writer without merges in slices merged level 0's runs whole).
        connection
            .prepare_cached("DELETE FROM factstr_payload_merge")
            .map_err(backend)?
            .execute([])
            .map_err(backend)?;
        return Ok(());
    }
    let sources: Vec<i64> = runs.into_iter().filter(|run| *run != target).collect();
    let mut moved: Vec<(i64, u64)> = Vec::new();
    let mut finished = false;
    while moved.len() < budget {
        let Some(bound) = slice_bound(connection, &sources, budget - moved.len())? else {
            finished = true;
            break;
        };
        for &run in &sources {
            move_through(connection, run, bound, &mut moved)?;
        }
    }
    moved.sort_unstable();
    write_blocks(connection, target, &moved)?;
    connection
        .prepare_cached(
            "UPDATE factstr_payload_runs SET number_count = number_count + ?2 WHERE run = ?1",
        )
        .map_err(backend)?
        .execute((target, moved.len() as i64))
        .map_err(backend)?;
    if !finished {
        return Ok(());
    }
    connection
        .prepare_cached("DELETE FROM factstr_payload_runs WHERE level = 0 AND run <> ?1")
        .map_err(backend)?
        .execute([target])
        .map_err(backend)?;
    connection
        .prepare_cached("UPDATE factstr_payload_runs SET level = ?2 WHERE run = ?1")
        .map_err(backend)?
        .execute((target, final_level))
        .map_err(backend)?;
    connection
        .prepare_cached("DELETE FROM factstr_payload_merge")
        .map_err(backend)?
        .execute([])
        .map_err(backend)?;
    // The target may have filled its level.
    merge_full_levels(connection)
}

fn blob<'r>(row: &'r rusqlite::Row<'_>, column: usize) -> Result<&'r [u8]> {
    row.get_ref(column)
        .map_err(backend)?
        .as_blob()
        .map_err(|_| damaged(posting_block::Damaged))
}

/// Calls `visit` with each row of level 0: its base sequence number and its block.
fn for_level0(
    connection: &Connection,
    mut visit: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let mut statement = connection
        .prepare_cached("SELECT first_sequence_number, postings FROM factstr_payload_level_0")
        .map_err(backend)?;
    let mut rows = statement.query([]).map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        let base = from_sql(row.get(0).map_err(backend)?);
        visit(base, blob(row, 1)?)?;
    }
    Ok(())
}

/// What a run holds for a key: a block to search, or (when only counting) a block that holds
/// this key alone (a common key, whose block can be large), not read: its id and how many
/// sequence numbers it holds.
enum RunHit<'a> {
    Block(&'a [u8]),
    OnlyKey { block: i64, numbers: u64 },
}

/// Calls `visit` with what each of `runs` holds for `hash`: one seek per run, reading a block
/// only when it holds other keys too (a block of one key is only counted).
fn for_run_blocks(
    connection: &Connection,
    runs: &[i64],
    hash: i64,
    mut visit: impl FnMut(RunHit<'_>) -> Result<()>,
) -> Result<()> {
    if u32::try_from(hash).is_err() {
        return Ok(()); // every indexed key is a 32-bit hash
    }
    // The first block whose largest key is at least `hash`; SQLite reads `postings` only when
    // the CASE asks for it.
    let mut statement = connection
        .prepare_cached(
            "SELECT id, first_key, number_count, \
             CASE WHEN first_key = (id & 4294967295) THEN NULL ELSE postings END \
             FROM factstr_payload_blocks WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 1",
        )
        .map_err(backend)?;
    for &run in runs {
        let mut rows = statement
            .query((block_id(run, hash), block_id(run + 1, 0)))
            .map_err(backend)?;
        let Some(row) = rows.next().map_err(backend)? else {
            continue;
        };
        if row.get::<_, i64>(1).map_err(backend)? > hash {
            continue;
        }
        match row.get_ref(3).map_err(backend)? {
            rusqlite::types::ValueRef::Null => visit(RunHit::OnlyKey {
                block: row.get(0).map_err(backend)?,
                numbers: from_sql(row.get(2).map_err(backend)?),
            })?,
            _ => visit(RunHit::Block(blob(row, 3)?))?,
        }
    }
    Ok(())
}

/// What one snapshot has read of one key.
#[derive(Default)]
struct KeyPostings {
    /// The sequence numbers read so far (unordered).
    numbers: Vec<u64>,
    /// Blocks that hold this key alone, counted but not read yet (see `RunHit::OnlyKey`).
    unread: Vec<i64>,
    /// How many sequence numbers those unread blocks hold.
    unread_count: u64,
}

/// Reads the payload index within one snapshot (one transaction), each key once: estimating a
/// key reads the blocks a lookup needs (except a common key's blocks of its own), so the lookup
/// that usually follows (planning, then reading the candidates; an `append_if` check) seeks no
/// run a second time. Must not outlive its transaction: it keeps what it read.
#[derive(Default)]
pub struct IndexReader {
    runs: Option<Vec<i64>>,
    keys: std::collections::HashMap<i64, KeyPostings>,
}

impl IndexReader {
    fn runs(&mut self, connection: &Connection) -> Result<&[i64]> {
        if self.runs.is_none() {
            let mut statement = connection
                .prepare_cached("SELECT run FROM factstr_payload_runs")
                .map_err(backend)?;
            let rows = statement.query_map([], |row| row.get(0)).map_err(backend)?;
            self.runs = Some(rows.collect::<rusqlite::Result<_>>().map_err(backend)?);
        }
        Ok(self.runs.as_deref().unwrap_or_default())
    }

    /// The key's postings: level 0, then one seek per run (read once per reader).
    fn key(&mut self, connection: &Connection, hash: i64) -> Result<&mut KeyPostings> {
        if !self.keys.contains_key(&hash) {
            let mut key = KeyPostings::default();
            for_level0(connection, |base, block| {
                posting_block::lookup(block, base, hash, &mut key.numbers).map_err(damaged)
            })?;
            let runs = self.runs(connection)?;
            for_run_blocks(connection, runs, hash, |hit| match hit {
                RunHit::Block(block) => {
                    posting_block::lookup(block, 0, hash, &mut key.numbers).map_err(damaged)
                }
                RunHit::OnlyKey { block, numbers } => {
                    key.unread.push(block);
                    // Saturating: a damaged count must not overflow (it only misleads the plan).
                    key.unread_count = key.unread_count.saturating_add(numbers);
                    Ok(())
                }
            })?;
            self.keys.insert(hash, key);
        }
        Ok(self.keys.get_mut(&hash).expect("inserted above"))
    }

    /// How many events have the key, counted up to `cap` (at least).
    pub fn estimate(&mut self, connection: &Connection, hash: i64, cap: i64) -> Result<i64> {
        let key = self.key(connection, hash)?;
        let total = key.unread_count.saturating_add(key.numbers.len() as u64);
        Ok(i64::try_from(total).unwrap_or(i64::MAX).min(cap))
    }

    /// Appends every sequence number indexed under `hash` to `out` (unordered).
    pub fn lookup(&mut self, connection: &Connection, hash: i64, out: &mut Vec<u64>) -> Result<()> {
        let key = self.key(connection, hash)?;
        if !key.unread.is_empty() {
            let mut statement = connection
                .prepare_cached("SELECT postings FROM factstr_payload_blocks WHERE id = ?1")
                .map_err(backend)?;
            for block in std::mem::take(&mut key.unread) {
                let mut rows = statement.query([block]).map_err(backend)?;
                let row = rows.next().map_err(backend)?.ok_or_else(|| {
                    // Counted in this snapshot a moment ago: it cannot be gone.
                    damaged(posting_block::Damaged)
                })?;
                posting_block::lookup(blob(row, 0)?, 0, hash, &mut key.numbers).map_err(damaged)?;
            }
            key.unread_count = 0;
        }
        out.extend_from_slice(&key.numbers);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn numbers(connection: &Connection, hash: i64) -> Vec<u64> {
        let mut out = Vec::new();
        lookup(connection, hash, &mut out).expect("lookup");
        out.sort_unstable();
        out
    }

    fn lookup(connection: &Connection, hash: i64, out: &mut Vec<u64>) -> Result<()> {
        IndexReader::default().lookup(connection, hash, out)
    }

    fn estimate(connection: &Connection, hash: i64, cap: i64) -> Result<i64> {
        IndexReader::default().estimate(connection, hash, cap)
    }

    /// Estimating, then looking up with the same reader (what a search does): the lookup reads
    /// what the estimate left unread, and a second lookup gives the same numbers again.
    fn estimate_then_numbers(connection: &Connection, hash: i64) -> (i64, Vec<u64>) {
        let mut reader = IndexReader::default();
        let estimate = reader
            .estimate(connection, hash, i64::MAX)
            .expect("estimates");
        let mut out = Vec::new();
        reader.lookup(connection, hash, &mut out).expect("lookup");
        let mut again = Vec::new();
        reader.lookup(connection, hash, &mut again).expect("lookup");
        assert_eq!(out, again);
        assert_eq!(
            reader
                .estimate(connection, hash, i64::MAX)
                .expect("estimates"),
            estimate
        );
        out.sort_unstable();
        (estimate, out)
    }

    /// Appends of varied sizes through every level: each lookup and estimate agrees with a
    /// plain map at every step, and the index keeps few rows at level 0 and few runs per level.
    #[test]
    fn lookups_stay_exact_through_folds_and_merges() {
        let connection = Connection::open_in_memory().expect("opens");
        connection.execute_batch(CREATE).expect("creates");
        let mut model: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        let mut next = 1u64;
        let mut seed = 7u64;
        for append in 0..700u64 {
            // One huge append (a catch-up, a rebuild) starts as a run of a high level.
            let size = if append == 350 {
                40_000
            } else {
                [1, 3, 100, 17, 2000][(append % 5) as usize]
            };
            let mut pairs = Vec::new();
            for number in next..next + size {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // A rare key per event, a key shared by a batch, and one of few common keys.
                let keys = [
                    (seed >> 33) as i64 & 0xffff_ffff,
                    1_000_000 + append as i64,
                    (seed >> 60) as i64,
                ];
                for key in keys {
                    pairs.push((key, number));
                    model.entry(key).or_default().push(number);
                }
            }
            next += size;
            add(&connection, pairs).expect("adds");
            if append % 50 == 49 {
                for (key, expected) in model.iter().step_by(97).chain(model.range(0..16)) {
                    assert_eq!(
                        &numbers(&connection, *key),
                        expected,
                        "key {key} after append {append}"
                    );
                    let cap = expected.len() as i64 + 5;
                    assert_eq!(
                        estimate(&connection, *key, cap).expect("estimates"),
                        expected.len() as i64
                    );
                    assert_eq!(
                        estimate_then_numbers(&connection, *key),
                        (expected.len() as i64, expected.clone()),
                        "key {key} after append {append}, one reader"
                    );
                }
                assert!(numbers(&connection, 1_000_000 + 700).is_empty());
            }
        }
        let level0_rows: i64 = connection
            .query_row("SELECT count(*) FROM factstr_payload_level_0", [], |row| {
                row.get(0)
            })
            .expect("counts");
        assert!(level0_rows <= LEVEL0_ROWS);
        let levels: Vec<(i64, i64)> = {
            let mut statement = connection
                .prepare("SELECT level, count(*) FROM factstr_payload_runs GROUP BY level")
                .expect("prepares");
            let rows = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .expect("reads");
            rows.collect::<rusqlite::Result<_>>().expect("reads")
        };
        assert!(
            levels
                .iter()
                .all(|(level, runs)| *level == 0 || *runs < RUNS_PER_LEVEL),
            "{levels:?}"
        );
        assert!(
            levels.iter().any(|(level, _)| *level >= 3),
            "merges reached level 3: {levels:?}"
        );
    }

    fn count(connection: &Connection, sql: &str) -> i64 {
        connection
            .query_row(sql, [], |row| row.get(0))
            .expect("counts")
    }

    /// A merge above `MERGE_AT_ONCE_NUMBERS` is not done by the append that fills the level: it
    /// moves a slice per append (no append writes much more than a slice), every lookup stays
    /// exact at every step (keys at the slice boundary too), and it ends with the sources gone
    /// and the target at its level. On a real file, reopened mid-merge: the merge's state is
    /// committed data, not memory.
    #[test]
    fn a_large_merge_happens_in_slices_and_lookups_stay_exact() {
        let folder = std::env::temp_dir().join(format!("factstr-slices-{}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("creates the folder");
        let path = folder.join("index.db");
        let _ = std::fs::remove_file(&path);
        let mut connection = Connection::open(&path).expect("opens");
        connection.execute_batch(CREATE).expect("creates");
        let mut model: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        let mut next = 1u64;
        let add_events = |connection: &Connection,
                          model: &mut BTreeMap<i64, Vec<u64>>,
                          next: &mut u64,
                          events: u64| {
            let mut pairs = Vec::new();
            for number in *next..*next + events {
                // A unique key, one of 3,000 shared keys, one of 7 common keys.
                for key in [
                    10_000_000 + number as i64,
                    (number % 3000) as i64,
                    (number % 7) as i64 + 5000,
                ] {
                    pairs.push((key, number));
                    model.entry(key).or_default().push(number);
                }
            }
            *next += events;
            add(connection, pairs).expect("adds");
        };
        // Eight level-2 runs of ~30,000 numbers each: together above MERGE_AT_ONCE_NUMBERS.
        for _ in 0..RUNS_PER_LEVEL {
            add_events(&connection, &mut model, &mut next, 10_000);
        }
        assert_eq!(
            count(&connection, "SELECT count(*) FROM factstr_payload_merge"),
            1,
            "the merge did not happen at once"
        );
        let mut slices = 0;
        loop {
            let before = count(&connection, "SELECT COALESCE(sum(number_count), 0) FROM factstr_payload_runs WHERE run = (SELECT target FROM factstr_payload_merge)");
            add_events(&connection, &mut model, &mut next, 1);
            slices += 1;
            if slices == 2 {
                drop(connection);
                connection = Connection::open(&path).expect("reopens");
            }
            let merging = count(&connection, "SELECT count(*) FROM factstr_payload_merge");
            if merging == 1 {
                let after = count(&connection, "SELECT sum(number_count) FROM factstr_payload_runs WHERE run = (SELECT target FROM factstr_payload_merge)");
                let slice = after - before;
                // At least a slice; at most a slice plus what the last step's blocks held.
                assert!(slice >= MERGE_SLICE_NUMBERS as i64, "{slice}");
                assert!(
                    slice <= MERGE_SLICE_NUMBERS as i64 + 9 * BLOCK_NUMBERS as i64,
                    "{slice}"
                );
            }
            for (key, expected) in model.iter().step_by(7).chain(model.range(5000..5007)) {
                assert_eq!(
                    &numbers(&connection, *key),
                    expected,
                    "key {key}, slice {slices}"
                );
                assert_eq!(
                    estimate(&connection, *key, i64::MAX).expect("estimates"),
                    expected.len() as i64
                );
            }
            if merging == 0 {
                break;
            }
            assert!(slices < 100, "the merge does not end");
        }
        assert!(slices >= 3, "{slices} slices");
        // The sources are gone; the target is the one run, at level 3.
        let runs_per_level = |level: i64| {
            connection
                .query_row(
                    "SELECT count(*) FROM factstr_payload_runs WHERE level = ?1",
                    [level],
                    |row| row.get::<_, i64>(0),
                )
                .expect("counts")
        };
        assert_eq!(
            (0..=3).map(runs_per_level).collect::<Vec<_>>(),
            [0, 0, 0, 1]
        );
        let indexed = count(
            &connection,
            "SELECT sum(number_count) FROM factstr_payload_runs",
        ) + count(
            &connection,
            "SELECT COALESCE(sum(number_count), 0) FROM factstr_payload_level_0",
        );
        assert_eq!(indexed, model.values().map(Vec::len).sum::<usize>() as i64);
        drop(connection);
        let _ = std::fs::remove_dir_all(&folder);
    }

    #[test]
    fn a_damaged_block_is_an_error_not_a_wrong_answer() {
        let connection = Connection::open_in_memory().expect("opens");
        connection.execute_batch(CREATE).expect("creates");
        add(&connection, vec![(5, 1), (6, 1)]).expect("adds");
        connection
            .execute_batch("UPDATE factstr_payload_level_0 SET postings = x'0100'")
            .expect("damages");
        let error = lookup(&connection, 5, &mut Vec::new()).expect_err("refuses");
        assert!(error.to_string().contains("damaged"), "{error}");
    }
}
