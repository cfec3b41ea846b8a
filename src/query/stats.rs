//! `sipidx stats`: the "Stats: VoIP traffic" of HOMER from the DB's Parquet tables — messages by
//! method and response code, answer-seizure ratio, PDD, top User-Agents and sources, scanners.
//! Messages stream through one pass (memory grows with distinct User-Agents and addresses, not
//! with rows); messages count by their `ts`, dialogs by their `start`, each into its UTC bucket.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::rows::{Counted, Row, TallyRow};
use super::QueryError;
use crate::store::parquet::{for_each_row, DayRange};
use crate::store::{DialogKind, DialogRecord, DialogState, MessageRecord};

/// `--by hour|day`: UTC buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    Hour,
    Day,
}

impl Bucket {
    /// Bucket width in ns.
    pub fn ns(self) -> i64 {
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
}

impl Default for StatsPlan {
    fn default() -> Self {
        StatsPlan {
            since_ns: None,
            until_ns: None,
            by: None,
            top: 10,
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
pub fn top(map: &HashMap<String, u64>, n: usize) -> Vec<Counted> {
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

fn round(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (x * k).round() / k
}

impl TallyRow {
    fn new(row_type: &'static str, t: &Tally, n: usize) -> Self {
        TallyRow {
            row_type,
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

/// The report as rows: one per bucket (with `--by`, in time order), then the total.
pub fn rows(r: &Report, plan: &StatsPlan) -> Vec<TallyRow> {
    let mut rows = Vec::new();
    if let Some(by) = plan.by {
        for (&start, t) in &r.buckets {
            let mut v = TallyRow::new("bucket", t, plan.top);
            v.start = Some(start);
            v.end = Some(start + by.ns());
            rows.push(v);
        }
    }
    let mut v = TallyRow::new(TallyRow::TYPE, &r.total, plan.top);
    v.start = plan.since_ns;
    v.end = plan.until_ns;
    v.hep_mirrors = Some(r.hep_mirrors);
    v.span_duplicates = Some(r.span_duplicates);
    rows.push(v);
    rows
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
