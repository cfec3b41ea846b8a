//! The `calls` row: one dialog record as the CLI and HTTP layer return it, times as RFC 3339.
//! Its fields are the dialog columns in order, less the internal summary.
use serde::Serialize;

use super::{ser_ended_by, ser_kind, ser_opt_time, ser_time, Row};
use crate::store::{DialogKind, DialogRecord, DialogState, EndedBy};

/// One `calls` row: every dialog column but the internal `summary`; times are ns, written as
/// RFC 3339 UTC.
#[derive(Serialize, Clone, Debug, Default)]
pub struct CallRow {
    #[serde(rename = "type")]
    pub row_type: &'static str,
    pub call_id: String,
    #[serde(serialize_with = "ser_kind")]
    pub kind: DialogKind,
    pub state: DialogState,
    pub final_status: Option<u16>,
    pub final_reason: Option<String>,
    #[serde(serialize_with = "ser_time")]
    pub start: i64,
    #[serde(serialize_with = "ser_time")]
    pub end: i64,
    #[serde(serialize_with = "ser_opt_time")]
    pub invite: Option<i64>,
    #[serde(serialize_with = "ser_opt_time")]
    pub first_provisional: Option<i64>,
    #[serde(serialize_with = "ser_opt_time")]
    pub answer: Option<i64>,
    #[serde(serialize_with = "ser_opt_time")]
    pub ack: Option<i64>,
    #[serde(serialize_with = "ser_opt_time")]
    pub bye: Option<i64>,
    #[serde(serialize_with = "ser_opt_time")]
    pub cancel: Option<i64>,
    pub pdd_ms: Option<f64>,
    pub setup_ms: Option<f64>,
    pub duration_s: Option<f64>,
    #[serde(serialize_with = "ser_ended_by")]
    pub ended_by: Option<EndedBy>,
    pub reinvites: u32,
    pub auth_challenges: u32,
    pub from_user: Option<String>,
    pub to_user: Option<String>,
    pub ruri_user: Option<String>,
    pub from_host: Option<String>,
    pub to_host: Option<String>,
    pub src_ip: String,
    pub dst_ip: String,
    pub src_port: u16,
    pub dst_port: u16,
    pub user_agent: Option<String>,
    pub contact: Option<String>,
    pub expires: Option<u32>,
    pub messages: u32,
    pub correlation_id: String,
    pub scanner: bool,
    pub worst_mos: Option<f64>,
    pub max_loss_pct: Option<f64>,
    pub max_jitter_ms: Option<f64>,
}

impl From<DialogRecord> for CallRow {
    fn from(d: DialogRecord) -> Self {
        CallRow {
            row_type: CallRow::TYPE,
            call_id: d.call_id,
            kind: d.kind,
            state: d.state,
            final_status: d.final_status,
            final_reason: d.final_reason,
            start: d.start_ns,
            end: d.end_ns,
            invite: d.invite_ns,
            first_provisional: d.first_provisional_ns,
            answer: d.answer_ns,
            ack: d.ack_ns,
            bye: d.bye_ns,
            cancel: d.cancel_ns,
            pdd_ms: d.pdd_ms,
            setup_ms: d.setup_ms,
            duration_s: d.duration_s,
            ended_by: d.ended_by,
            reinvites: d.reinvites,
            auth_challenges: d.auth_challenges,
            from_user: d.from_user,
            to_user: d.to_user,
            ruri_user: d.ruri_user,
            from_host: d.from_host,
            to_host: d.to_host,
            src_ip: d.src_ip,
            dst_ip: d.dst_ip,
            src_port: d.src_port,
            dst_port: d.dst_port,
            user_agent: d.user_agent,
            contact: d.contact,
            expires: d.expires,
            messages: d.messages,
            correlation_id: d.correlation_id,
            scanner: d.scanner,
            worst_mos: d.worst_mos,
            max_loss_pct: d.max_loss_pct,
            max_jitter_ms: d.max_jitter_ms,
        }
    }
}

impl Row for CallRow {
    const TYPE: &'static str = "dialog";
    const FIELDS: &'static [&'static str] = &[
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
}
