//! SQL literals, for the one place that sends values inside a simple query: a conditional
//! append's insert and commit in one round trip (the extended protocol, which binds parameters,
//! cannot carry a COMMIT in the same round trip with the synchronous client).
//!
//! Strings are written as `E'...'` escape strings, whose meaning does not depend on the server's
//! `standard_conforming_strings`: a backslash and a quote are the only characters escaped.
//! Text with U+0000 (which PostgreSQL text cannot hold, and which would end the query message)
//! is refused, so the caller binds parameters instead.

use std::fmt::Write;

/// `E'text'`, or `None` when `text` holds U+0000.
pub fn text(text: &str) -> Option<String> {
    if text.contains('\0') {
        return None;
    }
    let mut literal = String::with_capacity(text.len() + 4);
    literal.push_str("E'");
    for c in text.chars() {
        match c {
            '\\' => literal.push_str("\\\\"),
            '\'' => literal.push_str("''"),
            _ => literal.push(c),
        }
    }
    literal.push('\'');
    Some(literal)
}

/// `ARRAY[E'a',E'b']::text[]`, or `None` when some text holds U+0000.
pub fn text_array<'a>(texts: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let items: Option<Vec<String>> = texts.into_iter().map(text).collect();
    Some(format!("ARRAY[{}]::text[]", items?.join(",")))
}

/// `ARRAY[1,2]::bigint[]`.
pub fn bigint_array(numbers: &[i64]) -> String {
    let items: Vec<String> = numbers.iter().map(i64::to_string).collect();
    format!("ARRAY[{}]::bigint[]", items.join(","))
}

/// `ARRAY[decode('0a0b','hex'),NULL]::bytea[]`.
pub fn bytea_array(values: &[Option<&[u8]>]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|value| match value {
            Some(bytes) => {
                let mut hex = String::with_capacity(bytes.len() * 2 + 20);
                hex.push_str("decode('");
                for byte in *bytes {
                    let _ = write!(hex, "{byte:02x}");
                }
                hex.push_str("','hex')");
                hex
            }
            None => "NULL".to_owned(),
        })
        .collect();
    format!("ARRAY[{}]::bytea[]", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_quotes_and_backslashes_only() {
        assert_eq!(text("plain").as_deref(), Some("E'plain'"));
        assert_eq!(
            text(r#"it's {"a":"\"b\\"}"#).as_deref(),
            Some(r#"E'it''s {"a":"\\"b\\\\"}'"#)
        );
        assert_eq!(text("é🙂$$").as_deref(), Some("E'é🙂$$'"));
        assert_eq!(text("a\0b"), None);
        assert_eq!(text_array(["x", "a\0"]), None);
        assert_eq!(
            text_array(["x", "y"]).as_deref(),
            Some("ARRAY[E'x',E'y']::text[]")
        );
    }

    #[test]
    fn arrays_of_numbers_and_bytes() {
        assert_eq!(
            bigint_array(&[1, -2, i64::MAX]),
            "ARRAY[1,-2,9223372036854775807]::bigint[]"
        );
        assert_eq!(bigint_array(&[]), "ARRAY[]::bigint[]");
        assert_eq!(
            bytea_array(&[Some(&[0, 255]), None]),
            "ARRAY[decode('00ff','hex'),NULL]::bytea[]"
        );
    }
}
