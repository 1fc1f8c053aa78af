//! Whether a stored JSON text is already the canonical form the engine writes (serde_json's
//! compact output, object keys sorted): then `factstr export` copies it into its lines and its
//! checksum as it is, instead of parsing and writing it again (the bulk of an export's work).
//! The check is conservative (see `is_canonical`): a text it does not vouch for is simply
//! parsed and written again, so a wrong "no" costs time, never a different export.

#[cfg(test)]
use serde_json::Value;

/// Whether `text` is exactly what serde_json writes for the value it holds (compact, object
/// keys in ascending order, each once), judged conservatively: `false` for anything it does not
/// fully vouch for (escapes in strings, numbers other than integers of up to 18 digits, since
/// floats and huge integers may be written differently, deep nesting, invalid JSON), which the
/// caller then parses and writes again. Checked by the tests below against serde_json itself.
pub fn is_canonical(text: &[u8]) -> bool {
    let mut at = 0;
    canonical_value(text, &mut at, 0) && at == text.len()
}

fn canonical_value(text: &[u8], at: &mut usize, depth: usize) -> bool {
    if depth > 64 {
        return false;
    }
    match text.get(*at) {
        Some(b'{') => {
            *at += 1;
            if text.get(*at) == Some(&b'}') {
                *at += 1;
                return true;
            }
            let mut previous: Option<&[u8]> = None;
            loop {
                let Some(key) = canonical_string(text, at) else {
                    return false;
                };
                // serde_json keeps objects in a BTreeMap<String, _>: keys strictly ascending
                // by their bytes (of a duplicate key only the last value would be kept).
                if previous.is_some_and(|p| p >= key) {
                    return false;
                }
                previous = Some(key);
                if text.get(*at) != Some(&b':') {
                    return false;
                }
                *at += 1;
                if !canonical_value(text, at, depth + 1) {
                    return false;
                }
                match text.get(*at) {
                    Some(b',') => *at += 1,
                    Some(b'}') => {
                        *at += 1;
                        return true;
                    }
                    _ => return false,
                }
            }
        }
        Some(b'[') => {
            *at += 1;
            if text.get(*at) == Some(&b']') {
                *at += 1;
                return true;
            }
            loop {
                if !canonical_value(text, at, depth + 1) {
                    return false;
                }
                match text.get(*at) {
                    Some(b',') => *at += 1,
                    Some(b']') => {
                        *at += 1;
                        return true;
                    }
                    _ => return false,
                }
            }
        }
        Some(b'"') => canonical_string(text, at).is_some(),
        Some(b't') => literal(text, at, b"true"),
        Some(b'f') => literal(text, at, b"false"),
        Some(b'n') => literal(text, at, b"null"),
        Some(b'-' | b'0'..=b'9') => canonical_integer(text, at),
        _ => false,
    }
}

fn literal(text: &[u8], at: &mut usize, word: &[u8]) -> bool {
    if text[*at..].starts_with(word) {
        *at += word.len();
        true
    } else {
        false
    }
}

/// A string without escapes or control characters (the text is UTF-8 already: it is a Rust
/// `String`); returns its content.
fn canonical_string<'t>(text: &'t [u8], at: &mut usize) -> Option<&'t [u8]> {
    if text.get(*at) != Some(&b'"') {
        return None;
    }
    let start = *at + 1;
    let length = text[start..]
        .iter()
        .position(|b| *b == b'"' || *b == b'\\' || *b < 0x20)?;
    let end = start + length;
    if text[end] != b'"' {
        return None;
    }
    *at = end + 1;
    Some(&text[start..end])
}

/// `0` or `-?[1-9][0-9]*` with at most 18 digits (always an `i64`, written back the same), not
/// followed by a fraction or exponent (a float), and not `-0`.
fn canonical_integer(text: &[u8], at: &mut usize) -> bool {
    let negative = text[*at] == b'-';
    let start = *at + usize::from(negative);
    let digits = text[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let end = start + digits;
    if digits == 0 || digits > 18 || (text[start] == b'0' && (digits > 1 || negative)) {
        return false;
    }
    if matches!(text.get(end), Some(b'.' | b'e' | b'E')) {
        return false;
    }
    *at = end;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What serde_json writes for the value `text` holds.
    fn rewritten(text: &str) -> Option<String> {
        serde_json::from_str::<Value>(text)
            .ok()
            .map(|v| serde_json::to_string(&v).unwrap())
    }

    #[test]
    fn canonical_texts_read_back_the_same() {
        let accepted = [
            r#"{}"#,
            r#"[]"#,
            "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"\u{e9} \u{2713} \u{7f} \u{2028}\"}}",
            r#"{"":0,"a":-12,"n":999999999999999999}"#,
            r#"[[[]],{},"x",-1]"#,
            r#""text""#,
            r#"{"course":"c-0000","n":5,"note":"xxxx","seats":30,"student":"s-000005"}"#,
        ];
        for text in accepted {
            assert!(is_canonical(text.as_bytes()), "{text}");
            assert_eq!(rewritten(text).as_deref(), Some(text));
        }
        let refused = [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a": 1}"#,
            r#" {}"#,
            r#"{}x"#,
            r#"{"a":1.0}"#,
            r#"{"a":-0.0}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":1234567890123456789}"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"\/"}"#,
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"{"a""#,
            "\"a\tb\"",
            "",
        ];
        for text in refused {
            assert!(!is_canonical(text.as_bytes()), "{text}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(!is_canonical(deep.as_bytes()));
    }

    #[test]
    fn whatever_is_accepted_is_what_serde_json_writes() {
        // Every text of up to five of these pieces that the check accepts reads back unchanged.
        let pieces = [
            "{", "}", "[", "]", ",", ":", "\"a\"", "\"b\"", "1", "-0", "0", "10", "true",
        ];
        let mut texts = vec![String::new()];
        for _ in 0..5 {
            texts = texts
                .iter()
                .flat_map(|t| pieces.iter().map(move |p| format!("{t}{p}")))
                .collect();
            for text in &texts {
                if is_canonical(text.as_bytes()) {
                    assert_eq!(rewritten(text).as_deref(), Some(text.as_str()), "{text}");
                }
            }
        }
    }
}
