//! The rows of the SQL stores' payload indexes. One row per (key, batch): the first sequence number in the
//! batch whose payload has the key, and, when more events of the batch have it, the others as
//! a list of gaps. A key shared by a whole batch (a tag, a source) costs one row, not one per
//! event, which is most of what keeping the index costs an append.

/// `members` for the sequence numbers after `first` (ascending): LEB128 gaps, or `None` when
/// there are none.
pub fn encode_members(first: u64, rest: &[u64]) -> Option<Vec<u8>> {
    if rest.is_empty() {
        return None;
    }
    let mut bytes = Vec::with_capacity(rest.len());
    let mut previous = first;
    for &number in rest {
        push_varint(&mut bytes, number - previous);
        previous = number;
    }
    Some(bytes)
}

/// LEB128: seven bits per byte, low bits first, the high bit set on every byte but the last.
pub fn push_varint(bytes: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(low);
            return;
        }
        bytes.push(low | 0x80);
    }
}

/// Reads one LEB128 number at the start of `bytes`: the number and the bytes it took.
pub fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, index + 1));
        }
    }
    None
}

/// Appends `first` and the sequence numbers `members` encodes to `out`.
pub fn decode_members(first: u64, members: Option<&[u8]>, out: &mut Vec<u64>) {
    out.push(first);
    let Some(mut bytes) = members else { return };
    let mut previous = first;
    // The varint reader the blocks use; a damaged tail ends the list instead of overflowing.
    while let Some((gap, used)) = read_varint(bytes) {
        let Some(number) = previous.checked_add(gap) else {
            return;
        };
        previous = number;
        out.push(number);
        bytes = &bytes[used..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip() {
        for (first, rest) in [
            (5u64, vec![]),
            (1, vec![2, 3, 200, 70_000, 70_001]),
            (u64::MAX - 2, vec![u64::MAX]),
        ] {
            let encoded = encode_members(first, &rest);
            assert_eq!(encoded.is_none(), rest.is_empty());
            let mut out = Vec::new();
            decode_members(first, encoded.as_deref(), &mut out);
            let mut expected = vec![first];
            expected.extend(rest);
            assert_eq!(out, expected);
        }
    }
}

/// One posting: a key (hash), the first sequence number of a batch that has it, and the batch's
/// other sequence numbers that have it (`encode_members`).
pub type Posting = (i64, i64, Option<Vec<u8>>);

/// The postings of a batch: for each key (hash) that any of its events has, the first sequence
/// number that has it and the others (encoded). `keys` pairs a key with a sequence number.
pub fn batch_postings(mut keys: Vec<(i64, u64)>) -> Vec<Posting> {
    keys.sort_unstable();
    keys.dedup();
    keys.chunk_by(|a, b| a.0 == b.0)
        .map(|group| {
            let numbers: Vec<u64> = group.iter().map(|(_, number)| *number).collect();
            (
                group[0].0,
                numbers[0] as i64,
                encode_members(numbers[0], &numbers[1..]),
            )
        })
        .collect()
}
