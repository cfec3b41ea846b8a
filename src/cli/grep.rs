//! `grep` arguments → `query::grep::GrepPlan`.
use anyhow::{Context, Result};

use super::args::{Color, DedupArgs, GrepArgs, MessageFilterArgs};
use super::{EXIT_ERROR, EXIT_MATCH, EXIT_NO_MATCH};
use crate::decode::{DecodeConfig, DedupConfig};
use crate::output::ColorChoice;
use crate::query::filter::{IpNet, MessageFilter, StatusFilter};
use crate::query::grep::{self, GrepFormat, GrepPlan};

pub fn run(a: GrepArgs) -> Result<u8> {
    let regex = match &a.regex {
        Some(r) => Some(
            regex::bytes::RegexBuilder::new(r)
                .case_insensitive(a.ignore_case)
                .multi_line(true)
                .build()
                .with_context(|| format!("invalid regular expression '{r}'"))?,
        ),
        None => None,
    };
    let plan = GrepPlan {
        files: a.files,
        filter: message_filter(&a.filter)?,
        regex,
        dialog: a.dialog,
        format: if a.count {
            GrepFormat::Count
        } else if a.json {
            GrepFormat::Json
        } else {
            GrepFormat::Text
        },
        color: color(a.color).use_color(),
        decode: DecodeConfig {
            hep: !a.no_hep,
            ..DecodeConfig::new(crate::sip::stream_start)
        },
        // Without HEP decoding there are no copies to pair.
        dedup: dedup_config(&a.dedup, !a.no_hep)?,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut err = std::io::stderr();
    let outcome = grep::run(&plan, &mut out, &mut err)?;
    Ok(if outcome.failed_files > 0 {
        EXIT_ERROR
    } else if outcome.matched > 0 {
        EXIT_MATCH
    } else {
        EXIT_NO_MATCH
    })
}

pub fn color(c: Color) -> ColorChoice {
    match c {
        Color::Auto => ColorChoice::Auto,
        Color::Always => ColorChoice::Always,
        Color::Never => ColorChoice::Never,
    }
}

pub fn message_filter(a: &MessageFilterArgs) -> Result<MessageFilter> {
    Ok(MessageFilter {
        from_user: a.from_user.clone(),
        to_user: a.to_user.clone(),
        ruri_user: a.ruri_user.clone(),
        call_id: a.call_id.clone(),
        methods: a.methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
        status: parse_status(a.status.as_deref())?,
        user_agent: a.user_agent.as_ref().map(|s| s.to_lowercase()),
        ip: parse_ip(a.ip.as_deref())?,
        port: a.port,
        since_ns: a.since.as_deref().map(parse_time).transpose()?,
        until_ns: a.until.as_deref().map(parse_time).transpose()?,
    })
}

/// `--status 486|4xx`, validated.
pub fn parse_status(s: Option<&str>) -> Result<Option<StatusFilter>> {
    s.map(str::parse::<StatusFilter>)
        .transpose()
        .map_err(anyhow::Error::msg)
}

/// `--ip ADDR|CIDR`, validated.
pub fn parse_ip(s: Option<&str>) -> Result<Option<IpNet>> {
    s.map(str::parse::<IpNet>)
        .transpose()
        .map_err(anyhow::Error::msg)
}

/// The dedup flags as the engine's config; `hep` says whether HEP is decoded at all.
pub fn dedup_config(a: &DedupArgs, hep: bool) -> Result<DedupConfig> {
    let config = DedupConfig {
        hep_mirrors: hep && !a.keep_hep_mirrors,
        hep_window_ns: parse_duration(&a.hep_dedup_window)
            .with_context(|| "--hep-dedup-window".to_string())?,
        span: a.dedup,
        span_window_ns: parse_duration(&a.dedup_window)
            .with_context(|| "--dedup-window".to_string())?,
        ..DedupConfig::default()
    };
    config.validate()?;
    Ok(config)
}

/// A duration with a unit (`ns`, `us` or `µs`, `ms`, `s`, `m`, `h`), or a bare number of seconds;
/// in ns.
pub fn parse_duration(s: &str) -> Result<i64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "" | "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        other => {
            anyhow::bail!("invalid duration '{s}': unknown unit '{other}' (ns, us, ms, s, m, h, d)")
        }
    };
    let value: f64 = num
        .parse()
        .with_context(|| format!("invalid duration '{s}': expected e.g. 5ms, 1s, 200us"))?;
    let ns = value * scale;
    anyhow::ensure!(ns.is_finite() && ns < 1e18, "duration '{s}' is too long");
    Ok(ns.round() as i64)
}

/// RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS[.frac]]]` taken as UTC; returns ns since the epoch.
pub fn parse_time(s: &str) -> Result<i64> {
    let t = s.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return dt.timestamp_nanos_opt().context("time out of range");
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(t, fmt) {
            return dt
                .and_utc()
                .timestamp_nanos_opt()
                .context("time out of range");
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .and_then(|dt| dt.and_utc().timestamp_nanos_opt())
            .context("time out of range");
    }
    anyhow::bail!(
        "invalid time '{s}': expected RFC 3339 (2024-03-27T10:40:00Z) or '2024-03-27 10:40'"
    )
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
    fn a_dedup_window_reaching_t1_is_refused() {
        let args = |w: &str| DedupArgs {
            keep_hep_mirrors: false,
            hep_dedup_window: "1s".into(),
            dedup: true,
            dedup_window: w.into(),
        };
        assert!(dedup_config(&args("499ms"), true).is_ok());
        let e = dedup_config(&args("500ms"), true).unwrap_err();
        assert!(format!("{e:#}").contains("T1"), "{e:#}");
        assert!(!dedup_config(&args("5ms"), false).unwrap().hep_mirrors);
    }
}
