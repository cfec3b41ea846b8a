//! The `search` row (a text-index hit with its file named) and the `grep` message row, with the
//! mirror (encapsulation) it was found in.
use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;

use super::{ser_time, Row};
use crate::decode::{Datagram, Mirror};
use crate::sip;
use crate::store::Hit;
use crate::text::{lossy, rfc3339};

/// One `search` row: `grep --json`'s fields for what the index stores (no `encap`, `vlan`,
/// `hep_capture_id` or `mirrored_by_hep`), plus `scanner`, `file_id` and `record_len`.
#[derive(Serialize, Clone, Debug, Default)]
pub struct SearchRow {
    #[serde(rename = "type")]
    pub row_type: &'static str,
    #[serde(serialize_with = "ser_time")]
    pub ts: i64,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    pub transport: String,
    pub method: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<String>,
    /// `None` for a message without a Call-ID.
    pub call_id: Option<String>,
    pub cseq: Option<String>,
    pub from_user: Option<String>,
    pub to_user: Option<String>,
    pub ruri_user: Option<String>,
    pub user_agent: Option<String>,
    pub size: u32,
    pub scanner: bool,
    /// Path of the capture file, from the catalog.
    pub file: Option<String>,
    pub file_id: u32,
    /// Byte offset of the packet record in the capture file, and its length.
    pub offset: u64,
    pub record_len: u32,
}

impl SearchRow {
    pub fn new(h: Hit, files: &HashMap<u32, String>) -> Self {
        SearchRow {
            row_type: SearchRow::TYPE,
            ts: h.ts_ns,
            cseq: h.cseq_num.map(|n| match &h.cseq_method {
                Some(m) => format!("{n} {m}"),
                None => n.to_string(),
            }),
            file: files.get(&h.file_id).cloned(),
            src_ip: h.src_ip,
            src_port: h.src_port,
            dst_ip: h.dst_ip,
            dst_port: h.dst_port,
            transport: h.transport,
            method: h.method,
            status: h.status,
            reason: h.reason,
            call_id: Some(h.call_id).filter(|c| !c.is_empty()),
            from_user: h.from_user,
            to_user: h.to_user,
            ruri_user: h.ruri_user,
            user_agent: h.user_agent,
            size: h.size,
            scanner: h.scanner,
            file_id: h.file_id,
            offset: h.offset,
            record_len: h.record_len,
        }
    }
}

impl Row for SearchRow {
    const TYPE: &'static str = "message";
    const FIELDS: &'static [&'static str] = &[
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
}

/// The HEP copy of a printed raw message (`mirrored_by_hep` in `grep --json`).
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MirrorJson {
    pub capture_id: Option<u32>,
    /// Byte offset of the HEP copy's record in its capture file.
    pub offset: Option<u64>,
}

impl From<Mirror> for MirrorJson {
    fn from(m: Mirror) -> Self {
        MirrorJson {
            capture_id: m.capture_id,
            offset: m.location.map(|l| l.offset),
        }
    }
}

/// One `grep --json` row, borrowed from the packet it describes.
#[derive(Serialize)]
pub struct MessageRow<'a> {
    #[serde(rename = "type")]
    pub row_type: &'static str,
    pub ts: String,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    pub transport: &'static str,
    pub encap: Option<String>,
    pub vlan: Option<u16>,
    pub method: Option<Cow<'a, str>>,
    pub status: Option<u16>,
    pub reason: Option<Cow<'a, str>>,
    pub call_id: Option<Cow<'a, str>>,
    pub cseq: Option<String>,
    pub from_user: Option<Cow<'a, str>>,
    pub to_user: Option<Cow<'a, str>>,
    pub ruri_user: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
    pub hep_capture_id: Option<u32>,
    /// Set when a HEP copy of this raw message was seen in the capture (and not printed).
    pub mirrored_by_hep: Option<MirrorJson>,
    pub size: usize,
    pub file: String,
    pub offset: u64,
}

impl<'a> MessageRow<'a> {
    pub fn new(dg: &Datagram<'a>, msg: &sip::Message<'a>, file: String) -> Self {
        let reason = match msg.start {
            sip::StartLine::Response { reason, .. } => Some(lossy(reason)),
            _ => None,
        };
        MessageRow {
            row_type: MessageRow::TYPE,
            ts: rfc3339(dg.ts_ns),
            src_ip: dg.src.to_string(),
            src_port: dg.src_port,
            dst_ip: dg.dst.to_string(),
            dst_port: dg.dst_port,
            transport: dg.transport.as_str(),
            encap: dg.encap.name(),
            vlan: dg.vlan,
            method: msg.method().map(lossy),
            status: msg.status(),
            reason,
            call_id: msg.call_id.map(lossy),
            cseq: msg
                .cseq
                .map(|c| format!("{} {}", c.number, String::from_utf8_lossy(c.method))),
            from_user: msg.from.and_then(|n| n.uri).and_then(|u| u.user).map(lossy),
            to_user: msg.to.and_then(|n| n.uri).and_then(|u| u.user).map(lossy),
            ruri_user: msg.request_uri().and_then(|u| u.user).map(lossy),
            user_agent: msg.user_agent.or(msg.server).map(lossy),
            hep_capture_id: dg.hep.and_then(|h| h.capture_id),
            mirrored_by_hep: None,
            size: msg.raw.len(),
            file,
            offset: dg.locations.first().map(|l| l.offset).unwrap_or(0),
        }
    }
}

impl Row for MessageRow<'_> {
    const TYPE: &'static str = "message";
    const FIELDS: &'static [&'static str] = &[
        "type",
        "ts",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "transport",
        "encap",
        "vlan",
        "method",
        "status",
        "reason",
        "call_id",
        "cseq",
        "from_user",
        "to_user",
        "ruri_user",
        "user_agent",
        "hep_capture_id",
        "mirrored_by_hep",
        "size",
        "file",
        "offset",
    ];
}
