//! The tantivy full-text index of SIP messages under `<db>/text/`: words, phrases and regexes over
//! the whole message, keyed fields for exact filters, and trigram fields for substring user search
//! (why trigrams, and what they cost: see `trigram`).
//!
//! Efficiency notes for callers: `add` allocates one tantivy document per message (tantivy owns
//! its values); a writer thread needs at least 15 MB of heap, and `commit` is the expensive
//! step — commit once per batch of files, not per message. `search` with a time sort uses the
//! `ts` fast column, so its cost is that of matching, not of sorting; `user_agent` is a regex over
//! the lowercased raw dictionary (user agents are few); `text_regex` walks the text dictionary.
//!
//! Files: `trigram` (the user-part tokenizer), `schema`, `query` (filters, hits, query building).

use super::record::MessageRecord;
use super::StoreError;
use std::path::Path;
use tantivy::collector::{Count, TopDocs};
use tantivy::schema::Value;
use tantivy::tokenizer::{LowerCaser, RawTokenizer, TextAnalyzer};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term,
};

mod query;
mod schema;
#[cfg(test)]
mod tests;
mod trigram;

pub use query::{Hit, SortOrder, StatusFilter, TextFilter};
pub use schema::schema;
use schema::{fields, Fields};
pub use trigram::{user_trigrams, UserTrigramStream, UserTrigramTokenizer, RAW_LC, USER_TRIGRAM};

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
