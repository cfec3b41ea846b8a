//! `quality`: one call's media, measured per direction beside what its endpoints reported (RTCP,
//! RTCP-XR, vq-rtcpxr, statistics headers), from the index's media tables. Returns values only.
use std::path::Path;

use serde_json::Value;

use super::rows::{QosReportRow, QualityRow, ReportedRow, RtcpReportRow, StreamRow};
use crate::rtp::mos::{self, Codec, MosInputs};
use crate::store::parquet::{for_each_row, read_dialogs, DayRange, DialogFilter};
use crate::store::record::{QosReportRecord, RtcpReportRecord, RtpStreamRecord};
use crate::store::StoreError;

/// Everything known about one call's media.
#[derive(Debug, Default)]
pub struct CallQuality {
    pub call_id: String,
    pub streams: Vec<RtpStreamRecord>,
    pub rtcp: Vec<RtcpReportRecord>,
    pub qos: Vec<QosReportRecord>,
}

pub fn read_call_quality(db: &Path, call_id: &str) -> Result<CallQuality, StoreError> {
    let dialog = read_dialogs(
        db,
        &DialogFilter {
            call_id: Some(call_id.to_owned()),
            ..Default::default()
        },
    )?;
    let day = 86_400_000_000_000i64;
    let days = match dialog.first() {
        Some(d) => DayRange::from_ns(Some(d.start_ns - day), Some(d.end_ns + 2 * day)),
        None => DayRange::default(),
    };
    let mut q = CallQuality {
        call_id: call_id.to_owned(),
        ..Default::default()
    };
    let mine = |c: &Option<String>| c.as_deref() == Some(call_id);
    for_each_row::<RtpStreamRecord>(db, days, |s| {
        if mine(&s.call_id) {
            q.streams.push(s);
        }
        Ok(())
    })?;
    for_each_row::<RtcpReportRecord>(db, days, |r| {
        if mine(&r.call_id) {
            q.rtcp.push(r);
        }
        Ok(())
    })?;
    for_each_row::<QosReportRecord>(db, days, |r| {
        if mine(&r.call_id) {
            q.qos.push(r);
        }
        Ok(())
    })?;
    q.streams
        .sort_by(|a, b| (a.start_ns, &a.stream_id).cmp(&(b.start_ns, &b.stream_id)));
    q.rtcp.sort_by_key(|r| r.ts_ns);
    q.qos.sort_by_key(|r| r.ts_ns);
    Ok(q)
}

/// What one source reported about a direction (the last report of its kind wins, as it covers
/// the most of the call).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reported {
    pub source: String,
    pub packets: Option<u64>,
    pub lost: Option<i64>,
    pub loss_pct: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub max_jitter_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    pub mos: Option<f64>,
}

/// The reports about stream `s`: RTCP blocks on its SSRC, vq-rtcpxr metrics of the side that
/// received it, statistics headers of the UA at its destination.
pub fn reports_for(q: &CallQuality, s: &RtpStreamRecord) -> Vec<Reported> {
    let mut out = Vec::new();
    let blocks: Vec<&RtcpReportRecord> = q
        .rtcp
        .iter()
        .filter(|r| r.source_ssrc == Some(s.ssrc) && r.block == "report-block")
        .collect();
    if let Some(last) = blocks.last() {
        let max_j = blocks.iter().filter_map(|r| r.jitter_ms).fold(None, fmax);
        let rtt = blocks.iter().rev().find_map(|r| r.rtt_ms);
        out.push(Reported {
            source: format!("RTCP {}", last.packet_type),
            packets: None,
            lost: last.cumulative_lost,
            loss_pct: last
                .extended_highest_seq
                .zip(last.cumulative_lost)
                .and_then(|(_, l)| (s.expected > 0).then(|| l as f64 * 100.0 / s.expected as f64)),
            jitter_ms: last.jitter_ms,
            max_jitter_ms: max_j,
            rtt_ms: rtt,
            mos: None,
        });
    }
    if let Some(x) = q
        .rtcp
        .iter()
        .rev()
        .find(|r| r.source_ssrc == Some(s.ssrc) && r.block == "voip-metrics")
    {
        out.push(Reported {
            source: "RTCP-XR".into(),
            loss_pct: x.loss_rate_pct,
            rtt_ms: x.round_trip_delay_ms,
            mos: x.mos_lq,
            ..Default::default()
        });
    }
    for r in q.qos.iter().rev() {
        let about_s = match r.kind.as_str() {
            k if k.starts_with("vq-") => {
                r.peer_ip.as_deref() == Some(&s.src_ip)
                    && r.peer_port.is_none_or(|p| p == s.src_port)
            }
            "rtcp-xr" => false, // shown above from rtcp_reports
            "RTP-TxStat" => r.reporter_ip == s.src_ip,
            _ => r.reporter_ip == s.dst_ip,
        };
        if !about_s || out.iter().any(|o| o.source == r.kind) {
            continue;
        }
        out.push(Reported {
            source: r.kind.clone(),
            packets: if r.kind == "RTP-TxStat" {
                r.packets_sent
            } else {
                r.packets_received
            },
            lost: r.packets_lost,
            loss_pct: r.loss_pct,
            jitter_ms: r.jitter_ms,
            max_jitter_ms: r.max_jitter_ms,
            rtt_ms: r.rtt_ms,
            mos: r.mos_lq,
        });
    }
    out
}

fn fmax(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.max(b)))
}

/// The E-model inputs stored with a stream, as `mos::explain` takes them.
pub fn mos_inputs(s: &RtpStreamRecord) -> Option<MosInputs> {
    Some(MosInputs {
        codec: Codec::from_name(s.mos_codec.as_deref()?)?,
        packet_loss_percent: s.mos_loss_pct?,
        burst_ratio: s.burst_ratio.unwrap_or(1.0),
        one_way_delay_ms: s.mos_delay_ms?,
    })
}

/// (loss % per bucket, max jitter ms per bucket, bucket width s) of a stream's timeline.
pub fn timeline(s: &RtpStreamRecord) -> (Vec<f64>, Vec<f64>, u64) {
    let v: Value = s
        .timeline
        .as_deref()
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null);
    let width = v["width_s"].as_u64().unwrap_or(1);
    let mut loss = Vec::new();
    let mut jit = Vec::new();
    for b in v["buckets"].as_array().into_iter().flatten() {
        let rx = b[0].as_f64().unwrap_or(0.0);
        let lost = b[1].as_f64().unwrap_or(0.0);
        loss.push(if rx + lost > 0.0 {
            lost * 100.0 / (rx + lost)
        } else {
            0.0
        });
        jit.push(b[2].as_f64().unwrap_or(0.0));
    }
    (loss, jit, width)
}

/// The `quality --json` rows: one per stream (with what was reported about it, and the MOS
/// explained when `explain`), then the RTCP reports and the quality reports.
pub struct QualityRows {
    pub streams: Vec<QualityRow>,
    pub rtcp: Vec<RtcpReportRow>,
    pub qos: Vec<QosReportRow>,
}

pub fn rows(q: &CallQuality, explain: bool) -> QualityRows {
    let streams = q
        .streams
        .iter()
        .map(|s| QualityRow {
            reported: reports_for(q, s)
                .into_iter()
                .map(|r| ReportedRow {
                    loss_pct_diff: r.loss_pct.map(|l| l - s.lost_pct.max(0.0)),
                    jitter_ms_diff: r.jitter_ms.map(|j| j - s.mean_jitter_ms),
                    packets_diff: r.packets.map(|p| p as i64 - s.packets as i64),
                    source: r.source,
                    packets: r.packets,
                    lost: r.lost,
                    loss_pct: r.loss_pct,
                    jitter_ms: r.jitter_ms,
                    max_jitter_ms: r.max_jitter_ms,
                    rtt_ms: r.rtt_ms,
                    mos: r.mos,
                })
                .collect(),
            mos_explain: explain.then(|| mos_inputs(s).map(mos::explain)),
            stream: StreamRow { stream: s.clone() },
        })
        .collect();
    QualityRows {
        streams,
        rtcp: q.rtcp.iter().cloned().map(RtcpReportRow).collect(),
        qos: q.qos.iter().cloned().map(QosReportRow).collect(),
    }
}
