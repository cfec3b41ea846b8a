//! The tantivy full-text index of SIP messages under `<db>/text/`: words, phrases and regexes over
//! the whole message, keyed fields for exact filters, and trigram fields for substring user search.
//!
//! Substring search on user parts (`--from 2323` finds `+4923231234`) must stay a lookup, not a
//! scan of a term dictionary holding a million numbers. Each of `from_user`, `to_user` and
//! `ruri_user` is also indexed into a `*_tri` field by [`UserTrigramTokenizer`]: every window of
//! three characters, lowercased, with its character offset as the token position. A query of
//! n ≥ 3 characters becomes a phrase of its n−2 trigrams at consecutive positions, which matches
//! exactly the values holding the substring (no false positives to re-check). Cost: a user part of
//! L characters adds L−2 postings with positions per field — about 30 postings per message for
//! typical E.164 numbers, a few per cent of what the message text itself adds — while the term
//! dictionary stays tiny (at most 1000 distinct digit trigrams). Posting lists of digit trigrams
//! are long (about 1 % of messages each), so a 4–8 digit query intersects a few lists of ~10k
//! documents per million messages. Queries of one or two characters fall back to a regex over
//! the lowercased raw field's dictionary, which is slower but such queries match most calls anyway.
//! All suffixes (prefix query on a suffix field) was rejected: it multiplies the term dictionary
//! by the value length (~12 M terms for 1 M distinct numbers). tantivy's own `NgramTokenizer`
//! gives every gram position 0, so a phrase could not require adjacency; hence our tokenizer.
//!
//! Efficiency notes for callers: `add` allocates one tantivy document per message (tantivy owns
//! its values); a writer thread needs at least 15 MB of heap, and `commit` is the expensive
//! step — commit once per batch of files, not per message. `search` with a time sort uses the
//! `ts` fast column, so its cost is that of matching, not of sorting; `user_agent` is a regex over
//! the lowercased raw dictionary (user agents are few); `text_regex` walks the text dictionary.

use super::record::MessageRecord;
pub use super::status::StatusFilter;
use super::StoreError;
use std::ops::Bound;
use std::path::Path;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, PhraseQuery, Query, QueryParser, RangeQuery, RegexQuery,
    TermQuery,
};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value, FAST,
    INDEXED, STORED, STRING, TEXT,
};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer, Token, TokenStream, Tokenizer};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term,
};

/// Name under which [`UserTrigramTokenizer`] is registered.
pub const USER_TRIGRAM: &str = "user_trigram";
/// Raw (whole value) tokenizer followed by lowercasing.
pub const RAW_LC: &str = "raw_lc";
const GRAM: usize = 3;

/// Emits every window of three characters of a value, lowercased, at position = char offset.
#[derive(Clone, Default)]
pub struct UserTrigramTokenizer {
    token: Token,
}

pub struct UserTrigramStream<'a> {
    text: &'a str,
    /// Byte offset of every char, plus the end.
    bounds: Vec<usize>,
    next: usize,
    token: &'a mut Token,
}

impl Tokenizer for UserTrigramTokenizer {
    type TokenStream<'a> = UserTrigramStream<'a>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> UserTrigramStream<'a> {
        self.token.reset();
        let mut bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        bounds.push(text.len());
        UserTrigramStream {
            text,
            bounds,
            next: 0,
            token: &mut self.token,
        }
    }
}

impl TokenStream for UserTrigramStream<'_> {
    fn advance(&mut self) -> bool {
        if self.next + GRAM >= self.bounds.len() {
            return false;
        }
        let (from, to) = (self.bounds[self.next], self.bounds[self.next + GRAM]);
        self.token.text.clear();
        for c in self.text[from..to].chars() {
            self.token.text.extend(c.to_lowercase());
        }
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.next;
        self.token.position_length = 1;
        self.next += 1;
        true
    }
    fn token(&self) -> &Token {
        self.token
    }
    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

/// The trigrams of `s` in order, exactly as [`UserTrigramTokenizer`] indexes them.
pub fn user_trigrams(s: &str) -> Vec<String> {
    let mut tok = UserTrigramTokenizer::default();
    let mut stream = tok.token_stream(s);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

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

/// Field handles of the schema, looked up once.
#[derive(Clone, Copy)]
struct Fields {
    text: Field,
    ts: Field,
    call_id: Field,
    method: Field,
    status: Field,
    reason: Field,
    cseq_num: Field,
    cseq_method: Field,
    from_user: Field,
    to_user: Field,
    ruri_user: Field,
    from_user_tri: Field,
    to_user_tri: Field,
    ruri_user_tri: Field,
    user_agent: Field,
    src_ip: Field,
    dst_ip: Field,
    src_port: Field,
    dst_port: Field,
    transport: Field,
    size: Field,
    scanner: Field,
    file_id: Field,
    offset: Field,
    record_len: Field,
}

/// The index schema; schemas/text_index.md documents it and a test compares the two.
pub fn schema() -> Schema {
    let mut b = Schema::builder();
    let raw_lc = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(RAW_LC)
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_stored();
    let tri = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(USER_TRIGRAM)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let num = NumericOptions::default().set_indexed().set_stored();
    b.add_text_field("text", TEXT);
    b.add_i64_field("ts", INDEXED | STORED | FAST);
    b.add_text_field("call_id", STRING | STORED);
    b.add_text_field("method", STRING | STORED);
    b.add_u64_field("status", INDEXED | STORED | FAST);
    b.add_text_field("reason", STORED);
    b.add_u64_field("cseq_num", STORED);
    b.add_text_field("cseq_method", STORED);
    b.add_text_field("from_user", raw_lc.clone());
    b.add_text_field("to_user", raw_lc.clone());
    b.add_text_field("ruri_user", raw_lc.clone());
    b.add_text_field("from_user_tri", tri.clone());
    b.add_text_field("to_user_tri", tri.clone());
    b.add_text_field("ruri_user_tri", tri);
    b.add_text_field("user_agent", raw_lc);
    b.add_text_field("src_ip", STRING | STORED);
    b.add_text_field("dst_ip", STRING | STORED);
    b.add_u64_field("src_port", num.clone());
    b.add_u64_field("dst_port", num);
    b.add_text_field("transport", STRING | STORED);
    b.add_u64_field("size", STORED);
    b.add_bool_field("scanner", INDEXED | STORED);
    b.add_u64_field("file_id", INDEXED | STORED);
    b.add_u64_field("offset", STORED);
    b.add_u64_field("record_len", STORED);
    b.build()
}

fn fields(s: &Schema) -> Result<Fields, StoreError> {
    let f = |name: &str| {
        s.get_field(name)
            .map_err(|_| StoreError::Schema(format!("text index lacks field {name}")))
    };
    Ok(Fields {
        text: f("text")?,
        ts: f("ts")?,
        call_id: f("call_id")?,
        method: f("method")?,
        status: f("status")?,
        reason: f("reason")?,
        cseq_num: f("cseq_num")?,
        cseq_method: f("cseq_method")?,
        from_user: f("from_user")?,
        to_user: f("to_user")?,
        ruri_user: f("ruri_user")?,
        from_user_tri: f("from_user_tri")?,
        to_user_tri: f("to_user_tri")?,
        ruri_user_tri: f("ruri_user_tri")?,
        user_agent: f("user_agent")?,
        src_ip: f("src_ip")?,
        dst_ip: f("dst_ip")?,
        src_port: f("src_port")?,
        dst_port: f("dst_port")?,
        transport: f("transport")?,
        size: f("size")?,
        scanner: f("scanner")?,
        file_id: f("file_id")?,
        offset: f("offset")?,
        record_len: f("record_len")?,
    })
}

/// An open text index (reader side); [`TextIndex::writer`] gives the single writer.
pub struct TextIndex {
    index: Index,
    reader: IndexReader,
    f: Fields,
}

impl TextIndex {
    /// Opens the index in `dir`, creating it when `dir` holds none. An index written with a
    /// different schema is an error (re-index), never silently mixed.
    pub fn open_or_create(dir: &Path) -> Result<Self, StoreError> {
        let want = schema();
        let index = if dir.join("meta.json").exists() {
            let index = Index::open_in_dir(dir)?;
            if index.schema() != want {
                return Err(StoreError::Schema(format!(
                    "text index in {} has another schema; re-index",
                    dir.display()
                )));
            }
            index
        } else {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_owned(),
                source,
            })?;
            Index::create_in_dir(dir, want)?
        };
        index
            .tokenizers()
            .register(USER_TRIGRAM, UserTrigramTokenizer::default());
        index.tokenizers().register(
            RAW_LC,
            TextAnalyzer::builder(RawTokenizer::default())
                .filter(LowerCaser)
                .build(),
        );
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let f = fields(&index.schema())?;
        Ok(TextIndex { index, reader, f })
    }

    /// The single writer (tantivy holds a lock file while it lives). `heap_bytes` is split over
    /// `threads`, each needing at least 15 MB.
    ///
    /// Files a killed writer left behind (written, never committed) are removed first: tantivy
    /// collects them only after its own commits, and a run that redoes the same deletions
    /// reaches the same operation stamp, so its delete file would collide with the orphan
    /// (`FileAlreadyExists(….del)`, seen after a SIGKILL between a rollback's delete and its commit).
    pub fn writer(&self, threads: usize, heap_bytes: usize) -> Result<TextIndexWriter, StoreError> {
        let writer: IndexWriter = self
            .index
            .writer_with_num_threads(threads.max(1), heap_bytes)?;
        writer.garbage_collect_files().wait()?;
        Ok(TextIndexWriter { writer, f: self.f })
    }

    /// Makes the latest commit visible to `search` and `count`.
    pub fn reload(&self) -> Result<(), StoreError> {
        Ok(self.reader.reload()?)
    }

    /// Number of documents in the last loaded commit.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn count(&self, filter: &TextFilter) -> Result<usize, StoreError> {
        let q = self.build_query(filter)?;
        Ok(self.reader.searcher().search(&q, &Count)?)
    }

    /// Up to `limit` hits ordered by `ts` (ties in index order), from the last loaded commit.
    pub fn search(
        &self,
        filter: &TextFilter,
        limit: usize,
        sort: SortOrder,
    ) -> Result<Vec<Hit>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let q = self.build_query(filter)?;
        let order = match sort {
            SortOrder::TsAsc => Order::Asc,
            SortOrder::TsDesc => Order::Desc,
        };
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &q,
            &TopDocs::with_limit(limit).order_by_fast_field::<i64>("ts", order),
        )?;
        top.into_iter()
            .map(|(_, addr)| self.hit(&searcher, addr))
            .collect()
    }

    fn hit(&self, searcher: &tantivy::Searcher, addr: DocAddress) -> Result<Hit, StoreError> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        let f = &self.f;
        let s = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str())
                .map(String::from)
        };
        let u = |field| doc.get_first(field).and_then(|v| v.as_u64());
        Ok(Hit {
            ts_ns: doc.get_first(f.ts).and_then(|v| v.as_i64()).unwrap_or(0),
            src_ip: s(f.src_ip).unwrap_or_default(),
            dst_ip: s(f.dst_ip).unwrap_or_default(),
            src_port: u(f.src_port).unwrap_or(0) as u16,
            dst_port: u(f.dst_port).unwrap_or(0) as u16,
            transport: s(f.transport).unwrap_or_default(),
            method: s(f.method),
            status: u(f.status).map(|v| v as u16),
            reason: s(f.reason),
            call_id: s(f.call_id).unwrap_or_default(),
            cseq_num: u(f.cseq_num).map(|v| v as u32),
            cseq_method: s(f.cseq_method),
            from_user: s(f.from_user),
            to_user: s(f.to_user),
            ruri_user: s(f.ruri_user),
            user_agent: s(f.user_agent),
            size: u(f.size).unwrap_or(0) as u32,
            scanner: doc
                .get_first(f.scanner)
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            file_id: u(f.file_id).unwrap_or(0) as u32,
            offset: u(f.offset).unwrap_or(0),
            record_len: u(f.record_len).unwrap_or(0) as u32,
        })
    }

    fn build_query(&self, m: &TextFilter) -> Result<Box<dyn Query>, StoreError> {
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

/// The index writer. Added and deleted documents become visible atomically at `commit`.
pub struct TextIndexWriter {
    writer: IndexWriter,
    f: Fields,
}

impl TextIndexWriter {
    pub fn add(&mut self, m: &MessageRecord) -> Result<(), StoreError> {
        let f = &self.f;
        let mut d = TantivyDocument::default();
        d.add_text(f.text, &m.text);
        d.add_i64(f.ts, m.ts_ns);
        d.add_text(f.call_id, &m.call_id);
        let opt_text = |d: &mut TantivyDocument, field, v: &Option<String>| {
            if let Some(v) = v {
                d.add_text(field, v);
            }
        };
        opt_text(&mut d, f.method, &m.method);
        if let Some(s) = m.status {
            d.add_u64(f.status, u64::from(s));
        }
        opt_text(&mut d, f.reason, &m.reason);
        if let Some(n) = m.cseq_num {
            d.add_u64(f.cseq_num, u64::from(n));
        }
        opt_text(&mut d, f.cseq_method, &m.cseq_method);
        opt_text(&mut d, f.from_user, &m.from_user);
        opt_text(&mut d, f.from_user_tri, &m.from_user);
        opt_text(&mut d, f.to_user, &m.to_user);
        opt_text(&mut d, f.to_user_tri, &m.to_user);
        opt_text(&mut d, f.ruri_user, &m.ruri_user);
        opt_text(&mut d, f.ruri_user_tri, &m.ruri_user);
        opt_text(&mut d, f.user_agent, &m.user_agent);
        d.add_text(f.src_ip, &m.src_ip);
        d.add_text(f.dst_ip, &m.dst_ip);
        d.add_u64(f.src_port, u64::from(m.src_port));
        d.add_u64(f.dst_port, u64::from(m.dst_port));
        d.add_text(f.transport, m.transport.as_str());
        d.add_u64(f.size, u64::from(m.size));
        d.add_bool(f.scanner, m.scanner);
        d.add_u64(f.file_id, u64::from(m.file_id));
        d.add_u64(f.offset, m.offset);
        d.add_u64(f.record_len, u64::from(m.record_len));
        self.writer.add_document(d)?;
        Ok(())
    }

    /// Deletes every message of a capture file (re-index, or a run that crashed before its
    /// catalog entry was written). Takes effect at the next `commit`, atomically with the adds.
    pub fn delete_file(&mut self, file_id: u32) {
        self.writer
            .delete_term(Term::from_field_u64(self.f.file_id, u64::from(file_id)));
    }

    /// Atomically publishes everything added or deleted since the last commit.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        self.writer.commit()?;
        Ok(())
    }

    /// Drops uncommitted changes.
    pub fn rollback(&mut self) -> Result<(), StoreError> {
        self.writer.rollback()?;
        Ok(())
    }

    /// Commits and waits for background merges, releasing the writer lock.
    pub fn finish(mut self) -> Result<(), StoreError> {
        self.writer.commit()?;
        self.writer.wait_merging_threads()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::Transport;

    const T0: i64 = 1_709_251_200 * 1_000_000_000;
    const SEC: i64 = 1_000_000_000;

    fn request(i: i64, method: &str, from: &str, to: &str, ua: &str) -> MessageRecord {
        let text = format!(
            "{method} sip:{to}@example.net SIP/2.0\r\nFrom: <sip:{from}@example.org>;tag=a{i}\r\n\
             To: <sip:{to}@example.net>\r\nCall-ID: call-{i}@host\r\nCSeq: 1 {method}\r\n\
             User-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
        );
        MessageRecord {
            ts_ns: T0 + i * SEC,
            src_ip: "192.0.2.10".into(),
            dst_ip: "198.51.100.20".into(),
            src_port: 5060,
            dst_port: 5062,
            transport: Transport::Udp,
            method: Some(method.into()),
            call_id: format!("call-{i}@host"),
            cseq_num: Some(1),
            cseq_method: Some(method.into()),
            from_user: Some(from.into()),
            to_user: Some(to.into()),
            ruri_user: Some(to.into()),
            user_agent: Some(ua.into()),
            size: text.len() as u32,
            text,
            file_id: 1,
            offset: 24 + i as u64 * 100,
            record_len: 90,
            ..Default::default()
        }
    }

    fn response(i: i64, status: u16, reason: &str, from: &str, to: &str) -> MessageRecord {
        let text = format!(
            "SIP/2.0 {status} {reason}\r\nFrom: <sip:{from}@example.org>;tag=a{i}\r\n\
             To: <sip:{to}@example.net>;tag=b\r\nCall-ID: call-{i}@host\r\nCSeq: 1 INVITE\r\n\
             Server: Asterisk PBX 18\r\nContent-Length: 0\r\n\r\n"
        );
        MessageRecord {
            ts_ns: T0 + i * SEC,
            src_ip: "198.51.100.20".into(),
            dst_ip: "192.0.2.10".into(),
            src_port: 5062,
            dst_port: 5060,
            transport: Transport::Tcp,
            status: Some(status),
            reason: Some(reason.into()),
            call_id: format!("call-{i}@host"),
            cseq_num: Some(1),
            cseq_method: Some("INVITE".into()),
            from_user: Some(from.into()),
            to_user: Some(to.into()),
            user_agent: Some("Asterisk PBX 18".into()),
            size: text.len() as u32,
            text,
            file_id: 2,
            offset: 1000 + i as u64,
            record_len: 77,
            ..Default::default()
        }
    }

    fn fixture() -> (tempfile::TempDir, TextIndex) {
        let dir = tempfile::tempdir().unwrap();
        let idx = TextIndex::open_or_create(dir.path()).unwrap();
        let mut w = idx.writer(1, 20_000_000).unwrap();
        let mut scan = request(5, "OPTIONS", "100", "100", "friendly-scanner");
        scan.scanner = true;
        for m in [
            request(0, "INVITE", "+4923231234", "alice", "Zoiper rv2.10.11"),
            request(1, "INVITE", "+4912345", "Bob", "Linphone/5.0"),
            response(2, 486, "Busy Here", "+4912345", "Bob"),
            response(3, 404, "Not Found", "0000001", "carol"),
            response(4, 200, "OK", "+4923231234", "alice"),
            scan,
            request(6, "BYE", "+4923231234", "alice", "Zoiper rv2.10.11"),
        ] {
            w.add(&m).unwrap();
        }
        w.finish().unwrap();
        idx.reload().unwrap();
        (dir, idx)
    }

    fn call_ids(idx: &TextIndex, f: TextFilter) -> Vec<String> {
        let hits = idx.search(&f, 100, SortOrder::TsAsc).unwrap();
        assert_eq!(idx.count(&f).unwrap(), hits.len());
        hits.into_iter()
            .map(|h| h.call_id.trim_end_matches("@host").to_owned())
            .collect()
    }

    fn from(s: &str) -> TextFilter {
        TextFilter {
            from: Some(s.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_delete_file_a_killed_writer_left_does_not_block_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let all = TextFilter::default();
        {
            let idx = TextIndex::open_or_create(dir.path()).unwrap();
            let mut w = idx.writer(1, 20_000_000).unwrap();
            for i in 0..4 {
                let mut m = request(i, "INVITE", "100", "200", "ua");
                m.file_id = (i % 2) as u32;
                w.add(&m).unwrap();
            }
            w.finish().unwrap();
        }
        // A writer deletes a file's messages and is killed after writing the delete file but
        // before its commit point (meta.json) moved: replayed by restoring the old meta.json.
        let meta = dir.path().join("meta.json");
        let committed = std::fs::read(&meta).unwrap();
        {
            let idx = TextIndex::open_or_create(dir.path()).unwrap();
            let mut w = idx.writer(1, 20_000_000).unwrap();
            w.delete_file(0);
            w.finish().unwrap();
        }
        let orphans = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension() == Some("del".as_ref()))
                .count()
        };
        assert_eq!(orphans(), 1);
        std::fs::write(&meta, committed).unwrap();
        let idx = TextIndex::open_or_create(dir.path()).unwrap();
        idx.reload().unwrap();
        assert_eq!(idx.count(&all).unwrap(), 4, "the delete never committed");
        // The next run redoes the same deletion, reaching the same operation stamp and file name.
        let mut w = idx.writer(1, 20_000_000).unwrap();
        w.delete_file(0);
        w.finish().unwrap();
        idx.reload().unwrap();
        assert_eq!(idx.count(&all).unwrap(), 2);
    }

    #[test]
    fn trigrams_carry_char_positions() {
        assert_eq!(user_trigrams("+49Ab"), ["+49", "49a", "9ab"]);
        assert_eq!(user_trigrams("ab"), Vec::<String>::new());
        assert_eq!(user_trigrams("ÄÖÜx"), ["äöü", "öüx"]);
        let mut t = UserTrigramTokenizer::default();
        let mut s = t.token_stream("12345");
        let mut pos = Vec::new();
        while s.advance() {
            pos.push((
                s.token().position,
                s.token().offset_from,
                s.token().offset_to,
            ));
        }
        assert_eq!(pos, [(0, 0, 3), (1, 1, 4), (2, 2, 5)]);
    }

    #[test]
    fn user_substring_needs_adjacent_trigrams() {
        let (_d, idx) = fixture();
        // "2323" is in +4923231234 only; +4912345 has neither 232 nor 323.
        assert_eq!(call_ids(&idx, from("2323")), ["call-0", "call-4", "call-6"]);
        // One trigram: both numbers contain "234".
        assert_eq!(
            call_ids(&idx, from("234")),
            ["call-0", "call-1", "call-2", "call-4", "call-6"]
        );
        // +4923231234 holds both trigrams of "1232" (123, 232), but not adjacent.
        assert!(call_ids(&idx, from("1232")).is_empty());
        assert_eq!(call_ids(&idx, from("2312")), ["call-0", "call-4", "call-6"]);
        // Repeated trigram: "0000" is in 0000001; "00000000" is not.
        assert_eq!(call_ids(&idx, from("0000")), ["call-3"]);
        assert!(call_ids(&idx, from("00000000")).is_empty());
        // Short needle falls back to a regex over the whole values.
        assert_eq!(call_ids(&idx, from("01")), ["call-3"]);
        // Case-insensitive, on to and ruri too; regex metacharacters are literal.
        let to = TextFilter {
            to: Some("BO".into()),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, to), ["call-1", "call-2"]);
        let ruri = TextFilter {
            ruri: Some("LIC".into()),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, ruri), ["call-0", "call-6"]);
        assert!(call_ids(&idx, from("+4")).len() == 5);
        assert!(call_ids(&idx, from(".*")).is_empty());
    }

    #[test]
    fn status_method_and_endpoint_filters() {
        let (_d, idx) = fixture();
        let st = |s| TextFilter {
            status: Some(s),
            ..Default::default()
        };
        assert_eq!(
            call_ids(&idx, st(StatusFilter::Class(4))),
            ["call-2", "call-3"]
        );
        assert_eq!(call_ids(&idx, st(StatusFilter::Code(486))), ["call-2"]);
        assert_eq!(call_ids(&idx, st(StatusFilter::Class(2))), ["call-4"]);
        let methods = TextFilter {
            methods: vec!["invite".into(), "BYE".into()],
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, methods), ["call-0", "call-1", "call-6"]);
        let ua = TextFilter {
            ua: Some("ZOIPER RV2.10".into()),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, ua), ["call-0", "call-6"]);
        let ip = TextFilter {
            ip: Some("198.51.100.20".into()),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, ip).len(), 7);
        let port = TextFilter {
            port: Some(5062),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, port).len(), 7);
        let port = TextFilter {
            port: Some(5061),
            ..Default::default()
        };
        assert!(call_ids(&idx, port).is_empty());
        let scanner = TextFilter {
            scanner: Some(true),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, scanner), ["call-5"]);
        let cid = TextFilter {
            call_id: Some("call-3@host".into()),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, cid), ["call-3"]);
        // Conditions combine with AND.
        let both = TextFilter {
            status: Some(StatusFilter::Class(4)),
            from: Some("12345".into()),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, both), ["call-2"]);
    }

    #[test]
    fn time_range_is_half_open_and_sorting_follows_ts() {
        let (_d, idx) = fixture();
        let f = TextFilter {
            since_ns: Some(T0 + 2 * SEC),
            until_ns: Some(T0 + 5 * SEC),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, f.clone()), ["call-2", "call-3", "call-4"]);
        let desc: Vec<_> = idx
            .search(&f, 2, SortOrder::TsDesc)
            .unwrap()
            .into_iter()
            .map(|h| h.ts_ns)
            .collect();
        assert_eq!(desc, [T0 + 4 * SEC, T0 + 3 * SEC]);
    }

    #[test]
    fn text_words_phrases_and_regex() {
        let (_d, idx) = fixture();
        let q = |s: &str| TextFilter {
            text_query: Some(s.into()),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, q("\"Busy Here\"")), ["call-2"]);
        // Words are ANDed: both occur only in the 486.
        assert_eq!(call_ids(&idx, q("busy asterisk")), ["call-2"]);
        assert!(call_ids(&idx, q("\"Here Busy\"")).is_empty());
        assert_eq!(
            call_ids(&idx, q("linphone OR \"not found\"")),
            ["call-1", "call-3"]
        );
        let re = TextFilter {
            text_regex: Some("zoip.*".into()),
            ..Default::default()
        };
        assert_eq!(call_ids(&idx, re), ["call-0", "call-6"]);
        assert!(matches!(
            idx.search(&q("\"unclosed"), 10, SortOrder::TsAsc),
            Err(StoreError::Query(_))
        ));
    }

    #[test]
    fn hits_point_back_into_the_capture() {
        let (_d, idx) = fixture();
        let hits = idx
            .search(
                &TextFilter {
                    status: Some(StatusFilter::Code(404)),
                    ..Default::default()
                },
                10,
                SortOrder::TsAsc,
            )
            .unwrap();
        assert_eq!(hits.len(), 1);
        let h = &hits[0];
        assert_eq!((h.file_id, h.offset, h.record_len), (2, 1003, 77));
        assert_eq!(
            (h.src_port, h.dst_port, h.transport.as_str()),
            (5062, 5060, "tcp")
        );
        assert_eq!(h.reason.as_deref(), Some("Not Found"));
        assert_eq!(h.method, None);
        assert_eq!(h.from_user.as_deref(), Some("0000001"));
        assert_eq!(h.ts_ns, T0 + 3 * SEC);
    }

    #[test]
    fn delete_file_removes_its_messages_atomically_and_reopen_keeps_the_rest() {
        let (dir, idx) = fixture();
        assert_eq!(idx.num_docs(), 7);
        let mut w = idx.writer(1, 20_000_000).unwrap();
        w.delete_file(2);
        // Not visible before commit.
        idx.reload().unwrap();
        assert_eq!(idx.num_docs(), 7);
        w.finish().unwrap();
        idx.reload().unwrap();
        assert_eq!(idx.num_docs(), 4);
        drop(idx);
        let again = TextIndex::open_or_create(dir.path()).unwrap();
        assert_eq!(again.num_docs(), 4);
        assert_eq!(call_ids(&again, from("2323")), ["call-0", "call-6"]);
    }
}
