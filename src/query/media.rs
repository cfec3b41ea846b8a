//! `streams` (RTP streams of the archive, like tshark's `rtp,streams`) and `quality` (one call's
//! media, measured beside what its endpoints reported), over the index's media tables.
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};

use super::filter::IpNet;
use crate::output::{rfc3339, sanitize};
use crate::rtp::mos::{self, Codec, MosInputs};
use crate::store::parquet::{for_each_row, read_dialogs, DayRange, DialogFilter};
use crate::store::record::{QosReportRecord, RtcpReportRecord, RtpStreamRecord};
use crate::store::StoreError;

/// Which streams `streams` prints; every set condition must hold.
#[derive(Clone, Debug, Default)]
pub struct StreamFilter {
    pub call_id: Option<String>,
    pub ip: Option<IpNet>,
    pub port: Option<u16>,
    pub ssrc: Option<u32>,
    /// Case-insensitive: the codec name or tshark's payload text contains it.
    pub codec: Option<String>,
    /// Streams active in `[since, until)`.
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub min_loss_pct: Option<f64>,
    pub max_mos: Option<f64>,
    pub unmatched: bool,
}

impl StreamFilter {
    pub fn matches(&self, s: &RtpStreamRecord) -> bool {
        let ip_ok = |ip: &str| {
            ip.parse()
                .is_ok_and(|a| self.ip.is_some_and(|n| n.contains(a)))
        };
        let lc = |x: &str| x.to_ascii_lowercase();
        self.call_id
            .as_ref()
            .is_none_or(|c| s.call_id.as_deref() == Some(c))
            && (self.ip.is_none() || ip_ok(&s.src_ip) || ip_ok(&s.dst_ip))
            && self.port.is_none_or(|p| s.src_port == p || s.dst_port == p)
            && self.ssrc.is_none_or(|x| s.ssrc == x)
            && self.codec.as_ref().is_none_or(|c| {
                let c = lc(c);
                s.codec.as_deref().is_some_and(|x| lc(x).contains(&c))
                    || lc(&s.payload).contains(&c)
            })
            && self.since_ns.is_none_or(|t| s.end_ns >= t)
            && self.until_ns.is_none_or(|t| s.start_ns < t)
            && self.min_loss_pct.is_none_or(|m| s.lost_pct >= m)
            && self.max_mos.is_none_or(|m| s.mos.is_some_and(|x| x <= m))
            && (!self.unmatched || s.call_id.is_none())
    }
}

/// Streams matching `f`, ordered by (start, stream_id).
pub fn read_streams(db: &Path, f: &StreamFilter) -> Result<Vec<RtpStreamRecord>, StoreError> {
    // A stream starts at most IDLE before it is still active at `since`; open the range a day.
    let day = 86_400_000_000_000i64;
    let days = DayRange::from_ns(f.since_ns.map(|t| t - day), f.until_ns);
    let mut out = Vec::new();
    for_each_row::<RtpStreamRecord>(db, days, |s| {
        if f.matches(&s) {
            out.push(s);
        }
        Ok(())
    })?;
    out.sort_by(|a, b| (a.start_ns, &a.stream_id).cmp(&(b.start_ns, &b.stream_id)));
    Ok(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// A stream row for scripts: the table columns plus `type`, timeline parsed.
pub fn stream_json(s: &RtpStreamRecord) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("type".into(), json!("stream"));
        m.insert("start_time".into(), json!(rfc3339(s.start_ns)));
        m.insert("end_time".into(), json!(rfc3339(s.end_ns)));
        for key in ["timeline", "dtmf_events"] {
            if let Some(Value::String(t)) = m.get(key) {
                let parsed: Value = serde_json::from_str(t).unwrap_or(Value::Null);
                m.insert(key.into(), parsed);
            }
        }
    }
    v
}

const CSV_COLUMNS: &[&str] = &[
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

fn csv_field(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.prec$}"))
}

/// Prints streams as an aligned table (tshark's columns plus call and MOS), NDJSON or CSV.
pub fn print_streams(
    out: &mut dyn Write,
    streams: &[RtpStreamRecord],
    format: Format,
) -> std::io::Result<()> {
    match format {
        Format::Json => {
            for s in streams {
                writeln!(out, "{}", stream_json(s))?;
            }
        }
        Format::Csv => {
            writeln!(out, "{}", CSV_COLUMNS.join(","))?;
            for s in streams {
                let v = stream_json(s);
                let cells: Vec<String> = CSV_COLUMNS.iter().map(|c| csv_field(&v[c])).collect();
                writeln!(out, "{}", cells.join(","))?;
            }
        }
        Format::Table => {
            writeln!(
                out,
                "{:<26} {:>21} {:>21} {:>10} {:>10} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>5}  call_id",
                "start", "src", "dst", "ssrc", "codec", "pkts", "lost", "loss%", "maxΔ ms",
                "maxJ ms", "meanJ ms", "MOS"
            )?;
            for s in streams {
                let ep = |ip: &str, p: u16| {
                    if ip.contains(':') {
                        format!("[{ip}]:{p}")
                    } else {
                        format!("{ip}:{p}")
                    }
                };
                writeln!(
                    out,
                    "{:<26} {:>21} {:>21} 0x{:08X} {:>10} {:>7} {:>7} {:>7.1} {:>9.3} {:>9.3} {:>9.3} {:>5}  {}{}",
                    rfc3339(s.start_ns),
                    ep(&s.src_ip, s.src_port),
                    ep(&s.dst_ip, s.dst_port),
                    s.ssrc,
                    sanitize(s.codec.as_deref().unwrap_or(&s.payload).as_bytes(), false),
                    s.packets,
                    s.lost,
                    s.lost_pct,
                    s.max_delta_ms,
                    s.max_jitter_ms,
                    s.mean_jitter_ms,
                    opt(s.mos, 2),
                    s.call_id
                        .as_deref()
                        .map_or_else(|| "(unmatched)".into(), |c| sanitize(c.as_bytes(), false)),
                    if s.possible_capture_loss {
                        "  [possible capture loss]"
                    } else {
                        ""
                    },
                )?;
            }
        }
    }
    Ok(())
}

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

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A text sparkline of `values`, resampled to at most `width` cells (max per cell); all-zero
/// series draw flat.
pub fn sparkline(values: &[f64], width: usize) -> String {
    if values.is_empty() {
        return String::new();
    }
    let cells = values.len().min(width.max(1));
    let per = values.len().div_ceil(cells);
    let v: Vec<f64> = values
        .chunks(per)
        .map(|c| c.iter().copied().fold(0.0, f64::max))
        .collect();
    let top = v.iter().copied().fold(0.0, f64::max);
    v.iter()
        .map(|x| {
            if top <= 0.0 {
                BARS[0]
            } else {
                BARS[((x / top) * 7.0).round().clamp(0.0, 7.0) as usize]
            }
        })
        .collect()
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

fn diff(rep: Option<f64>, meas: Option<f64>, prec: usize) -> String {
    match (rep, meas) {
        (Some(r), Some(m)) => format!("{r:.prec$} ({:+.prec$})", r - m),
        (Some(r), None) => format!("{r:.prec$}"),
        _ => "-".into(),
    }
}

/// The human report of `quality`.
pub fn print_quality(out: &mut dyn Write, q: &CallQuality, explain: bool) -> std::io::Result<()> {
    let cid = sanitize(q.call_id.as_bytes(), false);
    writeln!(
        out,
        "Call {cid}: {} stream(s), {} RTCP report(s), {} quality report(s)",
        q.streams.len(),
        q.rtcp.len(),
        q.qos.len()
    )?;
    for s in &q.streams {
        let dur = (s.end_ns - s.start_ns) as f64 / 1e9;
        writeln!(out)?;
        writeln!(
            out,
            "{}:{} -> {}:{}  SSRC 0x{:08X}  {} (PT {})  {}  {:.1} s{}",
            s.src_ip,
            s.src_port,
            s.dst_ip,
            s.dst_port,
            s.ssrc,
            sanitize(s.codec.as_deref().unwrap_or("?").as_bytes(), false),
            s.payload_type.map_or_else(|| "-".into(), |p| p.to_string()),
            rfc3339(s.start_ns),
            dur,
            match (s.possible_capture_loss, s.possible_capture_lost) {
                (true, Some(n)) => format!(
                    "  [{n} of the {} lost fell while the capturer dropped packets ({} drops): \
                     possibly capture loss]",
                    s.lost, s.capture_drops
                ),
                (true, None) =>
                    "  [capturer dropped packets meanwhile: loss may be capture loss]".to_owned(),
                _ => String::new(),
            }
        )?;
        let reps = reports_for(q, s);
        let mut header = format!("  {:<16} {:>20}", "", "measured");
        for r in &reps {
            header.push_str(&format!(" {:>20}", sanitize(r.source.as_bytes(), false)));
        }
        writeln!(out, "{header}")?;
        let row = |name: &str, meas: String, cells: Vec<String>| {
            let mut l = format!("  {name:<16} {meas:>20}");
            for c in cells {
                l.push_str(&format!(" {c:>20}"));
            }
            l
        };
        let measured_loss = s.lost_pct.max(0.0);
        writeln!(
            out,
            "{}",
            row(
                "packets",
                s.packets.to_string(),
                reps.iter()
                    .map(|r| r.packets.map_or("-".into(), |p| format!(
                        "{p} ({:+})",
                        p as i64 - s.packets as i64
                    )))
                    .collect()
            )
        )?;
        writeln!(
            out,
            "{}",
            row(
                "lost",
                s.lost.to_string(),
                reps.iter()
                    .map(|r| r
                        .lost
                        .map_or("-".into(), |l| format!("{l} ({:+})", l - s.lost)))
                    .collect()
            )
        )?;
        writeln!(
            out,
            "{}",
            row(
                "loss %",
                format!("{measured_loss:.2}"),
                reps.iter()
                    .map(|r| diff(r.loss_pct, Some(measured_loss), 2))
                    .collect()
            )
        )?;
        writeln!(
            out,
            "{}",
            row(
                "jitter avg ms",
                format!("{:.3}", s.mean_jitter_ms),
                reps.iter()
                    .map(|r| diff(r.jitter_ms, Some(s.mean_jitter_ms), 3))
                    .collect()
            )
        )?;
        writeln!(
            out,
            "{}",
            row(
                "jitter max ms",
                format!("{:.3}", s.max_jitter_ms),
                reps.iter()
                    .map(|r| diff(r.max_jitter_ms, Some(s.max_jitter_ms), 3))
                    .collect()
            )
        )?;
        writeln!(
            out,
            "{}",
            row(
                "max delta ms",
                format!("{:.3}", s.max_delta_ms),
                reps.iter().map(|_| "-".into()).collect()
            )
        )?;
        writeln!(
            out,
            "{}",
            row(
                "MOS",
                opt(s.mos, 2),
                reps.iter().map(|r| diff(r.mos, s.mos, 2)).collect()
            )
        )?;
        writeln!(
            out,
            "{}",
            row(
                "RTT ms",
                "-".into(),
                reps.iter().map(|r| opt(r.rtt_ms, 1)).collect()
            )
        )?;
        if let Some(at) = s.max_delta_at_ns {
            writeln!(out, "  max delta at     {}", rfc3339(at))?;
        }
        if let Some(d) = &s.dtmf {
            writeln!(out, "  DTMF             {}", sanitize(d.as_bytes(), false))?;
        }
        let (loss, jit, w) = timeline(s);
        if !loss.is_empty() {
            writeln!(
                out,
                "  loss/{w}s  (max {:>5.1}%) {}",
                loss.iter().copied().fold(0.0, f64::max),
                sparkline(&loss, 60)
            )?;
            writeln!(
                out,
                "  jitter/{w}s (max {:>5.1}ms) {}",
                jit.iter().copied().fold(0.0, f64::max),
                sparkline(&jit, 60)
            )?;
        }
        if explain {
            match mos_inputs(s) {
                Some(i) => write_explain(out, &mos::explain(i))?,
                None => writeln!(out, "  MOS: not computed (no voice clock rate)")?,
            }
        }
    }
    let unmatched: Vec<&QosReportRecord> = q
        .qos
        .iter()
        .filter(|r| {
            r.kind != "rtcp-xr"
                && !q
                    .streams
                    .iter()
                    .any(|s| reports_for(q, s).iter().any(|x| x.source == r.kind))
        })
        .collect();
    if !unmatched.is_empty() {
        writeln!(out)?;
        writeln!(out, "Reports not tied to a measured stream:")?;
        for r in unmatched {
            writeln!(
                out,
                "  {} {} from {}:{}{}: loss {} %, jitter {} ms, MOS {}",
                rfc3339(r.ts_ns),
                r.kind,
                r.reporter_ip,
                r.reporter_port,
                r.side
                    .as_deref()
                    .map_or_else(String::new, |s| format!(" ({s})")),
                opt(r.loss_pct, 2),
                opt(r.jitter_ms.or(r.jitter_raw), 3),
                opt(r.mos_lq, 2)
            )?;
        }
    }
    Ok(())
}

fn write_explain(out: &mut dyn Write, e: &mos::MosExplanation) -> std::io::Result<()> {
    let i = &e.inputs;
    writeln!(out, "  MOS explained (ITU-T G.107 E-model, simplified):")?;
    writeln!(
        out,
        "    codec {} → Ie = {:.1}, Bpl = {:.1}{}",
        i.codec.name(),
        e.ie,
        e.bpl,
        if e.ie_from_itu_table {
            " (G.113 Appendix I)"
        } else {
            " (approximation, no ITU value)"
        }
    )?;
    writeln!(
        out,
        "    Ppl = {:.3} % (RFC 3550 lost + late in a 60 ms jitter buffer), BurstR = {:.3}",
        i.packet_loss_percent, i.burst_ratio
    )?;
    writeln!(
        out,
        "    Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl) = {:.3}",
        e.ie_eff
    )?;
    writeln!(
        out,
        "    d = RTT/2 + 60 ms buffer + frame = {:.1} ms; Id = 0.024·d + 0.11·(d − 177.3)·[d > 177.3] = {:.3}",
        i.one_way_delay_ms, e.id
    )?;
    writeln!(
        out,
        "    R = 93.2 − Id − Ie,eff = {:.3};  MOS = 1 + 0.035·R + R·(R − 60)·(100 − R)·7e-6 = {:.3}",
        e.r_factor, e.mos
    )
}

/// `quality --json`: one object per stream (with `reported`) and per report.
pub fn quality_json(out: &mut dyn Write, q: &CallQuality, explain: bool) -> std::io::Result<()> {
    for s in &q.streams {
        let mut v = stream_json(s);
        let reps: Vec<Value> = reports_for(q, s)
            .into_iter()
            .map(|r| {
                json!({
                    "source": r.source,
                    "packets": r.packets,
                    "lost": r.lost,
                    "loss_pct": r.loss_pct,
                    "jitter_ms": r.jitter_ms,
                    "max_jitter_ms": r.max_jitter_ms,
                    "rtt_ms": r.rtt_ms,
                    "mos": r.mos,
                    "loss_pct_diff": r.loss_pct.map(|l| l - s.lost_pct.max(0.0)),
                    "jitter_ms_diff": r.jitter_ms.map(|j| j - s.mean_jitter_ms),
                    "packets_diff": r.packets.map(|p| p as i64 - s.packets as i64),
                })
            })
            .collect();
        v["reported"] = Value::Array(reps);
        if explain {
            v["mos_explain"] = mos_inputs(s)
                .map(|i| serde_json::to_value(mos::explain(i)).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
        }
        writeln!(out, "{v}")?;
    }
    for r in &q.rtcp {
        let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
        v["type"] = json!("rtcp_report");
        writeln!(out, "{v}")?;
    }
    for r in &q.qos {
        let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
        v["type"] = json!("qos_report");
        if let Some(Value::String(f)) = v.get("fields") {
            let parsed: Value = serde_json::from_str(f).unwrap_or(Value::Null);
            v["fields"] = parsed;
        }
        writeln!(out, "{v}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_scales_to_the_maximum_and_resamples() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0], 10), "▁▅█");
        assert_eq!(sparkline(&[0.0, 0.0], 10), "▁▁");
        assert_eq!(sparkline(&[1.0, 9.0, 0.0, 0.0], 2), "█▁");
        assert_eq!(sparkline(&[], 5), "");
    }

    #[test]
    fn filter_by_loss_mos_and_unmatched() {
        let s = RtpStreamRecord {
            src_ip: "10.0.0.1".into(),
            dst_ip: "10.0.0.2".into(),
            src_port: 4000,
            dst_port: 5000,
            lost_pct: 3.0,
            mos: Some(3.2),
            codec: Some("PCMA".into()),
            ..Default::default()
        };
        let f = |f: StreamFilter| f.matches(&s);
        assert!(f(StreamFilter {
            min_loss_pct: Some(2.0),
            max_mos: Some(3.5),
            unmatched: true,
            codec: Some("pcma".into()),
            ip: "10.0.0.0/24".parse().ok(),
            port: Some(5000),
            ..Default::default()
        }));
        assert!(!f(StreamFilter {
            min_loss_pct: Some(3.5),
            ..Default::default()
        }));
        assert!(!f(StreamFilter {
            call_id: Some("x".into()),
            ..Default::default()
        }));
        assert!(!f(StreamFilter {
            ip: "10.0.1.0/24".parse().ok(),
            ..Default::default()
        }));
    }
}
