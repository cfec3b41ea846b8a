//! One ring: a sequence of capture files in the directory, each written as `NAME.part`, flushed,
//! fsynced and renamed when complete (by size, by wall-clock boundary, on SIGHUP, at stop).
//!
//! Records are staged in a buffer that only ever holds whole records, so the file's length after a
//! successful flush is always a record boundary: on a full disk the ring deletes the oldest complete
//! files (when a budget allows) and retries, else truncates to that boundary, renames, and fails.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::format::{encode_drops, encode_header, encode_record, Drops, FileFormat, Header};
use super::retention::{file_name, Retention};
use super::CaptureError;
use crate::source::LinkType;

/// Bytes staged before a write to the file.
const STAGE_BYTES: usize = 1 << 20;
/// Staged records are written out at least this often, to bound what a crash can lose.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The side table of HEP packets, next to the ring files.
pub const HEP_SIDE_TABLE: &str = "hep-nodes.jsonl";

#[derive(Clone, Debug)]
pub(crate) struct RingConfig {
    pub dir: PathBuf,
    /// Sanitised source name used in file names (`eth0`, `hep`).
    pub label: String,
    /// The source's own name, kept in pcapng's if_name.
    pub if_name: String,
    pub format: FileFormat,
    pub link_type: LinkType,
    pub snaplen: u32,
    pub nanosecond: bool,
    pub rotate_size: Option<u64>,
    pub rotate_time: Option<Duration>,
}

/// A ring's counters, read by the stats printer while the ring runs.
#[derive(Debug, Default)]
pub struct Counters {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub files_written: AtomicU64,
    /// Packets libpcap received / dropped in the kernel / dropped by the interface (pcap_stats).
    pub received: AtomicU64,
    pub kernel_drops: AtomicU64,
    pub if_drops: AtomicU64,
}

/// Where a HEP packet came from, kept in the side table.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Annotation<'a> {
    pub capture_id: Option<u32>,
    pub node: Option<&'a [u8]>,
    pub agent: SocketAddr,
    pub vlan: Option<u16>,
}

/// One side-table line: which packets of a file one agent/node/capture id sent.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct SideRow {
    file: String,
    capture_id: Option<u32>,
    node: Option<String>,
    agent: SocketAddr,
    vlan: Option<u16>,
    packets: u64,
    /// [first packet index, count] runs, 0-based in file order.
    ranges: Vec<(u64, u64)>,
}

struct OpenFile {
    file: File,
    part: PathBuf,
    name: String,
    /// Bytes in the file: always a record boundary.
    flushed: u64,
    /// Bytes in the file plus staged.
    size: u64,
    packets: u64,
    boundary_ns: Option<i64>,
    side: Vec<SideRow>,
    last_side: usize,
    /// First and last packet time, and libpcap's drop counters when the file was opened.
    span_ns: Option<(i64, i64)>,
    drops_at_open: Drops,
}

pub(crate) struct Ring {
    cfg: RingConfig,
    retention: Arc<Retention>,
    pub counters: Arc<Counters>,
    cur: Option<OpenFile>,
    stage: Vec<u8>,
    seq: u64,
    last_flush: Instant,
    rotate_gen: u64,
}

fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Start of the next wall-clock period of length `period` after `now_ns` (UTC epoch aligned).
pub(crate) fn next_boundary(now_ns: i64, period: Duration) -> i64 {
    let p = (period.as_nanos() as i64).max(1);
    now_ns.div_euclid(p) * p + p
}

fn header(cfg: &RingConfig) -> Header<'_> {
    Header {
        format: cfg.format,
        link_type: cfg.link_type,
        snaplen: cfg.snaplen,
        nanosecond: cfg.nanosecond,
        if_name: &cfg.if_name,
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Ring {
    pub fn new(cfg: RingConfig, retention: Arc<Retention>, rotate_gen: u64) -> Ring {
        Ring {
            cfg,
            retention,
            counters: Arc::new(Counters::default()),
            cur: None,
            stage: Vec::with_capacity(STAGE_BYTES + 65_536),
            seq: 0,
            last_flush: Instant::now(),
            rotate_gen,
        }
    }

    fn open(&mut self, now_ns: i64) -> Result<(), CaptureError> {
        let name = file_name(
            &self.cfg.label,
            now_ns,
            self.seq,
            self.cfg.format.extension(),
        );
        self.seq += 1;
        let part = self.cfg.dir.join(format!("{name}.part"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|e| CaptureError::io(format!("creating {}", part.display()), e))?;
        self.stage.clear();
        encode_header(&header(&self.cfg), &mut self.stage);
        self.cur = Some(OpenFile {
            file,
            part,
            name,
            flushed: 0,
            size: self.stage.len() as u64,
            packets: 0,
            boundary_ns: self.cfg.rotate_time.map(|p| next_boundary(now_ns, p)),
            side: Vec::new(),
            last_side: 0,
            span_ns: None,
            drops_at_open: self.drops(),
        });
        Ok(())
    }

    /// Appends one packet, opening a file first and rotating before or after as due. `now_ns`
    /// is the wall clock (for a live capture, the packet's own timestamp).
    pub fn write(
        &mut self,
        now_ns: i64,
        ts_ns: i64,
        data: &[u8],
        orig_len: u32,
        comment: Option<&[u8]>,
        note: Option<&Annotation<'_>>,
    ) -> Result<(), CaptureError> {
        if let Some(b) = self.cur.as_ref().and_then(|c| c.boundary_ns) {
            if now_ns >= b {
                self.finish()?;
            }
        }
        if self.cur.is_none() {
            self.open(now_ns)?;
        }
        let before = self.stage.len();
        encode_record(
            &header(&self.cfg),
            ts_ns,
            data,
            orig_len,
            comment,
            &mut self.stage,
        );
        let added = (self.stage.len() - before) as u64;
        let Some(cur) = self.cur.as_mut() else {
            unreachable!("opened above")
        };
        if let Some(n) = note {
            note_packet(cur, n);
        }
        cur.span_ns = Some(
            cur.span_ns
                .map_or((ts_ns, ts_ns), |(a, b)| (a, b.max(ts_ns))),
        );
        cur.size += added;
        cur.packets += 1;
        let size = cur.size;
        self.counters.packets.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(added, Ordering::Relaxed);
        if self.stage.len() >= STAGE_BYTES {
            self.flush()?;
        }
        if self.cfg.rotate_size.is_some_and(|max| size >= max) {
            self.finish()?;
        }
        Ok(())
    }

    /// Periodic work without packets: the wall-clock boundary, SIGHUP, and flushing staged records.
    pub fn tick(&mut self, now_ns: i64, rotate_gen: u64) -> Result<(), CaptureError> {
        if rotate_gen != self.rotate_gen {
            self.rotate_gen = rotate_gen;
            self.finish()?;
        }
        if let Some(b) = self.cur.as_ref().and_then(|c| c.boundary_ns) {
            if now_ns >= b {
                self.finish()?;
            }
        }
        if !self.stage.is_empty() && self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the staged records, deleting old ring files on a full disk while a budget allows.
    fn flush(&mut self) -> Result<(), CaptureError> {
        self.last_flush = Instant::now();
        let Some(cur) = self.cur.as_mut() else {
            self.stage.clear();
            return Ok(());
        };
        let mut off = 0;
        while off < self.stage.len() {
            match cur.file.write(&self.stage[off..]) {
                Ok(0) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(self.abandon(e));
                }
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_disk_full(&e) => match self.retention.free_oldest() {
                    Ok(true) => {}
                    Ok(false) => return Err(self.abandon(e)),
                    Err(d) => {
                        let _ = self.abandon(e);
                        return Err(CaptureError::io("freeing space in the ring".into(), d));
                    }
                },
                Err(e) => return Err(self.abandon(e)),
            }
        }
        cur.flushed += self.stage.len() as u64;
        self.stage.clear();
        Ok(())
    }

    /// After a write failed: cut the file back to its last whole record, keep it (renamed) if it
    /// holds anything, and describe the failure.
    fn abandon(&mut self, e: io::Error) -> CaptureError {
        self.stage.clear();
        let Some(cur) = self.cur.take() else {
            return CaptureError::io("writing".into(), e);
        };
        let dir = self.cfg.dir.clone();
        let kept = (|| -> io::Result<bool> {
            if cur.flushed == 0 {
                fs::remove_file(&cur.part)?;
                return Ok(false);
            }
            cur.file.set_len(cur.flushed)?;
            cur.file.sync_all()?;
            fs::rename(&cur.part, dir.join(&cur.name))?;
            Ok(true)
        })();
        let file = dir.join(&cur.name);
        if let Ok(true) = kept {
            self.counters.files_written.fetch_add(1, Ordering::Relaxed);
        }
        if is_disk_full(&e) {
            CaptureError::DiskFull {
                file,
                kept: matches!(kept, Ok(true)),
                budget: self.retention.budget().any(),
            }
        } else {
            CaptureError::io(format!("writing {}", cur.part.display()), e)
        }
    }

    fn drops(&self) -> Drops {
        Drops {
            interface: self.counters.if_drops.load(Ordering::Relaxed),
            os: self.counters.kernel_drops.load(Ordering::Relaxed),
        }
    }

    /// Completes the current file: drop counts (pcapng), flush, fsync, rename from `.part`, side
    /// table, budgets. The counts are libpcap's as last polled (each tick, and before the
    /// ring closes), so a drop in the last tick of a file may be told by the next one.
    pub fn finish(&mut self) -> Result<(), CaptureError> {
        let Some(cur) = self.cur.as_ref() else {
            return Ok(());
        };
        let (at_open, now) = (cur.drops_at_open, self.drops());
        let lost = Drops {
            interface: now.interface.saturating_sub(at_open.interface),
            os: now.os.saturating_sub(at_open.os),
        };
        if let (Some(span), true) = (cur.span_ns, lost != Drops::default()) {
            let before = self.stage.len();
            encode_drops(&header(&self.cfg), span, lost, &mut self.stage);
            if let Some(cur) = self.cur.as_mut() {
                cur.size += (self.stage.len() - before) as u64;
            }
        }
        self.flush()?;
        let Some(cur) = self.cur.take() else {
            return Ok(());
        };
        let fin = self.cfg.dir.join(&cur.name);
        let ctx = |what: &str, e| CaptureError::io(format!("{what} {}", cur.part.display()), e);
        cur.file.sync_all().map_err(|e| ctx("syncing", e))?;
        drop(cur.file);
        fs::rename(&cur.part, &fin).map_err(|e| ctx("renaming", e))?;
        sync_dir(&self.cfg.dir).map_err(|e| ctx("syncing the directory of", e))?;
        self.counters.files_written.fetch_add(1, Ordering::Relaxed);
        if !cur.side.is_empty() {
            self.append_side_table(cur.side)?;
        }
        self.retention
            .enforce(std::time::SystemTime::now())
            .map_err(|e| CaptureError::io("applying the ring budgets".into(), e))
    }

    fn append_side_table(&self, rows: Vec<SideRow>) -> Result<(), CaptureError> {
        let path = self.cfg.dir.join(HEP_SIDE_TABLE);
        let mut text = Vec::new();
        for r in &rows {
            serde_json::to_writer(&mut text, r)
                .map_err(io::Error::from)
                .map_err(|e| CaptureError::io("encoding the side table".into(), e))?;
            text.push(b'\n');
        }
        let ctx = |e| CaptureError::io(format!("appending to {}", path.display()), e);
        // One write of whole lines with O_APPEND: readers never see half a line from two rings.
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(ctx)?;
        f.write_all(&text).map_err(ctx)?;
        f.sync_data().map_err(ctx)
    }

    /// Completes the current file, if any; the ring can be used again afterwards.
    pub fn close(&mut self) -> Result<(), CaptureError> {
        self.finish()
    }
}

fn note_packet(cur: &mut OpenFile, n: &Annotation<'_>) {
    let idx = cur.packets;
    // Compared without allocating: a new row is made only when an agent first shows up.
    let node = n.node.map(lossy);
    let same = |r: &SideRow| {
        r.capture_id == n.capture_id
            && r.vlan == n.vlan
            && r.agent == n.agent
            && r.node.as_deref() == node.as_deref()
    };
    let i = match cur.side.get(cur.last_side) {
        Some(r) if same(r) => cur.last_side,
        _ => match cur.side.iter().position(same) {
            Some(i) => i,
            None => {
                cur.side.push(SideRow {
                    file: cur.name.clone(),
                    capture_id: n.capture_id,
                    node: node.as_deref().map(str::to_owned),
                    agent: n.agent,
                    vlan: n.vlan,
                    packets: 0,
                    ranges: Vec::new(),
                });
                cur.side.len() - 1
            }
        },
    };
    cur.last_side = i;
    let r = &mut cur.side[i];
    r.packets += 1;
    match r.ranges.last_mut() {
        Some((first, count)) if *first + *count == idx => *count += 1,
        _ => r.ranges.push((idx, 1)),
    }
}

/// Node names come from the network: keep printable ASCII, escape the rest.
pub(crate) fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
        std::borrow::Cow::Borrowed(std::str::from_utf8(b).unwrap_or_default())
    } else {
        std::borrow::Cow::Owned(b.escape_ascii().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// schemas/capture-ring.md lists exactly the side table's fields, in order (house rule 7).
    #[test]
    fn side_table_matches_its_schema_doc() {
        let doc = include_str!("../../schemas/capture-ring.md");
        let table = doc.split("## `hep-nodes.jsonl`").nth(1).unwrap();
        let documented: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| field"))
            .map(|l| l.split('|').nth(1).unwrap().trim())
            .collect();
        let row = SideRow {
            file: "f".into(),
            capture_id: Some(1),
            node: None,
            agent: "127.0.0.1:9".parse().unwrap(),
            vlan: None,
            packets: 1,
            ranges: vec![(0, 1)],
        };
        let v = serde_json::to_value(&row).unwrap();
        let written: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut sorted = documented.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, written, "serde_json orders keys by name");
        assert_eq!(documented[0], "file");
    }

    fn ring(dir: &Path, rotate_time: Option<Duration>) -> Ring {
        let cfg = RingConfig {
            dir: dir.to_path_buf(),
            label: "t".into(),
            if_name: "t".into(),
            format: FileFormat::Pcap,
            link_type: 1,
            snaplen: 65535,
            nanosecond: true,
            rotate_size: None,
            rotate_time,
        };
        let r = Arc::new(Retention::new(dir, super::super::Budget::default()));
        Ring::new(cfg, r, 0)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn boundaries_are_wall_clock_aligned() {
        let s = 1_000_000_000;
        assert_eq!(next_boundary(61 * s + 5, Duration::from_secs(60)), 120 * s);
        assert_eq!(next_boundary(120 * s, Duration::from_secs(60)), 180 * s);
        assert_eq!(next_boundary(899 * s, Duration::from_secs(900)), 900 * s);
    }

    #[test]
    fn part_until_finished_then_renamed_and_rotated_by_boundary_and_hup() {
        let d = tempfile::tempdir().unwrap();
        let mut r = ring(d.path(), Some(Duration::from_secs(10)));
        let s = 1_000_000_000i64;
        r.write(100 * s, 100 * s, b"a", 1, None, None).unwrap();
        assert!(names(d.path())[0].ends_with(".pcap.part"));
        r.write(109 * s, 109 * s, b"b", 1, None, None).unwrap();
        r.write(110 * s, 110 * s, b"c", 1, None, None).unwrap(); // crosses :10
        r.tick(111 * s, 1).unwrap(); // SIGHUP
        let n = names(d.path());
        assert_eq!(n.len(), 2, "{n:?}");
        assert!(n.iter().all(|f| f.ends_with(".pcap")));
        assert_eq!(
            fs::metadata(d.path().join(&n[0])).unwrap().len(),
            24 + 2 * 17
        );
        // nothing is opened without packets
        r.tick(200 * s, 2).unwrap();
        r.close().unwrap();
        assert_eq!(names(d.path()).len(), 2);
        assert_eq!(r.counters.files_written.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn pcapng_files_say_what_the_capturer_dropped_while_they_were_written() {
        let d = tempfile::tempdir().unwrap();
        let mut r = ring(d.path(), Some(Duration::from_secs(10)));
        r.cfg.format = FileFormat::Pcapng;
        let s = 1_000_000_000i64;
        let c = Arc::clone(&r.counters);
        c.kernel_drops.store(100, Ordering::Relaxed); // before the first file: not its loss
        r.write(100 * s, 100 * s, b"a", 1, None, None).unwrap();
        c.kernel_drops.store(105, Ordering::Relaxed);
        c.if_drops.store(2, Ordering::Relaxed);
        r.write(105 * s, 105 * s, b"b", 1, None, None).unwrap();
        r.write(110 * s, 110 * s, b"c", 1, None, None).unwrap(); // rotates: file 1 had 5 + 2
        r.write(111 * s, 111 * s, b"d", 1, None, None).unwrap();
        r.close().unwrap(); // file 2: no drops, no ISB
        let n = names(d.path());
        assert_eq!(n.len(), 2, "{n:?}");
        let read = |name: &str| {
            let mut rd = crate::source::open_capture(&d.path().join(name), 0).unwrap();
            let mut packets = 0;
            while rd.next_packet().unwrap().is_some() {
                packets += 1;
            }
            (packets, rd.stats().interface_drops.clone())
        };
        assert_eq!(read(&n[0]), (2, vec![(0, 7)]));
        assert_eq!(read(&n[1]), (2, vec![]));
    }

    #[test]
    fn side_rows_collect_runs_per_agent() {
        let d = tempfile::tempdir().unwrap();
        let mut r = ring(d.path(), None);
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let note = |agent| Annotation {
            capture_id: Some(7),
            node: Some(b"n\x01"),
            agent,
            vlan: None,
        };
        for agent in [a, a, b, a] {
            r.write(1, 1, b"x", 1, None, Some(&note(agent))).unwrap();
        }
        r.close().unwrap();
        let text = fs::read_to_string(d.path().join(HEP_SIDE_TABLE)).unwrap();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["ranges"], serde_json::json!([[0, 2], [3, 1]]));
        assert_eq!(rows[1]["ranges"], serde_json::json!([[2, 1]]));
        assert_eq!(rows[0]["node"], "n\\x01");
    }
}
