//! Owned rows the store persists: one `MessageRecord` per SIP message and one `DialogRecord` per call,
//! registration or other Call-ID; the pipeline fills them, the store never looks inside packets.

use serde::{Deserialize, Serialize};

pub use crate::vocab::{DialogKind, DialogState, EndedBy, Transport, UnknownValue};

/// One SIP message as indexed. Times are nanoseconds since the Unix epoch (UTC).
/// `text` feeds the full-text index only; the `messages` table leaves it out and points back
/// into the capture with `file_id`/`offset`/`record_len` instead.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MessageRecord {
    #[serde(rename = "ts")]
    pub ts_ns: i64,
    pub src_ip: String,
    pub dst_ip: String,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
    /// Outer encapsulations peeled to reach the datagram, e.g. "hep3", "vxlan", "gre".
    pub encap: Option<String>,
    pub vlan: Option<u16>,
    /// Request method; `None` for responses.
    pub method: Option<String>,
    /// Response status code; `None` for requests.
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub call_id: String,
    pub cseq_num: Option<u32>,
    pub cseq_method: Option<String>,
    pub from_user: Option<String>,
    pub from_host: Option<String>,
    pub from_tag: Option<String>,
    pub from_display: Option<String>,
    pub to_user: Option<String>,
    pub to_host: Option<String>,
    pub to_tag: Option<String>,
    pub ruri_user: Option<String>,
    pub ruri_host: Option<String>,
    /// User-Agent, or Server for responses.
    pub user_agent: Option<String>,
    pub contact: Option<String>,
    /// P-Asserted-Identity (RFC 3325).
    pub pai: Option<String>,
    /// X-Call-ID / X-CID style correlation header of B2BUAs.
    pub x_call_id: Option<String>,
    pub content_type: Option<String>,
    /// SIP message size in bytes (start line to end of body).
    pub size: u32,
    /// The whole message as lossy UTF-8, for the full-text index only.
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub text: String,
    pub file_id: u32,
    pub offset: u64,
    pub record_len: u32,
    pub hep_capture_id: Option<u32>,
    /// Set on a raw message whose HEP copy was also in the capture (and dropped as a mirror):
    /// the copy's HEP capture id (0 when the copy carried none).
    pub hep_mirror_capture_id: Option<u32>,
    /// Sent by a known scanner (friendly-scanner, sipvicious…).
    pub scanner: bool,
}

/// One dialog (Call-ID) summary. Times are nanoseconds since the Unix epoch (UTC); the JSON and
/// Parquet names are the issue's (`start`, `end`, …), see schemas/dialogs.md.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DialogRecord {
    pub call_id: String,
    pub kind: DialogKind,
    pub state: DialogState,
    pub final_status: Option<u16>,
    pub final_reason: Option<String>,
    #[serde(rename = "start")]
    pub start_ns: i64,
    #[serde(rename = "end")]
    pub end_ns: i64,
    #[serde(rename = "invite")]
    pub invite_ns: Option<i64>,
    #[serde(rename = "first_provisional")]
    pub first_provisional_ns: Option<i64>,
    /// 200 OK to the INVITE.
    #[serde(rename = "answer")]
    pub answer_ns: Option<i64>,
    #[serde(rename = "ack")]
    pub ack_ns: Option<i64>,
    #[serde(rename = "bye")]
    pub bye_ns: Option<i64>,
    #[serde(rename = "cancel")]
    pub cancel_ns: Option<i64>,
    /// Post-dial delay: INVITE to first 18x (or final when no 18x), milliseconds.
    pub pdd_ms: Option<f64>,
    /// INVITE to 200 OK, milliseconds.
    pub setup_ms: Option<f64>,
    /// 200 OK to BYE, seconds.
    pub duration_s: Option<f64>,
    pub ended_by: Option<EndedBy>,
    pub reinvites: u32,
    /// 401/407 challenges seen.
    pub auth_challenges: u32,
    pub from_user: Option<String>,
    pub to_user: Option<String>,
    pub ruri_user: Option<String>,
    pub from_host: Option<String>,
    pub to_host: Option<String>,
    /// Addresses of the first request.
    pub src_ip: String,
    pub dst_ip: String,
    pub src_port: u16,
    pub dst_port: u16,
    pub user_agent: Option<String>,
    pub contact: Option<String>,
    /// Granted registration lifetime in seconds (REGISTER only).
    pub expires: Option<u32>,
    pub messages: u32,
    pub correlation_id: String,
    pub scanner: bool,
    pub worst_mos: Option<f64>,
    pub max_loss_pct: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    /// The mergeable dialog summary (JSON) that later runs extend when new files add messages
    /// to this Call-ID; internal to sipidx, documented in schemas/dialogs.md.
    pub summary: Option<String>,
}

/// One RTP stream (SSRC on a 5-tuple, from its first packet) as the media pass measured it;
/// see schemas/rtp_streams.md. `stream_id` identifies the row: a later run continuing the stream
/// replaces it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RtpStreamRecord {
    pub stream_id: String,
    pub call_id: Option<String>,
    #[serde(rename = "start")]
    pub start_ns: i64,
    #[serde(rename = "end")]
    pub end_ns: i64,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    pub ssrc: u32,
    /// Found through SDP (true) or by the heuristic.
    pub announced: bool,
    pub payload_type: Option<u16>,
    pub payload_types: String,
    /// tshark's Payload column text.
    pub payload: String,
    pub codec: Option<String>,
    pub clock_rate: u32,
    pub packets: u64,
    pub expected: i64,
    pub lost: i64,
    pub lost_pct: f64,
    pub sequence_errors: u32,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub min_delta_ms: f64,
    pub mean_delta_ms: f64,
    pub max_delta_ms: f64,
    #[serde(rename = "max_delta_at")]
    pub max_delta_at_ns: Option<i64>,
    pub max_delta_index: u64,
    pub min_jitter_ms: f64,
    pub mean_jitter_ms: f64,
    pub max_jitter_ms: f64,
    pub max_skew_ms: f64,
    pub rfc3550_jitter_ms: Option<f64>,
    pub marker_packets: u64,
    pub comfort_noise_packets: u64,
    pub dtmf: Option<String>,
    pub dtmf_events: Option<String>,
    pub late_packets: u64,
    pub burst_ratio: Option<f64>,
    pub mos: Option<f64>,
    pub r_factor: Option<f64>,
    /// The E-model inputs: codec class, loss (network + late) and one-way delay.
    pub mos_codec: Option<String>,
    pub mos_loss_pct: Option<f64>,
    pub mos_delay_ms: Option<f64>,
    pub possible_capture_loss: bool,
    /// Packets lost by sequence gap while the capturer reported drops (see `capture_drops`);
    /// null in rows written before it was counted.
    #[serde(default)]
    pub possible_capture_lost: Option<u64>,
    pub capture_drops: u64,
    /// SPAN duplicates of this stream's packets dropped by `--dedup` (0 with dedup off: then
    /// surviving copies count in `duplicates`, not as loss).
    pub span_duplicates_dropped: u64,
    pub problem: bool,
    pub metrics: String,
    pub timeline: Option<String>,
}

/// One RTCP report block (SR/RR) or RTCP-XR metrics block; see schemas/rtcp_reports.md.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RtcpReportRecord {
    #[serde(rename = "ts")]
    pub ts_ns: i64,
    pub call_id: Option<String>,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    /// `SR`, `RR` or `XR`.
    pub packet_type: String,
    /// `report-block`, `sender-info`, `voip-metrics`, `statistics-summary`.
    pub block: String,
    pub reporter_ssrc: u32,
    pub source_ssrc: Option<u32>,
    pub fraction_lost_pct: Option<f64>,
    pub cumulative_lost: Option<i64>,
    pub extended_highest_seq: Option<u32>,
    pub jitter: Option<u32>,
    pub jitter_ms: Option<f64>,
    pub lsr: Option<u32>,
    pub dlsr: Option<u32>,
    pub rtt_ms: Option<f64>,
    pub sender_packets: Option<u32>,
    pub sender_octets: Option<u32>,
    pub loss_rate_pct: Option<f64>,
    pub discard_rate_pct: Option<f64>,
    pub burst_density_pct: Option<f64>,
    pub gap_density_pct: Option<f64>,
    pub round_trip_delay_ms: Option<f64>,
    pub end_system_delay_ms: Option<f64>,
    pub r_factor: Option<f64>,
    pub mos_lq: Option<f64>,
    pub mos_cq: Option<f64>,
    pub jb_nominal_ms: Option<f64>,
    pub jb_maximum_ms: Option<f64>,
    pub file_id: u32,
    pub offset: u64,
}

/// One quality report of any kind an endpoint sent: RTCP-XR VoIP metrics, RFC 6035 vq-rtcpxr
/// PUBLISH, or an end-of-call statistics header; see schemas/qos_reports.md.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QosReportRecord {
    #[serde(rename = "ts")]
    pub ts_ns: i64,
    pub call_id: Option<String>,
    pub kind: String,
    /// Whose view: `local`/`remote` (vq-rtcpxr), `rx`/`tx` (stat headers), `receiver` (RTCP).
    pub side: Option<String>,
    pub reporter_ip: String,
    pub reporter_port: u16,
    pub peer_ip: Option<String>,
    pub peer_port: Option<u16>,
    pub ssrc: Option<u32>,
    pub codec: Option<String>,
    pub packets_sent: Option<u64>,
    pub packets_received: Option<u64>,
    pub packets_lost: Option<i64>,
    pub loss_pct: Option<f64>,
    pub discard_pct: Option<f64>,
    pub jitter_ms: Option<f64>,
    /// Jitter as the sender wrote it (units vary by vendor: see the kind).
    pub jitter_raw: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    pub mos_lq: Option<f64>,
    pub mos_cq: Option<f64>,
    pub r_factor: Option<f64>,
    pub duration_s: Option<f64>,
    /// Every field as reported, unknown ones included: JSON object.
    pub fields: String,
    pub file_id: u32,
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialog_json_uses_the_issue_names() {
        let d = DialogRecord {
            call_id: "a@b".into(),
            start_ns: 5,
            end_ns: 9,
            state: DialogState::Final(404),
            ..Default::default()
        };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["start"], 5);
        assert_eq!(v["end"], 9);
        assert_eq!(v["state"], "404");
        assert_eq!(v["kind"], "call");
        let back: DialogRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, d);
    }
}
