//! Ring-buffer capture: libpcap interfaces and a HEP collector written into rotating capture files
//! that appear in the directory only when complete (`NAME.part`, fsync, rename).
//!
//! Threads: one per interface, each reading with `pcap_dispatch` straight into its own ring (files
//! `sipidx-IFACE-…`), so no packet is copied between threads; the HEP listeners share one `hep`
//! ring behind a lock; the caller's thread watches signals, rotates on SIGHUP, applies the age
//! budget and prints counters. `-W` counts files per ring; `--keep-bytes`/`--keep-time` count every
//! complete ring file in the directory (earlier runs included). A follower (the live indexer) may
//! take any file whose name no longer ends in `.part`; a crash leaves at most one `.part` per ring.
mod format;
mod hep;
mod live;
mod privs;
mod retention;
mod ring;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

pub use format::FileFormat;
pub use hep::{HepCounters, HepListen};
pub use retention::Budget;
pub use ring::{Counters, HEP_SIDE_TABLE};

/// The validated `capture` command.
#[derive(Clone, Debug)]
pub struct CapturePlan {
    /// libpcap interface names (`any` included); may be empty when HEP listeners are given.
    pub interfaces: Vec<String>,
    pub dir: PathBuf,
    /// BPF filter for every interface.
    pub filter: Option<String>,
    pub snaplen: u32,
    pub promisc: bool,
    /// Kernel capture buffer in bytes (libpcap's default when `None`).
    pub buffer_size: Option<u64>,
    pub rotate_size: Option<u64>,
    pub rotate_time: Option<Duration>,
    pub budget: Budget,
    pub format: FileFormat,
    /// Drop to this user after opening interfaces and sockets.
    pub user: Option<String>,
    /// Print counters this often (and always at exit).
    pub stats_interval: Option<Duration>,
    /// Counters as JSON lines on the `json` writer.
    pub stats_json: bool,
    pub hep_listen: Vec<HepListen>,
    /// HEP packets whose auth key differs are dropped (and counted).
    pub hep_password: Option<Vec<u8>>,
}

/// Requests from outside (signal handlers): stop cleanly, or rotate now.
#[derive(Clone, Debug, Default)]
pub struct Control {
    pub stop: Arc<AtomicBool>,
    pub rotate: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no such interface '{name}' (interfaces here: {available})")]
    UnknownInterface { name: String, available: String },
    #[error(
        "no permission to capture on '{iface}' ({msg}): run as root, or give the binary \
         CAP_NET_RAW and CAP_NET_ADMIN (setcap cap_net_raw,cap_net_admin=eip PATH)"
    )]
    Permission { iface: String, msg: String },
    #[error("cannot open interface '{iface}': {msg}")]
    Open { iface: String, msg: String },
    #[error("bad capture filter '{filter}': {msg}")]
    Filter { filter: String, msg: String },
    #[error("reading from '{iface}': {msg}")]
    Read { iface: String, msg: String },
    #[error("directory {} is not writable", dir.display())]
    Dir { dir: PathBuf, source: io::Error },
    #[error(
        "disk full while writing {}: {}; {}",
        file.display(),
        if *budget { "no complete ring files are left to delete" }
        else { "no budget (-W, --keep-bytes, --keep-time) allows deleting older files" },
        if *kept { "the file was cut to its last whole packet and kept" }
        else { "the file held no whole packet and was removed" }
    )]
    DiskFull {
        file: PathBuf,
        kept: bool,
        budget: bool,
    },
    #[error("{what}")]
    Io { what: String, source: io::Error },
    #[error("cannot listen for HEP on {listen}")]
    HepBind { listen: String, source: io::Error },
    #[error("cannot switch to user '{user}': {msg}")]
    User { user: String, msg: String },
    #[error("{0}")]
    Config(String),
}

impl CaptureError {
    pub(crate) fn io(what: String, source: io::Error) -> CaptureError {
        CaptureError::Io { what, source }
    }
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Creates the directory if needed and proves that a file can be created in it.
fn check_dir(dir: &Path) -> Result<(), CaptureError> {
    let err = |source| CaptureError::Dir {
        dir: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(err)?;
    let probe = dir.join(format!(".sipidx-probe-{}", std::process::id()));
    fs::File::create(&probe).map_err(err)?;
    fs::remove_file(&probe).map_err(err)
}

/// Counters of one source at one moment.
#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct SourceStats {
    pub source: String,
    pub packets: u64,
    pub bytes: u64,
    pub files_written: u64,
    /// pcap_stats: received by the filter, dropped by the kernel, dropped by the interface.
    pub received: u64,
    pub kernel_drops: u64,
    pub if_drops: u64,
}

#[derive(Clone, Debug, serde::Serialize, PartialEq, Eq)]
pub struct HepStats {
    pub received: u64,
    pub rejected_auth: u64,
    pub malformed: u64,
    pub not_packet: u64,
    pub tcp_connections: u64,
}

/// What `--stats-json` prints, once per interval and once at exit (`final`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Stats {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "final")]
    pub is_final: bool,
    pub elapsed_s: f64,
    pub sources: Vec<SourceStats>,
    pub files_deleted: u64,
    pub bytes_deleted: u64,
    pub hep: Option<HepStats>,
}

struct Watched {
    name: String,
    counters: Arc<Counters>,
}

fn snapshot(
    started: Instant,
    watched: &[Watched],
    retention: &retention::Retention,
    hep: Option<&HepCounters>,
    is_final: bool,
) -> Stats {
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    Stats {
        kind: "stats",
        is_final,
        elapsed_s: (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        sources: watched
            .iter()
            .map(|w| SourceStats {
                source: w.name.clone(),
                packets: g(&w.counters.packets),
                bytes: g(&w.counters.bytes),
                files_written: g(&w.counters.files_written),
                received: g(&w.counters.received),
                kernel_drops: g(&w.counters.kernel_drops),
                if_drops: g(&w.counters.if_drops),
            })
            .collect(),
        files_deleted: g(&retention.deleted),
        bytes_deleted: g(&retention.deleted_bytes),
        hep: hep.map(|h| HepStats {
            received: g(&h.received),
            rejected_auth: g(&h.rejected_auth),
            malformed: g(&h.malformed),
            not_packet: g(&h.not_packet),
            tcp_connections: g(&h.tcp_connections),
        }),
    }
}

fn report(s: &Stats, json: bool, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
    let mut line = format!(
        "sipidx capture{} {:.1}s:",
        if s.is_final { " (final)" } else { "" },
        s.elapsed_s
    );
    for x in &s.sources {
        line.push_str(&format!(
            " {}: {} packets, {} bytes, {} files",
            x.source, x.packets, x.bytes, x.files_written
        ));
        // pcap_stats exist only for interfaces; HEP has no kernel ring to drop from.
        if x.source != "hep" {
            line.push_str(&format!(
                ", kernel drops {}, interface drops {}",
                x.kernel_drops, x.if_drops
            ));
        }
        line.push(';');
    }
    if let Some(h) = &s.hep {
        line.push_str(&format!(
            " hep received {}, bad auth {}, malformed {}, not packets {};",
            h.received, h.rejected_auth, h.malformed, h.not_packet
        ));
    }
    line.push_str(&format!(" files deleted {}", s.files_deleted));
    writeln!(err, "{line}")?;
    if json {
        serde_json::to_writer(&mut *out, s)?;
        writeln!(out)?;
        out.flush()?;
    }
    Ok(())
}

/// How long the main loop sleeps between looks at signals and threads.
const POLL: Duration = Duration::from_millis(100);
/// The age budget is checked this often even when no file completes.
const AGE_CHECK: Duration = Duration::from_secs(5);

/// Runs the capture until `control.stop` or a fatal error; every file is complete on return.
/// Counters go to `err` (and as JSON lines to `out` with `stats_json`) periodically and at exit.
pub fn run(
    plan: &CapturePlan,
    control: &Control,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Stats, CaptureError> {
    if plan.interfaces.is_empty() && plan.hep_listen.is_empty() {
        return Err(CaptureError::Config(
            "nothing to capture: give -i IFACE or --hep-listen".into(),
        ));
    }
    check_dir(&plan.dir)?;
    let (sources, bound) = open_inputs(plan)?;

    let retention = Arc::new(retention::Retention::new(&plan.dir, plan.budget.clone()));
    retention
        .enforce(SystemTime::now())
        .map_err(|e| CaptureError::io("applying the ring budgets".into(), e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let rotate_gen = Arc::new(AtomicU64::new(0));
    let running = start(plan, sources, bound, &retention, &stop, &rotate_gen);
    announce(plan, &running.watched, err);

    let started = Instant::now();
    let mut failure = supervise(
        plan,
        control,
        &running,
        &retention,
        &rotate_gen,
        started,
        out,
        err,
    );
    stop.store(true, Ordering::Relaxed);
    let Running {
        watched,
        threads,
        collector,
    } = running;
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => record(e, &mut failure),
            Err(_) => record(
                CaptureError::Config("a capture thread panicked".into()),
                &mut failure,
            ),
        }
    }
    if let Some(c) = &collector {
        if let Err(e) = c.close() {
            record(e, &mut failure);
        }
    }
    let s = snapshot(
        started,
        &watched,
        &retention,
        collector.as_ref().map(|c| &c.counters),
        true,
    );
    let _ = report(&s, plan.stats_json, out, err);
    match failure {
        Some(e) => Err(e),
        None => Ok(s),
    }
}

/// Keeps the first failure: later ones are usually its consequences.
fn record(e: CaptureError, failure: &mut Option<CaptureError>) {
    if failure.is_none() {
        *failure = Some(e);
    }
}

/// Opens every interface and binds every HEP listener, then drops privileges (with `--user`):
/// both need the rights the capture gives up.
fn open_inputs(
    plan: &CapturePlan,
) -> Result<(Vec<live::LiveSource>, Vec<hep::Bound>), CaptureError> {
    let sources = plan
        .interfaces
        .iter()
        .map(|i| live::open(i, plan))
        .collect::<Result<Vec<_>, _>>()?;
    let bound = plan
        .hep_listen
        .iter()
        .map(hep::bind)
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(u) = &plan.user {
        privs::drop_to(u)?;
        check_dir(&plan.dir)?;
    }
    Ok((sources, bound))
}

/// The capture threads and what the main loop watches of them.
struct Running {
    watched: Vec<Watched>,
    threads: Vec<JoinHandle<Result<(), CaptureError>>>,
    collector: Option<Arc<hep::Collector>>,
}

fn ring_config(
    plan: &CapturePlan,
    label: &str,
    link_type: crate::source::LinkType,
    snaplen: u32,
    nanosecond: bool,
) -> ring::RingConfig {
    ring::RingConfig {
        dir: plan.dir.clone(),
        label: retention::sanitize_label(label),
        if_name: label.to_string(),
        format: plan.format,
        link_type,
        snaplen,
        nanosecond,
        rotate_size: plan.rotate_size,
        rotate_time: plan.rotate_time,
    }
}

/// Gives each interface its ring and thread, and the HEP listeners their shared ring.
fn start(
    plan: &CapturePlan,
    sources: Vec<live::LiveSource>,
    bound: Vec<hep::Bound>,
    retention: &Arc<retention::Retention>,
    stop: &Arc<AtomicBool>,
    rotate_gen: &Arc<AtomicU64>,
) -> Running {
    let mut watched = Vec::new();
    let mut threads: Vec<JoinHandle<Result<(), CaptureError>>> = Vec::new();
    for src in sources {
        let cfg = ring_config(plan, &src.name, src.link_type, plan.snaplen, src.nanosecond);
        let ring = ring::Ring::new(cfg, retention.clone(), 0);
        watched.push(Watched {
            name: src.name.clone(),
            counters: ring.counters.clone(),
        });
        let (stop, gen) = (stop.clone(), rotate_gen.clone());
        threads.push(thread::spawn(move || live::run(src, ring, stop, gen)));
    }
    let collector = if bound.is_empty() {
        None
    } else {
        let cfg = ring_config(plan, "hep", crate::source::linktype::RAW, 262_144, true);
        let ring = ring::Ring::new(cfg, retention.clone(), 0);
        let c = Arc::new(hep::Collector::new(ring, plan.hep_password.clone()));
        watched.push(Watched {
            name: "hep".into(),
            counters: c.ring_counters(),
        });
        for b in bound {
            threads.push(hep::spawn(b, c.clone(), stop.clone()));
        }
        Some(c)
    };
    Running {
        watched,
        threads,
        collector,
    }
}

/// The line saying what is captured where.
fn announce(plan: &CapturePlan, watched: &[Watched], err: &mut dyn Write) {
    let mut names: Vec<String> = watched
        .iter()
        .filter(|w| w.name != "hep")
        .map(|w| w.name.clone())
        .collect();
    names.extend(plan.hep_listen.iter().map(|l| match l {
        HepListen::Udp(a) => format!("hep udp:{a}"),
        HepListen::Tcp(a) => format!("hep tcp:{a}"),
    }));
    // Tests and supervisors wait for this line: every source is open when it appears.
    let _ = writeln!(
        err,
        "sipidx capture: capturing from {} into {}",
        names.join(", "),
        plan.dir.display()
    );
}

/// The main loop: until a stop is asked or a thread ends, rotates on request, ticks the HEP
/// collector, applies the age budget and prints counters. Returns the failure that ended it.
#[allow(clippy::too_many_arguments)]
fn supervise(
    plan: &CapturePlan,
    control: &Control,
    running: &Running,
    retention: &retention::Retention,
    rotate_gen: &AtomicU64,
    started: Instant,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Option<CaptureError> {
    let (watched, threads, collector) = (&running.watched, &running.threads, &running.collector);
    let mut last_stats = Instant::now();
    let mut last_age = Instant::now();
    loop {
        thread::sleep(POLL);
        if control.stop.load(Ordering::Relaxed) || threads.iter().any(|t| t.is_finished()) {
            return None;
        }
        if control.rotate.swap(false, Ordering::Relaxed) {
            rotate_gen.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = collector {
            if let Err(e) = c.tick(rotate_gen.load(Ordering::Relaxed)) {
                return Some(e);
            }
        }
        if plan.budget.keep_time.is_some() && last_age.elapsed() >= AGE_CHECK {
            last_age = Instant::now();
            if let Err(e) = retention.enforce(SystemTime::now()) {
                return Some(CaptureError::io("applying the ring budgets".into(), e));
            }
        }
        if plan
            .stats_interval
            .is_some_and(|i| last_stats.elapsed() >= i)
        {
            last_stats = Instant::now();
            let s = snapshot(
                started,
                watched,
                retention,
                collector.as_ref().map(|c| &c.counters),
                false,
            );
            // Counters are best effort: a closed stdout must not stop the capture.
            let _ = report(&s, plan.stats_json, out, err);
        }
    }
}
