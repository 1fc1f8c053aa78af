//! The members of a payload index row, as both SQL stores write them: one row per (key, batch)
//! holds the first sequence number in the batch whose payload has the key and, when more events
//! of the batch have it, the others as LEB128 gaps (`members`). A key shared by a whole batch (a
//! tag, a source) costs one row, not one per event, which is most of what keeping the index
//! costs an append. PostgreSQL writes these rows as they are (`postgres/postings.rs`); SQLite
//! folds them into blocks (`sqlite/posting_block.rs`).

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
