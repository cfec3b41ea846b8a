//! `search`, `calls` and `stats` arguments → `query::{search, calls, stats}` plans over the DB.
use std::io::Write;

use anyhow::{Context, Result};

use super::args::{BucketArg, CallsArgs, KindArg, RowFormatArgs, SearchArgs, StatsArgs};
use super::db::Db;
use super::grep::{color, message_filter, parse_duration, parse_ip, parse_status, parse_time};
use super::{EXIT_MATCH, EXIT_NO_MATCH};
use crate::output::table::terminal_width;
use crate::output::Format;
use crate::query::calls::{self, CallSort, CallSortKey, CallsPlan};
use crate::query::search::{self, SearchPlan};
use crate::query::stats::{self, Bucket, StatsPlan};
use crate::store::{DialogFilter, DialogKind, DialogState, SortOrder};

fn format(a: &RowFormatArgs) -> Format {
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

fn limit(a: &RowFormatArgs) -> Option<usize> {
    (a.limit > 0).then_some(a.limit)
}

fn scanner(only: bool, none: bool) -> Option<bool> {
    match (only, none) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// `time` / `-time` style keys: the name and whether it is descending.
fn sort_key(s: &str) -> (&str, bool) {
    match s.strip_prefix('-') {
        Some(k) => (k, true),
        None => (s.strip_prefix('+').unwrap_or(s), false),
    }
}

fn out() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock())
}

pub fn run_search(a: SearchArgs) -> Result<u8> {
    let sort = match sort_key(&a.sort) {
        ("time", false) => SortOrder::TsAsc,
        ("time", true) => SortOrder::TsDesc,
        _ => anyhow::bail!("invalid --sort '{}': expected time or -time", a.sort),
    };
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
        limit: limit(&a.format),
        sort,
    };
    let db = Db::open(&a.db.db)?;
    db.note_if_empty();
    let Some(index) = db.text_index()? else {
        return Ok(EXIT_NO_MATCH);
    };
    let files = db.file_paths();
    let mut out = out();
    let outcome = search::run(&index, &files, &plan, format(&a.format), &mut out)
        .with_context(|| format!("{}: search", db.path.display()))?;
    out.flush()?;
    if outcome.truncated {
        match outcome.total {
            Some(t) => eprintln!(
                "sipidx: showing {} of {t} matching messages (--limit 0 for all)",
                outcome.printed
            ),
            None => eprintln!(
                "sipidx: showing the first {} matching messages; more match (--limit 0 for all)",
                outcome.printed
            ),
        }
    }
    Ok(if outcome.printed > 0 {
        EXIT_MATCH
    } else {
        EXIT_NO_MATCH
    })
}

fn duration_arg(s: &Option<String>, flag: &str) -> Result<Option<f64>> {
    s.as_deref()
        .map(|v| parse_duration(v).with_context(|| flag.to_string()))
        .transpose()
        .map(|d| d.map(|ns| ns as f64))
}

pub fn run_calls(a: CallsArgs) -> Result<u8> {
    let sort = {
        let (key, descending) = sort_key(&a.sort);
        let key = match key {
            "time" | "start" => CallSortKey::Start,
            "duration" => CallSortKey::Duration,
            "pdd" => CallSortKey::Pdd,
            _ => anyhow::bail!(
                "invalid --sort '{}': expected time, duration or pdd, with - for descending",
                a.sort
            ),
        };
        CallSort { key, descending }
    };
    let states = a
        .state
        .iter()
        .map(|s| {
            s.trim()
                .to_ascii_lowercase()
                .parse::<DialogState>()
                .map_err(|_| {
                    anyhow::anyhow!(
                        "invalid --state '{s}': expected answered, failed, canceled, in_progress, \
                         registered, unregistered or a status code"
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let plan = CallsPlan {
        filter: DialogFilter {
            since_ns: a.since.as_deref().map(parse_time).transpose()?,
            // --until is inclusive; the store's bound is not.
            until_ns: a
                .until
                .as_deref()
                .map(parse_time)
                .transpose()?
                .map(|u| u.saturating_add(1)),
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
        final_status: parse_status(a.status.as_deref())?,
        user_agent: a.user_agent.as_ref().map(|s| s.to_lowercase()),
        ip: parse_ip(a.ip.as_deref())?,
        port: a.port,
        min_duration_s: duration_arg(&a.min_duration, "--min-duration")?.map(|ns| ns / 1e9),
        min_pdd_ms: duration_arg(&a.min_pdd, "--min-pdd")?.map(|ns| ns / 1e6),
        limit: limit(&a.format),
        sort,
    };
    let db = Db::open(&a.db.db)?;
    db.note_if_empty();
    let mut out = out();
    let outcome = calls::run(&db.path, &plan, format(&a.format), &mut out)
        .with_context(|| format!("{}: calls", db.path.display()))?;
    out.flush()?;
    if outcome.matched > outcome.printed {
        eprintln!(
            "sipidx: showing {} of {} matching dialogs (--limit 0 for all)",
            outcome.printed, outcome.matched
        );
    }
    Ok(if outcome.printed > 0 {
        EXIT_MATCH
    } else {
        EXIT_NO_MATCH
    })
}

pub fn run_stats(a: StatsArgs) -> Result<u8> {
    let plan = StatsPlan {
        since_ns: a.since.as_deref().map(parse_time).transpose()?,
        until_ns: a.until.as_deref().map(parse_time).transpose()?,
        by: a.by.map(|b| match b {
            BucketArg::Hour => Bucket::Hour,
            BucketArg::Day => Bucket::Day,
        }),
        top: a.top,
        json: a.json,
    };
    let db = Db::open(&a.db.db)?;
    db.note_if_empty();
    let mut out = out();
    let report = stats::run(&db.path, &db.file_counts(), &plan, &mut out)
        .with_context(|| format!("{}: stats", db.path.display()))?;
    out.flush()?;
    Ok(
        if report.total.messages > 0 || report.total.calls + report.total.registrations > 0 {
            EXIT_MATCH
        } else {
            EXIT_NO_MATCH
        },
    )
}
