//! `grep` arguments → `query::grep::GrepPlan`.
use anyhow::{Context, Result};

use super::args::{Color, DedupArgs, GrepArgs, MessageFilterArgs};
use super::{EXIT_ERROR, EXIT_MATCH, EXIT_NO_MATCH};
use crate::decode::{DecodeConfig, DedupConfig};
use crate::output::grep::{CountSink, JsonSink, TextSink};
use crate::output::{ColorChoice, Palette};
use crate::query::filter::MessageFilter;
use crate::query::grep::{self, GrepPlan, GrepSink};
use crate::query::params::{parse_duration, parse_ip, parse_status, parse_time};

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
        decode: DecodeConfig {
            hep: !a.no_hep,
            ..DecodeConfig::new(crate::sip::stream_start)
        },
        // Without HEP decoding there are no copies to pair.
        dedup: dedup_config(&a.dedup, !a.no_hep)?,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut sink: Box<dyn GrepSink> = if a.count {
        Box::new(CountSink { out: &mut out })
    } else if a.json {
        Box::new(JsonSink { out: &mut out })
    } else {
        Box::new(TextSink {
            out: &mut out,
            palette: Palette::new(color(a.color).use_color()),
        })
    };
    let outcome = grep::run(&plan, sink.as_mut())?;
    drop(sink);
    for w in &outcome.warnings {
        eprintln!("sipidx: {w}");
    }
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
        status: a.status.as_deref().map(parse_status).transpose()?,
        user_agent: a.user_agent.as_ref().map(|s| s.to_lowercase()),
        ip: a.ip.as_deref().map(parse_ip).transpose()?,
        port: a.port,
        since_ns: a.since.as_deref().map(parse_time).transpose()?,
        until_ns: a.until.as_deref().map(parse_time).transpose()?,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
