//! Durations as people write them in the config file: `"90s"`, `"10m"`,
//! `"1h30m"`, `"1d 12h"`, `"1w"`, `"250ms"`; ban lengths may also be
//! `"permanent"`.

use std::{fmt, str::FromStr, time::Duration};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration (write e.g. \"10m\")")]
    Empty,
    #[error("{0:?} has a number without a unit (use ms, s, m, h, d or w, e.g. \"90s\")")]
    MissingUnit(String),
    #[error("{0:?}: expected a number followed by a unit, e.g. \"10m\" or \"1h30m\"")]
    Malformed(String),
    #[error("{text:?}: unknown unit {unit:?} (use ms, s, m, h, d or w)")]
    UnknownUnit { text: String, unit: String },
    #[error("{0:?} is too long")]
    Overflow(String),
    #[error("{0:?} is longer than 100 years (the kernel clock's reach): write \"permanent\" for a ban that never ends")]
    TooLong(String),
}

/// The longest duration accepted anywhere: 100 years. A ban's expiry is
/// the kernel's monotonic clock (nanoseconds since boot, u64) plus its
/// length, which must never wrap: u64 nanoseconds reach 584 years.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600 + 25 * 24 * 3600);

const UNITS: [(&str, u64); 6] = [
    ("w", 7 * 24 * 3600 * 1000),
    ("d", 24 * 3600 * 1000),
    ("h", 3600 * 1000),
    ("m", 60 * 1000),
    ("s", 1000),
    ("ms", 1),
];

/// Parses a sequence of `<number><unit>` parts (`ms`, `s`, `m`, `h`, `d`, `w`),
/// optionally separated by spaces: `"1h30m"`, `"1d 12h"`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    let overflow = || DurationError::Overflow(text.to_string());
    let mut rest = trimmed;
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(DurationError::Malformed(text.to_string()));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| overflow())?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if unit_len == 0 {
            return Err(DurationError::MissingUnit(text.to_string()));
        }
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, ms)| *ms)
            .ok_or_else(|| DurationError::UnknownUnit {
                text: text.to_string(),
                unit: unit.to_string(),
            })?;
        let part = number.checked_mul(scale).ok_or_else(overflow)?;
        total_ms = total_ms.checked_add(part).ok_or_else(overflow)?;
    }
    let total = Duration::from_millis(total_ms);
    if total > MAX_DURATION {
        return Err(DurationError::TooLong(text.to_string()));
    }
    Ok(total)
}

/// The shortest exact spelling `parse_duration` reads back: `"1h30m"`, `"1w"`.
/// Sub-millisecond parts are dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (name, scale) in UNITS {
        let count = ms / scale;
        if count > 0 {
            out.push_str(&count.to_string());
            out.push_str(name);
            ms -= count * scale;
        }
    }
    out
}

/// How long a ban lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BanLength {
    For(Duration),
    Permanent,
}

impl BanLength {
    /// `None` means permanent, the convention of the policy and the state file.
    pub fn as_option(self) -> Option<Duration> {
        match self {
            BanLength::For(d) => Some(d),
            BanLength::Permanent => None,
        }
    }

    /// The kernel's convention: 0 = permanent.
    pub fn as_kernel_ns(self) -> u64 {
        match self {
            BanLength::For(d) => u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1),
            BanLength::Permanent => 0,
        }
    }
}

impl fmt::Display for BanLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BanLength::For(d) => f.write_str(&format_duration(*d)),
            BanLength::Permanent => f.write_str("permanent"),
        }
    }
}

impl FromStr for BanLength {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "permanent" {
            Ok(BanLength::Permanent)
        } else {
            parse_duration(s).map(BanLength::For)
        }
    }
}

impl Serialize for BanLength {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BanLength {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

/// `#[serde(with = "human")]` for `Duration` fields.
pub(crate) mod human {
    use super::*;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*duration))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_units_operators_write() {
        let cases = [
            ("90s", 90),
            ("10m", 600),
            ("1h", 3600),
            ("1d", 86_400),
            ("1w", 604_800),
            ("1h30m", 5400),
            ("1d 12h", 129_600),
            ("10 m", 600),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            parse_duration("10y"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("m10"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("-5m"),
            Err(DurationError::Malformed(_))
        ));
        assert!(matches!(
            parse_duration("99999999999999999999w"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn formatting_reads_back() {
        for secs in [1, 59, 60, 90, 3600, 5400, 86_400, 604_800, 694_861] {
            let d = Duration::from_secs(secs);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{secs}");
        }
        assert_eq!(format_duration(Duration::from_secs(604_800)), "1w");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn ban_lengths_include_permanent() {
        assert_eq!("permanent".parse(), Ok(BanLength::Permanent));
        assert_eq!("1h".parse(), Ok(BanLength::For(Duration::from_secs(3600))));
        assert!(BanLength::For(Duration::from_secs(u64::MAX / 2)) < BanLength::Permanent);
        assert_eq!(BanLength::Permanent.as_kernel_ns(), 0);
        assert_eq!(
            BanLength::For(Duration::from_secs(2)).as_kernel_ns(),
            2_000_000_000
        );
    }
}
