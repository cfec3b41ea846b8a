//! Scanning one capture file: decode every packet, parse SIP, build message rows and partial
//! dialog summaries. Files are scanned in parallel; everything returned merges commutatively.
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use crate::decode::{
    Datagram, DecodeConfig, DecodeStats, Decoder, DedupConfig, Deduplicator, Verdict,
};
use crate::sip::correlate::CorrelateConfig;
use crate::sip::dialog::{DialogSummary, Seen};
use crate::sip::{self, scanner};
use crate::source::open_capture;
use crate::store::record::{MessageRecord, Transport};

#[derive(Clone, Debug)]
pub struct ScanConfig {
    pub decode: DecodeConfig,
    pub correlate: CorrelateConfig,
    pub dedup: DedupConfig,
    /// Requests (INVITE, REGISTER) per source IP per minute above which a source is a flood.
    pub flood_per_minute: u32,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            decode: DecodeConfig::default(),
            correlate: CorrelateConfig::default(),
            dedup: DedupConfig::default(),
            flood_per_minute: 300,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct FileStats {
    pub packets: u64,
    pub bytes: u64,
    pub sip_messages: u64,
    pub malformed_sip: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub truncated_at: Option<u64>,
    /// Offset of a record no capture format allows (absurd caplen): reading stopped there.
    pub corrupt_at: Option<u64>,
    /// HEP copies of raw messages dropped (issue: one message seen twice).
    pub hep_mirrors: u64,
    /// SPAN duplicates dropped (only with dedup on).
    pub span_duplicates: u64,
    pub decode: DecodeStats,
}

/// What one file contributes to a run.
#[derive(Debug, Default)]
pub struct FileScan {
    pub file_id: u32,
    pub messages: Vec<MessageRecord>,
    pub dialogs: HashMap<String, DialogSummary>,
    /// INVITE/REGISTER counts per (source, minute): a count, so it merges across files exactly.
    pub request_rate: HashMap<(IpAddr, i64), u32>,
    pub stats: FileStats,
    /// The file could not be opened or broke off; rows read before the break are kept.
    pub error: Option<String>,
}

/// Capture time replayed from the end of the previous ring file before a file is scanned.
pub const PREROLL_NS: i64 = 5_000_000_000;

/// The file before this one in its ring (same directory, previous in name order), whose last
/// seconds are decoded first so that a TCP message or IP datagram cut by the rotation is
/// completed here; messages the pre-roll completes belong to that file and are discarded.
#[derive(Clone, Debug)]
pub struct Predecessor {
    pub path: std::path::PathBuf,
    pub file_id: u32,
}

fn preroll(pred: &Predecessor, decoder: &mut Decoder, dedup: &mut Deduplicator) {
    let Ok(mut reader) = open_capture(&pred.path, pred.file_id) else {
        return;
    };
    let mut last = None;
    while let Ok(Some(p)) = reader.next_packet() {
        last = Some(p.ts_ns);
    }
    let Some(last) = last else { return };
    let Ok(mut reader) = open_capture(&pred.path, pred.file_id) else {
        return;
    };
    while let Ok(Some(p)) = reader.next_packet() {
        if p.ts_ns >= last.saturating_sub(PREROLL_NS) {
            let now = p.ts_ns;
            decoder.decode(&p, &mut |dg: &Datagram<'_>| {
                dedup.push(dg, now);
            });
        }
    }
}

/// HEP capture ids of the packets of a ring file written by `sipidx capture --hep-listen`, from
/// the side table `hep-nodes.jsonl` beside it (schemas/capture-ring.md): (first index, count, id).
fn hep_side_table(path: &Path) -> Vec<(u64, u64, u32)> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string(dir.join("hep-nodes.jsonl")) else {
        return Vec::new();
    };
    let name = name.to_string_lossy();
    let mut out = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["file"].as_str() != Some(&*name) {
            continue;
        }
        let Some(id) = v["capture_id"].as_u64() else {
            continue;
        };
        for r in v["ranges"].as_array().into_iter().flatten() {
            if let (Some(first), Some(count)) = (r[0].as_u64(), r[1].as_u64()) {
                out.push((first, count, id as u32));
            }
        }
    }
    out
}

/// Scan `path` as file `file_id`, after replaying the tail of its predecessor in the ring.
pub fn scan_file(
    path: &Path,
    file_id: u32,
    predecessor: Option<&Predecessor>,
    cfg: &ScanConfig,
) -> FileScan {
    let mut scan = FileScan {
        file_id,
        ..Default::default()
    };
    let mut reader = match open_capture(path, file_id) {
        Ok(r) => r,
        Err(e) => {
            scan.error = Some(e.to_string());
            return scan;
        }
    };
    let mut decoder = Decoder::new(cfg.decode.clone());
    let mut dedup = Deduplicator::new(cfg.dedup.clone());
    if let Some(pred) = predecessor {
        preroll(pred, &mut decoder, &mut dedup);
    }
    let mut malformed = 0u64;
    // Kept SIP messages by dedup sequence number: a later raw copy may withdraw a HEP copy kept
    // first, so dialogs are folded only once the file is done.
    let mut kept: Vec<Option<(MessageRecord, Seen)>> = Vec::new();
    let mut by_seq: HashMap<u64, usize> = HashMap::new();
    let now_ns = std::cell::Cell::new(0i64);
    let packet_index = std::cell::Cell::new(0u64);
    let hep_ids = hep_side_table(path);
    let mut on_datagram = |dg: &Datagram<'_>| {
        let verdict = dedup.push(dg, now_ns.get());
        let seq = match verdict {
            Verdict::Keep { seq } => seq,
            Verdict::KeepMirrored {
                seq,
                mirror,
                withdraw,
            } => {
                if let Some(i) = by_seq.remove(&withdraw) {
                    kept[i] = None;
                }
                let _ = mirror;
                seq
            }
            Verdict::Duplicate { .. } => return,
            Verdict::Mirror { of, mirror } => {
                if let Some(Some((m, _))) = by_seq.get(&of).and_then(|i| kept.get_mut(*i)) {
                    m.hep_mirror_capture_id = Some(mirror.capture_id.unwrap_or(0));
                }
                return;
            }
        };
        if !sip::looks_like_sip(dg.payload) {
            return;
        }
        let msg = match sip::parse(dg.payload) {
            Ok(m) => m,
            Err(_) => {
                malformed += 1;
                return;
            }
        };
        let Some(call_id) = msg.call_id else {
            malformed += 1;
            return;
        };
        let call_id = String::from_utf8_lossy(call_id).into_owned();
        let seen = Seen {
            ts_ns: dg.ts_ns,
            src_ip: dg.src,
            src_port: dg.src_port,
            dst_ip: dg.dst,
            dst_port: dg.dst_port,
        };
        let mut rec = message_record(dg, &msg, call_id);
        if rec.hep_capture_id.is_none() && !hep_ids.is_empty() {
            // a packet rebuilt from HEP by `sipidx capture`: its capture id is in the side table
            let i = packet_index.get();
            rec.hep_capture_id = hep_ids
                .iter()
                .find(|(first, count, _)| (*first..first + count).contains(&i))
                .map(|(_, _, id)| *id);
        }
        if let Verdict::KeepMirrored { mirror, .. } = verdict {
            rec.hep_mirror_capture_id = Some(mirror.capture_id.unwrap_or(0));
        }
        by_seq.insert(seq, kept.len());
        kept.push(Some((rec, seen)));
    };
    loop {
        match reader.next_packet() {
            Ok(Some(p)) => {
                scan.stats.packets += 1;
                scan.stats.bytes += p.data.len() as u64;
                if scan.stats.first_ts_ns.is_none() {
                    scan.stats.first_ts_ns = Some(p.ts_ns);
                }
                scan.stats.last_ts_ns = Some(p.ts_ns);
                now_ns.set(p.ts_ns);
                decoder.decode(&p, &mut on_datagram);
                packet_index.set(packet_index.get() + 1);
            }
            Ok(None) => break,
            Err(e) => {
                scan.error = Some(e.to_string());
                break;
            }
        }
    }
    decoder.finish(&mut on_datagram);
    scan.stats.truncated_at = reader.stats().truncated_at;
    scan.stats.corrupt_at = reader.stats().corrupt_at;
    scan.stats.decode = decoder.stats().clone();
    scan.stats.malformed_sip = malformed;
    scan.stats.hep_mirrors = dedup.stats().hep_mirrors;
    scan.stats.span_duplicates = dedup.stats().span_duplicates;

    let mut dialogs: HashMap<String, DialogSummary> = HashMap::new();
    let mut rate: HashMap<(IpAddr, i64), u32> = HashMap::new();
    let mut messages = Vec::with_capacity(kept.len());
    for (rec, seen) in kept.into_iter().flatten() {
        if let Ok(msg) = sip::parse(rec.text.as_bytes()) {
            match dialogs.get_mut(&rec.call_id) {
                Some(d) => d.observe_with(seen, &msg, &cfg.correlate),
                None => {
                    let mut d = DialogSummary::new(&rec.call_id);
                    d.observe_with(seen, &msg, &cfg.correlate);
                    dialogs.insert(rec.call_id.clone(), d);
                }
            }
            if matches!(msg.method(), Some(b"INVITE") | Some(b"REGISTER"))
                && msg.to.and_then(|t| t.tag).is_none()
            {
                *rate
                    .entry((seen.src_ip, seen.ts_ns.div_euclid(60_000_000_000)))
                    .or_default() += 1;
            }
        }
        messages.push(rec);
    }
    scan.stats.sip_messages = messages.len() as u64;
    scan.messages = messages;
    scan.dialogs = dialogs;
    scan.request_rate = rate;
    scan
}

fn text(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// One message row from a decoded datagram and its parsed SIP message.
pub fn message_record(dg: &Datagram<'_>, msg: &sip::Message<'_>, call_id: String) -> MessageRecord {
    let from_uri = msg.from.and_then(|f| f.uri);
    let to_uri = msg.to.and_then(|f| f.uri);
    let ruri = msg.request_uri();
    let ua = msg.user_agent.or(msg.server);
    let loc = dg.locations.first().copied().unwrap_or_default();
    MessageRecord {
        ts_ns: dg.ts_ns,
        src_ip: dg.src.to_string(),
        dst_ip: dg.dst.to_string(),
        src_port: dg.src_port,
        dst_port: dg.dst_port,
        transport: match dg.transport {
            crate::decode::Transport::Udp => Transport::Udp,
            crate::decode::Transport::Tcp => Transport::Tcp,
            crate::decode::Transport::Sctp => Transport::Sctp,
        },
        encap: dg.encap.name(),
        vlan: dg.vlan,
        method: text(msg.method()),
        status: msg.status(),
        reason: match msg.start {
            sip::StartLine::Response { reason, .. } => text(Some(reason)),
            _ => None,
        },
        call_id,
        cseq_num: msg.cseq.map(|c| c.number),
        cseq_method: text(msg.cseq.map(|c| c.method)),
        from_user: text(from_uri.and_then(|u| u.user)),
        from_host: text(from_uri.map(|u| u.host)),
        from_tag: text(msg.from.and_then(|f| f.tag)),
        from_display: text(msg.from.and_then(|f| f.display_name)),
        to_user: text(to_uri.and_then(|u| u.user)),
        to_host: text(to_uri.map(|u| u.host)),
        to_tag: text(msg.to.and_then(|f| f.tag)),
        ruri_user: text(ruri.and_then(|u| u.user)),
        ruri_host: text(ruri.map(|u| u.host)),
        user_agent: text(ua),
        contact: text(msg.contact),
        pai: text(msg.p_asserted_identity),
        x_call_id: text(msg.x_call_id),
        content_type: text(msg.content_type),
        size: msg.raw.len() as u32,
        text: String::from_utf8_lossy(msg.raw).into_owned(),
        file_id: loc.file_id,
        offset: loc.offset,
        record_len: loc.record_len,
        hep_capture_id: dg.hep.and_then(|h| h.capture_id),
        hep_mirror_capture_id: None,
        scanner: ua.is_some_and(scanner::is_scanner_user_agent),
    }
}
