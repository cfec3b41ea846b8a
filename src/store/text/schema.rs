//! The index schema and its field handles; `schemas/text_index.md` documents it field by field
//! and a test in `store` compares the two.

use super::{RAW_LC, USER_TRIGRAM};
use crate::store::StoreError;
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, FAST,
    INDEXED, STORED, STRING, TEXT,
};

/// Field handles of the schema, looked up once.
#[derive(Clone, Copy)]
pub(super) struct Fields {
    pub(super) text: Field,
    pub(super) ts: Field,
    pub(super) call_id: Field,
    pub(super) method: Field,
    pub(super) status: Field,
    pub(super) reason: Field,
    pub(super) cseq_num: Field,
    pub(super) cseq_method: Field,
    pub(super) from_user: Field,
    pub(super) to_user: Field,
    pub(super) ruri_user: Field,
    pub(super) from_user_tri: Field,
    pub(super) to_user_tri: Field,
    pub(super) ruri_user_tri: Field,
    pub(super) user_agent: Field,
    pub(super) src_ip: Field,
    pub(super) dst_ip: Field,
    pub(super) src_port: Field,
    pub(super) dst_port: Field,
    pub(super) transport: Field,
    pub(super) size: Field,
    pub(super) scanner: Field,
    pub(super) file_id: Field,
    pub(super) offset: Field,
    pub(super) record_len: Field,
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

pub(super) fn fields(s: &Schema) -> Result<Fields, StoreError> {
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
