//! A block: postings (key -> ascending sequence numbers) packed into one blob, the unit the
//! SQLite payload index stores. Packing a few hundred keys per row keeps an index write to a
//! few new pages, where one row per posting in a key-ordered B-tree would dirty a page per key
//! range. A lookup binary-searches the block's key array and decodes only the entry it finds.
//!
//! Layout (integers little-endian): `n: u32`, `n` keys (`u32`, ascending, unique), `n` entry ends
//! (`u32`, offsets into the entries), then the entries. Entry `i` holds key `i`'s sequence
//! numbers as LEB128 varints: their count, the first minus the block's base, then the gaps.

use crate::sql::members::{push_varint, read_varint};

/// A block that does not decode: the row was damaged outside of us.
#[derive(Debug)]
pub struct Damaged;

/// Packs `pairs` ((key, sequence number), sorted, no duplicates; keys 32-bit, every number at
/// least `base`) into a block.
pub fn encode(base: u64, pairs: &[(i64, u64)]) -> Result<Vec<u8>, Damaged> {
    let groups: Vec<&[(i64, u64)]> = pairs.chunk_by(|a, b| a.0 == b.0).collect();
    let count = u32::try_from(groups.len()).map_err(|_| Damaged)?;
    let mut keys = Vec::with_capacity(groups.len() * 4);
    let mut ends = Vec::with_capacity(groups.len() * 4);
    let mut entries = Vec::with_capacity(pairs.len() * 2);
    for group in groups {
        keys.extend(
            u32::try_from(group[0].0)
                .map_err(|_| Damaged)?
                .to_le_bytes(),
        );
        push_varint(&mut entries, group.len() as u64);
        let mut previous = base;
        for (_, number) in group {
            push_varint(&mut entries, number.checked_sub(previous).ok_or(Damaged)?);
            previous = *number;
        }
        ends.extend(
            u32::try_from(entries.len())
                .map_err(|_| Damaged)?
                .to_le_bytes(),
        );
    }
    let mut block = Vec::with_capacity(4 + keys.len() + ends.len() + entries.len());
    block.extend(count.to_le_bytes());
    block.extend(keys);
    block.extend(ends);
    block.extend(entries);
    Ok(block)
}

/// A block's parts, borrowed.
struct Block<'a> {
    keys: &'a [u8],
    ends: &'a [u8],
    entries: &'a [u8],
}

fn u32_at(bytes: &[u8], index: usize) -> u32 {
    u32::from_le_bytes(
        bytes[index * 4..index * 4 + 4]
            .try_into()
            .expect("four bytes"),
    )
}

impl<'a> Block<'a> {
    fn parse(block: &'a [u8]) -> Result<Self, Damaged> {
        let count = block.get(..4).ok_or(Damaged)?;
        let count = u32::from_le_bytes(count.try_into().expect("four bytes")) as usize;
        let header = count
            .checked_mul(8)
            .and_then(|size| size.checked_add(4))
            .ok_or(Damaged)?;
        if block.len() < header {
            return Err(Damaged);
        }
        let (keys, rest) = block[4..].split_at(count * 4);
        let (ends, entries) = rest.split_at(count * 4);
        Ok(Self {
            keys,
            ends,
            entries,
        })
    }

    fn len(&self) -> usize {
        self.keys.len() / 4
    }

    fn position(&self, hash: i64) -> Option<usize> {
        let hash = u32::try_from(hash).ok()?;
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = (low + high) / 2;
            match u32_at(self.keys, middle).cmp(&hash) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => return Some(middle),
            }
        }
        None
    }

    /// Entry `index`: how many sequence numbers it holds, and the bytes that encode them.
    fn entry(&self, index: usize) -> Result<(u64, &'a [u8]), Damaged> {
        let start = if index == 0 {
            0
        } else {
            u32_at(self.ends, index - 1) as usize
        };
        let end = u32_at(self.ends, index) as usize;
        let entry = self.entries.get(start..end).ok_or(Damaged)?;
        let (count, used) = read_varint(entry).ok_or(Damaged)?;
        Ok((count, &entry[used..]))
    }

    /// Calls `visit` with each sequence number of entry `index`.
    fn numbers(&self, base: u64, index: usize, mut visit: impl FnMut(u64)) -> Result<(), Damaged> {
        let (count, mut bytes) = self.entry(index)?;
        let mut number = base;
        for _ in 0..count {
            let (gap, used) = read_varint(bytes).ok_or(Damaged)?;
            number = number.checked_add(gap).ok_or(Damaged)?;
            visit(number);
            bytes = &bytes[used..];
        }
        Ok(())
    }
}

/// Appends the sequence numbers the block holds for `hash` to `out`.
pub fn lookup(block: &[u8], base: u64, hash: i64, out: &mut Vec<u64>) -> Result<(), Damaged> {
    let parsed = Block::parse(block)?;
    match parsed.position(hash) {
        Some(index) => parsed.numbers(base, index, |number| out.push(number)),
        None => Ok(()),
    }
}

/// Appends every (key, sequence number) of the block to `out`, in order.
pub fn decode(block: &[u8], base: u64, out: &mut Vec<(i64, u64)>) -> Result<(), Damaged> {
    let parsed = Block::parse(block)?;
    for index in 0..parsed.len() {
        let key = i64::from(u32_at(parsed.keys, index));
        parsed.numbers(base, index, |number| out.push((key, number)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(block: &[u8], hash: i64) -> Result<usize, Damaged> {
        let mut out = Vec::new();
        lookup(block, 0, hash, &mut out)?;
        Ok(out.len())
    }

    #[test]
    fn round_trip_count_and_lookup() {
        let pairs = vec![
            (3, 100),
            (3, 104),
            (7, 101),
            (7, 102),
            (9, 105),
            (u32::MAX as i64, 100),
        ];
        let block = encode(100, &pairs).expect("encodes");
        let mut decoded = Vec::new();
        decode(&block, 100, &mut decoded).expect("decodes");
        assert_eq!(decoded, pairs);
        let mut out = Vec::new();
        lookup(&block, 100, 7, &mut out).expect("reads");
        assert_eq!(out, vec![101, 102]);
        out.clear();
        lookup(&block, 100, 4, &mut out).expect("reads");
        assert!(out.is_empty());
        assert_eq!(count(&block, 3).expect("reads"), 2);
        assert_eq!(count(&block, u32::MAX as i64).expect("reads"), 1);
        assert_eq!(count(&block, 8).expect("reads"), 0);
    }

    #[test]
    fn damaged_blocks_are_refused_never_a_panic() {
        let block = encode(1, &[(5, 1), (5, 2), (6, 3)]).expect("encodes");
        for cut in 0..block.len() {
            let mut out = Vec::new();
            assert!(decode(&block[..cut], 1, &mut out).is_err(), "cut at {cut}");
        }
        assert!(decode(&[0xff, 0xff, 0xff, 0x7f], 1, &mut Vec::new()).is_err());
    }

    #[test]
    fn keys_out_of_range_and_numbers_below_base_are_refused() {
        assert!(encode(1, &[(-1, 1)]).is_err());
        assert!(encode(5, &[(1, 4)]).is_err());
    }
}
