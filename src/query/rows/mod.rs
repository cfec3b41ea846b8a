//! The rows the queries return: the documented JSON contract of `search`, `calls`, `streams`,
//! `quality`, `stats` and `grep --json`, shared by the CLI and the HTTP layer. Never formats text.
//! Each row type names its `type` tag and its fields in order; tests hold the two together.
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::ser::Error as _;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::decode::{Datagram, Mirror};
use crate::rtp::mos::MosExplanation;
use crate::sip;
use crate::store::record::{QosReportRecord, RtcpReportRecord, RtpStreamRecord};
use crate::store::{DialogKind, DialogRecord, DialogState, EndedBy, Hit};
use crate::text::{lossy, rfc3339};

/// A documented row: its `"type"` value and its field names in order (the CSV header, also when
/// no row matched).
pub trait Row: Serialize {
    const TYPE: &'static str;
    const FIELDS: &'static [&'static str];
    /// The CSV columns: every field unless the row nests values (then a flat subset).
    const CSV_FIELDS: &'static [&'static str] = Self::FIELDS;
}

fn ser_time<S: Serializer>(ns: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ns))
}

fn ser_opt_time<S: Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ns {
        Some(ns) => s.serialize_str(&rfc3339(*ns)),
        None => s.serialize_none(),
    }
}

fn ser_kind<S: Serializer>(k: &DialogKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

fn ser_ended_by<S: Serializer>(e: &Option<EndedBy>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.serialize_str(e.as_str()),
        None => s.serialize_none(),
    }
}

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

/// The stored record as a JSON object with `type` set and the named string columns (JSON text in
/// the table) parsed; keys in name order, as these rows have always been printed. A column that
/// holds no valid JSON is `null`.
fn object_with<T: Serialize, S: Serializer>(
    record: &T,
    row_type: &str,
    parsed: &[&str],
    extra: impl FnOnce(&mut serde_json::Map<String, Value>) -> Result<(), serde_json::Error>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut v = serde_json::to_value(record).map_err(S::Error::custom)?;
    let Value::Object(m) = &mut v else {
        return Err(S::Error::custom("a record is not a JSON object"));
    };
    m.insert("type".into(), Value::from(row_type));
    for key in parsed {
        if let Some(Value::String(t)) = m.get(*key) {
            let value: Value = serde_json::from_str(t).unwrap_or(Value::Null);
            m.insert((*key).into(), value);
        }
    }
    extra(m).map_err(S::Error::custom)?;
    v.serialize(s)
}

/// One `streams` row: every `rtp_streams` column plus `type`, `start_time` and `end_time`
/// (RFC 3339), with `timeline` and `dtmf_events` parsed.
#[derive(Clone, Debug, Default)]
pub struct StreamRow {
    pub stream: RtpStreamRecord,
}

impl Serialize for StreamRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = &self.stream;
        object_with(
            st,
            Self::TYPE,
            &["timeline", "dtmf_events"],
            |m| {
                m.insert("start_time".into(), Value::from(rfc3339(st.start_ns)));
                m.insert("end_time".into(), Value::from(rfc3339(st.end_ns)));
                Ok(())
            },
            s,
        )
    }
}

impl Row for StreamRow {
    const TYPE: &'static str = "stream";
    const FIELDS: &'static [&'static str] = &[
        "announced",
        "burst_ratio",
        "call_id",
        "capture_drops",
        "clock_rate",
        "codec",
        "comfort_noise_packets",
        "dst_ip",
        "dst_port",
        "dtmf",
        "dtmf_events",
        "duplicates",
        "end",
        "end_time",
        "expected",
        "late_packets",
        "lost",
        "lost_pct",
        "marker_packets",
        "max_delta_at",
        "max_delta_index",
        "max_delta_ms",
        "max_jitter_ms",
        "max_skew_ms",
        "mean_delta_ms",
        "mean_jitter_ms",
        "metrics",
        "min_delta_ms",
        "min_jitter_ms",
        "mos",
        "mos_codec",
        "mos_delay_ms",
        "mos_loss_pct",
        "out_of_order",
        "packets",
        "payload",
        "payload_type",
        "payload_types",
        "possible_capture_loss",
        "possible_capture_lost",
        "problem",
        "r_factor",
        "rfc3550_jitter_ms",
        "sequence_errors",
        "span_duplicates_dropped",
        "src_ip",
        "src_port",
        "ssrc",
        "start",
        "start_time",
        "stream_id",
        "timeline",
        "type",
    ];
    const CSV_FIELDS: &'static [&'static str] = &[
        "call_id",
        "start_time",
        "end_time",
        "src_ip",
        "src_port",
        "dst_ip",
        "dst_port",
        "ssrc",
        "payload_type",
        "codec",
        "packets",
        "expected",
        "lost",
        "lost_pct",
        "max_delta_ms",
        "max_jitter_ms",
        "mean_jitter_ms",
        "mos",
        "r_factor",
        "dtmf",
        "possible_capture_loss",
        "possible_capture_lost",
    ];
}

/// What one source reported about a stream's direction, beside the measurement (`quality`).
/// Fields in name order, as `quality --json` has always printed them.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct ReportedRow {
    pub jitter_ms: Option<f64>,
    pub jitter_ms_diff: Option<f64>,
    pub loss_pct: Option<f64>,
    pub loss_pct_diff: Option<f64>,
    pub lost: Option<i64>,
    pub max_jitter_ms: Option<f64>,
    pub mos: Option<f64>,
    pub packets: Option<u64>,
    pub packets_diff: Option<i64>,
    pub rtt_ms: Option<f64>,
    pub source: String,
}

/// One stream of `quality --json`: the stream row plus `reported` (and `mos_explain` when asked).
#[derive(Clone, Debug)]
pub struct QualityRow {
    pub stream: StreamRow,
    pub reported: Vec<ReportedRow>,
    /// `Some` when explained: the E-model's terms, `None` inside when no MOS was computed.
    pub mos_explain: Option<Option<MosExplanation>>,
}

impl Serialize for QualityRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let st = &self.stream.stream;
        object_with(
            st,
            StreamRow::TYPE,
            &["timeline", "dtmf_events"],
            |m| {
                m.insert("start_time".into(), Value::from(rfc3339(st.start_ns)));
                m.insert("end_time".into(), Value::from(rfc3339(st.end_ns)));
                m.insert("reported".into(), serde_json::to_value(&self.reported)?);
                if let Some(e) = &self.mos_explain {
                    m.insert("mos_explain".into(), serde_json::to_value(e)?);
                }
                Ok(())
            },
            s,
        )
    }
}

/// One RTCP report block of `quality --json`: the `rtcp_reports` columns plus `type`.
#[derive(Clone, Debug)]
pub struct RtcpReportRow(pub RtcpReportRecord);

impl Serialize for RtcpReportRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        object_with(&self.0, "rtcp_report", &[], |_| Ok(()), s)
    }
}

/// One quality report of `quality --json`: the `qos_reports` columns plus `type`, with the raw
/// `fields` parsed.
#[derive(Clone, Debug)]
pub struct QosReportRow(pub QosReportRecord);

impl Serialize for QosReportRow {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        object_with(&self.0, "qos_report", &["fields"], |_| Ok(()), s)
    }
}

/// A value and how often it was seen.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    pub value: String,
    pub count: u64,
}

/// One `stats` row: `type` is `bucket` (with `--by`, one per bucket in time order) or `total`
/// (always last).
#[derive(Serialize, Clone, Debug)]
pub struct TallyRow {
    #[serde(rename = "type")]
    pub row_type: &'static str,
    /// Bucket bounds (RFC 3339 UTC, end exclusive); for `total`, the window asked for.
    #[serde(serialize_with = "ser_opt_time")]
    pub start: Option<i64>,
    #[serde(serialize_with = "ser_opt_time")]
    pub end: Option<i64>,
    pub messages: u64,
    pub requests: BTreeMap<String, u64>,
    pub responses: BTreeMap<String, u64>,
    pub calls: u64,
    pub answered: u64,
    pub failed: u64,
    pub canceled: u64,
    pub in_progress: u64,
    /// Answered calls / call attempts, per cent.
    pub asr_pct: Option<f64>,
    pub avg_pdd_ms: Option<f64>,
    pub max_pdd_ms: Option<f64>,
    pub registrations: u64,
    pub registered: u64,
    pub registrations_failed: u64,
    pub other_dialogs: u64,
    pub top_user_agents: Vec<Counted>,
    pub top_sources: Vec<Counted>,
    pub scanner_dialogs: u64,
    pub top_scanner_sources: Vec<Counted>,
    /// `total` only: from the catalog, for the files whose span meets the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hep_mirrors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span_duplicates: Option<u64>,
}

impl Row for TallyRow {
    const TYPE: &'static str = "total";
    const FIELDS: &'static [&'static str] = &[
        "type",
        "start",
        "end",
        "messages",
        "requests",
        "responses",
        "calls",
        "answered",
        "failed",
        "canceled",
        "in_progress",
        "asr_pct",
        "avg_pdd_ms",
        "max_pdd_ms",
        "registrations",
        "registered",
        "registrations_failed",
        "other_dialogs",
        "top_user_agents",
        "top_sources",
        "scanner_dialogs",
        "top_scanner_sources",
        "hep_mirrors",
        "span_duplicates",
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys<T: Serialize>(row: &T) -> Vec<String> {
        let v = serde_json::to_value(row).unwrap();
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort_unstable();
        k
    }

    fn sorted(fields: &[&str]) -> Vec<String> {
        let mut f: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        f.sort_unstable();
        f
    }

    #[test]
    fn call_rows_carry_every_dialog_column_but_the_summary() {
        let d = DialogRecord {
            call_id: "a".into(),
            state: DialogState::Answered,
            duration_s: Some(3.5),
            start_ns: 1_395_916_825_298_990_000,
            answer_ns: Some(1_395_916_826_000_000_000),
            summary: Some("{}".into()),
            ..Default::default()
        };
        let stored = serde_json::to_value(&d).unwrap();
        let want: Vec<String> = sorted(
            &stored
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .filter(|k| *k != "summary")
                .chain(["type"])
                .collect::<Vec<_>>(),
        );
        let row = CallRow::from(d);
        let v = serde_json::to_value(&row).unwrap();
        assert_eq!(v["type"], "dialog");
        assert_eq!(v["start"], "2014-03-27T10:40:25.298990Z");
        assert_eq!(v["answer"], "2014-03-27T10:40:26.000000Z");
        assert_eq!(v["state"], "answered");
        assert_eq!(v["kind"], "call");
        assert_eq!(keys(&row), want);
        assert_eq!(sorted(CallRow::FIELDS), want);
    }

    #[test]
    fn search_rows_name_the_file_and_null_an_empty_call_id() {
        let files: HashMap<u32, String> = [(3, "/cap/3.pcap".to_string())].into();
        let h = Hit {
            call_id: String::new(),
            file_id: 3,
            cseq_num: Some(2),
            cseq_method: Some("BYE".into()),
            ..Default::default()
        };
        let row = SearchRow::new(h, &files);
        let v = serde_json::to_value(&row).unwrap();
        assert_eq!(v["file"], "/cap/3.pcap");
        assert_eq!(v["call_id"], Value::Null);
        assert_eq!(v["cseq"], "2 BYE");
        assert_eq!(keys(&row), sorted(SearchRow::FIELDS));
    }

    #[test]
    fn stream_rows_hold_every_stream_column_with_times_and_json_parsed() {
        let s = RtpStreamRecord {
            start_ns: 1_395_916_825_298_990_000,
            timeline: Some(r#"{"width_s":1,"buckets":[[1,0,0.5]]}"#.into()),
            dtmf_events: Some("not json".into()),
            ..Default::default()
        };
        let row = StreamRow { stream: s };
        let v = serde_json::to_value(&row).unwrap();
        assert_eq!(v["type"], "stream");
        assert_eq!(v["start_time"], "2014-03-27T10:40:25.298990Z");
        assert_eq!(v["timeline"]["width_s"], 1);
        assert_eq!(v["dtmf_events"], Value::Null);
        assert_eq!(keys(&row), sorted(StreamRow::FIELDS));
        // Keys come in name order, as `streams --json` has always printed them.
        let text = serde_json::to_string(&row).unwrap();
        assert!(text.starts_with(r#"{"announced":"#), "{text}");
        for f in StreamRow::CSV_FIELDS {
            assert!(StreamRow::FIELDS.contains(f), "{f}");
        }
    }

    #[test]
    fn tally_rows_name_their_fields() {
        let row = TallyRow {
            row_type: "total",
            start: Some(0),
            end: None,
            messages: 0,
            requests: BTreeMap::new(),
            responses: BTreeMap::new(),
            calls: 0,
            answered: 0,
            failed: 0,
            canceled: 0,
            in_progress: 0,
            asr_pct: None,
            avg_pdd_ms: None,
            max_pdd_ms: None,
            registrations: 0,
            registered: 0,
            registrations_failed: 0,
            other_dialogs: 0,
            top_user_agents: vec![],
            top_sources: vec![],
            scanner_dialogs: 0,
            top_scanner_sources: vec![],
            hep_mirrors: Some(1),
            span_duplicates: Some(2),
        };
        assert_eq!(keys(&row), sorted(TallyRow::FIELDS));
        assert_eq!(
            serde_json::to_value(&row).unwrap()["start"],
            "1970-01-01T00:00:00.000000Z"
        );
    }

    /// The field list of the section whose heading names `row` (the first code block after it),
    /// or of its `nth` code block.
    fn documented(doc: &str, row: &str, nth: usize) -> Vec<String> {
        let at = doc
            .find(&format!("(`{row}`)"))
            .unwrap_or_else(|| panic!("schemas/rows.md has no section for {row}"));
        let section = &doc[at..];
        let block = section
            .split("```")
            .nth(1 + 2 * nth)
            .unwrap_or_else(|| panic!("{row}: no code block {nth}"));
        block.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn schemas_rows_md_lists_every_field() {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/rows.md"))
            .unwrap();
        let own = |f: &[&str]| f.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(documented(&doc, "SearchRow", 0), own(SearchRow::FIELDS));
        assert_eq!(documented(&doc, "MessageRow", 0), own(MessageRow::FIELDS));
        assert_eq!(documented(&doc, "CallRow", 0), own(CallRow::FIELDS));
        assert_eq!(documented(&doc, "StreamRow", 0), own(StreamRow::FIELDS));
        assert_eq!(documented(&doc, "StreamRow", 1), own(StreamRow::CSV_FIELDS));
        assert_eq!(documented(&doc, "TallyRow", 0), own(TallyRow::FIELDS));
    }
}
