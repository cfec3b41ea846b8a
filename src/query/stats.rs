//! `sipidx stats`: the "Stats: VoIP traffic" of HOMER from the DB's Parquet tables — messages by
//! method and response code, answer-seizure ratio, PDD, top User-Agents and sources, scanners.
//! Messages stream through one pass (memory grows with distinct User-Agents and addresses, not
//! with rows); messages count by their `ts`, dialogs by their `start`, each into its UTC bucket.
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::QueryError;
use crate::output::{rfc3339, sanitize};
use crate::store::parquet::{for_each_row, DayRange};
use crate::store::{DialogKind, DialogRecord, DialogState, MessageRecord};

/// `--by hour|day`: UTC buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    fn ns(self) -> i64 {
        match self {
            Bucket::Hour => 3_600_000_000_000,
            Bucket::Day => 86_400_000_000_000,
        }
    }
}

/// What the catalog says about one indexed capture file: its dropped copies and time span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileCounts {
    pub hep_mirrors: u64,
    pub span_duplicates: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct StatsPlan {
    /// Inclusive bounds on message `ts` and dialog `start`.
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub by: Option<Bucket>,
    /// Length of the top lists (User-Agents, sources, scanner sources).
    pub top: usize,
    pub json: bool,
}

impl Default for StatsPlan {
    fn default() -> Self {
        StatsPlan {
            since_ns: None,
            until_ns: None,
            by: None,
            top: 10,
            json: false,
        }
    }
}

/// Counters of one bucket (or of the whole window).
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub messages: u64,
    pub requests: BTreeMap<String, u64>,
    pub responses: BTreeMap<u16, u64>,
    pub user_agents: HashMap<String, u64>,
    pub sources: HashMap<String, u64>,
    pub calls: u64,
    pub answered: u64,
    pub failed: u64,
    pub canceled: u64,
    pub in_progress: u64,
    pub pdd_sum_ms: f64,
    pub pdd_n: u64,
    pub pdd_max_ms: Option<f64>,
    pub registrations: u64,
    pub registered: u64,
    pub registrations_failed: u64,
    pub other_dialogs: u64,
    pub scanner_dialogs: u64,
    pub scanner_sources: HashMap<String, u64>,
}

impl Tally {
    fn add_message(&mut self, m: &MessageRecord) {
        self.messages += 1;
        if let Some(method) = &m.method {
            *self.requests.entry(method.clone()).or_default() += 1;
        }
        if let Some(code) = m.status {
            *self.responses.entry(code).or_default() += 1;
        }
        if let Some(ua) = &m.user_agent {
            bump(&mut self.user_agents, ua);
        }
        bump(&mut self.sources, &m.src_ip);
    }

    fn add_dialog(&mut self, d: &DialogRecord) {
        match d.kind {
            DialogKind::Call => {
                self.calls += 1;
                match d.state {
                    DialogState::Answered => self.answered += 1,
                    DialogState::Failed => self.failed += 1,
                    DialogState::Canceled => self.canceled += 1,
                    _ => self.in_progress += 1,
                }
                if let Some(p) = d.pdd_ms {
                    self.pdd_sum_ms += p;
                    self.pdd_n += 1;
                    self.pdd_max_ms = Some(self.pdd_max_ms.map_or(p, |m| m.max(p)));
                }
            }
            DialogKind::Registration => {
                self.registrations += 1;
                match d.state {
                    DialogState::Registered => self.registered += 1,
                    DialogState::Failed => self.registrations_failed += 1,
                    _ => {}
                }
            }
            DialogKind::Other => self.other_dialogs += 1,
        }
        if d.scanner {
            self.scanner_dialogs += 1;
            bump(&mut self.scanner_sources, &d.src_ip);
        }
    }

    /// Answered calls over call attempts (every INVITE dialog), in per cent.
    pub fn asr_pct(&self) -> Option<f64> {
        (self.calls > 0).then(|| 100.0 * self.answered as f64 / self.calls as f64)
    }

    pub fn avg_pdd_ms(&self) -> Option<f64> {
        (self.pdd_n > 0).then(|| self.pdd_sum_ms / self.pdd_n as f64)
    }
}

fn bump(map: &mut HashMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

/// The `n` largest counts, ties by value, as (value, count).
fn top(map: &HashMap<String, u64>, n: usize) -> Vec<Counted> {
    let mut v: Vec<(&String, &u64)> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.into_iter()
        .take(n)
        .map(|(k, &c)| Counted {
            value: k.clone(),
            count: c,
        })
        .collect()
}

/// The result of a stats run.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub total: Tally,
    /// Bucket start (ns) → tally, with `--by`.
    pub buckets: BTreeMap<i64, Tally>,
    pub hep_mirrors: u64,
    pub span_duplicates: u64,
    /// Capture files whose span meets the window (the source of the two dedup counts).
    pub files: usize,
}

/// Reads the DB at `db`. `files` are the catalog's files by id: messages of other ids (a run that
/// died before its commit) are left out, and their dedup counts are summed for files whose time
/// span meets the window (a file's counts cannot be split by time).
pub fn collect(
    db: &Path,
    files: &HashMap<u32, FileCounts>,
    plan: &StatsPlan,
) -> Result<Report, QueryError> {
    let mut report = Report::default();
    let until_excl = plan.until_ns.map(|u| u.saturating_add(1));
    let inside =
        |ts: i64| plan.since_ns.is_none_or(|s| ts >= s) && plan.until_ns.is_none_or(|u| ts <= u);
    let bucket_of = |ts: i64| plan.by.map(|b| ts.div_euclid(b.ns()) * b.ns());
    for_each_row::<MessageRecord>(db, DayRange::from_ns(plan.since_ns, until_excl), |m| {
        if inside(m.ts_ns) && files.contains_key(&m.file_id) {
            report.total.add_message(&m);
            if let Some(b) = bucket_of(m.ts_ns) {
                report.buckets.entry(b).or_default().add_message(&m);
            }
        }
        Ok(())
    })?;
    for_each_row::<DialogRecord>(db, DayRange::from_ns(plan.since_ns, until_excl), |d| {
        if inside(d.start_ns) {
            report.total.add_dialog(&d);
            if let Some(b) = bucket_of(d.start_ns) {
                report.buckets.entry(b).or_default().add_dialog(&d);
            }
        }
        Ok(())
    })?;
    for f in files.values() {
        let meets = f
            .last_ts_ns
            .is_none_or(|l| plan.since_ns.is_none_or(|s| l >= s))
            && f.first_ts_ns
                .is_none_or(|t| plan.until_ns.is_none_or(|u| t <= u));
        if meets {
            report.hep_mirrors += f.hep_mirrors;
            report.span_duplicates += f.span_duplicates;
            report.files += 1;
        }
    }
    Ok(report)
}

/// A value and how often it was seen.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    pub value: String,
    pub count: u64,
}

/// One JSON line of `stats --json`: `type` is `bucket` (with `--by`, one per bucket in time
/// order) or `total` (always last).
#[derive(Serialize)]
pub struct TallyJson {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Bucket bounds (RFC 3339 UTC, end exclusive); for `total`, the window asked for.
    pub start: Option<String>,
    pub end: Option<String>,
    pub messages: u64,
    pub requests: BTreeMap<String, u64>,
    pub responses: BTreeMap<String, u64>,
    pub calls: u64,
    pub answered: u64,
    pub failed: u64,
    pub canceled: u64,
    pub in_progress: u64,
    /// Answered calls / call attempts, per cent.
    pub asr_pct: Option<f64>,
    pub avg_pdd_ms: Option<f64>,
    pub max_pdd_ms: Option<f64>,
    pub registrations: u64,
    pub registered: u64,
    pub registrations_failed: u64,
    pub other_dialogs: u64,
    pub top_user_agents: Vec<Counted>,
    pub top_sources: Vec<Counted>,
    pub scanner_dialogs: u64,
    pub top_scanner_sources: Vec<Counted>,
    /// `total` only: from the catalog, for the files whose span meets the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hep_mirrors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_duplicates: Option<u64>,
}

fn round(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (x * k).round() / k
}

impl TallyJson {
    fn new(kind: &'static str, t: &Tally, n: usize) -> Self {
        TallyJson {
            kind,
            start: None,
            end: None,
            messages: t.messages,
            requests: t.requests.clone(),
            responses: t
                .responses
                .iter()
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            calls: t.calls,
            answered: t.answered,
            failed: t.failed,
            canceled: t.canceled,
            in_progress: t.in_progress,
            asr_pct: t.asr_pct().map(|x| round(x, 2)),
            avg_pdd_ms: t.avg_pdd_ms().map(|x| round(x, 1)),
            max_pdd_ms: t.pdd_max_ms.map(|x| round(x, 1)),
            registrations: t.registrations,
            registered: t.registered,
            registrations_failed: t.registrations_failed,
            other_dialogs: t.other_dialogs,
            top_user_agents: top(&t.user_agents, n),
            top_sources: top(&t.sources, n),
            scanner_dialogs: t.scanner_dialogs,
            top_scanner_sources: top(&t.scanner_sources, n),
            hep_mirrors: None,
            span_duplicates: None,
        }
    }
}

/// Runs stats and writes the report; returns it for the exit status.
pub fn run(
    db: &Path,
    files: &HashMap<u32, FileCounts>,
    plan: &StatsPlan,
    out: &mut dyn Write,
) -> Result<Report, QueryError> {
    let report = collect(db, files, plan)?;
    if plan.json {
        write_json(&report, plan, out)?;
    } else {
        write_text(&report, plan, out)?;
    }
    out.flush()?;
    Ok(report)
}

fn write_json(r: &Report, plan: &StatsPlan, out: &mut dyn Write) -> io::Result<()> {
    let mut line = |v: &TallyJson| -> io::Result<()> {
        serde_json::to_writer(&mut *out, v).map_err(io::Error::from)?;
        out.write_all(b"\n")
    };
    if let Some(by) = plan.by {
        for (&start, t) in &r.buckets {
            let mut v = TallyJson::new("bucket", t, plan.top);
            v.start = Some(rfc3339(start));
            v.end = Some(rfc3339(start + by.ns()));
            line(&v)?;
        }
    }
    let mut v = TallyJson::new("total", &r.total, plan.top);
    v.start = plan.since_ns.map(rfc3339);
    v.end = plan.until_ns.map(rfc3339);
    v.hep_mirrors = Some(r.hep_mirrors);
    v.span_duplicates = Some(r.span_duplicates);
    line(&v)
}

fn clean(s: &str) -> String {
    sanitize(s.as_bytes(), false).into_owned()
}

fn write_text(r: &Report, plan: &StatsPlan, out: &mut dyn Write) -> io::Result<()> {
    if let Some(by) = plan.by {
        for (&start, t) in &r.buckets {
            writeln!(
                out,
                "== {} .. {} (UTC)",
                rfc3339(start),
                rfc3339(start + by.ns())
            )?;
            write_tally(out, t, plan.top)?;
            writeln!(out)?;
        }
        writeln!(out, "== total")?;
    }
    write_tally(out, &r.total, plan.top)?;
    writeln!(
        out,
        "{:<15}{} HEP mirrors and {} SPAN duplicates dropped at index time ({} capture files)",
        "dropped", r.hep_mirrors, r.span_duplicates, r.files
    )
}

fn write_tally(out: &mut dyn Write, t: &Tally, n: usize) -> io::Result<()> {
    let reqs: u64 = t.requests.values().sum();
    let resps: u64 = t.responses.values().sum();
    writeln!(
        out,
        "{:<15}{} ({reqs} requests, {resps} responses)",
        "messages", t.messages
    )?;
    let mut methods: Vec<(&String, &u64)> = t.requests.iter().collect();
    methods.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let methods: Vec<String> = methods
        .iter()
        .map(|(m, c)| format!("{} {c}", clean(m)))
        .collect();
    writeln!(out, "{:<15}{}", "methods", methods.join(", "))?;
    let codes: Vec<String> = t
        .responses
        .iter()
        .map(|(c, n)| format!("{c} {n}"))
        .collect();
    writeln!(out, "{:<15}{}", "responses", codes.join(", "))?;
    let asr = t.asr_pct().map_or("-".to_owned(), |a| format!("{a:.1} %"));
    writeln!(
        out,
        "{:<15}{} attempts: {} answered, {} failed, {} canceled, {} in progress; ASR {asr}",
        "calls", t.calls, t.answered, t.failed, t.canceled, t.in_progress
    )?;
    match (t.avg_pdd_ms(), t.pdd_max_ms) {
        (Some(avg), Some(max)) => writeln!(
            out,
            "{:<15}avg {avg:.0} ms, max {max:.0} ms over {} calls",
            "PDD", t.pdd_n
        )?,
        _ => writeln!(out, "{:<15}-", "PDD")?,
    }
    writeln!(
        out,
        "{:<15}{}: {} registered, {} failed",
        "registrations", t.registrations, t.registered, t.registrations_failed
    )?;
    writeln!(out, "{:<15}{}", "other dialogs", t.other_dialogs)?;
    let list = |out: &mut dyn Write, title: &str, items: Vec<Counted>| -> io::Result<()> {
        if items.is_empty() {
            return writeln!(out, "{title:<15}-");
        }
        for (i, c) in items.iter().enumerate() {
            let head = if i == 0 { title } else { "" };
            writeln!(out, "{head:<15}{:>8}  {}", c.count, clean(&c.value))?;
        }
        Ok(())
    };
    list(out, "user agents", top(&t.user_agents, n))?;
    list(out, "sources", top(&t.sources, n))?;
    writeln!(out, "{:<15}{} dialogs", "scanners", t.scanner_dialogs)?;
    list(out, "scanner srcs", top(&t.scanner_sources, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(method: Option<&str>, status: Option<u16>, ua: &str, src: &str) -> MessageRecord {
        MessageRecord {
            method: method.map(Into::into),
            status,
            user_agent: Some(ua.into()),
            src_ip: src.into(),
            ..Default::default()
        }
    }

    #[test]
    fn tally_counts_methods_codes_and_ranks_top_lists() {
        let mut t = Tally::default();
        for m in [
            msg(Some("INVITE"), None, "a", "10.0.0.1"),
            msg(Some("INVITE"), None, "a", "10.0.0.1"),
            msg(None, Some(100), "b", "10.0.0.2"),
            msg(None, Some(486), "b", "10.0.0.2"),
            msg(Some("ACK"), None, "a", "10.0.0.3"),
        ] {
            t.add_message(&m);
        }
        assert_eq!(t.messages, 5);
        assert_eq!(t.requests["INVITE"], 2);
        assert_eq!(t.responses[&486], 1);
        assert_eq!(
            top(&t.user_agents, 1),
            [Counted {
                value: "a".into(),
                count: 3
            }]
        );
        // Ties rank by value.
        let s = top(&t.sources, 3);
        assert_eq!(
            s.iter().map(|c| c.value.as_str()).collect::<Vec<_>>(),
            ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
        );
    }

    #[test]
    fn asr_and_pdd_come_from_call_dialogs_only() {
        let mut t = Tally::default();
        let call = |state, pdd| DialogRecord {
            kind: DialogKind::Call,
            state,
            pdd_ms: pdd,
            ..Default::default()
        };
        t.add_dialog(&call(DialogState::Answered, Some(100.0)));
        t.add_dialog(&call(DialogState::Failed, Some(300.0)));
        t.add_dialog(&call(DialogState::Canceled, None));
        t.add_dialog(&call(DialogState::Answered, None));
        t.add_dialog(&DialogRecord {
            kind: DialogKind::Registration,
            state: DialogState::Registered,
            scanner: true,
            src_ip: "45.1.2.3".into(),
            ..Default::default()
        });
        assert_eq!(t.asr_pct(), Some(50.0));
        assert_eq!(t.avg_pdd_ms(), Some(200.0));
        assert_eq!(t.pdd_max_ms, Some(300.0));
        assert_eq!((t.registrations, t.registered), (1, 1));
        assert_eq!(t.scanner_dialogs, 1);
        assert_eq!(t.scanner_sources["45.1.2.3"], 1);
        assert_eq!(Tally::default().asr_pct(), None);
    }
}
