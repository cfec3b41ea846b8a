//! The text report of `quality`: per stream, the measurement beside each report with the
//! difference, loss and jitter sparklines, and the E-model's terms with `--explain`.
use std::io::{self, Write};

use super::{opt, rfc3339, sanitize};
use crate::query::quality::{mos_inputs, reports_for, timeline, CallQuality, Reported};
use crate::rtp::mos::{self, MosExplanation};
use crate::store::record::{QosReportRecord, RtpStreamRecord};

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

fn diff(rep: Option<f64>, meas: Option<f64>, prec: usize) -> String {
    match (rep, meas) {
        (Some(r), Some(m)) => format!("{r:.prec$} ({:+.prec$})", r - m),
        (Some(r), None) => format!("{r:.prec$}"),
        _ => "-".into(),
    }
}

/// The human report of `quality`.
pub fn print_quality(out: &mut dyn Write, q: &CallQuality, explain: bool) -> io::Result<()> {
    let cid = sanitize(q.call_id.as_bytes(), false);
    writeln!(
        out,
        "Call {cid}: {} stream(s), {} RTCP report(s), {} quality report(s)",
        q.streams.len(),
        q.rtcp.len(),
        q.qos.len()
    )?;
    for s in &q.streams {
        write_stream(out, q, s, explain)?;
    }
    write_unmatched(out, q)
}

/// One stream: its title line, the measured-against-reported table, then the extras (worst
/// delta, DTMF, sparklines, the E-model with `--explain`).
fn write_stream(
    out: &mut dyn Write,
    q: &CallQuality,
    s: &RtpStreamRecord,
    explain: bool,
) -> io::Result<()> {
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
    write_measures(out, s, &reps)?;
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
    Ok(())
}

/// The table: one line per measure, the measurement then each source's report with the difference.
fn write_measures(out: &mut dyn Write, s: &RtpStreamRecord, reps: &[Reported]) -> io::Result<()> {
    let mut header = format!("  {:<16} {:>20}", "", "measured");
    for r in reps {
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
    Ok(())
}

/// The reports (other than RTCP XR) that no measured stream claims, listed after the streams.
fn write_unmatched(out: &mut dyn Write, q: &CallQuality) -> io::Result<()> {
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

fn write_explain(out: &mut dyn Write, e: &MosExplanation) -> io::Result<()> {
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
}
