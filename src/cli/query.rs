//! `search`, `calls`, `stats`, `streams` and `quality` arguments → query plans over the DB, and
//! their rows → `output`.
use std::io::Write;

use anyhow::{Context, Result};

use super::args::{
    BucketArg, CallsArgs, FormatArgs, KindArg, QualityArgs, RowFormatArgs, SearchArgs, StatsArgs,
    StreamsArgs,
};
use super::grep::{color, message_filter};
use super::{EXIT_MATCH, EXIT_NO_MATCH};
use crate::output::table::terminal_width;
use crate::output::{self, Format, Palette};
use crate::query::calls::{self, CallsPlan};
use crate::query::db::Db;
use crate::query::params::{
    parse_call_sort, parse_duration, parse_ip, parse_message_sort, parse_ssrc, parse_state,
    parse_status, parse_time,
};
use crate::query::search::{self, SearchPlan};
use crate::query::stats::{self, Bucket, StatsPlan};
use crate::query::streams::{self, StreamFilter};
use crate::query::{quality, QueryError};
use crate::store::{DialogFilter, DialogKind};

fn format(a: &FormatArgs) -> Format {
    if a.json {
        Format::Json
    } else if a.csv {
        Format::Csv
    } else {
        let stdout_tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
        // Piped tables keep whole cells unless COLUMNS asks for a width.
        let width = if stdout_tty {
            terminal_width()
        } else {
            std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok())
        };
        Format::Table {
            color: color(a.color).use_color(),
            width,
        }
    }
}

/// `--limit`, else `default` rows; `None` for all.
fn limit(a: &RowFormatArgs, default: usize) -> Option<usize> {
    let n = a.limit.unwrap_or(default);
    (n > 0).then_some(n)
}

/// The `--limit` of `search` and `calls` when none is given.
const DEFAULT_LIMIT: usize = 100;

fn scanner(only: bool, none: bool) -> Option<bool> {
    match (only, none) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

fn out() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

/// Opens the DB and says on stderr when it holds nothing yet (an empty result is then expected).
fn open(path: &std::path::Path) -> Result<Db> {
    let db = Db::open(path)?;
    if db.is_empty() {
        eprintln!(
            "sipidx: {}: no capture files indexed yet (sipidx index --db {} CAPTURES...)",
            db.path.display(),
            db.path.display()
        );
    }
    Ok(db)
}

fn exit(found: bool) -> u8 {
    if found {
        EXIT_MATCH
    } else {
        EXIT_NO_MATCH
    }
}

pub fn run_search(a: SearchArgs) -> Result<u8> {
    let sort = parse_message_sort(&a.sort)?;
    let query = (!a.query.is_empty()).then(|| a.query.join(" "));
    let (text_query, text_regex) = if a.regex {
        (None, query)
    } else {
        (query, None)
    };
    let plan = SearchPlan {
        filter: message_filter(&a.filter)?,
        scanner: scanner(a.scanner, a.no_scanner),
        text_query,
        text_regex,
        limit: limit(&a.format, DEFAULT_LIMIT),
        sort,
    };
    let db = open(&a.db.db)?;
    let Some(index) = db.text_index()? else {
        return Ok(EXIT_NO_MATCH);
    };
    let files = db.file_paths();
    let found = search::run(&index, &files, &plan)
        .with_context(|| format!("{}: search", db.path.display()))?;
    let mut out = out();
    output::write_rows(&found.rows, format(&a.format.format), &mut out)?;
    let printed = found.rows.len();
    if found.truncated {
        match found.total {
            Some(t) => eprintln!(
                "sipidx: showing {printed} of {t} matching messages (--limit 0 for all)"
            ),
            None => eprintln!(
                "sipidx: showing the first {printed} matching messages; more match (--limit 0 for all)"
            ),
        }
    }
    Ok(exit(printed > 0))
}

fn duration_arg(s: &Option<String>, flag: &str) -> Result<Option<f64>> {
    s.as_deref()
        .map(|v| parse_duration(v).with_context(|| flag.to_string()))
        .transpose()
        .map(|d| d.map(|ns| ns as f64))
}

fn time_arg(s: &Option<String>) -> Result<Option<i64>, QueryError> {
    Ok(s.as_deref().map(parse_time).transpose()?)
}

pub fn run_calls(a: CallsArgs) -> Result<u8> {
    let sort = parse_call_sort(&a.sort)?;
    let states = a
        .state
        .iter()
        .map(|s| parse_state(s))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = CallsPlan {
        filter: DialogFilter {
            since_ns: time_arg(&a.since)?,
            // --until is inclusive; the store's bound is not.
            until_ns: time_arg(&a.until)?.map(|u| u.saturating_add(1)),
            call_id: a.call_id.clone(),
            kinds: a
                .kind
                .iter()
                .map(|k| match k {
                    KindArg::Call => DialogKind::Call,
                    KindArg::Registration => DialogKind::Registration,
                    KindArg::Other => DialogKind::Other,
                })
                .collect(),
            from_user: a.from_user.clone(),
            to_user: a.to_user.clone(),
            ruri_user: a.ruri_user.clone(),
            scanner: scanner(a.scanner, a.no_scanner),
            min_loss_pct: a.min_loss,
            max_mos: a.max_mos,
        },
        states,
        failed: a.failed,
        final_status: a.status.as_deref().map(parse_status).transpose()?,
        user_agent: a.user_agent.as_ref().map(|s| s.to_lowercase()),
        ip: a.ip.as_deref().map(parse_ip).transpose()?,
        port: a.port,
        min_duration_s: duration_arg(&a.min_duration, "--min-duration")?.map(|ns| ns / 1e9),
        min_pdd_ms: duration_arg(&a.min_pdd, "--min-pdd")?.map(|ns| ns / 1e6),
        limit: limit(&a.format, DEFAULT_LIMIT),
        sort,
    };
    let db = open(&a.db.db)?;
    let found =
        calls::select(&db.path, &plan).with_context(|| format!("{}: calls", db.path.display()))?;
    let mut out = out();
    output::write_rows(&found.rows, format(&a.format.format), &mut out)?;
    let printed = found.rows.len();
    if found.matched > printed {
        eprintln!(
            "sipidx: showing {printed} of {} matching dialogs (--limit 0 for all)",
            found.matched
        );
    }
    Ok(exit(printed > 0))
}

pub fn run_stats(a: StatsArgs) -> Result<u8> {
    let plan = StatsPlan {
        since_ns: time_arg(&a.since)?,
        until_ns: time_arg(&a.until)?,
        by: a.by.map(|b| match b {
            BucketArg::Hour => Bucket::Hour,
            BucketArg::Day => Bucket::Day,
        }),
        top: a.top,
    };
    let db = open(&a.db.db)?;
    let mut report = stats::collect(&db.path, &db.file_counts(), &plan)
        .with_context(|| format!("{}: stats", db.path.display()))?;
    // Buckets print all by default, as before `--limit` existed; the total stays whole.
    if let Some(n) = limit(&a.format, 0) {
        let matched = report.buckets.len();
        if matched > n {
            let keep: Vec<i64> = report.buckets.keys().take(n).copied().collect();
            report.buckets.retain(|k, _| keep.binary_search(k).is_ok());
            eprintln!("sipidx: showing {n} of {matched} buckets (--limit 0 for all)");
        }
    }
    let mut out = out();
    match format(&a.format.format) {
        Format::Json => output::write_json(&stats::rows(&report, &plan), &mut out)?,
        Format::Csv => output::write_csv(&stats::rows(&report, &plan), &mut out)?,
        Format::Table { color, .. } => {
            output::stats::write_text(&report, &plan, &Palette::new(color), &mut out)?
        }
    }
    out.flush()?;
    let t = &report.total;
    Ok(exit(t.messages > 0 || t.calls + t.registrations > 0))
}

pub fn run_streams(a: StreamsArgs) -> Result<u8> {
    let filter = StreamFilter {
        call_id: a.call_id.clone(),
        ip: a.ip.as_deref().map(parse_ip).transpose()?,
        port: a.port,
        ssrc: a.ssrc.as_deref().map(parse_ssrc).transpose()?,
        codec: a.codec.clone(),
        since_ns: time_arg(&a.since)?,
        until_ns: time_arg(&a.until)?,
        min_loss_pct: a.min_loss,
        max_mos: a.max_mos,
        unmatched: a.unmatched,
    };
    let mut rows = streams::read_streams(&a.db.db, &filter)?;
    let matched = rows.len();
    // Streams print all by default, as before `--limit` existed.
    if let Some(n) = limit(&a.format, 0) {
        rows.truncate(n);
    }
    let mut out = out();
    output::write_rows(&rows, format(&a.format.format), &mut out)?;
    if matched > rows.len() {
        eprintln!(
            "sipidx: showing {} of {matched} matching streams (--limit 0 for all)",
            rows.len()
        );
    }
    Ok(exit(!rows.is_empty()))
}

pub fn run_quality(a: QualityArgs) -> Result<u8> {
    let q = quality::read_call_quality(&a.db.db, &a.call_id)?;
    if q.streams.is_empty() && q.qos.is_empty() && q.rtcp.is_empty() {
        if !a.json {
            eprintln!(
                "sipidx: no media or quality reports for Call-ID {}",
                a.call_id
            );
        }
        return Ok(EXIT_NO_MATCH);
    }
    let mut out = out();
    if a.json {
        let rows = quality::rows(&q, a.explain);
        output::write_json(&rows.streams, &mut out)?;
        output::write_json(&rows.rtcp, &mut out)?;
        output::write_json(&rows.qos, &mut out)?;
    } else {
        output::quality::print_quality(&mut out, &q, a.explain)?;
    }
    out.flush()?;
    Ok(EXIT_MATCH)
}
