//! The `streams` row: every stored RTP stream column plus its type tag and RFC 3339 times,
//! with the JSON-text columns parsed.
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{object_with, Row};
use crate::store::record::RtpStreamRecord;
use crate::text::rfc3339;

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
