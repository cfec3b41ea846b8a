//! What a text search selects ([`TextFilter`], [`StatusFilter`], [`SortOrder`]) and returns
//! ([`Hit`]), and how a filter becomes a tantivy query.

use super::{user_trigrams, TextIndex};
pub use crate::store::status::StatusFilter;
use crate::store::StoreError;
use std::ops::Bound;
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, PhraseQuery, Query, QueryParser, RangeQuery, RegexQuery,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::Term;

/// Message selection; every set condition must hold. User filters are case-insensitive
/// substrings, `ua` too; `ip`/`port` match either end; `since_ns`/`until_ns` bound `ts` as
/// `[since, until)`. `text_query` uses tantivy's query syntax over the message text (words are
/// ANDed by default, `"quoted phrases"`, `OR`, `-not`); `text_regex` must match one whole token
/// of the lowercased text (tokens split at non-alphanumerics).
#[derive(Debug, Clone, Default)]
pub struct TextFilter {
    pub from: Option<String>,
    pub to: Option<String>,
    pub ruri: Option<String>,
    pub call_id: Option<String>,
    pub methods: Vec<String>,
    pub status: Option<StatusFilter>,
    pub ua: Option<String>,
    pub ip: Option<String>,
    pub port: Option<u16>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub scanner: Option<bool>,
    pub text_query: Option<String>,
    pub text_regex: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    TsAsc,
    TsDesc,
}

/// One search result: enough to print a row, and where to fetch the bytes from the capture.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hit {
    pub ts_ns: i64,
    pub src_ip: String,
    pub dst_ip: String,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: String,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub call_id: String,
    pub cseq_num: Option<u32>,
    pub cseq_method: Option<String>,
    pub from_user: Option<String>,
    pub to_user: Option<String>,
    pub ruri_user: Option<String>,
    pub user_agent: Option<String>,
    pub size: u32,
    pub scanner: bool,
    pub file_id: u32,
    pub offset: u64,
    pub record_len: u32,
}

impl TextIndex {
    pub(super) fn build_query(&self, m: &TextFilter) -> Result<Box<dyn Query>, StoreError> {
        let f = &self.f;
        let mut must: Vec<Box<dyn Query>> = Vec::new();
        let text_term = |field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, v),
                IndexRecordOption::Basic,
            ))
        };
        let u64_term = |field, v: u64| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_u64(field, v),
                IndexRecordOption::Basic,
            ))
        };
        let any = |qs: Vec<Box<dyn Query>>| -> Box<dyn Query> {
            Box::new(BooleanQuery::new(
                qs.into_iter().map(|q| (Occur::Should, q)).collect(),
            ))
        };
        for (needle, raw, tri) in [
            (&m.from, f.from_user, f.from_user_tri),
            (&m.to, f.to_user, f.to_user_tri),
            (&m.ruri, f.ruri_user, f.ruri_user_tri),
        ] {
            if let Some(n) = needle {
                must.push(substring_query(n, raw, tri)?);
            }
        }
        if let Some(c) = &m.call_id {
            must.push(text_term(f.call_id, c));
        }
        if !m.methods.is_empty() {
            must.push(any(m
                .methods
                .iter()
                .map(|x| text_term(f.method, &x.to_ascii_uppercase()))
                .collect()));
        }
        match m.status {
            Some(StatusFilter::Code(c)) => must.push(u64_term(f.status, u64::from(c))),
            Some(StatusFilter::Class(c)) => {
                let lo = u64::from(c) * 100;
                must.push(Box::new(RangeQuery::new_u64_bounds(
                    "status".into(),
                    Bound::Included(lo),
                    Bound::Excluded(lo + 100),
                )));
            }
            None => {}
        }
        if let Some(ua) = &m.ua {
            let pattern = format!(".*{}.*", regex::escape(&ua.to_lowercase()));
            must.push(Box::new(RegexQuery::from_pattern(&pattern, f.user_agent)?));
        }
        if let Some(ip) = &m.ip {
            must.push(any(vec![text_term(f.src_ip, ip), text_term(f.dst_ip, ip)]));
        }
        if let Some(p) = m.port {
            must.push(any(vec![
                u64_term(f.src_port, u64::from(p)),
                u64_term(f.dst_port, u64::from(p)),
            ]));
        }
        if m.since_ns.is_some() || m.until_ns.is_some() {
            must.push(Box::new(RangeQuery::new_i64_bounds(
                "ts".into(),
                m.since_ns.map_or(Bound::Unbounded, Bound::Included),
                m.until_ns.map_or(Bound::Unbounded, Bound::Excluded),
            )));
        }
        if let Some(s) = m.scanner {
            must.push(Box::new(TermQuery::new(
                Term::from_field_bool(f.scanner, s),
                IndexRecordOption::Basic,
            )));
        }
        if let Some(q) = &m.text_query {
            let mut parser = QueryParser::for_index(&self.index, vec![f.text]);
            parser.set_conjunction_by_default();
            must.push(
                parser
                    .parse_query(q)
                    .map_err(|e| StoreError::Query(e.to_string()))?,
            );
        }
        if let Some(r) = &m.text_regex {
            must.push(Box::new(
                RegexQuery::from_pattern(r, f.text)
                    .map_err(|e| StoreError::Query(e.to_string()))?,
            ));
        }
        Ok(match must.len() {
            0 => Box::new(AllQuery),
            1 => must.pop().expect("one query"),
            _ => Box::new(BooleanQuery::new(
                must.into_iter().map(|q| (Occur::Must, q)).collect(),
            )),
        })
    }
}

/// Substring of a user part: a trigram phrase when the needle has ≥ 3 characters, else a regex
/// over the lowercased whole values.
fn substring_query(needle: &str, raw: Field, tri: Field) -> Result<Box<dyn Query>, StoreError> {
    let grams = user_trigrams(needle);
    Ok(match grams.len() {
        0 => {
            let pattern = format!(".*{}.*", regex::escape(&needle.to_lowercase()));
            Box::new(RegexQuery::from_pattern(&pattern, raw)?)
        }
        1 => Box::new(TermQuery::new(
            Term::from_field_text(tri, &grams[0]),
            IndexRecordOption::Basic,
        )),
        _ => Box::new(PhraseQuery::new_with_offset(
            grams
                .iter()
                .enumerate()
                .map(|(i, g)| (i, Term::from_field_text(tri, g)))
                .collect(),
        )),
    })
}
