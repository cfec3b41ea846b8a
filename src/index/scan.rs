//! Scanning one capture file: decode every packet, parse SIP, build message rows and partial
//! dialog summaries. Files are scanned in parallel; everything returned merges commutatively.
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::dialogs::{approx_bytes, merge_by_call_id, PartsWriter};
use super::spill;
use super::IndexError;
use crate::decode::{
    Datagram, DecodeConfig, DecodeStats, Decoder, DedupConfig, Deduplicator, DelayBuffer,
    DelayLimits, Released,
};
use crate::sip::correlate::CorrelateConfig;
use crate::sip::dialog::{DialogSummary, Seen};
use crate::sip::{self, scanner};
use crate::source::{open_capture, Packet};
use crate::store::record::MessageRecord;

#[derive(Clone, Debug)]
pub struct ScanConfig {
    pub decode: DecodeConfig,
    pub correlate: CorrelateConfig,
    pub dedup: DedupConfig,
    /// How many kept messages (and bytes) may wait out the HEP mirror window; beyond it the
    /// oldest leaves early (counted in `released_early`).
    pub delay: DelayLimits,
    /// Requests (INVITE, REGISTER) per source IP per minute above which a source is a flood.
    pub flood_per_minute: u32,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            decode: DecodeConfig::new(crate::sip::stream_start),
            correlate: CorrelateConfig::default(),
            dedup: DedupConfig::default(),
            delay: DelayLimits::default(),
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
    /// Messages that left the HEP window early because it was full (`ScanConfig::delay`).
    pub released_early: u64,
    /// Sorted runs of dialog summaries spilled over the budget (streaming scans only).
    pub dialog_spills: u64,
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
    /// Earliest and latest capture time of the file's SIP messages (bounds its dialogs' starts).
    pub dialog_span: Option<(i64, i64)>,
    pub stats: FileStats,
    /// The file could not be opened or broke off; rows read before the break are kept.
    pub error: Option<String>,
}

/// Capture time replayed from the previous ring file before a file is scanned: its packets from
/// this long before the file's first packet on.
pub const PREROLL_NS: i64 = 5_000_000_000;

/// The file before this one in its ring (same directory, previous in capture-time order), whose last
/// seconds are decoded first so that a TCP message or IP datagram cut by the rotation is
/// completed here; messages the pre-roll completes belong to that file and are discarded.
#[derive(Clone, Debug)]
pub struct Predecessor {
    pub path: std::path::PathBuf,
    pub file_id: u32,
}

/// The state a file's scan starts from: a fresh decoder and deduplicator that have seen the
/// predecessor's packets from `PREROLL_NS` before the file's first packet on, the deduplicator
/// only the datagrams the scan itself gives it (those that look like SIP).
///
/// Built in one of two ways with the same result: replaying the predecessor (`replay`, one walk
/// of it), or beside the predecessor's own scan when the same worker scans the file next
/// (`scan_file_streaming`'s `successor`), which costs no walk at all. Replaying twice (once for
/// the predecessor's last time, once to decode) was a third of a trunk scan's CPU; anchoring the
/// window on this file's first packet instead of the predecessor's last one is what lets it be
/// built before the predecessor's end is known — in a ring the two are a packet apart.
pub struct Preroll {
    /// The predecessor it was built from, and the capture time from which it replayed.
    of_file: u32,
    from_ns: i64,
    decoder: Decoder,
    dedup: Deduplicator,
}

impl Preroll {
    fn new(of_file: u32, from_ns: i64, cfg: &ScanConfig) -> Preroll {
        Preroll {
            of_file,
            from_ns,
            decoder: Decoder::new(cfg.decode.clone()),
            dedup: Deduplicator::new(cfg.dedup.clone()),
        }
    }

    /// One packet of the predecessor, in file order.
    fn feed(&mut self, p: &Packet<'_>) {
        if p.ts_ns < self.from_ns {
            return;
        }
        let (dedup, now) = (&mut self.dedup, p.ts_ns);
        self.decoder.decode(p, |dg: &Datagram<'_>| {
            if sip::looks_like_sip(dg.payload) {
                dedup.push(dg, now);
            }
        });
    }

    fn replay(pred: &Predecessor, from_ns: i64, cfg: &ScanConfig) -> Preroll {
        let mut preroll = Preroll::new(pred.file_id, from_ns, cfg);
        if let Ok(mut reader) = open_capture(&pred.path, pred.file_id) {
            loop {
                let next = reader.next_packet();
                let Ok(Some(p)) = &next else { break };
                preroll.feed(p);
            }
        }
        preroll
    }
}

/// Where the pre-roll of the file after `path` starts: `PREROLL_NS` before its first packet.
pub fn preroll_start(path: &Path, file_id: u32) -> Option<i64> {
    Some(first_packet_ns(path, file_id)?.saturating_sub(PREROLL_NS))
}

/// The capture time of a file's first packet (None: unreadable or no packets): the key a run
/// orders its files by, and a ring's files by, whatever their names.
pub fn first_packet_ns(path: &Path, file_id: u32) -> Option<i64> {
    let mut reader = open_capture(path, file_id).ok()?;
    let first = reader.next_packet().ok()??;
    Some(first.ts_ns)
}

/// A file's neighbours in its ring, as the scan uses them.
#[derive(Default)]
pub struct RingLinks<'a> {
    pub predecessor: Option<&'a Predecessor>,
    /// The pre-roll built beside the predecessor's scan, if the caller has it; used when it was
    /// built from `predecessor` and from this file's pre-roll start, replayed otherwise.
    pub carried: Option<Preroll>,
    /// Build the next file's pre-roll during this scan, from this time (its [`preroll_start`]).
    pub successor: Option<i64>,
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

/// Dialog summaries and request rates folded from a file's messages as they leave the scan.
#[derive(Default)]
struct Fold {
    dialogs: HashMap<String, DialogSummary>,
    rate: HashMap<(IpAddr, i64), u32>,
    /// [`approx_bytes`] of `dialogs` plus the map's own cost per entry.
    bytes: usize,
    /// Earliest first message of any dialog of the file, latest message.
    span: Option<(i64, i64)>,
}

/// A map entry's cost beside the summary: the key (its copy of the Call-ID is counted apart), the
/// control byte, and the free slots of a table kept at most 7/8 full.
const ENTRY_BYTES: usize =
    std::mem::size_of::<String>() + 1 + std::mem::size_of::<(String, DialogSummary)>() / 7;

impl Fold {
    fn observe(&mut self, rec: &MessageRecord, seen: Seen, cfg: &ScanConfig) {
        let Ok(msg) = sip::parse(rec.text.as_bytes()) else {
            return;
        };
        self.span = Some(match self.span {
            Some((a, b)) => (a.min(seen.ts_ns), b.max(seen.ts_ns)),
            None => (seen.ts_ns, seen.ts_ns),
        });
        match self.dialogs.get_mut(&rec.call_id) {
            Some(d) => {
                let before = approx_bytes(d);
                d.observe_with(seen, &msg, &cfg.correlate.headers);
                self.bytes = (self.bytes + approx_bytes(d)).saturating_sub(before);
            }
            None => {
                let mut d = DialogSummary::new(&rec.call_id);
                d.observe_with(seen, &msg, &cfg.correlate.headers);
                self.bytes +=
                    approx_bytes(&d) + ENTRY_BYTES + rec.call_id.len().next_multiple_of(16) + 16;
                self.dialogs.insert(rec.call_id.clone(), d);
            }
        }
        if matches!(msg.method(), Some(b"INVITE") | Some(b"REGISTER"))
            && msg.to.and_then(|t| t.tag).is_none()
        {
            *self
                .rate
                .entry((seen.src_ip, seen.ts_ns.div_euclid(60_000_000_000)))
                .or_default() += 1;
        }
    }

    /// The dialogs so far, sorted by Call-ID; the fold starts afresh (rates stay).
    fn take_sorted(&mut self) -> Vec<DialogSummary> {
        let mut v: Vec<DialogSummary> = self.dialogs.drain().map(|(_, d)| d).collect();
        v.sort_by(|a, b| a.call_id.cmp(&b.call_id));
        self.dialogs.shrink_to_fit();
        self.bytes = 0;
        v
    }
}

/// Decode `path` (after its predecessor's tail) and hand every kept SIP message to `each` once
/// its HEP mirror window has passed; `each` returns false to stop early. Returns the file's
/// statistics and the error that ended it, if any.
fn scan_messages(
    path: &Path,
    file_id: u32,
    ring: RingLinks<'_>,
    cfg: &ScanConfig,
    each: &mut dyn FnMut(MessageRecord, Seen) -> bool,
) -> (FileStats, Option<String>, Option<Preroll>) {
    let mut stats = FileStats::default();
    let mut reader = match open_capture(path, file_id) {
        Ok(r) => r,
        Err(e) => return (stats, Some(e.to_string()), None),
    };
    let mut next = reader.next_packet();
    let from_ns = match &next {
        Ok(Some(p)) => Some(p.ts_ns.saturating_sub(PREROLL_NS)),
        _ => None,
    };
    // a file without packets has nothing a pre-roll could complete
    let preroll = match (ring.predecessor, from_ns) {
        (Some(pred), Some(from_ns)) => Some(
            ring.carried
                .filter(|c| c.of_file == pred.file_id && c.from_ns == from_ns)
                .unwrap_or_else(|| Preroll::replay(pred, from_ns, cfg)),
        ),
        _ => None,
    };
    let mut successor = ring
        .successor
        .map(|from_ns| Preroll::new(file_id, from_ns, cfg));
    // The pre-roll's own counts belong to the predecessor's scan, which made them too.
    let (mut decoder, dedup) = match preroll {
        Some(p) => (p.decoder, p.dedup),
        None => (
            Decoder::new(cfg.decode.clone()),
            Deduplicator::new(cfg.dedup.clone()),
        ),
    };
    let decoded_before = decoder.stats().clone();
    let deduped_before = dedup.stats().clone();
    // Kept SIP messages wait here for the HEP window: a later raw copy may withdraw a HEP copy
    // kept first, or a later HEP copy note itself on the raw one. Only that window is held.
    let mut held: DelayBuffer<Option<(MessageRecord, Seen)>> =
        DelayBuffer::with_dedup(dedup, cfg.delay);
    let mut malformed = 0u64;
    let stop = std::cell::Cell::new(false);
    let now_ns = std::cell::Cell::new(0i64);
    let packet_index = std::cell::Cell::new(0u64);
    let hep_ids = hep_side_table(path);
    let mut emit = |r: Released<Option<(MessageRecord, Seen)>>| {
        if let Some((mut rec, seen)) = r.item {
            if let Some(m) = r.mirrored_by {
                rec.hep_mirror_capture_id = Some(m.capture_id.unwrap_or(0));
            }
            if !stop.get() {
                stop.set(!each(rec, seen));
            }
        }
    };
    let mut on_datagram = |dg: &Datagram<'_>| {
        // Media, the bulk of a trunk, can neither be a row nor pair with one: kept out of the
        // delay buffer, whose queue would otherwise hold a second of every packet.
        if !sip::looks_like_sip(dg.payload) {
            return;
        }
        let make = || {
            let Ok(msg) = sip::parse(dg.payload) else {
                malformed += 1;
                return (None, 0);
            };
            let Some(call_id) = msg.call_id else {
                malformed += 1;
                return (None, 0);
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
            let bytes = rec.text.len() + 512;
            (Some((rec, seen)), bytes)
        };
        held.push(dg, now_ns.get(), make, &mut emit);
    };
    let mut error = None;
    while !stop.get() {
        // matched by reference: moving the packet out copied it with wide loads over its narrow
        // stores (a store-forwarding stall per packet)
        match &next {
            Ok(Some(p)) => {
                stats.packets += 1;
                stats.bytes += p.data.len() as u64;
                if stats.first_ts_ns.is_none() {
                    stats.first_ts_ns = Some(p.ts_ns);
                }
                stats.last_ts_ns = Some(p.ts_ns);
                now_ns.set(p.ts_ns);
                if let Some(s) = successor.as_mut() {
                    s.feed(p);
                }
                decoder.decode(p, &mut on_datagram);
                packet_index.set(packet_index.get() + 1);
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
        next = reader.next_packet();
    }
    if stop.get() {
        successor = None; // the file was not read to its end
    }
    decoder.finish(&mut on_datagram);
    held.finish(&mut emit);
    stats.truncated_at = reader.stats().truncated_at;
    stats.corrupt_at = reader.stats().corrupt_at;
    stats.decode = decoder.stats().since(&decoded_before);
    stats.malformed_sip = malformed;
    let deduped = held.dedup().stats();
    stats.hep_mirrors = deduped.hep_mirrors - deduped_before.hep_mirrors;
    stats.span_duplicates = deduped.span_duplicates - deduped_before.span_duplicates;
    stats.released_early = held.stats().released_early;
    (stats, error, successor)
}

/// Scan `path` as file `file_id`, after replaying the tail of its predecessor in the ring, and
/// return everything it gives in memory (a window reindex; see [`scan_file_streaming`] for runs).
pub fn scan_file(
    path: &Path,
    file_id: u32,
    predecessor: Option<&Predecessor>,
    cfg: &ScanConfig,
) -> FileScan {
    let mut fold = Fold::default();
    let mut messages = Vec::new();
    let ring = RingLinks {
        predecessor,
        ..RingLinks::default()
    };
    let (stats, error, _) = scan_messages(path, file_id, ring, cfg, &mut |rec, seen| {
        fold.observe(&rec, seen, cfg);
        messages.push(rec);
        true
    });
    let mut scan = FileScan {
        file_id,
        stats,
        error,
        dialog_span: fold.span,
        ..Default::default()
    };
    scan.stats.sip_messages = messages.len() as u64;
    scan.messages = messages;
    scan.dialogs = fold.dialogs;
    scan.request_rate = fold.rate;
    scan
}

/// Where a streaming scan puts what it finds, and how much it may hold.
pub struct StreamTo<'a> {
    pub db: &'a Path,
    pub run: u64,
    /// Message rows go out in chunks of this many; `false` back means stop.
    pub chunk_rows: usize,
    pub messages: &'a mut dyn FnMut(Vec<MessageRecord>) -> bool,
    /// Bytes of dialog summaries held before they are spilled as a sorted run.
    pub dialog_budget: usize,
}

/// As [`scan_file`], holding at most a chunk of message rows, the HEP window and the dialog
/// budget: messages go to `to.messages` as they leave the window, dialog summaries over the budget
/// are spilled as sorted runs, and the file's dialog parts (`dialogs::PartsWriter`) are written
/// from their merge. The returned scan has no messages and no dialogs, only statistics, rates and
/// the span of its dialogs; and the next file's pre-roll when `ring.successor` asked for it.
pub fn scan_file_streaming(
    path: &Path,
    file_id: u32,
    ring: RingLinks<'_>,
    cfg: &ScanConfig,
    to: &mut StreamTo<'_>,
) -> Result<(FileScan, Option<Preroll>), IndexError> {
    let spill = spill::spill_dir(to.db, to.run);
    let mut fold = Fold::default();
    let mut chunk = Vec::new();
    let mut runs: Vec<PathBuf> = Vec::new();
    let mut sent = 0u64;
    let mut failure: Option<IndexError> = None;
    let chunk_rows = to.chunk_rows.max(1);
    let (stats, error, successor) = scan_messages(path, file_id, ring, cfg, &mut |rec, seen| {
        fold.observe(&rec, seen, cfg);
        chunk.push(rec);
        sent += 1;
        if chunk.len() >= chunk_rows && !(to.messages)(std::mem::take(&mut chunk)) {
            return false;
        }
        if fold.bytes > to.dialog_budget {
            let p = spill.join(format!("f{file_id}-{}.jsonl.zst", runs.len()));
            match write_run(&p, fold.take_sorted()) {
                Ok(p) => runs.push(p),
                Err(e) => {
                    failure = Some(e);
                    return false;
                }
            }
        }
        true
    });
    if let Some(e) = failure {
        return Err(e);
    }
    if !chunk.is_empty() && !(to.messages)(chunk) {
        return Err(IndexError::io(
            path,
            std::io::Error::other("the writer of message rows stopped"),
        ));
    }
    let rest = fold.take_sorted();
    let spilled = runs.len() as u64;
    let mut sources =
        spill::merge_runs::<DialogSummary>(&spill, &format!("f{file_id}"), runs, by_call_id)?;
    sources.push(Box::new(rest.into_iter().map(Ok)));
    let mut parts = PartsWriter::create(to.db, file_id, to.run, &cfg.correlate.headers)?;
    for d in merge_by_call_id(spill::Merge::new(sources, by_call_id)) {
        parts.push(&d?)?;
    }
    parts.finish()?;
    let mut scan = FileScan {
        file_id,
        stats,
        error,
        dialog_span: fold.span,
        request_rate: fold.rate,
        ..Default::default()
    };
    scan.stats.sip_messages = sent;
    scan.stats.dialog_spills = spilled;
    remove_spills(&spill, file_id);
    Ok((scan, successor))
}

/// Deletes a file's spilled runs once its parts are written.
fn remove_spills(dir: &Path, file_id: u32) {
    let prefix = format!("f{file_id}-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Summaries in Call-ID order.
pub fn by_call_id(a: &DialogSummary, b: &DialogSummary) -> std::cmp::Ordering {
    a.call_id.cmp(&b.call_id)
}

fn write_run(path: &Path, items: Vec<DialogSummary>) -> Result<PathBuf, IndexError> {
    let mut w = spill::RunWriter::create(path)?;
    for d in &items {
        w.push(d)?;
    }
    w.finish()
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
        transport: dg.transport,
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
