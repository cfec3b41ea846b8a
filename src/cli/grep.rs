//! `grep` arguments → `query::grep::GrepPlan`.
use anyhow::{Context, Result};

use super::args::{Color, GrepArgs, MessageFilterArgs};
use super::{EXIT_ERROR, EXIT_MATCH, EXIT_NO_MATCH};
use crate::decode::DecodeConfig;
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
            ..DecodeConfig::default()
        },
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
        status: a
            .status
            .as_deref()
            .map(str::parse::<StatusFilter>)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        user_agent: a.user_agent.as_ref().map(|s| s.to_lowercase()),
        ip: a
            .ip
            .as_deref()
            .map(str::parse::<IpNet>)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        port: a.port,
        since_ns: a.since.as_deref().map(parse_time).transpose()?,
        until_ns: a.until.as_deref().map(parse_time).transpose()?,
    })
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
}
