//! `RecordTime`: a time field of a record, in the form it was written.
//!
//! Node services store times two ways: `JSON.stringify` of a `Date` writes
//! its `toISOString()` (`"2026-11-26T00:00:00.000Z"`), and `Date.now()` is a
//! number of milliseconds. Other writers send RFC 3339 text with an offset,
//! with or without fractional seconds, or a float of milliseconds. A
//! [`RecordTime`] reads any of these and remembers the text it was read
//! from, so a record written back unchanged keeps it byte for byte, and a
//! new time for an existing field can take the form the field already had
//! ([`RecordTime::with_format_of`]).

use std::fmt;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Number, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// How a time is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TimeFormat {
    /// `Date#toISOString`: `"2026-11-26T00:00:00.000Z"` (milliseconds, UTC).
    #[default]
    Iso,
    /// `Date.now()`: milliseconds since the Unix epoch, an integer.
    EpochMs,
}

impl TimeFormat {
    /// The setting's spelling: `iso` or `epoch_ms`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iso => "iso",
            Self::EpochMs => "epoch_ms",
        }
    }

    /// Reads `iso` or `epoch_ms`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "iso" => Some(Self::Iso),
            "epoch_ms" => Some(Self::EpochMs),
            _ => None,
        }
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A point in time with millisecond resolution, as a record field holds it.
///
/// Equality compares the instant and the written text: two records that
/// compare equal serialize to the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordTime {
    /// Milliseconds since the epoch, as a JS `Date` would hold it.
    unix_ms: i64,
    written: Written,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Written {
    /// The string as read, or as `toISOString` writes it.
    Iso(String),
    /// The number as read (an integer or a float), or an integer.
    EpochMs(Number),
}

/// -9999-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the range of
/// the `time` crate, and so of this type (a JS `Date` reaches further).
const MIN_UNIX_MS: i64 = -377_705_116_800_000;
const MAX_UNIX_MS: i64 = 253_402_300_799_999;

impl RecordTime {
    /// `unix_ms` written in `format`; `None` outside the years -9999 to 9999.
    pub fn from_unix_ms(unix_ms: i64, format: TimeFormat) -> Option<Self> {
        if !(MIN_UNIX_MS..=MAX_UNIX_MS).contains(&unix_ms) {
            return None;
        }
        let written = match format {
            TimeFormat::Iso => Written::Iso(iso_string(unix_ms)?),
            TimeFormat::EpochMs => Written::EpochMs(Number::from(unix_ms)),
        };
        Some(Self { unix_ms, written })
    }

    /// The current time (whole milliseconds, as `Date.now()`) in `format`.
    pub fn now(format: TimeFormat) -> Self {
        let unix_ms = match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(MAX_UNIX_MS),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(-MIN_UNIX_MS),
        };
        let unix_ms = unix_ms.clamp(MIN_UNIX_MS, MAX_UNIX_MS);
        Self::from_unix_ms(unix_ms, format).unwrap_or_else(|| Self {
            unix_ms,
            written: Written::EpochMs(Number::from(unix_ms)),
        })
    }

    /// `unix_ms` written in the form `self` has: what an update of an
    /// existing record's time field writes.
    pub fn with_format_of(&self, unix_ms: i64) -> Option<Self> {
        Self::from_unix_ms(unix_ms, self.format())
    }

    /// Milliseconds since the epoch (a float is truncated, as `new Date(x)` does).
    pub fn unix_ms(&self) -> i64 {
        self.unix_ms
    }

    /// The form it is written in.
    pub fn format(&self) -> TimeFormat {
        match self.written {
            Written::Iso(_) => TimeFormat::Iso,
            Written::EpochMs(_) => TimeFormat::EpochMs,
        }
    }

    /// As a `time` date-time in UTC.
    pub fn to_offset_date_time(&self) -> OffsetDateTime {
        let nanos = i128::from(self.unix_ms) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Reads an ISO 8601 (RFC 3339) string: `Z` or an offset, any number of
    /// fractional digits (beyond milliseconds truncated, as a JS `Date` does).
    pub fn parse_iso(text: &str) -> Option<Self> {
        let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        let unix_ms = i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).ok()?;
        (MIN_UNIX_MS..=MAX_UNIX_MS)
            .contains(&unix_ms)
            .then(|| Self {
                unix_ms,
                written: Written::Iso(text.to_owned()),
            })
    }

    /// Reads a number of milliseconds since the epoch (integer or float).
    pub fn from_epoch_number(number: &Number) -> Option<Self> {
        let unix_ms = if let Some(i) = number.as_i64() {
            i
        } else {
            let x = number.as_f64()?.trunc();
            if !(MIN_UNIX_MS as f64..=MAX_UNIX_MS as f64).contains(&x) {
                return None;
            }
            x as i64
        };
        (MIN_UNIX_MS..=MAX_UNIX_MS)
            .contains(&unix_ms)
            .then(|| Self {
                unix_ms,
                written: Written::EpochMs(number.clone()),
            })
    }

    /// Reads a JSON value: a string as ISO 8601, a number as epoch milliseconds.
    pub fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::String(text) => Self::parse_iso(text),
            Value::Number(number) => Self::from_epoch_number(number),
            _ => None,
        }
    }
}

/// `new Date(unix_ms).toISOString()`.
fn iso_string(unix_ms: i64) -> Option<String> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000).ok()?;
    let year = at.year();
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!(
            "{}{:06}",
            if year < 0 { '-' } else { '+' },
            year.unsigned_abs()
        )
    };
    Some(format!(
        "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    ))
}

impl Serialize for RecordTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.written {
            Written::Iso(text) => serializer.serialize_str(text),
            Written::EpochMs(number) => number.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for RecordTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).ok_or_else(|| {
            serde::de::Error::custom(
                "not a time (an ISO 8601 string or a number of milliseconds since the epoch)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_strings_print_as_to_iso_string_does() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_764_115_200_123, "2025-11-26T00:00:00.123Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
            (-62_198_755_200_000, "-000001-01-01T00:00:00.000Z"),
            (-62_167_219_200_000, "0000-01-01T00:00:00.000Z"),
        ];
        for (ms, text) in cases {
            let time = RecordTime::from_unix_ms(ms, TimeFormat::Iso).expect("in range");
            assert_eq!(
                serde_json::to_string(&time).expect("json"),
                format!("\"{text}\"")
            );
        }
    }

    #[test]
    fn every_written_form_is_read_and_kept() {
        for (json, ms, format) in [
            (
                r#""2026-11-26T00:00:00.000Z""#,
                1_795_651_200_000,
                TimeFormat::Iso,
            ),
            (
                r#""2026-11-26T00:00:00Z""#,
                1_795_651_200_000,
                TimeFormat::Iso,
            ),
            (
                r#""2026-11-26T01:00:00.5+01:00""#,
                1_795_651_200_500,
                TimeFormat::Iso,
            ),
            (
                r#""2026-11-26T00:00:00.123456789Z""#,
                1_795_651_200_123,
                TimeFormat::Iso,
            ),
            ("1795651200000", 1_795_651_200_000, TimeFormat::EpochMs),
            ("1795651200000.75", 1_795_651_200_000, TimeFormat::EpochMs),
            ("-1.5", -1, TimeFormat::EpochMs),
        ] {
            let time: RecordTime = serde_json::from_str(json).expect(json);
            assert_eq!((time.unix_ms(), time.format()), (ms, format), "{json}");
            assert_eq!(serde_json::to_string(&time).expect("json"), json);
        }
        for bad in [r#""yesterday""#, "true", "null", "1e300", r#""2026-11-26""#] {
            assert!(serde_json::from_str::<RecordTime>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_update_keeps_the_form() {
        let iso: RecordTime = serde_json::from_str(r#""2026-11-26T00:00:00Z""#).expect("iso");
        let later = iso.with_format_of(1_795_651_201_000).expect("in range");
        assert_eq!(
            serde_json::to_string(&later).expect("json"),
            r#""2026-11-26T00:00:01.000Z""#
        );
        let epoch: RecordTime = serde_json::from_str("5").expect("epoch");
        assert_eq!(
            serde_json::to_string(&epoch.with_format_of(7).expect("ok")).expect("json"),
            "7"
        );
    }
}
