//! `sipidx grep`: SIP messages straight from capture files, like sipgrep/ngrep, no database.
//! Streams file by file (memory stays flat); `--dialog` takes a first pass to learn the Call-IDs.
//! Matching messages pass the dedup stage; while HEP mirrors are looked for, each is held back for
//! the HEP window (bounded) so that it is printed once, in capture order, with its mirror noted.
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::PathBuf;

use regex::bytes::Regex;
use serde::Serialize;

use super::filter::MessageFilter;
use crate::decode::{
    Datagram, DecodeConfig, Decoder, DedupConfig, DelayBuffer, DelayLimits, Mirror, OwnedDatagram,
    Released, Verdict,
};
use crate::output::{lossy, ngrep_time, rfc3339, sanitize, Palette};
use crate::sip;
use crate::source::{open_capture, SourceError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrepFormat {
    /// sipgrep/ngrep-like text.
    Text,
    /// One JSON object per message (NDJSON).
    Json,
    /// Only the number of matching messages.
    Count,
}

#[derive(Clone, Debug)]
pub struct GrepPlan {
    pub files: Vec<PathBuf>,
    pub filter: MessageFilter,
    /// Extended regex over the whole message text.
    pub regex: Option<Regex>,
    /// Print every message of each dialog (Call-ID) with at least one match.
    pub dialog: bool,
    pub format: GrepFormat,
    pub color: bool,
    pub decode: DecodeConfig,
    /// HEP mirrors and SPAN duplicates; a no-op config prints every copy.
    pub dedup: DedupConfig,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrepOutcome {
    /// Messages printed (or counted).
    pub matched: u64,
    /// Files that could not be read, or broke off with an error.
    pub failed_files: usize,
    /// Payloads that looked like SIP but did not parse.
    pub malformed: u64,
    /// Matching HEP copies of raw messages, dropped (the raw message is printed, marked).
    pub hep_mirrors: u64,
    /// Matching SPAN duplicates dropped (`--dedup`).
    pub duplicates: u64,
}

/// The HEP copy of a printed raw message (`mirrored_by_hep` in `grep --json`).
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MirrorJson {
    pub capture_id: Option<u32>,
    /// Byte offset of the HEP copy's record in its capture file.
    pub offset: Option<u64>,
}

impl From<Mirror> for MirrorJson {
    fn from(m: Mirror) -> Self {
        MirrorJson {
            capture_id: m.capture_id,
            offset: m.location.map(|l| l.offset),
        }
    }
}

/// The NDJSON row; field names are part of the CLI contract (README, `grep --json`).
#[derive(Serialize)]
pub struct MessageJson<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub ts: String,
    pub src_ip: String,
    pub src_port: u16,
    pub dst_ip: String,
    pub dst_port: u16,
    pub transport: &'static str,
    pub encap: Option<String>,
    pub vlan: Option<u16>,
    pub method: Option<std::borrow::Cow<'a, str>>,
    pub status: Option<u16>,
    pub reason: Option<std::borrow::Cow<'a, str>>,
    pub call_id: Option<std::borrow::Cow<'a, str>>,
    pub cseq: Option<String>,
    pub from_user: Option<std::borrow::Cow<'a, str>>,
    pub to_user: Option<std::borrow::Cow<'a, str>>,
    pub ruri_user: Option<std::borrow::Cow<'a, str>>,
    pub user_agent: Option<std::borrow::Cow<'a, str>>,
    pub hep_capture_id: Option<u32>,
    /// Set when a HEP copy of this raw message was seen in the capture (and not printed).
    pub mirrored_by_hep: Option<MirrorJson>,
    pub size: usize,
    pub file: String,
    pub offset: u64,
}

impl<'a> MessageJson<'a> {
    pub fn new(dg: &Datagram<'a>, msg: &sip::Message<'a>, file: String) -> Self {
        let reason = match msg.start {
            sip::StartLine::Response { reason, .. } => Some(lossy(reason)),
            _ => None,
        };
        MessageJson {
            kind: "message",
            ts: rfc3339(dg.ts_ns),
            src_ip: dg.src.to_string(),
            src_port: dg.src_port,
            dst_ip: dg.dst.to_string(),
            dst_port: dg.dst_port,
            transport: dg.transport.as_str(),
            encap: dg.encap.name(),
            vlan: dg.vlan,
            method: msg.method().map(lossy),
            status: msg.status(),
            reason,
            call_id: msg.call_id.map(lossy),
            cseq: msg
                .cseq
                .map(|c| format!("{} {}", c.number, String::from_utf8_lossy(c.method))),
            from_user: msg.from.and_then(|n| n.uri).and_then(|u| u.user).map(lossy),
            to_user: msg.to.and_then(|n| n.uri).and_then(|u| u.user).map(lossy),
            ruri_user: msg.request_uri().and_then(|u| u.user).map(lossy),
            user_agent: msg.user_agent.or(msg.server).map(lossy),
            hep_capture_id: dg.hep.and_then(|h| h.capture_id),
            mirrored_by_hep: None,
            size: msg.raw.len(),
            file,
            offset: dg.locations.first().map(|l| l.offset).unwrap_or(0),
        }
    }
}

/// Run grep over the plan's files. Per-file failures are reported on `err` and counted; the
/// returned error is only for output failures (a closed pipe included).
pub fn run(plan: &GrepPlan, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<GrepOutcome> {
    let mut outcome = GrepOutcome::default();
    let dialogs = if plan.dialog {
        let mut ids: HashSet<Vec<u8>> = HashSet::new();
        // Mirrors and duplicates carry the Call-ID of their original: no dedup needed here.
        let mut sink =
            |_: usize, _: i64, dg: &Datagram<'_>, msg: &sip::Message<'_>| -> io::Result<()> {
                if matches(plan, dg, msg) {
                    if let Some(id) = msg.call_id {
                        if !ids.contains(id) {
                            ids.insert(id.to_vec());
                        }
                    }
                }
                Ok(())
            };
        // The first pass only learns Call-IDs; its failures are reported by the second.
        let mut quiet = io::sink();
        let mut scratch = GrepOutcome::default();
        for_each_message(plan, &mut quiet, &mut scratch, &mut sink)?;
        Some(ids)
    } else {
        None
    };

    let mut printer = Printer {
        plan,
        palette: Palette::new(plan.color),
        out,
        matched: 0,
    };
    // Dedup runs on matching messages only: a copy matches exactly when its original does (same
    // bytes, addresses and ports), and nothing else is held.
    let mut buffer: Option<DelayBuffer<(usize, OwnedDatagram)>> = (!plan.dedup.is_noop())
        .then(|| DelayBuffer::new(plan.dedup.clone(), DelayLimits::default()));
    let mut dropped = vec![(0u64, 0u64); plan.files.len()];
    let mut emit = |file_idx: usize,
                    now_ns: i64,
                    dg: &Datagram<'_>,
                    msg: &sip::Message<'_>|
     -> io::Result<()> {
        let hit = match &dialogs {
            Some(ids) => msg.call_id.is_some_and(|id| ids.contains(id)),
            None => matches(plan, dg, msg),
        };
        if !hit {
            return Ok(());
        }
        let Some(buffer) = buffer.as_mut() else {
            return printer.print(file_idx, dg, msg, None);
        };
        let mut result = Ok(());
        let make = || {
            let owned = OwnedDatagram::new(dg);
            let size = owned.size();
            ((file_idx, owned), size)
        };
        let verdict = buffer.push(dg, now_ns, make, |r| {
            if result.is_ok() {
                result = printer.release(r);
            }
        });
        if let Some(counts) = dropped.get_mut(file_idx) {
            match verdict {
                Verdict::Mirror { .. } | Verdict::KeepMirrored { .. } => counts.0 += 1,
                Verdict::Duplicate { .. } => counts.1 += 1,
                Verdict::Keep { .. } => {}
            }
        }
        result
    };
    for_each_message(plan, err, &mut outcome, &mut emit)?;
    if let Some(buffer) = buffer.as_mut() {
        let mut result = Ok(());
        buffer.finish(|r| {
            if result.is_ok() {
                result = printer.release(r);
            }
        });
        result?;
        let early = buffer.stats().released_early;
        if early > 0 {
            writeln!(
                err,
                "sipidx: warning: dedup buffer full: {early} messages printed before their HEP \
                 window ended (a later mirror of them is dropped unmarked)"
            )?;
        }
    }
    for (path, &(mirrors, duplicates)) in plan.files.iter().zip(&dropped) {
        outcome.hep_mirrors += mirrors;
        outcome.duplicates += duplicates;
        let mut parts = Vec::new();
        if mirrors > 0 {
            parts.push(format!("{mirrors} HEP mirrors of raw messages"));
        }
        if duplicates > 0 {
            parts.push(format!("{duplicates} SPAN duplicates"));
        }
        if !parts.is_empty() {
            writeln!(
                err,
                "sipidx: {}: dropped {}",
                path.display(),
                parts.join(" and ")
            )?;
        }
    }
    outcome.matched = printer.matched;
    if plan.format == GrepFormat::Count {
        writeln!(printer.out, "{}", outcome.matched)?;
    }
    printer.out.flush()?;
    Ok(outcome)
}

/// Writes matching messages in the plan's format and counts them.
struct Printer<'p, 'w> {
    plan: &'p GrepPlan,
    palette: Palette,
    out: &'w mut dyn Write,
    matched: u64,
}

impl Printer<'_, '_> {
    fn print(
        &mut self,
        file_idx: usize,
        dg: &Datagram<'_>,
        msg: &sip::Message<'_>,
        mirror: Option<Mirror>,
    ) -> io::Result<()> {
        self.matched += 1;
        match self.plan.format {
            GrepFormat::Count => Ok(()),
            GrepFormat::Json => {
                let file = self.plan.files[file_idx].display().to_string();
                let mut row = MessageJson::new(dg, msg, file);
                row.mirrored_by_hep = mirror.map(MirrorJson::from);
                serde_json::to_writer(&mut *self.out, &row).map_err(io::Error::other)?;
                self.out.write_all(b"\n")
            }
            GrepFormat::Text => write_text(self.out, &self.palette, dg, msg, mirror),
        }
    }

    fn release(&mut self, r: Released<(usize, OwnedDatagram)>) -> io::Result<()> {
        let (file_idx, owned) = r.item;
        let dg = owned.as_datagram();
        // It parsed when it was pushed; the same bytes parse again.
        match sip::parse(&owned.payload) {
            Ok(msg) => self.print(file_idx, &dg, &msg, r.mirrored_by),
            Err(_) => Ok(()),
        }
    }
}

fn matches(plan: &GrepPlan, dg: &Datagram<'_>, msg: &sip::Message<'_>) -> bool {
    plan.filter.matches(dg, msg) && plan.regex.as_ref().is_none_or(|re| re.is_match(msg.raw))
}

fn endpoint(ip: std::net::IpAddr, port: u16) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
    }
}

fn write_text(
    out: &mut dyn Write,
    p: &Palette,
    dg: &Datagram<'_>,
    msg: &sip::Message<'_>,
    mirror: Option<Mirror>,
) -> io::Result<()> {
    let proto = match dg.transport {
        crate::decode::Transport::Udp => 'U',
        crate::decode::Transport::Tcp => 'T',
        crate::decode::Transport::Sctp => 'S',
    };
    let mut notes = String::new();
    if let Some(e) = dg.encap.name() {
        notes.push_str(&format!(" [{e}"));
        if let Some(v) = dg.vlan {
            notes.push_str(&format!(" vlan={v}"));
        }
        if let Some(id) = dg.hep.and_then(|h| h.capture_id) {
            notes.push_str(&format!(" hep-id={id}"));
        }
        notes.push(']');
    }
    if let Some(m) = mirror {
        match m.capture_id {
            Some(id) => notes.push_str(&format!(" [mirrored hep-id={id}]")),
            None => notes.push_str(" [mirrored hep]"),
        }
    }
    writeln!(
        out,
        "{}{} {} {} -> {}{}{}",
        p.header,
        proto,
        ngrep_time(dg.ts_ns),
        endpoint(dg.src, dg.src_port),
        endpoint(dg.dst, dg.dst_port),
        notes,
        p.reset
    )?;
    let text = sanitize(msg.raw, true);
    let mut lines = text.split('\n');
    if let Some(first) = lines.next() {
        let colour = match msg.status() {
            Some(code) => p.status(code),
            None => p.request,
        };
        writeln!(out, "{}{}{}", colour, first.trim_end_matches('\r'), p.reset)?;
    }
    for line in lines {
        writeln!(out, "{}", line.trim_end_matches('\r'))?;
    }
    writeln!(out)
}

/// Walk every SIP message of the plan's files in capture order, with the capture time of the record
/// that completed it. One decoder spans all files, so a TCP message split across two ring files is
/// still framed.
fn for_each_message(
    plan: &GrepPlan,
    err: &mut dyn Write,
    outcome: &mut GrepOutcome,
    f: &mut dyn FnMut(usize, i64, &Datagram<'_>, &sip::Message<'_>) -> io::Result<()>,
) -> io::Result<()> {
    let mut decoder = Decoder::new(plan.decode.clone());
    let mut malformed = 0u64;
    let mut io_error: Option<io::Error> = None;
    for (idx, path) in plan.files.iter().enumerate() {
        let mut reader = match open_capture(path, idx as u32) {
            Ok(r) => r,
            Err(e) => {
                writeln!(err, "sipidx: error: {e}")?;
                outcome.failed_files += 1;
                continue;
            }
        };
        loop {
            let packet = match reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    report_source_error(err, &e)?;
                    outcome.failed_files += 1;
                    break;
                }
            };
            let mut on_datagram = |dg: &Datagram<'_>| {
                if io_error.is_some() || !sip::looks_like_sip(dg.payload) {
                    return;
                }
                match sip::parse(dg.payload) {
                    Ok(msg) => {
                        if let Err(e) = f(idx, packet.ts_ns, dg, &msg) {
                            io_error = Some(e);
                        }
                    }
                    Err(_) => malformed += 1,
                }
            };
            decoder.decode(&packet, &mut on_datagram);
            if let Some(e) = io_error.take() {
                return Err(e);
            }
        }
        if let Some(off) = reader.stats().truncated_at {
            writeln!(
                err,
                "sipidx: warning: {}: file ends inside a record at byte offset {off}; \
                 read {} whole packets before it",
                path.display(),
                reader.stats().packets
            )?;
        }
        if let Some(off) = reader.stats().corrupt_at {
            writeln!(
                err,
                "sipidx: warning: {}: corrupt record at byte offset {off}; \
                 read {} whole packets before it, the rest is unreadable",
                path.display(),
                reader.stats().packets
            )?;
        }
    }
    let mut on_datagram = |dg: &Datagram<'_>| {
        if io_error.is_some() || !sip::looks_like_sip(dg.payload) {
            return;
        }
        match sip::parse(dg.payload) {
            Ok(msg) => {
                // Flushed at the end: the message's own time is the best clock left.
                if let Err(e) = f(plan.files.len().saturating_sub(1), dg.ts_ns, dg, &msg) {
                    io_error = Some(e);
                }
            }
            Err(_) => malformed += 1,
        }
    };
    decoder.finish(&mut on_datagram);
    if let Some(e) = io_error {
        return Err(e);
    }
    outcome.malformed = malformed;
    Ok(())
}

fn report_source_error(err: &mut dyn Write, e: &SourceError) -> io::Result<()> {
    writeln!(err, "sipidx: error: {e}")
}
