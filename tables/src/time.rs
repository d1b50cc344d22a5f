//! Event timestamps: one explicit, documented format per source.
//!
//! The default, [`TimestampFormat::Auto`], accepts only unambiguous forms: RFC 3339 / ISO 8601
//! (`2026-11-29T17:00:00.123Z`, `2026-11-29 17:00:00+01:00`, or without an offset, read as UTC)
//! and integer epoch milliseconds. Day-first or month-first dates such as `01-09-2018` are never
//! guessed: they are an error naming the column and row unless the source declares its format
//! (`%d-%m-%Y`), so 1 September is never silently read as 9 January (edge case E13).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a source writes its timestamps.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampFormat {
    /// RFC 3339 / ISO 8601 (offset optional, UTC when absent) or integer epoch milliseconds.
    #[default]
    Auto,
    /// Integer or decimal milliseconds since the Unix epoch.
    EpochMillis,
    /// Integer or decimal seconds since the Unix epoch.
    EpochSeconds,
    /// A chrono `strftime` pattern, for example `%d-%m-%Y %H:%M`. Without `%z` the time is UTC;
    /// a pattern without a time of day means midnight.
    Pattern(String),
}

impl fmt::Display for TimestampFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestampFormat::Auto => {
                f.write_str("auto (RFC 3339 / ISO 8601 or epoch milliseconds)")
            }
            TimestampFormat::EpochMillis => f.write_str("epoch milliseconds"),
            TimestampFormat::EpochSeconds => f.write_str("epoch seconds"),
            TimestampFormat::Pattern(p) => write!(f, "pattern `{p}`"),
        }
    }
}

impl FromStr for TimestampFormat {
    type Err = std::convert::Infallible;

    /// `auto`, `epoch_ms`/`epoch_millis`, `epoch_s`/`epoch_seconds`, or a strftime pattern.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "" | "auto" | "rfc3339" | "iso8601" => TimestampFormat::Auto,
            "epoch_ms" | "epoch_millis" | "ms" => TimestampFormat::EpochMillis,
            "epoch_s" | "epoch_seconds" | "s" => TimestampFormat::EpochSeconds,
            p => TimestampFormat::Pattern(p.to_string()),
        })
    }
}

impl TimestampFormat {
    /// Parses `text` to milliseconds since the Unix epoch (UTC).
    ///
    /// # Errors
    /// A message saying what was expected, for the caller to prefix with column and row.
    pub fn parse_millis(&self, text: &str) -> Result<i64, String> {
        let t = text.trim();
        let expected = || {
            format!(
                "`{t}` is not a timestamp in the expected format ({self}); declare the source's format, for example --timestamp-format '%d-%m-%Y %H:%M:%S'"
            )
        };
        match self {
            TimestampFormat::Auto => {
                if let Ok(ms) = t.parse::<i64>() {
                    return Ok(ms);
                }
                parse_iso(t).ok_or_else(expected)
            }
            TimestampFormat::EpochMillis => t
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| v.round() as i64)
                .ok_or_else(expected),
            TimestampFormat::EpochSeconds => t
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(|v| (v * 1000.0).round() as i64)
                .ok_or_else(expected),
            TimestampFormat::Pattern(p) => {
                if let Ok(dt) = DateTime::parse_from_str(t, p) {
                    return Ok(dt.timestamp_millis());
                }
                if let Ok(dt) = NaiveDateTime::parse_from_str(t, p) {
                    return Ok(dt.and_utc().timestamp_millis());
                }
                if let Ok(d) = NaiveDate::parse_from_str(t, p) {
                    return Ok(d
                        .and_hms_opt(0, 0, 0)
                        .map(|dt| dt.and_utc().timestamp_millis())
                        .unwrap_or(0));
                }
                Err(expected())
            }
        }
    }
}

fn parse_iso(t: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt.timestamp_millis());
    }
    for p in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(t, p) {
            return Some(dt.timestamp_millis());
        }
    }
    for p in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(t, p) {
            return Some(dt.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis())
}

/// Milliseconds since the epoch as a UTC date-time (`None` when out of chrono's range).
pub fn millis_to_utc(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_accepts_iso_and_epoch_only() {
        let f = TimestampFormat::Auto;
        assert_eq!(
            f.parse_millis("2018-01-01 00:08:43.152").unwrap(),
            1_514_765_323_152
        );
        assert_eq!(
            f.parse_millis("2018-01-01T00:08:43.152Z").unwrap(),
            1_514_765_323_152
        );
        assert_eq!(
            f.parse_millis("2018-01-01T01:08:43.152+01:00").unwrap(),
            1_514_765_323_152
        );
        assert_eq!(f.parse_millis("1514765323152").unwrap(), 1_514_765_323_152);
        assert!(f.parse_millis("01-09-2018").is_err());
        assert!(f.parse_millis("13-09-2018").is_err());
    }

    #[test]
    fn declared_day_first_pattern() {
        let f: TimestampFormat = "%d-%m-%Y".parse().unwrap();
        let sept1 = f.parse_millis("01-09-2018").unwrap();
        let sept13 = f.parse_millis("13-09-2018").unwrap();
        assert_eq!(
            millis_to_utc(sept1).unwrap().to_rfc3339(),
            "2018-09-01T00:00:00+00:00"
        );
        assert_eq!(sept13 - sept1, 12 * 86_400_000);
    }
}
