//! The media pass: RTP streams, RTCP reports and endpoint quality reports, computed sequentially
//! over a run's files in capture-time order, with the state carried from run to run.
//!
//! Why a second, sequential pass rather than per-file work in the parallel scan: Wireshark's
//! stream analysis is sequential (extended timestamps, first-packet handling, jitter recurrences)
//! and two partial states cannot be merged, and whether a datagram is RTP at all depends on the
//! SDP seen *before* it, possibly in an earlier file or run. Shipping per-packet summaries from the
//! parallel scan would hold memory per packet; re-reading the (memory-mapped) files costs a second
//! decode but keeps memory per stream. The pass runs beside the parallel SIP scan, itself on two
//! threads in a run (`files`): `feed` reads and decodes, this type analyses (see `feed` for why).
//!
//! Exactness: the pass sees every datagram of the capture in the same order however the capture
//! was split into files or runs, and everything it keeps (`MediaState`: the `StreamTable`, the SDP
//! announcements, the SR times for RTT, idle-eviction clock) is serialised between runs to
//! `<db>/state/media-<run>.json.zst`, written before the catalog commit point; a run loads the
//! state of the catalog's last run. Idle streams and announcements are evicted on capture time
//! only (never on file or run boundaries), so the output does not depend on the split either.
use std::collections::HashMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::IndexError;
use crate::decode::{Datagram, DecodeConfig, DedupConfig, Transport};
use crate::rtp::mos::{self, Codec};
use crate::rtp::rtcp::{self, RtcpPacket, XrBlock};
use crate::rtp::{vq, Classification, ConvKey, Metrics, PayloadFormat};
use crate::rtp::{RtpPacket, StreamKey, StreamState, StreamTable};
use crate::sip;
use crate::store::parquet::{self as pq, DayRange, TableWriter, WriterOptions};
use crate::store::record::{QosReportRecord, RtcpReportRecord, RtpStreamRecord};
use crate::store::StoreError;

/// A stream or announcement silent this long (capture time) is closed and forgotten.
pub const IDLE_NS: i64 = 600 * 1_000_000_000;
/// How often (capture time) idle streams are looked for.
pub(super) const EVICT_EVERY_NS: i64 = 60 * 1_000_000_000;
use super::layout::{DbPaths, STATE_DIR};

mod feed;
use crate::rtp::stream::{prefetch, Timeline};
use feed::{Event, Origin, UdpFacts};

#[derive(Clone, Debug)]
pub struct MediaConfig {
    pub metrics: Metrics,
    pub decode: DecodeConfig,
    /// SPAN duplicates are dropped (and counted per stream) when `dedup.span` is on; HEP mirrors
    /// concern signalling only and are left to the SIP scan.
    pub dedup: DedupConfig,
    /// False for a SIP-only run (`index --no-media`): files are not read for media, and the
    /// carried state passes to the next run unchanged.
    pub analyse: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            metrics: Metrics::Wireshark,
            decode: DecodeConfig::new(crate::sip::stream_start),
            dedup: DedupConfig::default(),
            analyse: true,
        }
    }
}

/// A media address announced in SDP.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Announcement {
    /// None when MEGACO announced it (a gateway's port: no SIP dialog names it).
    call_id: Option<String>,
    /// False for `m=image … udptl` (T.38): the port is not RTP.
    rtp: bool,
    rtpmap: Vec<(u8, String, u32)>,
    /// Capture time of the announcement or of the last packet to this address.
    last_ns: i64,
    /// Unique to this announcement in this process (from 1; see `Maps::next_version`): a
    /// stream keeps what its payload type means while the version it was read from stays.
    #[serde(skip)]
    version: u64,
}

/// Everything the pass carries from one file (and run) to the next.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct MediaState {
    table: StreamTable,
    announced: Vec<((IpAddr, u16), Announcement)>,
    rtcp_addrs: Vec<((IpAddr, u16), (String, i64))>,
    /// Last SRs per sender SSRC: (NTP middle bits, capture time).
    sr_seen: Vec<(u32, Vec<(u32, i64)>)>,
    /// Latest measured RTT per reported SSRC, ms (feeds the E-model delay).
    rtt_ms: Vec<(u32, f64)>,
    /// Capturer drops reported by files a stream spans, per stream (key and first packet), and
    /// the stream's packets lost by sequence gap within those files' time spans.
    capture_drops: Vec<((StreamKey, i64), u64)>,
    #[serde(default)]
    capture_window_lost: Vec<((StreamKey, i64), u64)>,
    next_evict_ns: Option<i64>,
    /// Latest capture time seen: a file starting before it is out of order (see `file`).
    #[serde(default)]
    clock_ns: Option<i64>,
    /// SPAN duplicates dropped per 5-tuple (src, src port, dst, dst port).
    #[serde(default)]
    span_duplicates: Vec<(Flow5, u64)>,
    #[serde(skip)]
    maps: Maps,
}

/// Seeded fast hashing: the per-packet path looks addresses up here (see rtp::stream).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

type Flow5 = (IpAddr, u16, IpAddr, u16);

/// The SDP-announced media addresses, in a slab so that a flow keeps a handle to its own
/// (`FlowSlot`) instead of hashing its two addresses for every packet.
#[derive(Debug, Default)]
struct Announcements {
    index: FastMap<(IpAddr, u16), usize>,
    slab: Vec<Option<((IpAddr, u16), Announcement)>>,
    /// Per slot, what every RTP packet reads or writes (version, T.38 or not, last packet
    /// time), apart from the announcement itself: a packet then touches 24 bytes in a dense
    /// vector instead of a cold slab entry (a cache miss per packet on a trunk). The live
    /// `last_ns` is here; the announcement's copy is brought up to date when it is read.
    heads: Vec<AnnouncementHead>,
    free: Vec<usize>,
    /// Insertions per address bucket (a hash of address and port): a flow's cached "not
    /// announced" for an address holds while its bucket's count stays. Per bucket, not one
    /// count for all: on a trunk captured mid-call most media has no SDP in the capture, and a
    /// single count, moved by every new call's SDP, sent nearly every such packet back to the
    /// address map.
    bucket_inserts: Vec<u32>,
}

const ADDRESS_BUCKETS: usize = 1 << 12;

/// See `Announcements::heads`; version 0 marks a free slot.
#[derive(Clone, Copy, Debug, Default)]
struct AnnouncementHead {
    version: u64,
    last_ns: i64,
    rtp: bool,
}

impl AnnouncementHead {
    fn of(a: &Announcement) -> AnnouncementHead {
        AnnouncementHead {
            version: a.version,
            last_ns: a.last_ns,
            rtp: a.rtp,
        }
    }
}

impl Announcements {
    /// The hot part of a live slot's announcement.
    fn head(&self, slot: usize) -> Option<&AnnouncementHead> {
        self.heads.get(slot).filter(|h| h.version != 0)
    }

    fn head_mut(&mut self, slot: usize) -> Option<&mut AnnouncementHead> {
        self.heads.get_mut(slot).filter(|h| h.version != 0)
    }

    /// A packet to (or from) the address keeps its announcement alive until `ts_ns`.
    fn touch_max(&mut self, k: &(IpAddr, u16), ts_ns: i64) {
        if let Some(&i) = self.index.get(k) {
            let h = &mut self.heads[i];
            h.last_ns = h.last_ns.max(ts_ns);
        }
    }

    fn bucket(&self, k: &(IpAddr, u16)) -> u32 {
        use std::hash::BuildHasher;
        (self.index.hasher().hash_one(k) as usize & (ADDRESS_BUCKETS - 1)) as u32
    }

    /// Insertions so far into an address bucket.
    fn inserts_in(&self, bucket: u32) -> u32 {
        self.bucket_inserts
            .get(bucket as usize)
            .copied()
            .unwrap_or(0)
    }

    fn get(&self, k: &(IpAddr, u16)) -> Option<&Announcement> {
        self.at(*self.index.get(k)?)
    }

    fn contains_key(&self, k: &(IpAddr, u16)) -> bool {
        self.index.contains_key(k)
    }

    fn slot_of(&self, k: &(IpAddr, u16)) -> Option<usize> {
        self.index.get(k).copied()
    }

    fn at(&self, slot: usize) -> Option<&Announcement> {
        self.slab.get(slot)?.as_ref().map(|e| &e.1)
    }

    /// Replaces an address's announcement in its slot (its new version tells the flows).
    fn insert(&mut self, k: (IpAddr, u16), a: Announcement) {
        if self.bucket_inserts.is_empty() {
            self.bucket_inserts = vec![0; ADDRESS_BUCKETS];
        }
        let b = self.bucket(&k) as usize;
        self.bucket_inserts[b] = self.bucket_inserts[b].wrapping_add(1);
        let head = AnnouncementHead::of(&a);
        if let Some(&i) = self.index.get(&k) {
            self.slab[i] = Some((k, a));
            self.heads[i] = head;
            return;
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slab[i] = Some((k, a));
                self.heads[i] = head;
                i
            }
            None => {
                self.slab.push(Some((k, a)));
                self.heads.push(head);
                self.slab.len() - 1
            }
        };
        self.index.insert(k, i);
    }

    /// Announcements with their live `last_ns`.
    fn sync_last_ns(&mut self) {
        for (e, h) in self.slab.iter_mut().zip(&self.heads) {
            if let Some((_, a)) = e {
                a.last_ns = h.last_ns;
            }
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Announcement) -> bool) {
        self.sync_last_ns();
        for (i, e) in self.slab.iter_mut().enumerate() {
            if let Some((k, a)) = e {
                if !keep(a) {
                    self.index.remove(k);
                    *e = None;
                    self.heads[i] = AnnouncementHead::default();
                    self.free.push(i);
                }
            }
        }
    }

    fn drain(&mut self) -> impl Iterator<Item = ((IpAddr, u16), Announcement)> + '_ {
        self.sync_last_ns();
        self.index.clear();
        self.free.clear();
        self.heads.clear();
        self.slab.drain(..).flatten()
    }
}

/// What the analysis remembers of one UDP flow (5-tuple) between its packets, found by the
/// id the reader gave the flow: its conversation's announcement and its last stream.
#[derive(Clone, Copy, Debug)]
struct FlowSlot {
    /// The flow this slot describes (ids are reused once a flow is idle).
    flow: Flow5,
    /// The announcement that decides the conversation: its slot, version, and whether it is
    /// the destination's (else the source's); None when neither address is announced.
    ann: Option<(usize, u64, bool)>,
    /// The destination's and the source's address buckets and their insert counts when `ann`
    /// was looked up: a negative answer for an address holds while its bucket sees no insert
    /// (see `Announcements::bucket_inserts`).
    checked: [(u32, u32); 2],
    /// The flow's last stream, a hint `StreamTable::push_packet` checks.
    stream: Option<usize>,
}

#[derive(Debug, Default)]
struct Maps {
    built: bool,
    announced: Announcements,
    /// By the reader's flow id.
    flows: Vec<Option<FlowSlot>>,
    rtcp_addrs: FastMap<(IpAddr, u16), (String, i64)>,
    sr_seen: FastMap<u32, Vec<(u32, i64)>>,
    rtt_ms: FastMap<u32, f64>,
    capture_drops: FastMap<(StreamKey, i64), u64>,
    capture_window_lost: FastMap<(StreamKey, i64), u64>,
    span_duplicates: FastMap<Flow5, u64>,
    /// SSRC → Call-ID of streams carrying one (RTCP about a stream inherits its call), with
    /// the stream's clock rate; `unknown_rates` counts the entries whose rate is still 0, so
    /// the per-packet path looks the map up only while one waits for its first media packet.
    ssrc_call: FastMap<u32, (String, u32)>,
    unknown_rates: usize,
    /// The last announcement version given out (0 stands for no announcement).
    last_version: u64,
}

impl Maps {
    /// The flow's announcement handle, checked (looked up again only when it may have
    /// changed), and its last stream: the per-packet path then hashes nothing. The slot is
    /// read and written in place: copied whole through the stack, its odd-sized fields were
    /// read back at other widths than written (a store-forwarding stall, a fifth of the event
    /// handling).
    fn flow_slot(&mut self, f: &UdpFacts) -> (Option<(usize, u64, bool)>, Option<usize>) {
        let flow = (f.src, f.src_port, f.dst, f.dst_port);
        let id = f.flow as usize;
        if self.flows.len() <= id {
            self.flows.resize(id + 1, None);
        }
        let anns = &self.announced;
        let entry = &mut self.flows[id];
        if entry.as_ref().is_none_or(|s| s.flow != flow) {
            *entry = Some(FlowSlot {
                flow,
                ann: None,
                // never equal to a bucket's count: the first packet looks up
                checked: [(u32::MAX, u32::MAX); 2],
                stream: None,
            });
        }
        let slot = entry.as_mut().expect("just filled");
        let current = |(i, version, _): (usize, u64, bool)| {
            anns.head(i).is_some_and(|h| h.version == version)
        };
        let unchanged = |(bucket, n): (u32, u32)| anns.inserts_in(bucket) == n;
        let valid = match slot.ann {
            Some(h @ (_, _, true)) => current(h),
            Some(h) => unchanged(slot.checked[0]) && current(h),
            None => unchanged(slot.checked[0]) && unchanged(slot.checked[1]),
        };
        if valid {
            return (slot.ann, slot.stream);
        }
        // as `udp` decides: the destination's announcement, else the source's
        let handle = |k: (IpAddr, u16), via_dst: bool| {
            let i = anns.slot_of(&k)?;
            Some((i, anns.head(i)?.version, via_dst))
        };
        let (dst, src) = ((f.dst, f.dst_port), (f.src, f.src_port));
        let ann = handle(dst, true).or_else(|| handle(src, false));
        let counted = |k: &(IpAddr, u16)| {
            let b = anns.bucket(k);
            (b, anns.inserts_in(b))
        };
        slot.ann = ann;
        slot.checked = [counted(&dst), counted(&src)];
        (slot.ann, slot.stream)
    }

    /// After a packet: the stream it went to, the hint for the flow's next packet.
    fn note_stream(&mut self, id: u32, flow: Flow5, stream: usize) {
        if let Some(Some(s)) = self.flows.get_mut(id as usize) {
            if s.flow == flow {
                s.stream = Some(stream);
            }
        }
    }

    fn set_ssrc_call(&mut self, ssrc: u32, call: String, rate: u32) {
        if let Some((_, 0)) = self.ssrc_call.insert(ssrc, (call, rate)) {
            self.unknown_rates -= 1;
        }
        self.unknown_rates += usize::from(rate == 0);
    }

    fn next_version(&mut self) -> u64 {
        self.last_version += 1;
        self.last_version
    }

    fn forget_ssrc_call(&mut self, ssrc: u32) {
        if let Some((_, 0)) = self.ssrc_call.remove(&ssrc) {
            self.unknown_rates -= 1;
        }
    }
}

impl MediaState {
    fn build_maps(&mut self) {
        if self.maps.built {
            return;
        }
        let m = &mut self.maps;
        m.built = true;
        for (k, mut a) in std::mem::take(&mut self.announced) {
            m.last_version += 1;
            a.version = m.last_version;
            m.announced.insert(k, a);
        }
        m.rtcp_addrs = std::mem::take(&mut self.rtcp_addrs).into_iter().collect();
        m.sr_seen = std::mem::take(&mut self.sr_seen).into_iter().collect();
        m.rtt_ms = std::mem::take(&mut self.rtt_ms).into_iter().collect();
        m.capture_drops = std::mem::take(&mut self.capture_drops)
            .into_iter()
            .collect();
        m.capture_window_lost = std::mem::take(&mut self.capture_window_lost)
            .into_iter()
            .collect();
        m.span_duplicates = std::mem::take(&mut self.span_duplicates)
            .into_iter()
            .collect();
        for s in self.table.streams() {
            if let Some(c) = &s.call_id {
                m.set_ssrc_call(s.key.ssrc, c.clone(), s.clock_rate());
            }
        }
    }

    /// Sorted vectors so the saved state is byte-identical for identical content.
    fn flatten(&mut self) {
        fn sorted<K: Ord + Clone, V>(m: &mut FastMap<K, V>) -> Vec<(K, V)> {
            let mut v: Vec<(K, V)> = m.drain().collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        }
        let mut announced: Vec<_> = self.maps.announced.drain().collect();
        announced.sort_by_key(|a| a.0);
        self.announced = announced;
        self.rtcp_addrs = sorted(&mut self.maps.rtcp_addrs);
        self.sr_seen = sorted(&mut self.maps.sr_seen);
        let mut rtt: Vec<(u32, f64)> = self.maps.rtt_ms.drain().collect();
        rtt.sort_by_key(|a| a.0);
        self.rtt_ms = rtt;
        let mut drops: Vec<_> = self.maps.capture_drops.drain().collect();
        drops.sort_by_key(|a| a.0);
        self.capture_drops = drops;
        let mut lost: Vec<_> = self.maps.capture_window_lost.drain().collect();
        lost.sort_by_key(|a| a.0);
        self.capture_window_lost = lost;
        let mut dups: Vec<_> = self.maps.span_duplicates.drain().collect();
        dups.sort_by_key(|a| a.0);
        self.span_duplicates = dups;
        self.maps = Maps::default();
    }

    fn path(db: &Path, run: u64) -> PathBuf {
        DbPaths(db).media_state(run)
    }

    /// The state the catalog's last run left (empty for a new DB).
    pub fn load(db: &Path, last_run: u64) -> Result<MediaState, IndexError> {
        let path = Self::path(db, last_run);
        let f = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(MediaState::default()),
            Err(e) => return Err(IndexError::io(&path, e)),
        };
        let mut text = Vec::new();
        zstd::Decoder::new(f)
            .and_then(|mut d| d.read_to_end(&mut text))
            .map_err(|e| IndexError::io(&path, e))?;
        serde_json::from_slice(&text).map_err(|e| IndexError::Corrupt {
            path,
            what: e.to_string(),
        })
    }

    /// Written atomically (tmp, fsync, rename) under the run's number.
    pub fn save(mut self, db: &Path, run: u64) -> Result<(), IndexError> {
        self.flatten();
        let dir = db.join(STATE_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| IndexError::io(&dir, e))?;
        // Level 1: the state is written at the end of every run (13 MB of JSON for 6,000 open
        // streams), where level 3 cost a tenth of the media pass (and was no smaller on that
        // state: 2.37 MB against 2.22 MB).
        let json = serde_json::to_vec(&self).expect("media state serialises");
        let bytes = zstd::encode_all(&json[..], 1).map_err(|e| IndexError::io(&dir, e))?;
        let path = Self::path(db, run);
        super::catalog::write_atomic(&path.with_extension("zst.tmp"), &path, &bytes)
    }
}

/// Deletes state files of runs other than `keep` (after a commit), or newer than `keep` (the
/// leftovers of a run that died before its commit point).
pub fn prune_states(db: &Path, keep: u64, only_newer: bool) {
    let Ok(entries) = std::fs::read_dir(db.join(STATE_DIR)) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(run) = name
            .to_str()
            .and_then(|n| n.strip_prefix("media-"))
            .and_then(|n| n.split('.').next())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if run != keep && (!only_newer || run > keep) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Per-call media summary for the dialogs table.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CallMedia {
    pub worst_mos: Option<f64>,
    pub max_loss_pct: Option<f64>,
    pub max_jitter_ms: Option<f64>,
}

#[derive(Debug, Default)]
pub struct MediaOutcome {
    pub streams_written: u64,
    pub rtp_packets: u64,
    pub rtcp_rows: u64,
    pub qos_rows: u64,
    /// Files that started before media already analysed (analysed apart, see `MediaPass::file`).
    pub files_out_of_order: u64,
    /// Calls whose streams changed in this run, with their summary over all their streams.
    pub calls: HashMap<String, CallMedia>,
    /// Earliest and latest stream time among them (to find their dialog rows).
    pub span: Option<(i64, i64)>,
}

/// One run of the pass: feed files in order, then write rows and the state.
pub struct MediaPass<'a> {
    db: &'a Path,
    run: u64,
    cfg: &'a MediaConfig,
    state: MediaState,
    finished: Vec<RtpStreamRecord>,
    rtcp: TableWriter<RtcpReportRecord>,
    qos: TableWriter<QosReportRecord>,
    out: MediaOutcome,
    /// Set by a window reindex: only reports from these files are written (see `keep_reports_of`).
    report_files: Option<std::collections::HashSet<u32>>,
    /// RTP packets classified but not yet applied to their streams (see `flush_rtp`).
    batch: Vec<QueuedRtp>,
    /// The carried state while an out-of-order file is analysed apart (see `file`).
    carried: Option<MediaState>,
    /// Set when the pass re-analyses the archive from a time on (see `Refold`).
    refold: Option<Refold>,
}

/// A run that folds in files older than media already analysed re-analyses the archive from
/// `from_ns` on (`run`'s refold: every stored file from there, with the new files, in time order,
/// after the `window::media_preroll`), so that the rows equal one pass over all files in order.
pub struct Refold {
    /// Stored rows starting at or after `from_ns`: all replaced by the pass's (those no longer
    /// produced, e.g. the pieces of a stream cut by a missing file, removed).
    replaced: Vec<RtpStreamRecord>,
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

    fn continues(&self, r: &RtpStreamRecord) -> bool {
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

/// Packets applied to the stream table at once: enough for their cache misses to overlap, few
/// enough that the batch stays in L1.
const RTP_BATCH: usize = 32;

struct QueuedRtp {
    packet: RtpPacket,
    /// The SDP address that classified it, if one did (its rtpmap names the payload type).
    conv_addr: Option<(IpAddr, u16)>,
    /// That announcement's version (0 for none).
    format_version: u64,
    /// The reader's id of the packet's flow, and the flow's last stream then.
    flow: u32,
    stream_hint: Option<usize>,
}

fn store_err(db: &Path, e: StoreError) -> IndexError {
    IndexError::Store {
        path: db.to_path_buf(),
        source: e,
    }
}

impl<'a> MediaPass<'a> {
    pub fn new(
        db: &'a Path,
        run: u64,
        cfg: &'a MediaConfig,
        mut state: MediaState,
    ) -> Result<Self, IndexError> {
        state.build_maps();
        Ok(MediaPass {
            db,
            run,
            cfg,
            state,
            finished: Vec::new(),
            rtcp: TableWriter::create(db, run, WriterOptions::default())
                .map_err(|e| store_err(db, e))?,
            qos: TableWriter::create(db, run, WriterOptions::default())
                .map_err(|e| store_err(db, e))?,
            out: MediaOutcome::default(),
            report_files: None,
            batch: Vec::with_capacity(RTP_BATCH),
            carried: None,
            refold: None,
        })
    }

    /// Feed one capture file; unreadable parts were already reported by the SIP scan.
    ///
    /// A file that starts before the latest packet already analysed (it overlaps the files
    /// before it in time, e.g. a second capture point; a file found late is not fed here but
    /// folded in by `run`'s refold, unless the files after it are gone) cannot continue the
    /// carried streams exactly: it is analysed on its own, with fresh state, and its streams are
    /// closed at its end. The carried state is left untouched for the files that do follow on.
    pub fn file(&mut self, path: &Path, file_id: u32) -> Result<(), IndexError> {
        if !self.cfg.analyse {
            return Ok(());
        }
        let mut reader = feed::Reader::new(self.cfg, self.clock());
        let mut failed = None;
        reader.file(path, file_id, &mut |chunk| {
            if let Err(e) = self.chunk(&chunk) {
                failed = Some(e);
                return None;
            }
            Some(chunk)
        });
        self.set_clock(reader.clock);
        failed.map_or(Ok(()), Err)
    }

    /// Feed a run's files in order, reading on a second thread while this one analyses (see
    /// `feed`); the same result as `file` for each in turn.
    pub fn files(&mut self, files: &[(PathBuf, u32)]) -> Result<(), IndexError> {
        if !self.cfg.analyse {
            return Ok(());
        }
        // Chunks in flight: enough to absorb the reader's bursts, few enough to stay in cache.
        const CHUNKS_AHEAD: usize = 4;
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<feed::Chunk>(CHUNKS_AHEAD);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<feed::Chunk>();
        let (cfg, clock) = (self.cfg, self.clock());
        std::thread::scope(|scope| {
            let reading = scope.spawn(move || {
                let mut reader = feed::Reader::new(cfg, clock);
                let mut sink = |chunk| {
                    full_tx.send(chunk).ok()?;
                    Some(empty_rx.try_recv().unwrap_or_default())
                };
                for (path, id) in files {
                    if !reader.file(path, *id, &mut sink) {
                        break;
                    }
                }
                reader.clock
            });
            let mut result = Ok(());
            for chunk in full_rx.iter() {
                if let Err(e) = self.chunk(&chunk) {
                    result = Err(e);
                    break;
                }
                let _ = empty_tx.send(chunk);
            }
            // dropping the receiver (on an error) stops the reader at its next chunk
            drop(full_rx);
            let clock = reading.join().map_err(|_| {
                IndexError::io(self.db, std::io::Error::other("the media reader panicked"))
            })?;
            self.set_clock(clock);
            result
        })
    }

    fn clock(&self) -> feed::Clock {
        feed::Clock {
            clock_ns: self.state.clock_ns,
            next_evict_ns: self.state.next_evict_ns,
        }
    }

    fn set_clock(&mut self, c: feed::Clock) {
        self.state.clock_ns = c.clock_ns;
        self.state.next_evict_ns = c.next_evict_ns;
    }

    fn chunk(&mut self, chunk: &feed::Chunk) -> Result<(), IndexError> {
        // The reader wrote these events on another core: reading them was a miss each, which
        // a prefetch a few events ahead hides (the hardware streamer does not cross cores).
        // Then, closer, each datagram's flow slot (see `Maps::flow_slot`), by the id in the
        // event whose line has arrived by now.
        const AHEAD: usize = 16;
        const SLOT_AHEAD: usize = 8;
        for (i, ev) in chunk.events.iter().enumerate() {
            if let Some(next) = chunk.events.get(i + AHEAD) {
                prefetch(next);
            }
            if let Some(Event::Udp(f)) = chunk.events.get(i + SLOT_AHEAD) {
                if let Some(slot) = self.state.maps.flows.get(f.flow as usize) {
                    prefetch(slot);
                }
            }
            self.event(ev, chunk)?;
        }
        Ok(())
    }

    fn event(&mut self, ev: &Event, chunk: &feed::Chunk) -> Result<(), IndexError> {
        let db = self.db;
        match ev {
            Event::FileStart { isolated } => {
                if *isolated {
                    self.flush_rtp();
                    self.out.files_out_of_order += 1;
                    let mut fresh = MediaState::default();
                    fresh.build_maps();
                    self.carried = Some(std::mem::replace(&mut self.state, fresh));
                }
            }
            Event::Evict(ts_ns) => self.evict(*ts_ns),
            Event::SpanDuplicate(flow) => {
                *self.state.maps.span_duplicates.entry(*flow).or_default() += 1;
            }
            Event::Sip { origin, payload } => {
                // the reader only sends messages that parse
                if let Ok(msg) = sip::parse(chunk.payload(payload)) {
                    self.flush_rtp();
                    self.sip(origin, &msg).map_err(|e| store_err(db, e))?;
                }
            }
            Event::Megaco { origin, payload } => {
                self.flush_rtp();
                self.announce_megaco(origin.ts_ns, chunk.payload(payload));
            }
            Event::Udp(facts) => self.udp(facts, chunk).map_err(|e| store_err(db, e))?,
            Event::FileEnd {
                drops,
                first_ts,
                last_ts,
            } => {
                self.flush_rtp();
                self.file_end(*drops, *first_ts, *last_ts);
                if let Some(carried) = self.carried.take() {
                    self.end_isolation(carried);
                }
            }
        }
        Ok(())
    }

    fn file_end(&mut self, drops: u64, first_ts: Option<i64>, last_ts: i64) {
        // Drops are known per file (pcapng ISBs are written at its end): the file's time span is
        // the window in which a stream's sequence gaps may be the capturer's.
        if let (Some(first), true) = (first_ts, drops > 0) {
            let m = &mut self.state.maps;
            for s in self.state.table.streams() {
                if s.last_ns >= first {
                    let id = (s.key, s.first_ns);
                    *m.capture_drops.entry(id).or_default() += drops;
                    let secs = |t: i64| ((t - s.first_ns).max(0) / 1_000_000_000) as u64;
                    *m.capture_window_lost.entry(id).or_default() +=
                        s.timeline.lost_between(secs(first), secs(last_ts));
                }
            }
        }
    }

    /// An out-of-order file's streams close at its end; the carried state comes back.
    fn end_isolation(&mut self, carried: MediaState) {
        let isolated = std::mem::replace(&mut self.state, carried);
        for s in isolated.table.streams() {
            let id = (s.key, s.first_ns);
            let drops = isolated.maps.capture_drops.get(&id).copied().unwrap_or(0);
            let lost = isolated.maps.capture_window_lost.get(&id).copied();
            let rtt = isolated.maps.rtt_ms.get(&s.key.ssrc).copied();
            let mut row = stream_record(s, self.cfg.metrics, (drops, lost.unwrap_or(0)), rtt);
            row.span_duplicates_dropped = span_dups(&isolated.maps, &s.key);
            self.finished.push(row);
        }
    }

    /// Capture-time housekeeping: close idle streams, forget idle announcements.
    fn evict(&mut self, ts_ns: i64) {
        self.flush_rtp();
        let cutoff = ts_ns - IDLE_NS;
        for s in self.state.table.evict_idle(cutoff) {
            let rec = self.record(&s);
            self.state.maps.capture_drops.remove(&(s.key, s.first_ns));
            self.state
                .maps
                .capture_window_lost
                .remove(&(s.key, s.first_ns));
            if s.call_id.is_some() {
                self.state.maps.forget_ssrc_call(s.key.ssrc);
            }
            self.finished.push(rec);
        }
        self.state.maps.announced.retain(|a| a.last_ns >= cutoff);
        self.state.maps.rtcp_addrs.retain(|_, a| a.1 >= cutoff);
        self.state
            .maps
            .sr_seen
            .retain(|_, v| v.last().is_some_and(|x| x.1 >= cutoff));
    }

    /// The state-dependent half of a datagram's classification (the reader did the rest): an
    /// address announced in SDP decides the conversation, whether the port is RTP at all (T.38
    /// takes it) and which classification applies.
    fn udp(&mut self, f: &UdpFacts, chunk: &feed::Chunk) -> Result<(), StoreError> {
        let m = &mut self.state.maps;
        let dst = (f.dst, f.dst_port);
        let src = (f.src, f.src_port);
        let (ann, stream_hint) = m.flow_slot(f);
        let (conv_addr, is_rtp, format_version) = match ann {
            Some((i, _, via_dst)) => {
                let h = m.announced.head_mut(i).expect("a checked handle");
                h.last_ns = f.ts_ns;
                (Some(if via_dst { dst } else { src }), h.rtp, h.version)
            }
            None => (None, true, 0),
        };
        if !is_rtp {
            return Ok(()); // T.38 (UDPTL) took the port
        }
        if f.looks_like_rtcp {
            let rtcp_call = m
                .rtcp_addrs
                .get(&dst)
                .or_else(|| m.rtcp_addrs.get(&src))
                .map(|c| c.0.clone());
            if let (Some(_), Some((o, payload))) = (&rtcp_call, chunk.kept(f)) {
                self.flush_rtp();
                return self.rtcp(&o, payload, rtcp_call);
            }
        }
        let class = if conv_addr.is_some() {
            f.known
        } else {
            f.heuristic
        };
        match class {
            Classification::Rtp => {
                let Some(fields) = f.rtp else {
                    return Ok(());
                };
                let conv = match conv_addr {
                    Some(a) => ConvKey::announced(a.0, a.1),
                    None => ConvKey::heuristic(f.src, f.src_port, f.dst, f.dst_port),
                };
                let key = StreamKey {
                    src: f.src,
                    src_port: f.src_port,
                    dst: f.dst,
                    dst_port: f.dst_port,
                    ssrc: fields.ssrc,
                };
                let packet = RtpPacket::of_fields(key, conv, f.ts_ns, fields);
                self.rtp(QueuedRtp {
                    packet,
                    conv_addr,
                    format_version,
                    flow: f.flow,
                    stream_hint,
                });
                Ok(())
            }
            Classification::Rtcp => {
                let call = conv_addr.and_then(|a| m.announced.get(&a)?.call_id.clone());
                let Some((o, payload)) = chunk.kept(f) else {
                    return Ok(());
                };
                self.flush_rtp();
                self.rtcp(&o, payload, call)
            }
            Classification::Neither => Ok(()),
        }
    }

    fn rtp(&mut self, q: QueuedRtp) {
        self.out.rtp_packets += 1;
        self.batch.push(q);
        if self.batch.len() >= RTP_BATCH {
            self.flush_rtp();
        }
    }

    /// Applies the queued RTP packets to their streams, in capture order. Anything else that
    /// reads or changes the streams (SIP, RTCP, eviction, a file's end) flushes first, so the
    /// result is the same as applying each packet as it is read; the batch only lets the
    /// streams' cache misses overlap (see `StreamTable::locate`).
    fn flush_rtp(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let mut hints = [None; RTP_BATCH];
        for (q, hint) in batch.iter().zip(hints.iter_mut()) {
            // the flow's last stream, checked by `push_packet`; a map probe only without one
            *hint = match q.stream_hint {
                Some(i) => self.state.table.prefetch_stream(i),
                None => self.state.table.locate(&q.packet.key),
            };
        }
        for hint in hints.iter().flatten() {
            self.state.table.prefetch_slots(*hint);
        }
        for (q, hint) in batch.iter().zip(hints) {
            self.apply_rtp(q, hint);
        }
        self.batch = batch;
        self.batch.clear();
    }

    fn apply_rtp(&mut self, q: &QueuedRtp, hint: Option<usize>) {
        let m = &mut self.state.maps;
        let announced = &m.announced;
        let pt = q.packet.payload_type();
        // Looked up only when the stream's payload type or its announcement changed.
        let format = || {
            let a = announced.get(&q.conv_addr?)?;
            a.rtpmap.iter().find(|x| x.0 == pt).map(|x| PayloadFormat {
                encoding_name: &x.1,
                clock_rate: x.2,
            })
        };
        let table = &mut self.state.table;
        let before = table.len();
        let idx = table.push_versioned(&q.packet, hint, q.format_version, &format);
        let ssrc = q.packet.key.ssrc;
        let k = &q.packet.key;
        m.note_stream(q.flow, (k.src, k.src_port, k.dst, k.dst_port), idx);
        if table.len() != before {
            let ann = q.conv_addr.and_then(|a| m.announced.get(&a));
            if let Some(call) = ann.and_then(|a| a.call_id.clone()) {
                let s = table.stream_mut(idx).expect("just pushed");
                s.call_id = Some(call.clone());
                let rate = s.clock_rate();
                m.set_ssrc_call(ssrc, call, rate);
            }
        } else if m.unknown_rates > 0 {
            // The clock rate becomes known with the first media packet (after e.g. an event).
            if let Some((_, rate @ 0)) = m.ssrc_call.get_mut(&ssrc) {
                *rate = table.streams()[idx].clock_rate();
                if *rate != 0 {
                    m.unknown_rates -= 1;
                }
            }
        }
    }

    fn sip(&mut self, o: &Origin, msg: &sip::Message<'_>) -> Result<(), StoreError> {
        let call_id = self.announce(o.ts_ns, msg);
        let loc = o.location;
        let base = QosReportRecord {
            ts_ns: o.ts_ns,
            call_id: call_id.clone(),
            reporter_ip: o.src.to_string(),
            reporter_port: o.src_port,
            file_id: loc.file_id,
            offset: loc.offset,
            ..Default::default()
        };
        let is_vq = msg.content_type.is_some_and(|ct| {
            let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
            ct.starts_with("application/vq-rtcpxr")
        });
        if !self.keeps(loc.file_id) {
            return Ok(());
        }
        if is_vq {
            if let Some(r) = vq::parse(msg.body) {
                for row in vq_rows(&r, &base) {
                    self.qos.push(row)?;
                    self.out.qos_rows += 1;
                }
            }
        }
        for stat in msg.rtp_stats() {
            self.qos.push(stat_row(&stat, &base))?;
            self.out.qos_rows += 1;
        }
        Ok(())
    }

    /// Window-reindex pre-roll: what a datagram from before the rebuilt files leaves in the state
    /// (SDP media addresses, sender reports for round-trip times), without writing any row.
    pub fn preroll(&mut self, dg: &Datagram<'_>) {
        if dg.hep.is_some() {
            return;
        }
        if sip::looks_like_sip(dg.payload) {
            if let Ok(msg) = sip::parse(dg.payload) {
                self.announce(dg.ts_ns, &msg);
            }
            return;
        }
        if dg.transport == Transport::Udp && sip::megaco::looks_like_megaco(dg.payload) {
            self.announce_megaco(dg.ts_ns, dg.payload);
            return;
        }
        for pkt in rtcp::packets(dg.payload) {
            let Ok(pkt) = pkt else { break };
            if let RtcpPacket::SenderReport(sr) = pkt {
                note_sr(&mut self.state.maps, sr.ssrc(), sr.ntp_middle(), dg.ts_ns);
            }
        }
    }

    /// Pre-roll: the latest capture time the files before the rebuilt ones reached, so that a
    /// file `run` analysed apart as out of order (see `file`) is analysed apart again.
    pub fn preroll_clock(&mut self, ts_ns: i64) {
        self.state.clock_ns = Some(self.state.clock_ns.map_or(ts_ns, |c| c.max(ts_ns)));
    }

    /// Pre-roll: a round-trip time measured before the rebuilt files (stored `rtcp_reports`).
    pub fn preroll_rtt(&mut self, ssrc: u32, rtt_ms: f64) {
        self.state.maps.rtt_ms.insert(ssrc, rtt_ms);
    }

    /// Pre-roll: a stored stream `src → dst` ran until `ts_ns`. Its packets kept the announcement
    /// of its conversation alive (the destination's, else the source's, as `datagram` picks it),
    /// which the pre-roll, seeing only the SDP, would otherwise let expire early.
    pub fn preroll_touch(&mut self, src: (IpAddr, u16), dst: (IpAddr, u16), ts_ns: i64) {
        let m = &mut self.state.maps.announced;
        let addr = if m.contains_key(&dst) { dst } else { src };
        m.touch_max(&addr, ts_ns);
    }

    /// This pass re-analyses the archive from `refold.from_ns` (see `Refold`); its state must
    /// be fresh, with the pre-roll fed.
    pub fn refold(&mut self, refold: Refold) {
        self.refold = Some(refold);
    }

    /// Window reindex: write only the RTCP and quality reports read from these files (the other
    /// files are fed for the streams' sake; their reports stay as stored).
    pub fn keep_reports_of(&mut self, files: std::collections::HashSet<u32>) {
        self.report_files = Some(files);
    }

    fn keeps(&self, file_id: u32) -> bool {
        self.report_files
            .as_ref()
            .is_none_or(|f| f.contains(&file_id))
    }

    /// Streams still open, in order of first packet.
    pub fn open_streams(&self) -> &[StreamState] {
        self.state.table.streams()
    }

    /// Records the SDP media addresses of a message; returns its Call-ID.
    fn announce(&mut self, ts_ns: i64, msg: &sip::Message<'_>) -> Option<String> {
        let call_id = msg.call_id.map(|c| String::from_utf8_lossy(c).into_owned());
        if let (Some(call_id), Some(Ok(sdp))) = (&call_id, msg.sdp()) {
            self.announce_sdp(&sdp, Some(call_id), ts_ns);
        }
        call_id
    }

    /// Records the media addresses in a MEGACO message's Local and Remote descriptors. They
    /// belong to no SIP dialog, and their RTCP ports are left to the heuristic.
    fn announce_megaco(&mut self, ts_ns: i64, payload: &[u8]) {
        for text in sip::megaco::session_descriptions(payload) {
            if let Ok(sdp) = sip::sdp::parse(text) {
                self.announce_sdp(&sdp, None, ts_ns);
            }
        }
    }

    fn announce_sdp(
        &mut self,
        sdp: &sip::SessionDescription<'_>,
        call_id: Option<&str>,
        ts_ns: i64,
    ) {
        for media in &sdp.media {
            let Some(ip) = sdp.connection_for(media).and_then(|c| c.ip()) else {
                continue;
            };
            if media.port == 0 {
                continue;
            }
            let is_rtp = media.media != b"image";
            let rtpmap = media
                .rtpmaps()
                .map(|r| {
                    (
                        r.payload_type,
                        String::from_utf8_lossy(r.encoding).into_owned(),
                        r.clock_rate,
                    )
                })
                .collect();
            let version = self.state.maps.next_version();
            self.state.maps.announced.insert(
                (ip, media.port),
                Announcement {
                    call_id: call_id.map(str::to_owned),
                    rtp: is_rtp,
                    rtpmap,
                    last_ns: ts_ns,
                    version,
                },
            );
            if let (Some(call_id), true, false) = (call_id, is_rtp, media.rtcp_mux()) {
                let (rip, rport) = match media.rtcp() {
                    Some(r) => (r.connection.and_then(|c| c.ip()).unwrap_or(ip), r.port),
                    None => (ip, media.port.wrapping_add(1)),
                };
                self.state
                    .maps
                    .rtcp_addrs
                    .insert((rip, rport), (call_id.to_owned(), ts_ns));
            }
        }
    }

    fn rtcp(&mut self, o: &Origin, payload: &[u8], call: Option<String>) -> Result<(), StoreError> {
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

    /// The table row of a stream as it stands.
    fn record(&self, s: &StreamState) -> RtpStreamRecord {
        let m = &self.state.maps;
        let id = (s.key, s.first_ns);
        let drops = m.capture_drops.get(&id).copied().unwrap_or(0);
        let lost = m.capture_window_lost.get(&id).copied().unwrap_or(0);
        let rtt = m.rtt_ms.get(&s.key.ssrc).copied();
        let mut row = stream_record(s, self.cfg.metrics, (drops, lost), rtt);
        row.span_duplicates_dropped = span_dups(&self.state.maps, &s.key);
        row
    }

    /// Window reindex: finish the report parts and return every stream row (closed and still
    /// open) for the caller to select; neither the `rtp_streams` table nor the carried state is
    /// written (the latest run's state stays the one the next `index` run continues).
    pub fn finish_rows(mut self) -> Result<(Vec<RtpStreamRecord>, MediaOutcome), IndexError> {
        let db = self.db;
        let mut rows = std::mem::take(&mut self.finished);
        for s in self.state.table.streams() {
            rows.push(self.record(s));
        }
        self.rtcp.finish().map_err(|e| store_err(db, e))?;
        self.qos.finish().map_err(|e| store_err(db, e))?;
        Ok((rows, self.out))
    }

    /// Write the rows and the state; returns what the dialogs need.
    pub fn finish(mut self) -> Result<MediaOutcome, IndexError> {
        let db = self.db;
        if !self.cfg.analyse {
            // nothing was read: the stored rows stand, the state passes on to this run's number
            self.rtcp.finish().map_err(|e| store_err(db, e))?;
            self.qos.finish().map_err(|e| store_err(db, e))?;
            self.state.save(db, self.run)?;
            return Ok(self.out);
        }
        let mut rows = std::mem::take(&mut self.finished);
        for s in self.state.table.streams() {
            rows.push(self.record(s));
        }
        // The state (13 MB of JSON for 6,000 open streams) is written beside the tables: at the
        // end of a run the scan's cores are free, and this is the run's critical path. Scoped, so
        // an error below still waits for it (no state file half-written behind a failed run).
        // A refold replaces every stored row from its start on, and leaves those it continues.
        let removed: Vec<RtpStreamRecord> = match self.refold.take() {
            Some(refold) => {
                rows.retain(|r| !refold.continues(r));
                refold.replaced
            }
            None => Vec::new(),
        };
        let (state, run) = (std::mem::take(&mut self.state), self.run);
        std::thread::scope(|scope| {
            let saved = scope.spawn(move || state.save(db, run));
            self.out.streams_written = rows.len() as u64;
            let mut calls: Vec<String> = rows
                .iter()
                .chain(&removed)
                .filter_map(|r| r.call_id.clone())
                .collect();
            calls.sort();
            calls.dedup();
            let span = rows
                .iter()
                .chain(&removed)
                .fold(None, |acc: Option<(i64, i64)>, r| {
                    Some(match acc {
                        None => (r.start_ns, r.end_ns),
                        Some((a, b)) => (a.min(r.start_ns), b.max(r.end_ns)),
                    })
                });
            // Per-call summary over all the call's streams, earlier runs' included: the stored
            // rows this run does not replace, and this run's rows. Folded before the rows are
            // written rather than read back after: in a first run nothing is stored, and the
            // read-back was a tenth of the run's tail.
            if let Some((lo, hi)) = span {
                let wanted: std::collections::HashSet<&str> =
                    calls.iter().map(String::as_str).collect();
                let replaced: std::collections::HashSet<&str> = rows
                    .iter()
                    .chain(&removed)
                    .map(|r| r.stream_id.as_str())
                    .collect();
                let day = 86_400_000_000_000i64;
                pq::for_each_row::<RtpStreamRecord>(
                    db,
                    DayRange::from_ns(Some(lo - day), Some(hi + day)),
                    |r| {
                        if let Some(c) = r.call_id.as_deref().filter(|c| wanted.contains(c)) {
                            if !replaced.contains(r.stream_id.as_str()) {
                                fold_call(self.out.calls.entry(c.to_owned()).or_default(), &r);
                            }
                        }
                        Ok(())
                    },
                )
                .map_err(|e| store_err(db, e))?;
                for r in &rows {
                    if let Some(c) = r.call_id.as_deref() {
                        fold_call(self.out.calls.entry(c.to_owned()).or_default(), r);
                    }
                }
                self.out.span = Some((lo, hi));
            }
            let previous: Vec<_> = removed
                .iter()
                .map(|r| pq::day_of(r.start_ns))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let removed: std::collections::HashSet<String> =
                removed.into_iter().map(|r| r.stream_id).collect();
            pq::upsert_rows_removing(
                db,
                self.run,
                rows,
                &removed,
                &previous,
                false,
                |r| &r.stream_id,
                |a, b| (a.start_ns, &a.stream_id).cmp(&(b.start_ns, &b.stream_id)),
            )
            .map_err(|e| store_err(db, e))?;
            self.rtcp.finish().map_err(|e| store_err(db, e))?;
            self.qos.finish().map_err(|e| store_err(db, e))?;
            saved.join().map_err(|_| {
                IndexError::io(db, std::io::Error::other("saving the media state panicked"))
            })??;
            Ok(self.out)
        })
    }
}

/// Each call's media summary over all its stored streams starting within `span` (± a day), read
/// back from `rtp_streams`; a call without streams gets the empty summary.
pub(super) fn call_media(
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

/// Keeps the last four SRs per sender (an RR's LSR echoes a recent one).
fn note_sr(m: &mut Maps, ssrc: u32, ntp_middle: u32, ts_ns: i64) {
    let v = m.sr_seen.entry(ssrc).or_default();
    if v.len() == 4 {
        v.remove(0);
    }
    v.push((ntp_middle, ts_ns));
}

fn fold_call(e: &mut CallMedia, r: &RtpStreamRecord) {
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

fn vq_rows(r: &vq::VqReport, base: &QosReportRecord) -> Vec<QosReportRecord> {
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

fn stat_row(stat: &sip::rtp_stat::RtpStat<'_>, base: &QosReportRecord) -> QosReportRecord {
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

fn span_dups(maps: &Maps, k: &StreamKey) -> u64 {
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
fn timeline_json(t: &Timeline) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// The column's text is what `serde_json::json!` made of the same timeline (stored rows
    /// written before and after compare equal), for awkward jitters too.
    #[test]
    fn the_timeline_column_is_the_json_value_text() {
        let mut jitters = vec![
            0.0f32,
            0.1,
            1.0 / 3.0,
            12.5,
            1e-7,
            3.4e38,
            f32::MIN_POSITIVE,
        ];
        let mut x = 0x2545_f491u32;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            jitters.push(f32::from_bits(x & 0x7f7f_ffff) % 1000.0);
        }
        for width_s in [0, 1, 4] {
            let mut t = Timeline::default();
            t.width_s = width_s;
            assert_eq!(
                timeline_json(&t),
                serde_json::json!({"width_s": t.width_s, "buckets": t.buckets}).to_string()
            );
            t.buckets = jitters
                .iter()
                .enumerate()
                .map(|(i, &j)| (i as u32 * 7, i as u32 % 3, j))
                .collect();
            assert_eq!(
                timeline_json(&t),
                serde_json::json!({"width_s": t.width_s, "buckets": t.buckets}).to_string()
            );
        }
    }

    fn facts(flow: u32, src: (IpAddr, u16), dst: (IpAddr, u16)) -> UdpFacts {
        UdpFacts {
            ts_ns: 0,
            src: src.0,
            dst: dst.0,
            src_port: src.1,
            dst_port: dst.1,
            rtp: None,
            looks_like_rtcp: false,
            known: Classification::Neither,
            heuristic: Classification::Neither,
            kept: None,
            flow,
        }
    }

    /// The per-flow cache must always answer what looking both addresses up answers
    /// (destination first), whatever was announced, re-announced or forgotten in between and
    /// however the reader reused flow ids: a random walk over few addresses, checked each step.
    #[test]
    fn a_flow_slot_answers_as_looking_both_addresses_up_would() {
        let addrs: Vec<(IpAddr, u16)> = (0..4)
            .map(|i| {
                (
                    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + i % 2)),
                    4000 + u16::from(i),
                )
            })
            .collect();
        let mut m = Maps::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut hits, mut misses) = (0, 0);
        for _ in 0..20_000 {
            let r = next();
            let a = addrs[(r >> 8) as usize % addrs.len()];
            let b = addrs[(r >> 16) as usize % addrs.len()];
            match r % 10 {
                0 => {
                    let version = m.next_version();
                    m.announced.insert(
                        a,
                        Announcement {
                            call_id: None,
                            rtp: true,
                            rtpmap: Vec::new(),
                            last_ns: 0,
                            version,
                        },
                    );
                }
                1 => {
                    let gone = m.announced.get(&a).map(|x| x.version);
                    m.announced.retain(|x| Some(x.version) != gone);
                }
                _ => {
                    let id = (r >> 24) as u32 % 3;
                    let (ann, _) = m.flow_slot(&facts(id, a, b));
                    let look = |k: (IpAddr, u16), via_dst: bool| {
                        let i = m.announced.slot_of(&k)?;
                        Some((i, m.announced.at(i)?.version, via_dst))
                    };
                    let expected = look(b, true).or_else(|| look(a, false));
                    assert_eq!(ann, expected);
                    if expected.is_some() {
                        hits += 1;
                    } else {
                        misses += 1;
                    }
                }
            }
        }
        assert!(
            hits > 1000 && misses > 1000,
            "{hits} announced, {misses} not"
        );
    }
}
