//! The `quality` rows: a stream with what each source reported about it, and the RTCP and
//! quality-report rows printed beside it.
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::{object_with, Row, StreamRow};
use crate::rtp::mos::MosExplanation;
use crate::store::record::{QosReportRecord, RtcpReportRecord};
use crate::text::rfc3339;

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
