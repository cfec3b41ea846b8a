//! `sipidx search`: SIP messages from the DB's tantivy index, with grep's filters plus a text query.
//! The index answers every filter it can; what it cannot (CIDR prefixes, the CSeq method of
//! responses, files not in the catalog) is checked on the hits, fetching more until `limit` pass.
//!
//! Filter semantics are grep's, with two documented differences: user-part filters (`--from`,
//! `--to`, `--ruri`) ignore case here (the index holds lowercased trigrams), and a text QUERY is
//! tantivy's query language over tokens rather than a regex over bytes.
use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;

use super::filter::{IpNet, MessageFilter};
use super::QueryError;
use crate::output::table::{write_table, Cell, Column};
use crate::output::{rfc3339, sanitize, short_time, Format, Palette};
use crate::store::{self, Hit, SortOrder, TextIndex};

/// A validated `search`.
#[derive(Clone, Debug, Default)]
pub struct SearchPlan {
    /// grep's filters; `until_ns` is inclusive as in grep.
    pub filter: MessageFilter,
    /// Only messages from (true) or not from (false) known scanners.
    pub scanner: Option<bool>,
    /// tantivy query over the message text: words (ANDed), "phrases", OR, -word.
    pub text_query: Option<String>,
    /// Regex that one whole token of the lowercased text must match.
    pub text_regex: Option<String>,
    /// At most this many rows; `None` for all.
    pub limit: Option<usize>,
    pub sort: SortOrder,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchOutcome {
    /// Rows written.
    pub printed: usize,
    /// More matches exist beyond `limit`.
    pub truncated: bool,
    /// Total matches, when known exactly (no post-filter was needed).
    pub total: Option<usize>,
}

/// Checks applied to index hits: what the index cannot answer.
struct PostFilter<'a> {
    /// A CIDR prefix wider than one address (hosts go to the index).
    net: Option<IpNet>,
    /// With `--status`, methods name the CSeq method of the responses.
    cseq_methods: Vec<String>,
    /// Only files the catalog names: rows of a run that died before its commit are garbage.
    files: &'a HashMap<u32, String>,
}

impl PostFilter<'_> {
    fn keep(&self, h: &Hit) -> bool {
        if !self.files.contains_key(&h.file_id) {
            return false;
        }
        if let Some(net) = &self.net {
            let hit = |s: &str| s.parse().is_ok_and(|ip| net.contains(ip));
            if !hit(&h.src_ip) && !hit(&h.dst_ip) {
                return false;
            }
        }
        if !self.cseq_methods.is_empty() {
            let ok = h
                .cseq_method
                .as_deref()
                .is_some_and(|m| self.cseq_methods.iter().any(|x| x.eq_ignore_ascii_case(m)));
            if !ok {
                return false;
            }
        }
        true
    }

    /// True when only the catalog check is left, which drops rows of crashed runs only.
    fn is_trivial(&self) -> bool {
        self.net.is_none() && self.cseq_methods.is_empty()
    }
}

/// The index query for the plan, and the checks left for the hits.
fn split<'a>(
    plan: &SearchPlan,
    files: &'a HashMap<u32, String>,
) -> (store::MessageFilter, PostFilter<'a>) {
    let f = &plan.filter;
    let (ip, net) = match f.ip {
        Some(n) if n.is_host() => (Some(n.addr.to_string()), None),
        Some(n) => (None, Some(n)),
        None => (None, None),
    };
    // grep: with --status, --method is the CSeq method of the response (requests have no status).
    let (methods, cseq_methods) = if f.status.is_some() {
        (Vec::new(), f.methods.clone())
    } else {
        (f.methods.clone(), Vec::new())
    };
    let sf = store::MessageFilter {
        from: f.from_user.clone(),
        to: f.to_user.clone(),
        ruri: f.ruri_user.clone(),
        call_id: f.call_id.clone(),
        methods,
        status: f.status.map(|s| match s {
            super::filter::StatusFilter::Code(c) => store::StatusFilter::Code(c),
            super::filter::StatusFilter::Class(k) => store::StatusFilter::Class(k),
        }),
        ua: f.user_agent.clone(),
        ip,
        port: f.port,
        since_ns: f.since_ns,
        // grep's --until is inclusive, the index's bound exclusive.
        until_ns: f.until_ns.map(|u| u.saturating_add(1)),
        scanner: plan.scanner,
        text_query: plan.text_query.clone(),
        text_regex: plan.text_regex.clone(),
    };
    (
        sf,
        PostFilter {
            net,
            cseq_methods,
            files,
        },
    )
}

/// Runs the search and writes rows in `format`. `files` maps the catalog's file ids to paths.
pub fn run(
    index: &TextIndex,
    files: &HashMap<u32, String>,
    plan: &SearchPlan,
    format: Format,
    out: &mut dyn Write,
) -> Result<SearchOutcome, QueryError> {
    let (sf, post) = split(plan, files);
    let (hits, truncated, total) = fetch(index, &sf, &post, plan.limit, plan.sort)?;
    write(&hits, files, format, out)?;
    Ok(SearchOutcome {
        printed: hits.len(),
        truncated,
        total,
    })
}

/// The first `limit` hits in `sort` order that pass `post`; whether more exist; the exact total
/// of matches when it is known without reading every hit.
fn fetch(
    index: &TextIndex,
    sf: &store::MessageFilter,
    post: &PostFilter<'_>,
    limit: Option<usize>,
    sort: SortOrder,
) -> Result<(Vec<Hit>, bool, Option<usize>), QueryError> {
    let everything = limit.is_none();
    let want = match limit {
        Some(n) => n,
        None => index.count(sf)?,
    };
    let mut ask = want.max(1);
    loop {
        let hits = index.search(sf, ask, sort)?;
        let read = hits.len();
        let exhausted = everything || read < ask;
        let mut kept: Vec<Hit> = hits.into_iter().filter(|h| post.keep(h)).collect();
        if kept.len() < want && !exhausted {
            // Some hits were dropped: read further ahead in the sort, a bigger page each time.
            ask = ask.saturating_mul(4);
            continue;
        }
        let total = if exhausted {
            Some(kept.len())
        } else if post.is_trivial() && kept.len() == read {
            Some(index.count(sf)?)
        } else {
            None
        };
        kept.truncate(want);
        let truncated = total.is_none_or(|t| t > kept.len());
        return Ok((kept, truncated, total));
    }
}

/// One `search --json` row: `grep --json`'s fields for what the index stores (no `encap`, `vlan`,
/// `hep_capture_id` or `mirrored_by_hep`), plus `scanner`, `file_id` and `record_len`.
#[derive(Serialize)]
pub struct SearchRow<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ts: String,
    pub src_ip: &'a str,
    pub src_port: u16,
    pub dst_ip: &'a str,
    pub dst_port: u16,
    pub transport: &'a str,
    pub method: Option<&'a str>,
    pub status: Option<u16>,
    pub reason: Option<&'a str>,
    pub call_id: Option<&'a str>,
    pub cseq: Option<String>,
    pub from_user: Option<&'a str>,
    pub to_user: Option<&'a str>,
    pub ruri_user: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub size: u32,
    pub scanner: bool,
    /// Path of the capture file, from the catalog.
    pub file: Option<&'a str>,
    pub file_id: u32,
    /// Byte offset of the packet record in the capture file, and its length.
    pub offset: u64,
    pub record_len: u32,
}

impl<'a> SearchRow<'a> {
    pub fn new(h: &'a Hit, files: &'a HashMap<u32, String>) -> Self {
        SearchRow {
            kind: "message",
            ts: rfc3339(h.ts_ns),
            src_ip: &h.src_ip,
            src_port: h.src_port,
            dst_ip: &h.dst_ip,
            dst_port: h.dst_port,
            transport: &h.transport,
            method: h.method.as_deref(),
            status: h.status,
            reason: h.reason.as_deref(),
            call_id: Some(h.call_id.as_str()).filter(|c| !c.is_empty()),
            cseq: h.cseq_num.map(|n| match &h.cseq_method {
                Some(m) => format!("{n} {m}"),
                None => n.to_string(),
            }),
            from_user: h.from_user.as_deref(),
            to_user: h.to_user.as_deref(),
            ruri_user: h.ruri_user.as_deref(),
            user_agent: h.user_agent.as_deref(),
            size: h.size,
            scanner: h.scanner,
            file: files.get(&h.file_id).map(String::as_str),
            file_id: h.file_id,
            offset: h.offset,
            record_len: h.record_len,
        }
    }
}

const COLUMNS: [Column; 8] = [
    Column::fixed("TIME"),
    Column::left("MESSAGE", 6, 24),
    Column::left("FROM", 6, 24),
    Column::left("TO", 6, 24),
    Column::left("RURI", 6, 24),
    Column::left("CALL-ID", 10, 44),
    Column::left("UA", 6, 28),
    Column::left("SRC → DST", 21, 60),
];

fn write(
    hits: &[Hit],
    files: &HashMap<u32, String>,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), QueryError> {
    match format {
        Format::Json => {
            for h in hits {
                serde_json::to_writer(&mut *out, &SearchRow::new(h, files))
                    .map_err(io::Error::from)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            if hits.is_empty() {
                // Scripts still get the header line.
                w.write_record(SEARCH_FIELDS)?;
            }
            for h in hits {
                w.serialize(SearchRow::new(h, files))?;
            }
            w.flush()?;
        }
        Format::Table { color, width } => {
            let p = Palette::new(color);
            let rows: Vec<Vec<Cell>> = hits.iter().map(|h| table_row(h, &p)).collect();
            write_table(out, &COLUMNS, &rows, width, p.header, p.reset)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Field names of [`SearchRow`], in order: the CSV header when there are no rows.
pub const SEARCH_FIELDS: &[&str] = &[
    "type",
    "ts",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "transport",
    "method",
    "status",
    "reason",
    "call_id",
    "cseq",
    "from_user",
    "to_user",
    "ruri_user",
    "user_agent",
    "size",
    "scanner",
    "file",
    "file_id",
    "offset",
    "record_len",
];

fn clean(s: Option<&str>) -> String {
    s.map(|s| sanitize(s.as_bytes(), false).into_owned())
        .unwrap_or_default()
}

/// `192.0.2.1:5060 → [2001:db8::1]:5060`
pub fn flow(src_ip: &str, src_port: u16, dst_ip: &str, dst_port: u16) -> String {
    let end = |ip: &str, port: u16| {
        if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }
    };
    format!("{} → {}", end(src_ip, src_port), end(dst_ip, dst_port))
}

fn table_row(h: &Hit, p: &Palette) -> Vec<Cell> {
    let (message, style) = match (h.status, &h.method) {
        (Some(code), _) => {
            let reason = clean(h.reason.as_deref());
            (
                format!("{code} {reason}").trim_end().to_owned(),
                p.status(code),
            )
        }
        (None, Some(m)) => (clean(Some(m)), p.request),
        (None, None) => (String::new(), ""),
    };
    vec![
        Cell::from(short_time(h.ts_ns)),
        Cell {
            text: message,
            style,
        },
        Cell::from(clean(h.from_user.as_deref())),
        Cell::from(clean(h.to_user.as_deref())),
        Cell::from(clean(h.ruri_user.as_deref())),
        Cell::from(clean(Some(&h.call_id))),
        Cell::from(clean(h.user_agent.as_deref())),
        Cell::from(clean(Some(&flow(
            &h.src_ip, h.src_port, &h.dst_ip, h.dst_port,
        )))),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::filter::StatusFilter;
    use crate::store::{MessageRecord, Transport};

    fn record(i: u32, method: Option<&str>, status: Option<u16>, src: &str) -> MessageRecord {
        let first = match (method, status) {
            (Some(m), _) => format!("{m} sip:bob@example.net SIP/2.0"),
            (None, Some(s)) => format!("SIP/2.0 {s} Whatever"),
            _ => unreachable!(),
        };
        MessageRecord {
            ts_ns: 1_000_000_000 * i64::from(i),
            src_ip: src.into(),
            dst_ip: "198.51.100.1".into(),
            src_port: 5060,
            dst_port: 5060,
            transport: Transport::Udp,
            method: method.map(Into::into),
            status,
            call_id: format!("c{i}"),
            cseq_num: Some(1),
            cseq_method: Some(
                if i.is_multiple_of(2) {
                    "INVITE"
                } else {
                    "OPTIONS"
                }
                .into(),
            ),
            from_user: Some("+4923231234".into()),
            text: format!("{first}\r\nCall-ID: c{i}\r\n\r\n"),
            file_id: i % 3,
            offset: u64::from(i) * 100,
            ..Default::default()
        }
    }

    /// Messages 0..20: requests at even i, 200 responses at odd i; sources alternate between
    /// 10.1.0.x and 192.0.2.x; file ids 0, 1, 2 in turn.
    fn fixture() -> (tempfile::TempDir, TextIndex) {
        let dir = tempfile::tempdir().unwrap();
        let idx = TextIndex::open_or_create(dir.path()).unwrap();
        let mut w = idx.writer(1, 20_000_000).unwrap();
        for i in 0..20u32 {
            let src = if i % 4 < 2 {
                format!("10.1.0.{i}")
            } else {
                format!("192.0.2.{i}")
            };
            let m = if i.is_multiple_of(2) {
                record(i, Some("INVITE"), None, &src)
            } else {
                record(i, None, Some(200), &src)
            };
            w.add(&m).unwrap();
        }
        w.finish().unwrap();
        idx.reload().unwrap();
        (dir, idx)
    }

    fn files(ids: &[u32]) -> HashMap<u32, String> {
        ids.iter().map(|&i| (i, format!("/cap/{i}.pcap"))).collect()
    }

    fn ts(hits: &[Hit]) -> Vec<i64> {
        hits.iter().map(|h| h.ts_ns / 1_000_000_000).collect()
    }

    fn search(plan: &SearchPlan, files: &HashMap<u32, String>) -> (Vec<Hit>, bool, Option<usize>) {
        let (_d, idx) = fixture();
        let (sf, post) = split(plan, files);
        fetch(&idx, &sf, &post, plan.limit, plan.sort).unwrap()
    }

    #[test]
    fn cidr_is_checked_on_the_hits_and_fetching_goes_on_until_the_limit() {
        let plan = SearchPlan {
            filter: MessageFilter {
                ip: Some("10.1.0.0/16".parse().unwrap()),
                ..Default::default()
            },
            limit: Some(3),
            ..Default::default()
        };
        let (hits, more, total) = search(&plan, &files(&[0, 1, 2]));
        assert_eq!(ts(&hits), [0, 1, 4]);
        assert!(more);
        assert_eq!(total, None);
        let all = SearchPlan {
            limit: None,
            ..plan.clone()
        };
        let (hits, more, _) = search(&all, &files(&[0, 1, 2]));
        assert_eq!(ts(&hits), [0, 1, 4, 5, 8, 9, 12, 13, 16, 17]);
        assert!(!more);
    }

    #[test]
    fn method_with_status_means_the_cseq_method_of_responses() {
        let plan = SearchPlan {
            filter: MessageFilter {
                methods: vec!["INVITE".into()],
                status: Some(StatusFilter::Code(200)),
                ..Default::default()
            },
            sort: SortOrder::TsDesc,
            limit: Some(100),
            ..Default::default()
        };
        // Odd i are responses; their CSeq method is OPTIONS (odd): none are INVITE.
        let (hits, _, _) = search(&plan, &files(&[0, 1, 2]));
        assert!(hits.is_empty());
        let plan = SearchPlan {
            filter: MessageFilter {
                methods: vec!["options".into()],
                ..plan.filter
            },
            ..plan
        };
        let (hits, _, _) = search(&plan, &files(&[0, 1, 2]));
        assert_eq!(ts(&hits), [19, 17, 15, 13, 11, 9, 7, 5, 3, 1]);
    }

    #[test]
    fn rows_of_files_outside_the_catalog_are_dropped_and_until_is_inclusive() {
        let plan = SearchPlan {
            filter: MessageFilter {
                until_ns: Some(6_000_000_000),
                ..Default::default()
            },
            limit: Some(2),
            ..Default::default()
        };
        // File 1 (i = 1, 4, 7, ...) is not in the catalog.
        let (hits, more, _) = search(&plan, &files(&[0, 2]));
        assert_eq!(ts(&hits), [0, 2]);
        assert!(more);
        let all = SearchPlan {
            limit: Some(100),
            ..plan
        };
        let (hits, more, total) = search(&all, &files(&[0, 2]));
        assert_eq!(ts(&hits), [0, 2, 3, 5, 6]);
        assert!(!more);
        assert_eq!(total, Some(5));
    }

    #[test]
    fn an_exact_total_is_reported_when_the_index_answers_everything() {
        let plan = SearchPlan {
            filter: MessageFilter {
                status: Some(StatusFilter::Class(2)),
                ..Default::default()
            },
            limit: Some(4),
            ..Default::default()
        };
        let (hits, more, total) = search(&plan, &files(&[0, 1, 2]));
        assert_eq!(ts(&hits), [1, 3, 5, 7]);
        assert!(more);
        assert_eq!(total, Some(10));
    }

    #[test]
    fn flows_bracket_ipv6() {
        assert_eq!(
            flow("2001:db8::1", 5060, "192.0.2.1", 5061),
            "[2001:db8::1]:5060 → 192.0.2.1:5061"
        );
    }

    #[test]
    fn json_rows_name_the_file_and_null_an_empty_call_id() {
        let f = files(&[3]);
        let h = Hit {
            call_id: String::new(),
            file_id: 3,
            cseq_num: Some(2),
            cseq_method: Some("BYE".into()),
            ..Default::default()
        };
        let v = serde_json::to_value(SearchRow::new(&h, &f)).unwrap();
        assert_eq!(v["file"], "/cap/3.pcap");
        assert_eq!(v["call_id"], serde_json::Value::Null);
        assert_eq!(v["cseq"], "2 BYE");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut want = SEARCH_FIELDS.to_vec();
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
    }
}
