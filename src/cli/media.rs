//! `streams` and `quality` arguments → `query::media` calls.
use std::io::Write;

use anyhow::{Context, Result};

use super::args::{QualityArgs, StreamsArgs};
use super::grep::parse_time;
use super::{EXIT_MATCH, EXIT_NO_MATCH};
use crate::query::media::{self, Format, StreamFilter};

fn parse_ssrc(s: &str) -> Result<u32> {
    let t = s.trim();
    match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => t.parse(),
    }
    .with_context(|| format!("invalid SSRC '{s}': expected 0x1234ABCD or a decimal number"))
}

pub fn streams(a: StreamsArgs) -> Result<u8> {
    let filter = StreamFilter {
        call_id: a.call_id.clone(),
        ip: a
            .ip
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| anyhow::anyhow!(e))?,
        port: a.port,
        ssrc: a.ssrc.as_deref().map(parse_ssrc).transpose()?,
        codec: a.codec.clone(),
        since_ns: a.since.as_deref().map(parse_time).transpose()?,
        until_ns: a.until.as_deref().map(parse_time).transpose()?,
        min_loss_pct: a.min_loss,
        max_mos: a.max_mos,
        unmatched: a.unmatched,
    };
    let rows = media::read_streams(&a.db.db, &filter)?;
    let format = if a.json {
        Format::Json
    } else if a.csv {
        Format::Csv
    } else {
        Format::Table
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    media::print_streams(&mut out, &rows, format)?;
    out.flush()?;
    Ok(if rows.is_empty() {
        EXIT_NO_MATCH
    } else {
        EXIT_MATCH
    })
}

pub fn quality(a: QualityArgs) -> Result<u8> {
    let q = media::read_call_quality(&a.db.db, &a.call_id)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if q.streams.is_empty() && q.qos.is_empty() && q.rtcp.is_empty() {
        if !a.json {
            eprintln!(
                "sipidx: no media or quality reports for Call-ID {}",
                a.call_id
            );
        }
        return Ok(EXIT_NO_MATCH);
    }
    if a.json {
        media::quality_json(&mut out, &q, a.explain)?;
    } else {
        media::print_quality(&mut out, &q, a.explain)?;
    }
    out.flush()?;
    Ok(EXIT_MATCH)
}
