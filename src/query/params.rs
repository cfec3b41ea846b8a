//! Query parameters from text (CLI flags today, HTTP query strings later): times, durations,
//! sizes, status classes, addresses, SSRCs, states and sort keys, with one grammar each.
//! No clap here; every parser returns a [`ParamError`] whose text names the bad value.
use std::fmt;

use super::calls::{CallSort, CallSortKey};
use super::filter::{IpNet, StatusFilter};
use crate::store::{DialogState, SortOrder};

/// A parameter value that does not parse; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParamError(pub String);

fn err(msg: impl fmt::Display) -> ParamError {
    ParamError(msg.to_string())
}

/// RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS[.frac]]]` (also with `T`) taken as UTC, or a date;
/// returns ns since the epoch.
pub fn parse_time(s: &str) -> Result<i64, ParamError> {
    let t = s.trim();
    let range = || err("time out of range");
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return dt.timestamp_nanos_opt().ok_or_else(range);
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return dt.and_utc().timestamp_nanos_opt().ok_or_else(range);
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .and_then(|dt| dt.and_utc().timestamp_nanos_opt())
            .ok_or_else(range);
    }
    Err(err(format_args!(
        "invalid time '{s}': expected RFC 3339 (2024-03-27T10:40:00Z) or '2024-03-27 10:40'"
    )))
}

/// The one duration grammar of every flag: a number (decimals allowed) with a unit `ns`, `us`
/// or `µs`, `ms`, `s`, `m` or `min`, `h`, `d`; a bare number is seconds. Anything else
/// humantime reads is taken too (`1h 30m`, `2days`, `1week`). Returns ns.
pub fn parse_duration(s: &str) -> Result<i64, ParamError> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ns" => Some(1.0),
        "us" | "µs" => Some(1e3),
        "ms" => Some(1e6),
        "" | "s" => Some(1e9),
        "m" | "min" => Some(60e9),
        "h" => Some(3600e9),
        "d" => Some(86400e9),
        _ => None,
    };
    let Some(scale) = scale else {
        // Compound and long forms (`1h 30m`, `2days`): humantime's grammar, which the capture
        // flags used to take alone.
        return match humantime::parse_duration(t) {
            Ok(d) => i64::try_from(d.as_nanos())
                .ok()
                .filter(|&ns| (ns as f64) < 1e18)
                .ok_or_else(|| err(format_args!("duration '{s}' is too long"))),
            Err(_) => Err(err(format_args!(
                "invalid duration '{s}': unknown unit '{}' (ns, us, ms, s, m, h, d)",
                unit.trim()
            ))),
        };
    };
    let value: f64 = num.parse().map_err(|_| {
        err(format_args!(
            "invalid duration '{s}': expected e.g. 5ms, 1s, 200us"
        ))
    })?;
    let ns = value * scale;
    if !(ns.is_finite() && ns < 1e18) {
        return Err(err(format_args!("duration '{s}' is too long")));
    }
    Ok(ns.round() as i64)
}

/// [`parse_duration`] as a `std::time::Duration`.
pub fn parse_std_duration(s: &str) -> Result<std::time::Duration, ParamError> {
    parse_duration(s).map(|ns| std::time::Duration::from_nanos(ns as u64))
}

/// A size with units (`100MB` = 10^8 bytes, `64MiB` = 2^26); a bare number is multiplied by
/// `bare` (each flag says what a bare number means).
pub fn parse_size(s: &str, bare: u64) -> Result<u64, ParamError> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(bare))
            .ok_or_else(|| err("size too large"));
    }
    parse_size::parse_size(s)
        .map_err(|e| err(format_args!("bad size '{s}': {e} (e.g. 100MB, 64MiB)")))
}

/// `486` or `4xx`.
pub fn parse_status(s: &str) -> Result<StatusFilter, ParamError> {
    s.parse().map_err(err)
}

/// An address or CIDR prefix.
pub fn parse_ip(s: &str) -> Result<IpNet, ParamError> {
    s.parse().map_err(err)
}

/// `0x1234ABCD` or decimal.
pub fn parse_ssrc(s: &str) -> Result<u32, ParamError> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => t.parse(),
    }
    .map_err(|e| {
        err(format_args!(
            "invalid SSRC '{s}': expected 0x1234ABCD or a decimal number: {e}"
        ))
    })
}

/// A dialog state: answered, failed, canceled, in_progress, registered, unregistered or a code.
pub fn parse_state(s: &str) -> Result<DialogState, ParamError> {
    s.trim().to_ascii_lowercase().parse().map_err(|_| {
        err(format_args!(
            "invalid --state '{s}': expected answered, failed, canceled, in_progress, \
             registered, unregistered or a status code"
        ))
    })
}

/// `time` / `-time` style keys: the name and whether it is descending.
fn sort_key(s: &str) -> (&str, bool) {
    match s.strip_prefix('-') {
        Some(k) => (k, true),
        None => (s.strip_prefix('+').unwrap_or(s), false),
    }
}

/// The message order of `search`: `time` or `-time`.
pub fn parse_message_sort(s: &str) -> Result<SortOrder, ParamError> {
    match sort_key(s) {
        ("time", false) => Ok(SortOrder::TsAsc),
        ("time", true) => Ok(SortOrder::TsDesc),
        _ => Err(err(format_args!(
            "invalid --sort '{s}': expected time or -time"
        ))),
    }
}

/// The dialog order of `calls`: time, duration or pdd, `-` for descending.
pub fn parse_call_sort(s: &str) -> Result<CallSort, ParamError> {
    let (key, descending) = sort_key(s);
    let key = match key {
        "time" | "start" => CallSortKey::Start,
        "duration" => CallSortKey::Duration,
        "pdd" => CallSortKey::Pdd,
        _ => {
            return Err(err(format_args!(
                "invalid --sort '{s}': expected time, duration or pdd, with - for descending"
            )))
        }
    };
    Ok(CallSort { key, descending })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_the_documented_forms() {
        let a = parse_time("2014-03-27T10:40:25Z").unwrap();
        assert_eq!(a, 1_395_916_825_000_000_000);
        assert_eq!(parse_time("2014-03-27 10:40:25").unwrap(), a);
        assert_eq!(parse_time("2014-03-27 10:40").unwrap(), a - 25_000_000_000);
        assert_eq!(parse_time("2014-03-27T12:40:25+02:00").unwrap(), a);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn durations_take_units_and_bare_seconds() {
        assert_eq!(parse_duration("5ms").unwrap(), 5_000_000);
        assert_eq!(parse_duration("1s").unwrap(), 1_000_000_000);
        assert_eq!(parse_duration("2").unwrap(), 2_000_000_000);
        assert_eq!(parse_duration("200us").unwrap(), 200_000);
        assert_eq!(parse_duration("1.5ms").unwrap(), 1_500_000);
        assert_eq!(parse_duration("1m").unwrap(), 60_000_000_000);
        assert_eq!(parse_duration("2h").unwrap(), 7_200_000_000_000);
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn durations_also_take_what_the_capture_flags_took() {
        let s = 1_000_000_000;
        assert_eq!(parse_duration("15m").unwrap(), 900 * s);
        assert_eq!(parse_duration("30d").unwrap(), 30 * 86_400 * s);
        assert_eq!(parse_duration("7").unwrap(), 7 * s);
        assert_eq!(parse_duration("1h 30m").unwrap(), 5_400 * s);
        assert_eq!(parse_duration("2days").unwrap(), 2 * 86_400 * s);
        assert_eq!(
            parse_std_duration("15m").unwrap(),
            std::time::Duration::from_secs(900)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("400years").is_err());
    }

    #[test]
    fn sizes_take_units_and_a_bare_multiplier() {
        assert_eq!(parse_size("100MB", 1).unwrap(), 100_000_000);
        assert_eq!(parse_size("64MiB", 1).unwrap(), 64 << 20);
        assert_eq!(parse_size("100", 1_000_000).unwrap(), 100_000_000);
        assert!(parse_size("lots", 1).is_err());
        assert!(parse_size("99999999999999999999", 1).is_err());
    }

    #[test]
    fn ssrcs_states_and_sort_keys() {
        assert_eq!(parse_ssrc("0x0EAF0EAF").unwrap(), 0x0EAF_0EAF);
        assert_eq!(parse_ssrc("42").unwrap(), 42);
        assert!(parse_ssrc("zz").is_err());
        assert_eq!(parse_state(" Answered").unwrap(), DialogState::Answered);
        assert_eq!(parse_state("486").unwrap(), DialogState::Final(486));
        assert!(parse_state("happy").is_err());
        assert_eq!(parse_message_sort("-time").unwrap(), SortOrder::TsDesc);
        assert!(parse_message_sort("size").is_err());
        let c = parse_call_sort("-duration").unwrap();
        assert_eq!((c.key, c.descending), (CallSortKey::Duration, true));
        assert_eq!(parse_call_sort("+pdd").unwrap().key, CallSortKey::Pdd);
        assert!(parse_status("9xx").is_err());
        assert!(parse_ip("10.0.0.0/33").is_err());
    }
}
