//! `sipidx grep`: SIP messages straight from capture files, like sipgrep/ngrep, no database.
//! Streams file by file (memory stays flat); `--dialog` takes a first pass to learn the Call-IDs.
//! Matching messages pass the dedup stage; while HEP mirrors are looked for, each is held back for
//! the HEP window (bounded) so that it is printed once, in capture order, with its mirror noted.
//! Matches go to a [`GrepSink`] (the printers live in `output::grep`); problems with the files
//! come back as [`GrepWarning`]s in the outcome, never written here.
use std::collections::HashSet;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use regex::bytes::Regex;

use super::filter::MessageFilter;
use crate::decode::{
    Datagram, DecodeConfig, Decoder, DedupConfig, DelayBuffer, DelayLimits, Mirror, OwnedDatagram,
    Released, Verdict,
};
use crate::sip;
use crate::source::open_capture;

/// One matching message, in capture order, handed to the sink.
pub struct Match<'m, 'p> {
    /// The capture file it was read from.
    pub file: &'m Path,
    pub datagram: &'m Datagram<'p>,
    pub message: &'m sip::Message<'p>,
    /// The HEP copy of this raw message that was dropped, if any.
    pub mirror: Option<Mirror>,
}

/// Where grep's matches go: the printers (text, NDJSON, count) and, later, HTTP collectors.
pub trait GrepSink {
    fn matched(&mut self, m: &Match<'_, '_>) -> io::Result<()>;
    /// Called once after the last match.
    fn finish(&mut self, _outcome: &GrepOutcome) -> io::Result<()> {
        Ok(())
    }
}

/// Something the user should know about the input, in the order it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrepWarning {
    /// A file could not be opened, or broke off with an error.
    Unreadable(String),
    /// The file ends inside a record.
    Truncated {
        path: PathBuf,
        offset: u64,
        packets: u64,
    },
    /// A record is corrupt; the rest of the file is unreadable.
    Corrupt {
        path: PathBuf,
        offset: u64,
        packets: u64,
    },
    /// The dedup buffer filled: this many messages were printed before their HEP window ended.
    DedupBufferFull { released_early: u64 },
    /// Copies dropped from one file.
    Dropped {
        path: PathBuf,
        hep_mirrors: u64,
        duplicates: u64,
    },
}

impl fmt::Display for GrepWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrepWarning::Unreadable(e) => write!(f, "error: {e}"),
            GrepWarning::Truncated {
                path,
                offset,
                packets,
            } => write!(
                f,
                "warning: {}: file ends inside a record at byte offset {offset}; \
                 read {packets} whole packets before it",
                path.display()
            ),
            GrepWarning::Corrupt {
                path,
                offset,
                packets,
            } => write!(
                f,
                "warning: {}: corrupt record at byte offset {offset}; \
                 read {packets} whole packets before it, the rest is unreadable",
                path.display()
            ),
            GrepWarning::DedupBufferFull { released_early } => write!(
                f,
                "warning: dedup buffer full: {released_early} messages printed before their HEP \
                 window ended (a later mirror of them is dropped unmarked)"
            ),
            GrepWarning::Dropped {
                path,
                hep_mirrors,
                duplicates,
            } => {
                let mut parts = Vec::new();
                if *hep_mirrors > 0 {
                    parts.push(format!("{hep_mirrors} HEP mirrors of raw messages"));
                }
                if *duplicates > 0 {
                    parts.push(format!("{duplicates} SPAN duplicates"));
                }
                write!(f, "{}: dropped {}", path.display(), parts.join(" and "))
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct GrepPlan {
    pub files: Vec<PathBuf>,
    pub filter: MessageFilter,
    /// Extended regex over the whole message text.
    pub regex: Option<Regex>,
    /// Print every message of each dialog (Call-ID) with at least one match.
    pub dialog: bool,
    pub decode: DecodeConfig,
    /// HEP mirrors and SPAN duplicates; a no-op config prints every copy.
    pub dedup: DedupConfig,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrepOutcome {
    /// Messages passed to the sink.
    pub matched: u64,
    /// Files that could not be read, or broke off with an error.
    pub failed_files: usize,
    /// Payloads that looked like SIP but did not parse.
    pub malformed: u64,
    /// Matching HEP copies of raw messages, dropped (the raw message is printed, marked).
    pub hep_mirrors: u64,
    /// Matching SPAN duplicates dropped (`--dedup`).
    pub duplicates: u64,
    pub warnings: Vec<GrepWarning>,
}

/// Run grep over the plan's files into `sink`. Per-file failures are counted and come back as
/// warnings; the returned error is only the sink's (a closed pipe included).
pub fn run(plan: &GrepPlan, sink: &mut dyn GrepSink) -> io::Result<GrepOutcome> {
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
        let mut scratch = GrepOutcome::default();
        for_each_message(plan, &mut scratch, &mut sink)?;
        Some(ids)
    } else {
        None
    };

    let mut printer = Printer {
        plan,
        sink,
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
    for_each_message(plan, &mut outcome, &mut emit)?;
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
            outcome.warnings.push(GrepWarning::DedupBufferFull {
                released_early: early,
            });
        }
    }
    for (path, &(mirrors, duplicates)) in plan.files.iter().zip(&dropped) {
        outcome.hep_mirrors += mirrors;
        outcome.duplicates += duplicates;
        if mirrors > 0 || duplicates > 0 {
            outcome.warnings.push(GrepWarning::Dropped {
                path: path.clone(),
                hep_mirrors: mirrors,
                duplicates,
            });
        }
    }
    outcome.matched = printer.matched;
    printer.sink.finish(&outcome)?;
    Ok(outcome)
}

/// Hands matching messages to the sink and counts them.
struct Printer<'p, 's> {
    plan: &'p GrepPlan,
    sink: &'s mut dyn GrepSink,
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
        self.sink.matched(&Match {
            file: &self.plan.files[file_idx],
            datagram: dg,
            message: msg,
            mirror,
        })
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

/// Walk every SIP message of the plan's files in capture order, with the capture time of the record
/// that completed it. One decoder spans all files, so a TCP message split across two ring files is
/// still framed.
fn for_each_message(
    plan: &GrepPlan,
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
                outcome
                    .warnings
                    .push(GrepWarning::Unreadable(e.to_string()));
                outcome.failed_files += 1;
                continue;
            }
        };
        loop {
            let packet = match reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    outcome
                        .warnings
                        .push(GrepWarning::Unreadable(e.to_string()));
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
        if let Some(offset) = reader.stats().truncated_at {
            outcome.warnings.push(GrepWarning::Truncated {
                path: path.clone(),
                offset,
                packets: reader.stats().packets,
            });
        }
        if let Some(offset) = reader.stats().corrupt_at {
            outcome.warnings.push(GrepWarning::Corrupt {
                path: path.clone(),
                offset,
                packets: reader.stats().packets,
            });
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
