//! Events as the SQL stores write them: JSON text and payload index keys, computed before the
//! store takes its write lock, so that the lock is held only for the writing.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;

use crate::payload_keys::selective_key_hashes;
use crate::types::NewEvent;

/// The serialised form of one event, prepared before the write lock is taken.
pub struct PreparedEvent {
    pub event_type: String,
    pub payload_text: String,
    /// The event's payload keys (see `payload_keys`), sorted and distinct.
    pub key_hashes: Vec<i64>,
    /// Whether the payload holds a float `-0.0`, which PostgreSQL's `numeric` cannot (it has no
    /// negative zero). Found only while writing `FloatText::Fraction`; false otherwise.
    pub negative_zero: bool,
}

/// How the payload text writes floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatText {
    /// The shortest text that reads back as the same float (`1e16`, `0.1`): SQLite keeps the
    /// text as it is.
    Shortest,
    /// The same digits, always in positional notation with a fraction (`10000000000000000.0`),
    /// for PostgreSQL's `jsonb`. It stores numbers as `numeric`, which keeps the number of
    /// decimals it was given and prints no exponent: `1e16` would come back as the integer
    /// `10000000000000000`, while `10000000000000000.0` comes back with the `.0` that says
    /// "a float".
    Fraction,
}

pub fn prepare_events(events: &[NewEvent], floats: FloatText) -> Vec<PreparedEvent> {
    events
        .iter()
        .map(|event| {
            let mut key_hashes: Vec<i64> = selective_key_hashes(&event.payload);
            key_hashes.sort_unstable();
            key_hashes.dedup();
            let (payload_text, negative_zero) = payload_text(&event.payload, floats);
            PreparedEvent {
                event_type: event.event_type.to_string(),
                payload_text,
                key_hashes,
                negative_zero,
            }
        })
        .collect()
}

/// The JSON text of a payload, floats written as `floats` says, and whether it holds a float
/// `-0.0` (`FloatText::Fraction` only).
pub fn payload_text(payload: &serde_json::Value, floats: FloatText) -> (String, bool) {
    match floats {
        FloatText::Shortest => (
            serde_json::to_string(payload).expect("JSON values always serialise"),
            false,
        ),
        FloatText::Fraction => {
            let mut out = Vec::with_capacity(128);
            let mut formatter = FractionFloats {
                negative_zero: false,
            };
            let mut serializer = serde_json::Serializer::with_formatter(&mut out, &mut formatter);
            payload
                .serialize(&mut serializer)
                .expect("JSON values always serialise");
            (
                String::from_utf8(out).expect("JSON text is UTF-8"),
                formatter.negative_zero,
            )
        }
    }
}

/// Compact JSON (the trait's default methods write what `CompactFormatter` writes) whose
/// floats are written positionally and always with a fraction.
struct FractionFloats {
    negative_zero: bool,
}

impl Formatter for &mut FractionFloats {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        if value == 0.0 && value.is_sign_negative() {
            self.negative_zero = true;
        }
        // `Display` of an f64 gives the shortest digits that read back as the same value, in
        // positional notation ("40731630811386930", "0.0000001", "-0"); only integral values
        // lack a fraction. Payload floats are finite (the binding refuses NaN and infinities).
        let text = value.to_string();
        writer.write_all(text.as_bytes())?;
        if !text.contains('.') {
            writer.write_all(b".0")?;
        }
        Ok(())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn fraction_text_keeps_every_float_and_marks_it_as_one() {
        let floats: [f64; 12] = [
            0.0,
            -0.0,
            5e-324,
            2.2250738585072014e-308,
            1.7976931348623157e308,
            -1.7976931348623157e308,
            4.073163081138693e16,
            1e16,
            1.8e19,
            123456789.12345679,
            0.1,
            1e-7,
        ];
        for f in floats {
            let (text, negative_zero) =
                payload_text(&json!({"f": f, "l": [f]}), FloatText::Fraction);
            assert_eq!(negative_zero, f == 0.0 && f.is_sign_negative());
            assert!(!text.contains('e'), "{text}");
            let back: Value = serde_json::from_str(&text).unwrap();
            for got in [&back["f"], &back["l"][0]] {
                assert!(got.is_f64(), "{text}");
                assert_eq!(got.as_f64().unwrap().to_bits(), f.to_bits(), "{text}");
            }
        }
        assert_eq!(
            payload_text(&json!({"f": 4.073163081138693e16}), FloatText::Fraction).0,
            r#"{"f":40731630811386930.0}"#
        );
        assert_eq!(
            payload_text(&json!([1e-7, 2.5, -0.0]), FloatText::Fraction),
            ("[0.0000001,2.5,-0.0]".to_owned(), true)
        );
        assert_eq!(
            payload_text(&json!([0.0, 0, "-0.0"]), FloatText::Fraction),
            (r#"[0.0,0,"-0.0"]"#.to_owned(), false)
        );
    }

    #[test]
    fn fraction_text_leaves_everything_but_floats_alone() {
        let value = json!({"i": [0, -1, i64::MIN, u64::MAX], "s": "a\"\\\n\u{1}é", "b": [true, false, null], "o": {}});
        assert_eq!(
            payload_text(&value, FloatText::Fraction),
            payload_text(&value, FloatText::Shortest)
        );
        assert_eq!(
            payload_text(&json!(-0.0), FloatText::Shortest),
            ("-0.0".to_owned(), false)
        );
    }
}
