//! `sipidx calls`: dialogs (one per Call-ID) from the DB's Parquet `dialogs` table.
//! The store prunes day partitions and matches kind, users, Call-ID and scanner; the rest
//! (state, final status, durations, addresses, User-Agent) is checked here, row by row.
use std::cmp::Ordering;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::filter::{IpNet, StatusFilter};
use super::search::flow;
use super::QueryError;
use crate::output::table::{write_table, Cell, Column};
use crate::output::{rfc3339, sanitize, short_time, Format, Palette};
use crate::store::parquet::{for_each_row, DayRange};
use crate::store::{DialogFilter, DialogRecord, DialogState};

/// Sort key of `calls --sort`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CallSortKey {
    #[default]
    Start,
    Duration,
    Pdd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CallSort {
    pub key: CallSortKey,
    pub descending: bool,
}

/// A validated `calls`. Every set condition must hold.
#[derive(Clone, Debug, Default)]
pub struct CallsPlan {
    /// Conditions the store checks: `start` in `[since, until)`, kinds, users (case-insensitive
    /// substrings), Call-ID, scanner.
    pub filter: DialogFilter,
    /// Any of these states (empty: any).
    pub states: Vec<DialogState>,
    /// State failed or canceled.
    pub failed: bool,
    pub final_status: Option<StatusFilter>,
    /// Case-insensitive substring of the User-Agent; lowercase.
    pub user_agent: Option<String>,
    /// Source or destination of the first request.
    pub ip: Option<IpNet>,
    pub port: Option<u16>,
    pub min_duration_s: Option<f64>,
    pub min_pdd_ms: Option<f64>,
    /// At most this many rows; `None` for all.
    pub limit: Option<usize>,
    pub sort: CallSort,
}

impl CallsPlan {
    fn keep(&self, d: &DialogRecord) -> bool {
        if !self.states.is_empty() && !self.states.contains(&d.state) {
            return false;
        }
        if self.failed && !matches!(d.state, DialogState::Failed | DialogState::Canceled) {
            return false;
        }
        if let Some(st) = self.final_status {
            if !d.final_status.is_some_and(|c| st.matches(c)) {
                return false;
            }
        }
        if let Some(ua) = &self.user_agent {
            if !d
                .user_agent
                .as_deref()
                .is_some_and(|u| u.to_lowercase().contains(ua.as_str()))
            {
                return false;
            }
        }
        if let Some(net) = &self.ip {
            let hit = |s: &str| s.parse().is_ok_and(|ip| net.contains(ip));
            if !hit(&d.src_ip) && !hit(&d.dst_ip) {
                return false;
            }
        }
        if let Some(p) = self.port {
            if d.src_port != p && d.dst_port != p {
                return false;
            }
        }
        if let Some(min) = self.min_duration_s {
            if !d.duration_s.is_some_and(|s| s >= min) {
                return false;
            }
        }
        if let Some(min) = self.min_pdd_ms {
            if !d.pdd_ms.is_some_and(|p| p >= min) {
                return false;
            }
        }
        true
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallsOutcome {
    pub printed: usize,
    /// Dialogs that matched, before `limit`.
    pub matched: usize,
}

/// The matching dialogs in plan order, cut to the limit, and how many matched in all.
/// Rows stream from the table; only matching ones are kept, without their `summary` (the bulk of
/// a row), so memory follows the matches, not the table.
pub fn select(db: &Path, plan: &CallsPlan) -> Result<(Vec<DialogRecord>, usize), QueryError> {
    let mut rows: Vec<DialogRecord> = Vec::new();
    let f = &plan.filter;
    for_each_row::<DialogRecord>(db, DayRange::from_ns(f.since_ns, f.until_ns), |mut d| {
        if f.matches(&d) && plan.keep(&d) {
            d.summary = None;
            rows.push(d);
        }
        Ok(())
    })?;
    let CallSort { key, descending } = plan.sort;
    let value = |d: &DialogRecord| match key {
        CallSortKey::Start => Some(d.start_ns as f64),
        CallSortKey::Duration => d.duration_s,
        CallSortKey::Pdd => d.pdd_ms,
    };
    rows.sort_by(|a, b| {
        // Dialogs without the value (no answer, no PDD) go last either way; ties by start and
        // Call-ID, so the order never depends on how the table was written.
        let by_value = match (value(a), value(b)) {
            (Some(x), Some(y)) => {
                let o = x.total_cmp(&y);
                if descending {
                    o.reverse()
                } else {
                    o
                }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        by_value.then_with(|| (a.start_ns, &a.call_id).cmp(&(b.start_ns, &b.call_id)))
    });
    let matched = rows.len();
    if let Some(n) = plan.limit {
        rows.truncate(n);
    }
    Ok((rows, matched))
}

/// Runs `calls` over the DB at `db` and writes rows in `format`.
pub fn run(
    db: &Path,
    plan: &CallsPlan,
    format: Format,
    out: &mut dyn Write,
) -> Result<CallsOutcome, QueryError> {
    let (rows, matched) = select(db, plan)?;
    write(&rows, format, out)?;
    Ok(CallsOutcome {
        printed: rows.len(),
        matched,
    })
}

fn time(ns: Option<i64>) -> Option<String> {
    ns.map(rfc3339)
}

/// One `calls --json` row: every dialog column but the internal `summary`, times as RFC 3339 UTC.
#[derive(Serialize)]
pub struct CallRow<'a> {
    #[serde(rename = "type")]
    pub kind_tag: &'static str,
    pub call_id: &'a str,
    pub kind: &'static str,
    pub state: String,
    pub final_status: Option<u16>,
    pub final_reason: Option<&'a str>,
    pub start: String,
    pub end: String,
    pub invite: Option<String>,
    pub first_provisional: Option<String>,
    pub answer: Option<String>,
    pub ack: Option<String>,
    pub bye: Option<String>,
    pub cancel: Option<String>,
    pub pdd_ms: Option<f64>,
    pub setup_ms: Option<f64>,
    pub duration_s: Option<f64>,
    pub ended_by: Option<&'static str>,
    pub reinvites: u32,
    pub auth_challenges: u32,
    pub from_user: Option<&'a str>,
    pub to_user: Option<&'a str>,
    pub ruri_user: Option<&'a str>,
    pub from_host: Option<&'a str>,
    pub to_host: Option<&'a str>,
    pub src_ip: &'a str,
    pub dst_ip: &'a str,
    pub src_port: u16,
    pub dst_port: u16,
    pub user_agent: Option<&'a str>,
    pub contact: Option<&'a str>,
    pub expires: Option<u32>,
    pub messages: u32,
    pub correlation_id: &'a str,
    pub scanner: bool,
    pub worst_mos: Option<f64>,
    pub max_loss_pct: Option<f64>,
    pub max_jitter_ms: Option<f64>,
}

impl<'a> CallRow<'a> {
    pub fn new(d: &'a DialogRecord) -> Self {
        CallRow {
            kind_tag: "dialog",
            call_id: &d.call_id,
            kind: d.kind.as_str(),
            state: d.state.to_string(),
            final_status: d.final_status,
            final_reason: d.final_reason.as_deref(),
            start: rfc3339(d.start_ns),
            end: rfc3339(d.end_ns),
            invite: time(d.invite_ns),
            first_provisional: time(d.first_provisional_ns),
            answer: time(d.answer_ns),
            ack: time(d.ack_ns),
            bye: time(d.bye_ns),
            cancel: time(d.cancel_ns),
            pdd_ms: d.pdd_ms,
            setup_ms: d.setup_ms,
            duration_s: d.duration_s,
            ended_by: d.ended_by.map(|e| e.as_str()),
            reinvites: d.reinvites,
            auth_challenges: d.auth_challenges,
            from_user: d.from_user.as_deref(),
            to_user: d.to_user.as_deref(),
            ruri_user: d.ruri_user.as_deref(),
            from_host: d.from_host.as_deref(),
            to_host: d.to_host.as_deref(),
            src_ip: &d.src_ip,
            dst_ip: &d.dst_ip,
            src_port: d.src_port,
            dst_port: d.dst_port,
            user_agent: d.user_agent.as_deref(),
            contact: d.contact.as_deref(),
            expires: d.expires,
            messages: d.messages,
            correlation_id: &d.correlation_id,
            scanner: d.scanner,
            worst_mos: d.worst_mos,
            max_loss_pct: d.max_loss_pct,
            max_jitter_ms: d.max_jitter_ms,
        }
    }
}

/// Field names of [`CallRow`], in order: the CSV header when there are no rows.
pub const CALL_FIELDS: &[&str] = &[
    "type",
    "call_id",
    "kind",
    "state",
    "final_status",
    "final_reason",
    "start",
    "end",
    "invite",
    "first_provisional",
    "answer",
    "ack",
    "bye",
    "cancel",
    "pdd_ms",
    "setup_ms",
    "duration_s",
    "ended_by",
    "reinvites",
    "auth_challenges",
    "from_user",
    "to_user",
    "ruri_user",
    "from_host",
    "to_host",
    "src_ip",
    "dst_ip",
    "src_port",
    "dst_port",
    "user_agent",
    "contact",
    "expires",
    "messages",
    "correlation_id",
    "scanner",
    "worst_mos",
    "max_loss_pct",
    "max_jitter_ms",
];

const COLUMNS: [Column; 13] = [
    Column::fixed("START"),
    Column::fixed("KIND"),
    Column::fixed("STATE"),
    Column::left("FINAL", 3, 24),
    Column::left("FROM", 6, 24),
    Column::left("TO", 6, 24),
    Column::left("RURI", 6, 24),
    Column::fixed_right("DURATION"),
    Column::fixed_right("PDD"),
    Column::fixed_right("MSGS"),
    Column::left("CALL-ID", 10, 44),
    Column::left("UA", 6, 28),
    Column::left("SRC → DST", 21, 60),
];

fn write(rows: &[DialogRecord], format: Format, out: &mut dyn Write) -> Result<(), QueryError> {
    match format {
        Format::Json => {
            for d in rows {
                serde_json::to_writer(&mut *out, &CallRow::new(d)).map_err(io::Error::from)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            if rows.is_empty() {
                w.write_record(CALL_FIELDS)?;
            }
            for d in rows {
                w.serialize(CallRow::new(d))?;
            }
            w.flush()?;
        }
        Format::Table { color, width } => {
            let p = Palette::new(color);
            let cells: Vec<Vec<Cell>> = rows.iter().map(|d| table_row(d, &p)).collect();
            write_table(out, &COLUMNS, &cells, width, p.header, p.reset)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn clean(s: Option<&str>) -> String {
    s.map(|s| sanitize(s.as_bytes(), false).into_owned())
        .unwrap_or_default()
}

fn table_row(d: &DialogRecord, p: &Palette) -> Vec<Cell> {
    let state_style = match d.state {
        DialogState::Answered | DialogState::Registered => p.ok,
        DialogState::Failed => p.error,
        DialogState::Canceled | DialogState::InProgress => p.provisional,
        DialogState::Unregistered => "",
        DialogState::Final(c) => p.status(c),
    };
    let (final_text, final_style) = match d.final_status {
        Some(c) => (
            format!("{c} {}", clean(d.final_reason.as_deref()))
                .trim_end()
                .to_owned(),
            p.status(c),
        ),
        None => (String::new(), ""),
    };
    vec![
        Cell::from(short_time(d.start_ns)),
        Cell::from(d.kind.as_str()),
        Cell {
            text: d.state.to_string(),
            style: state_style,
        },
        Cell {
            text: final_text,
            style: final_style,
        },
        Cell::from(clean(d.from_user.as_deref())),
        Cell::from(clean(d.to_user.as_deref())),
        Cell::from(clean(d.ruri_user.as_deref())),
        Cell::from(d.duration_s.map(|s| format!("{s:.1}s")).unwrap_or_default()),
        Cell::from(d.pdd_ms.map(|s| format!("{s:.0}ms")).unwrap_or_default()),
        Cell::from(d.messages.to_string()),
        Cell::from(clean(Some(&d.call_id))),
        Cell::from(clean(d.user_agent.as_deref())),
        Cell::from(clean(Some(&flow(
            &d.src_ip, d.src_port, &d.dst_ip, d.dst_port,
        )))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DialogKind;

    fn dialog(id: &str, state: DialogState, dur: Option<f64>, pdd: Option<f64>) -> DialogRecord {
        DialogRecord {
            call_id: id.into(),
            kind: DialogKind::Call,
            state,
            duration_s: dur,
            pdd_ms: pdd,
            src_ip: "10.0.0.1".into(),
            dst_ip: "192.0.2.9".into(),
            src_port: 5060,
            dst_port: 5070,
            user_agent: Some("Zoiper rv2".into()),
            ..Default::default()
        }
    }

    #[test]
    fn row_conditions_combine_with_and() {
        let d = dialog("a", DialogState::Canceled, None, Some(300.0));
        let plan = |f: fn(&mut CallsPlan)| {
            let mut p = CallsPlan::default();
            f(&mut p);
            p.keep(&d)
        };
        assert!(plan(|_| {}));
        assert!(plan(|p| p.failed = true));
        assert!(!plan(|p| p.states = vec![DialogState::Answered]));
        assert!(plan(
            |p| p.states = vec![DialogState::Answered, DialogState::Canceled]
        ));
        assert!(plan(|p| p.min_pdd_ms = Some(300.0)));
        assert!(!plan(|p| p.min_pdd_ms = Some(301.0)));
        // No duration (never answered) never passes a minimum duration.
        assert!(!plan(|p| p.min_duration_s = Some(0.0)));
        assert!(plan(|p| p.ip = Some("10.0.0.0/8".parse().unwrap())));
        assert!(plan(|p| p.ip = Some("192.0.2.9".parse().unwrap())));
        assert!(!plan(|p| p.ip = Some("10.0.0.2".parse().unwrap())));
        assert!(plan(|p| p.port = Some(5070)));
        assert!(!plan(|p| p.port = Some(5061)));
        assert!(plan(|p| p.user_agent = Some("zoiper".into())));
        assert!(!plan(|p| p.final_status = Some(StatusFilter::Class(4))));
        assert!(!plan(|p| {
            p.failed = true;
            p.min_pdd_ms = Some(1000.0)
        }));
    }

    #[test]
    fn json_rows_carry_every_dialog_column_but_the_summary() {
        let d = DialogRecord {
            start_ns: 1_395_916_825_298_990_000,
            answer_ns: Some(1_395_916_826_000_000_000),
            summary: Some("{}".into()),
            ..dialog("a", DialogState::Answered, Some(3.5), None)
        };
        let row = serde_json::to_value(CallRow::new(&d)).unwrap();
        assert_eq!(row["start"], "2014-03-27T10:40:25.298990Z");
        assert_eq!(row["answer"], "2014-03-27T10:40:26.000000Z");
        assert_eq!(row["state"], "answered");
        assert_eq!(row["duration_s"], 3.5);
        let stored = serde_json::to_value(&d).unwrap();
        let mut want: Vec<&str> = stored
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .filter(|k| *k != "summary")
            .chain(["type"])
            .collect();
        want.sort_unstable();
        let mut got: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        got.sort_unstable();
        assert_eq!(got, want);
        let mut fields = CALL_FIELDS.to_vec();
        fields.sort_unstable();
        assert_eq!(fields, want);
    }
}
