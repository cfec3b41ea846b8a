//! `sipidx calls`: dialogs (one per Call-ID) from the DB's Parquet `dialogs` table.
//! The store prunes day partitions and matches kind, users, Call-ID and scanner; the rest
//! (state, final status, durations, addresses, User-Agent) is checked here, row by row.
use std::cmp::Ordering;
use std::path::Path;

use super::filter::{IpNet, StatusFilter};
use super::rows::CallRow;
use super::QueryError;
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

/// What `calls` found: the rows in plan order, cut to the limit.
#[derive(Clone, Debug, Default)]
pub struct Calls {
    pub rows: Vec<CallRow>,
    /// Dialogs that matched, before `limit`.
    pub matched: usize,
}

/// The matching dialogs in plan order, cut to the limit, and how many matched in all.
/// Rows stream from the table; only matching ones are kept, without their `summary` (the bulk of
/// a row), so memory follows the matches, not the table.
pub fn select(db: &Path, plan: &CallsPlan) -> Result<Calls, QueryError> {
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
    Ok(Calls {
        rows: rows.into_iter().map(CallRow::from).collect(),
        matched,
    })
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
}
