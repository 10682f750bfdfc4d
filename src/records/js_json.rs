//! JSON text as `JSON.stringify` writes it, for values warmcache stores.
//!
//! serde_json and V8 agree on strings (the same escapes, lowercase `\u00xx`,
//! UTF-8 left as it is) but not on numbers or key order:
//!
//! * numbers print as ECMAScript's `Number::toString` does (`ryu-js`): `1`
//!   for 1.0, `1e+21`, `1e-7`, `0` for -0; integers beyond ±2^53 print as
//!   the double `JSON.parse` makes of them (`9007199254740993` becomes
//!   `9007199254740992`), since that is what a Node writer would store;
//! * object keys that are array indices (`"0"`, `"42"`, up to 2^32 - 2) come
//!   first, in ascending order, then the others in the order they were
//!   written, as V8 keeps them.
//!
//! [`to_vec`] is what [`crate::TieredCache`] writes to Redis, so a value
//! read from Node and written back unchanged is byte for byte what
//! `JSON.stringify(JSON.parse(text))` gives.

use std::io;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::Value;
use serde_json::ser::Formatter;

/// Largest integer a double holds exactly (2^53).
const EXACT_INTEGER_LIMIT: u64 = 1 << 53;

/// `value` as `JSON.stringify` would write it.
///
/// # Errors
/// A value whose `Serialize` fails (e.g. a map with non-string keys).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::with_capacity(128);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, JsFormatter);
    JsOrder(&value).serialize(&mut serializer)?;
    Ok(out)
}

/// `JSON.stringify` of one number (`x` is finite; JSON has no other).
pub fn number_text(x: f64) -> String {
    ryu_js::Buffer::new().format_finite(x).to_owned()
}

/// serde_json's writer with ECMAScript number text.
struct JsFormatter;

impl JsFormatter {
    fn write_double<W: ?Sized + io::Write>(writer: &mut W, x: f64) -> io::Result<()> {
        writer.write_all(ryu_js::Buffer::new().format_finite(x).as_bytes())
    }
}

impl Formatter for JsFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        Self::write_double(writer, value)
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        Self::write_double(writer, f64::from(value))
    }

    fn write_u64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u64) -> io::Result<()> {
        if value <= EXACT_INTEGER_LIMIT {
            write!(writer, "{value}")
        } else {
            Self::write_double(writer, value as f64)
        }
    }

    fn write_i64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i64) -> io::Result<()> {
        if value.unsigned_abs() <= EXACT_INTEGER_LIMIT {
            write!(writer, "{value}")
        } else {
            Self::write_double(writer, value as f64)
        }
    }

    fn write_u128<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u128) -> io::Result<()> {
        Self::write_double(writer, value as f64)
    }

    fn write_i128<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i128) -> io::Result<()> {
        Self::write_double(writer, value as f64)
    }
}

/// Serializes a `Value` with its object keys in V8's order.
struct JsOrder<'a>(&'a Value);

impl Serialize for JsOrder<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let mut indices: Vec<(u32, &String, &Value)> = map
                    .iter()
                    .filter_map(|(k, v)| array_index(k).map(|i| (i, k, v)))
                    .collect();
                indices.sort_unstable_by_key(|(i, _, _)| *i);
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (_, key, value) in &indices {
                    out.serialize_entry(key, &JsOrder(value))?;
                }
                for (key, value) in map.iter().filter(|(k, _)| array_index(k).is_none()) {
                    out.serialize_entry(key, &JsOrder(value))?;
                }
                out.end()
            }
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&JsOrder(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// The key as an ECMAScript array index: the canonical decimal text of an
/// integer from 0 to 2^32 - 2 (no sign, no leading zero).
fn array_index(key: &str) -> Option<u32> {
    let bytes = key.as_bytes();
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return None;
    }
    let n: u64 = key.parse().ok()?;
    u32::try_from(n).ok().filter(|&n| n != u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restringify(text: &str) -> String {
        let value: Value = serde_json::from_str(text).expect("json");
        String::from_utf8(to_vec(&value).expect("writes")).expect("utf-8")
    }

    #[test]
    fn numbers_print_as_ecmascript_does() {
        for (text, js) in [
            ("1.0", "1"),
            ("1e21", "1e+21"),
            ("1e-7", "1e-7"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("0.1", "0.1"),
            ("9007199254740993", "9007199254740992"),
            ("123456789012345680000", "123456789012345680000"),
            ("1.5e300", "1.5e+300"),
            ("5e-324", "5e-324"),
            ("-9223372036854775808", "-9223372036854776000"),
        ] {
            assert_eq!(restringify(text), js, "{text}");
        }
    }

    #[test]
    fn array_index_keys_come_first_in_ascending_order() {
        assert_eq!(
            restringify(r#"{"b":1,"10":2,"a":3,"2":4,"01":5,"4294967295":6,"4294967294":7}"#),
            r#"{"2":4,"10":2,"4294967294":7,"b":1,"a":3,"01":5,"4294967295":6}"#
        );
    }

    #[test]
    fn a_lone_surrogate_is_not_readable_text() {
        // JSON.stringify writes "\ud800" for a lone surrogate; Rust text cannot hold it.
        let text = r#"{"customerId":"c","verified":true,"note":"\ud800"}"#;
        assert!(serde_json::from_str::<crate::records::AgeVerification>(text).is_err());
    }
}
