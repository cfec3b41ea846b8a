//! RTCP and endpoint quality reports: the rows of `rtcp_reports` and `qos_reports`, and the
//! sender-report times round-trip times are measured from.

use super::feed::Origin;
use super::flows::Maps;
use super::MediaPass;
use crate::rtp::rtcp::{self, RtcpPacket, XrBlock};
use crate::rtp::vq;
use crate::sip;
use crate::store::record::{QosReportRecord, RtcpReportRecord};
use crate::store::StoreError;

impl MediaPass<'_> {
    pub(super) fn rtcp(
        &mut self,
        o: &Origin,
        payload: &[u8],
        call: Option<String>,
    ) -> Result<(), StoreError> {
        let loc = o.location;
        let base = RtcpReportRecord {
            ts_ns: o.ts_ns,
            src_ip: o.src.to_string(),
            src_port: o.src_port,
            dst_ip: o.dst.to_string(),
            dst_port: o.dst_port,
            file_id: loc.file_id,
            offset: loc.offset,
            ..Default::default()
        };
        let m = &mut self.state.maps;
        let call_of = |m: &Maps, ssrc: Option<u32>| {
            call.clone()
                .or_else(|| ssrc.and_then(|s| m.ssrc_call.get(&s).map(|c| c.0.clone())))
        };
        let mut rows: Vec<RtcpReportRecord> = Vec::new();
        let mut qos: Vec<QosReportRecord> = Vec::new();
        for pkt in rtcp::packets(payload) {
            let Ok(pkt) = pkt else { break };
            match pkt {
                RtcpPacket::SenderReport(sr) => {
                    note_sr(m, sr.ssrc(), sr.ntp_middle(), o.ts_ns);
                    let mut any = false;
                    for b in sr.report_blocks() {
                        any = true;
                        let mut row = report_row(m, &base, "SR", sr.ssrc(), &b, o.ts_ns);
                        row.call_id =
                            call_of(m, Some(b.ssrc)).or_else(|| call_of(m, Some(sr.ssrc())));
                        row.sender_packets = Some(sr.packet_count());
                        row.sender_octets = Some(sr.octet_count());
                        rows.push(row);
                    }
                    if !any {
                        rows.push(RtcpReportRecord {
                            packet_type: "SR".into(),
                            block: "sender-info".into(),
                            reporter_ssrc: sr.ssrc(),
                            call_id: call_of(m, Some(sr.ssrc())),
                            sender_packets: Some(sr.packet_count()),
                            sender_octets: Some(sr.octet_count()),
                            ..base.clone()
                        });
                    }
                }
                RtcpPacket::ReceiverReport(rr) => {
                    for b in rr.report_blocks() {
                        let mut row = report_row(m, &base, "RR", rr.ssrc, &b, o.ts_ns);
                        row.call_id = call_of(m, Some(b.ssrc).or(Some(rr.ssrc)));
                        rows.push(row);
                    }
                }
                RtcpPacket::ExtendedReport(xr) => {
                    for block in xr.blocks() {
                        let Ok(block) = block else { break };
                        match block {
                            XrBlock::VoipMetrics(v) => {
                                let ms = |x: u16| Some(f64::from(x));
                                let row = RtcpReportRecord {
                                    packet_type: "XR".into(),
                                    block: "voip-metrics".into(),
                                    reporter_ssrc: xr.ssrc,
                                    source_ssrc: Some(v.ssrc),
                                    call_id: call_of(m, Some(v.ssrc)),
                                    loss_rate_pct: Some(v.loss_fraction() * 100.0),
                                    discard_rate_pct: Some(v.discard_fraction() * 100.0),
                                    burst_density_pct: Some(f64::from(v.burst_density) / 2.56),
                                    gap_density_pct: Some(f64::from(v.gap_density) / 2.56),
                                    round_trip_delay_ms: ms(v.round_trip_delay),
                                    end_system_delay_ms: ms(v.end_system_delay),
                                    r_factor: v.r_factor().map(f64::from),
                                    mos_lq: v.mos_lq(),
                                    mos_cq: v.mos_cq(),
                                    jb_nominal_ms: ms(v.jb_nominal),
                                    jb_maximum_ms: ms(v.jb_maximum),
                                    ..base.clone()
                                };
                                qos.push(QosReportRecord {
                                    ts_ns: o.ts_ns,
                                    call_id: row.call_id.clone(),
                                    kind: "rtcp-xr".into(),
                                    side: Some("receiver".into()),
                                    reporter_ip: base.src_ip.clone(),
                                    reporter_port: base.src_port,
                                    peer_ip: Some(base.dst_ip.clone()),
                                    peer_port: Some(base.dst_port),
                                    ssrc: Some(v.ssrc),
                                    loss_pct: row.loss_rate_pct,
                                    discard_pct: row.discard_rate_pct,
                                    rtt_ms: row.round_trip_delay_ms,
                                    mos_lq: row.mos_lq,
                                    mos_cq: row.mos_cq,
                                    r_factor: row.r_factor,
                                    fields: serde_json::to_string(&v).unwrap_or_default(),
                                    file_id: base.file_id,
                                    offset: base.offset,
                                    ..Default::default()
                                });
                                rows.push(row);
                            }
                            XrBlock::StatisticsSummary(s) => {
                                let rate = m.ssrc_call.get(&s.ssrc).map_or(0, |c| c.1);
                                rows.push(RtcpReportRecord {
                                    packet_type: "XR".into(),
                                    block: "statistics-summary".into(),
                                    reporter_ssrc: xr.ssrc,
                                    source_ssrc: Some(s.ssrc),
                                    call_id: call_of(m, Some(s.ssrc)),
                                    cumulative_lost: s.lost_packets.map(i64::from),
                                    jitter: s.mean_jitter,
                                    jitter_ms: s
                                        .mean_jitter
                                        .filter(|_| rate != 0)
                                        .map(|j| f64::from(j) * 1000.0 / f64::from(rate)),
                                    ..base.clone()
                                });
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        for r in &rows {
            if let (Some(ssrc), Some(rtt)) = (r.source_ssrc, r.rtt_ms) {
                m.rtt_ms.insert(ssrc, rtt);
            }
        }
        if !self.keeps(loc.file_id) {
            return Ok(());
        }
        for r in rows {
            self.rtcp.push(r)?;
            self.out.rtcp_rows += 1;
        }
        for q in qos {
            self.qos.push(q)?;
            self.out.qos_rows += 1;
        }
        Ok(())
    }
}

/// Keeps the last four SRs per sender (an RR's LSR echoes a recent one).
pub(super) fn note_sr(m: &mut Maps, ssrc: u32, ntp_middle: u32, ts_ns: i64) {
    let v = m.sr_seen.entry(ssrc).or_default();
    if v.len() == 4 {
        v.remove(0);
    }
    v.push((ntp_middle, ts_ns));
}

fn report_row(
    m: &Maps,
    base: &RtcpReportRecord,
    kind: &str,
    reporter: u32,
    b: &rtcp::ReportBlock,
    ts_ns: i64,
) -> RtcpReportRecord {
    let rate = m.ssrc_call.get(&b.ssrc).map_or(0, |c| c.1);
    // RTT on the capture clock: the echoed SR's capture time is known when we saw it.
    let rtt = (b.lsr != 0)
        .then(|| {
            let seen = m.sr_seen.get(&b.ssrc)?;
            let &(_, sr_ns) = seen.iter().rev().find(|(mid, _)| *mid == b.lsr)?;
            let dlsr_ns = (i64::from(b.dlsr) * 1_000_000_000) >> 16;
            let rtt = ts_ns - sr_ns - dlsr_ns;
            (rtt >= 0).then(|| rtt as f64 / 1e6)
        })
        .flatten();
    RtcpReportRecord {
        packet_type: kind.into(),
        block: "report-block".into(),
        reporter_ssrc: reporter,
        source_ssrc: Some(b.ssrc),
        fraction_lost_pct: Some(f64::from(b.fraction_lost) * 100.0 / 256.0),
        cumulative_lost: Some(i64::from(b.cumulative_lost)),
        extended_highest_seq: Some(b.extended_highest_seq),
        jitter: Some(b.jitter),
        jitter_ms: (rate != 0).then(|| f64::from(b.jitter) * 1000.0 / f64::from(rate)),
        lsr: Some(b.lsr),
        dlsr: Some(b.dlsr),
        rtt_ms: rtt,
        ..base.clone()
    }
}

pub(super) fn vq_rows(r: &vq::VqReport, base: &QosReportRecord) -> Vec<QosReportRecord> {
    let mut out = Vec::new();
    let kind = r.kind.map_or("vq-session", vq::VqKind::as_str);
    for (side, metrics, own, peer) in [
        ("local", &r.local, &r.local_addr, &r.remote_addr),
        ("remote", &r.remote, &r.remote_addr, &r.local_addr),
    ] {
        let Some(mt) = metrics else { continue };
        let mut fields = serde_json::Map::new();
        for (t, k, v) in &mt.fields {
            fields.insert(format!("{t}.{k}"), serde_json::Value::String(v.clone()));
        }
        for (t, v) in &r.other {
            fields.insert(t.clone(), serde_json::Value::String(v.clone()));
        }
        if let Some(q) = &r.qualifier {
            fields.insert("qualifier".into(), serde_json::Value::String(q.clone()));
        }
        out.push(QosReportRecord {
            call_id: r.call_id.clone().or_else(|| base.call_id.clone()),
            kind: kind.into(),
            side: Some(side.into()),
            peer_ip: peer.ip.clone(),
            peer_port: peer.port,
            ssrc: own.ssrc,
            codec: mt.codec().map(str::to_owned),
            loss_pct: mt.network_loss_pct(),
            discard_pct: mt.discard_pct(),
            jitter_ms: mt.jitter_ms(),
            jitter_raw: mt.jitter_ms(),
            max_jitter_ms: mt.mean_abs_jitter_ms(),
            rtt_ms: mt.round_trip_ms(),
            mos_lq: mt.mos_lq(),
            mos_cq: mt.mos_cq(),
            r_factor: mt.r_factor(),
            fields: serde_json::Value::Object(fields).to_string(),
            ..base.clone()
        });
    }
    out
}

pub(super) fn stat_row(
    stat: &sip::rtp_stat::RtpStat<'_>,
    base: &QosReportRecord,
) -> QosReportRecord {
    use sip::rtp_stat::StatHeader;
    let mut fields = serde_json::Map::new();
    for (k, v) in stat.fields() {
        fields.insert(
            String::from_utf8_lossy(k).into_owned(),
            serde_json::Value::String(String::from_utf8_lossy(v).into_owned()),
        );
    }
    let side = match stat.header {
        StatHeader::RtpRxStat => Some("rx"),
        StatHeader::RtpTxStat => Some("tx"),
        _ => None,
    };
    // Only Cisco CUBE's P-RTP-Stat is known to give JI in ms; the rest vary by vendor.
    let jitter_ms = (stat.header == StatHeader::PRtpStat)
        .then(|| stat.jitter())
        .flatten();
    let lost = stat.packets_lost().map(|l| l as i64);
    let loss_pct = match (lost, stat.packets_received()) {
        (Some(l), Some(r)) if l + r as i64 > 0 => Some(l as f64 * 100.0 / (l + r as i64) as f64),
        _ => None,
    };
    let ip = stat
        .get("IP")
        .map(|v| String::from_utf8_lossy(v).into_owned());
    QosReportRecord {
        kind: stat.header.name().into(),
        side: side.map(Into::into),
        codec: stat
            .decoder()
            .or(stat.encoder())
            .map(|c| String::from_utf8_lossy(c).into_owned()),
        peer_ip: ip,
        packets_sent: stat.packets_sent(),
        packets_received: stat.packets_received(),
        packets_lost: lost,
        loss_pct,
        jitter_ms,
        jitter_raw: stat.jitter(),
        rtt_ms: stat.latency_ms(),
        mos_lq: stat.mos(),
        duration_s: stat.duration_s().map(|d| d as f64),
        fields: serde_json::Value::Object(fields).to_string(),
        ..base.clone()
    }
}
