//! Row building: a stream's `rtp_streams` row, per-call summaries, and the refold's choice of
//! which stored rows a re-analysis replaces.
use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use super::flows::Maps;
use super::{store_err, CallMedia, MediaPass};
use crate::index::IndexError;
use crate::rtp::mos::{self, Codec};
use crate::rtp::stream::Timeline;
use crate::rtp::{ConvKey, Metrics};
use crate::rtp::{StreamKey, StreamState};
use crate::sip;
use crate::store::parquet::{self as pq, DayRange};
use crate::store::record::RtpStreamRecord;

/// A run that folds in files older than media already analysed re-analyses the archive from
/// `from_ns` on (`run`'s refold: every stored file from there, with the new files, in time order,
/// after the `window::media_preroll`), so that the rows equal one pass over all files in order.
pub struct Refold {
    /// Stored rows starting at or after `from_ns`: all replaced by the pass's (those no longer
    /// produced, e.g. the pieces of a stream cut by a missing file, removed).
    pub(super) replaced: Vec<RtpStreamRecord>,
    /// Stored streams started before `from_ns` that ran within `IDLE_NS + EVICT_EVERY_NS` of
    /// it, by 5-tuple and SSRC: a stream of this pass with the same key, its first packet
    /// within one of them, is its tail, and the stored row (made from all of it) stays.
    running: HashMap<RowKey, Vec<(i64, i64)>>,
}

/// A stream's identity apart from its first packet, as rows spell it: 5-tuple and SSRC.
type RowKey = (String, u16, String, u16, u32);

impl Refold {
    pub fn new(from_ns: i64, replaced: Vec<RtpStreamRecord>, earlier: &[RtpStreamRecord]) -> Self {
        let mut running: HashMap<_, Vec<(i64, i64)>> = HashMap::new();
        for e in earlier.iter().filter(|e| e.start_ns < from_ns) {
            let key = (
                e.src_ip.clone(),
                e.src_port,
                e.dst_ip.clone(),
                e.dst_port,
                e.ssrc,
            );
            running.entry(key).or_default().push((e.start_ns, e.end_ns));
        }
        Refold { replaced, running }
    }

    pub(super) fn continues(&self, r: &RtpStreamRecord) -> bool {
        let key = (
            r.src_ip.clone(),
            r.src_port,
            r.dst_ip.clone(),
            r.dst_port,
            r.ssrc,
        );
        self.running
            .get(&key)
            .is_some_and(|v| v.iter().any(|&(_, end)| end >= r.start_ns))
    }
}

impl MediaPass<'_> {
    /// The table row of a stream as it stands.
    pub(super) fn record(&self, s: &StreamState) -> RtpStreamRecord {
        let m = &self.state.maps;
        let id = (s.key, s.first_ns);
        let drops = m.capture_drops.get(&id).copied().unwrap_or(0);
        let lost = m.capture_window_lost.get(&id).copied().unwrap_or(0);
        let rtt = m.rtt_ms.get(&s.key.ssrc).copied();
        let mut row = stream_record(s, self.cfg.metrics, (drops, lost), rtt);
        row.span_duplicates_dropped = span_dups(&self.state.maps, &s.key);
        row
    }
}

/// Each call's media summary over all its stored streams starting within `span` (± a day), read
/// back from `rtp_streams`; a call without streams gets the empty summary.
pub(in crate::index) fn call_media(
    db: &Path,
    calls: &std::collections::HashSet<String>,
    span: (i64, i64),
) -> Result<HashMap<String, CallMedia>, IndexError> {
    let day = 86_400_000_000_000i64;
    let mut out: HashMap<String, CallMedia> = calls
        .iter()
        .map(|c| (c.clone(), CallMedia::default()))
        .collect();
    pq::for_each_row::<RtpStreamRecord>(
        db,
        DayRange::from_ns(
            Some(span.0.saturating_sub(day)),
            Some(span.1.saturating_add(day)),
        ),
        |r| {
            if let Some(e) = r.call_id.as_deref().and_then(|c| out.get_mut(c)) {
                fold_call(e, &r);
            }
            Ok(())
        },
    )
    .map_err(|e| store_err(db, e))?;
    Ok(out)
}

pub(super) fn fold_call(e: &mut CallMedia, r: &RtpStreamRecord) {
    let min = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    e.worst_mos = min(e.worst_mos, r.mos);
    e.max_loss_pct = max(e.max_loss_pct, Some(r.lost_pct.max(0.0)));
    if r.clock_rate != 0 {
        e.max_jitter_ms = max(e.max_jitter_ms, Some(r.max_jitter_ms));
    }
}

pub(super) fn span_dups(maps: &Maps, k: &StreamKey) -> u64 {
    maps.span_duplicates
        .get(&(k.src, k.src_port, k.dst, k.dst_port))
        .copied()
        .unwrap_or(0)
}

/// The row of one stream under the chosen metrics.
/// `capture` is the capturer's drops in the files the stream spans and the stream's sequence
/// gaps within those files' time spans.
pub fn stream_record(
    s: &StreamState,
    metrics: Metrics,
    capture: (u64, u64),
    rtt_ms: Option<f64>,
) -> RtpStreamRecord {
    let (capture_drops, capture_window_lost) = capture;
    let sum = s.summary(metrics);
    let media = s.media_payload_type();
    let clock = s.clock_rate();
    let codec_name = media.map(|(pt, name)| {
        if pt < 96 {
            sip::sdp::static_payload(pt)
                .map(|m| String::from_utf8_lossy(m.encoding).into_owned())
                .unwrap_or_else(|| name.to_owned())
        } else {
            name.to_owned()
        }
    });
    let model = match media {
        // Voice only: the E-model says nothing about video (90 kHz) or event-only streams.
        Some((pt, _)) if clock != 0 && clock != 90_000 => {
            let codec = Codec::from_payload(pt, codec_name.as_deref());
            Some(mos::explain(mos::inputs_for_stream(s, codec, rtt_ms)))
        }
        _ => None,
    };
    let dtmf_events = (!s.dtmf.is_empty()).then(|| {
        let v: Vec<serde_json::Value> = s
            .dtmf
            .iter()
            .map(|e| {
                serde_json::json!({
                    "digit": e.digit.map(String::from),
                    "event": e.event,
                    "start": e.start_ns,
                    "end": e.end_ns,
                    "duration_ms": e.duration_ms,
                    "volume": e.volume,
                })
            })
            .collect();
        serde_json::Value::Array(v).to_string()
    });
    let pts: Vec<String> = s.payload_names.iter().map(|(p, _)| p.to_string()).collect();
    RtpStreamRecord {
        stream_id: format!(
            "{}:{}>{}:{}/{:08X}@{}",
            s.key.src, s.key.src_port, s.key.dst, s.key.dst_port, s.key.ssrc, s.first_ns
        ),
        call_id: s.call_id.clone(),
        start_ns: s.first_ns,
        end_ns: s.last_ns,
        src_ip: s.key.src.to_string(),
        src_port: s.key.src_port,
        dst_ip: s.key.dst.to_string(),
        dst_port: s.key.dst_port,
        ssrc: s.key.ssrc,
        announced: matches!(s.conv, ConvKey::Announced { .. }),
        payload_type: media.map(|m| u16::from(m.0)),
        payload_types: pts.join(","),
        payload: sum.payload.clone(),
        codec: codec_name,
        clock_rate: clock,
        packets: sum.packets,
        expected: sum.expected,
        lost: sum.lost,
        lost_pct: sum.lost_percent,
        sequence_errors: sum.sequence_errors,
        duplicates: s.duplicates,
        out_of_order: s.out_of_order,
        min_delta_ms: sum.min_delta_ms,
        mean_delta_ms: sum.mean_delta_ms,
        max_delta_ms: sum.max_delta_ms,
        max_delta_at_ns: (sum.max_delta_ms > 0.0).then_some(sum.max_delta_ns),
        max_delta_index: sum.max_delta_index,
        min_jitter_ms: sum.min_jitter_ms,
        mean_jitter_ms: sum.mean_jitter_ms,
        max_jitter_ms: sum.max_jitter_ms,
        max_skew_ms: sum.max_skew_ms,
        rfc3550_jitter_ms: s.rfc3550_jitter_ms(),
        marker_packets: s.marker_packets,
        comfort_noise_packets: s.comfort_noise_packets,
        dtmf: (!s.dtmf.is_empty()).then(|| s.dtmf_digits()),
        dtmf_events,
        late_packets: s.loss.late,
        burst_ratio: Some(s.loss.burst_ratio()),
        mos: model.map(|e| e.mos),
        r_factor: model.map(|e| e.r_factor),
        mos_codec: model.map(|e| e.inputs.codec.name().to_owned()),
        mos_loss_pct: model.map(|e| e.inputs.packet_loss_percent),
        mos_delay_ms: model.map(|e| e.inputs.one_way_delay_ms),
        possible_capture_loss: capture_window_lost > 0,
        possible_capture_lost: Some(capture_window_lost),
        span_duplicates_dropped: 0,
        capture_drops,
        problem: sum.problem,
        metrics: match metrics {
            Metrics::Wireshark => "wireshark",
            Metrics::Rfc3550 => "rfc3550",
        }
        .into(),
        timeline: Some(timeline_json(&s.timeline.settled())),
    }
}

/// The `timeline` column: `{"buckets":[[received,lost,max_jitter_ms],...],"width_s":N}`.
///
/// Serialized straight from the buckets: going through a `serde_json::Value` (a map and three
/// boxed numbers per bucket) was two thirds of building a stream's row, and rows are built for
/// every open stream at the end of a run, on its critical path. The jitter is widened to f64
/// first, as the `Value` did, so the text is the same.
pub(super) fn timeline_json(t: &Timeline) -> String {
    #[derive(Serialize)]
    struct Column<'a> {
        #[serde(serialize_with = "buckets_as_f64")]
        buckets: &'a [(u32, u32, f32)],
        width_s: u32,
    }
    fn buckets_as_f64<S: serde::Serializer>(
        b: &&[(u32, u32, f32)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(b.iter().map(|&(r, l, j)| (r, l, f64::from(j))))
    }
    serde_json::to_string(&Column {
        buckets: &t.buckets,
        width_s: t.width_s,
    })
    .unwrap_or_default()
}
