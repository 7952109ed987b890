//! Go's `time.Duration` text (`3h59m58.123456789s`, `-1m2s`, `500ms`), as
//! CrowdSec writes a decision's time left.

use std::time::Duration;

/// A parsed Go duration: negative ones (a decision already over) are
/// `Expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Left {
    Remaining(Duration),
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a Go duration")]
pub struct BadDuration(pub String);

/// Parses `text`. Units: h, m, s, ms, us/µs, ns; fractions allowed; at
/// most ~292 years (what a Go duration holds).
pub fn parse(text: &str) -> Result<Left, BadDuration> {
    let bad = || BadDuration(text.chars().take(64).collect());
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Ok(Left::Remaining(Duration::ZERO));
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_ns: u128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_ns: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" | "μs" => 1_000,
            "ns" => 1,
            _ => return Err(bad()),
        };
        let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') || whole.len() > 20 {
            return Err(bad());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let mut part = whole.checked_mul(unit_ns).ok_or_else(bad)?;
        // Digits past nanoseconds say nothing: only the first 18 count.
        let mut scale = unit_ns;
        for d in frac.bytes().take(18) {
            scale /= 10;
            part += u128::from(d - b'0') * scale;
        }
        total_ns = total_ns.checked_add(part).ok_or_else(bad)?;
        rest = tail;
    }
    if total_ns > i64::MAX as u128 {
        return Err(bad());
    }
    if negative && total_ns > 0 {
        return Ok(Left::Expired);
    }
    Ok(Left::Remaining(Duration::from_nanos(total_ns as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> f64 {
        match parse(text).unwrap() {
            Left::Remaining(d) => d.as_secs_f64(),
            Left::Expired => -1.0,
        }
    }

    #[test]
    fn crowdsec_durations() {
        assert_eq!(secs("4h"), 14_400.0);
        assert!((secs("3h59m58.123456789s") - 14_398.123_456_789).abs() < 1e-6);
        assert_eq!(secs("168h0m0s"), 604_800.0);
        assert_eq!(secs("1m30s"), 90.0);
        assert_eq!(secs("500ms"), 0.5);
        assert_eq!(secs("1.5h"), 5400.0);
        assert_eq!(secs("0"), 0.0);
        assert_eq!(secs("2µs"), 0.000_002);
        assert_eq!(parse("-3m2.5s"), Ok(Left::Expired));
    }

    #[test]
    fn garbage_is_an_error_not_a_ban_forever() {
        for bad in [
            "",
            "-",
            "h",
            "4",
            "4x",
            "4h5",
            "..s",
            "1.2.3s",
            "99999999999999999999999h",
            "4 h",
            "2562048h",
            "💥",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
