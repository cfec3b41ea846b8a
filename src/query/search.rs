//! `sipidx search`: SIP messages from the DB's tantivy index, with grep's filters plus a text query.
//! The index answers every filter it can; what it cannot (CIDR prefixes, the CSeq method of
//! responses, files not in the catalog) is checked on the hits, fetching more until `limit` pass.
//!
//! Filter semantics are grep's, with two documented differences: user-part filters (`--from`,
//! `--to`, `--ruri`) ignore case here (the index holds lowercased trigrams), and a text QUERY is
//! tantivy's query language over tokens rather than a regex over bytes.
use std::collections::HashMap;

use super::filter::{IpNet, MessageFilter};
use super::rows::SearchRow;
use super::QueryError;
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

/// What `search` found: the rows in sort order, cut to the limit.
#[derive(Clone, Debug, Default)]
pub struct Search {
    pub rows: Vec<SearchRow>,
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
) -> (store::TextFilter, PostFilter<'a>) {
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
    let sf = store::TextFilter {
        from: f.from_user.clone(),
        to: f.to_user.clone(),
        ruri: f.ruri_user.clone(),
        call_id: f.call_id.clone(),
        methods,
        status: f.status,
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

/// Runs the search. `files` maps the catalog's file ids to paths.
pub fn run(
    index: &TextIndex,
    files: &HashMap<u32, String>,
    plan: &SearchPlan,
) -> Result<Search, QueryError> {
    let (sf, post) = split(plan, files);
    let (hits, truncated, total) = fetch(index, &sf, &post, plan.limit, plan.sort)?;
    Ok(Search {
        rows: hits.into_iter().map(|h| SearchRow::new(h, files)).collect(),
        truncated,
        total,
    })
}

/// The first `limit` hits in `sort` order that pass `post`; whether more exist; the exact total
/// of matches when it is known without reading every hit.
fn fetch(
    index: &TextIndex,
    sf: &store::TextFilter,
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
}
