//! Live capture from one interface with libpcap: open (with the errors a person can act on), then
//! read batches with `pcap_dispatch` straight into the interface's ring, one thread per interface.
//!
//! The read timeout bounds how long a quiet interface blocks, so a thread notices stop, SIGHUP and
//! the rotation boundary within a fraction of a second; after a stop it reads on for two more
//! timeouts so packets already in the kernel buffer reach the file.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use pcap::{Active, Capture, Device};

use super::ring::{Counters, Ring};
use super::{now_ns, CaptureError, CapturePlan};
use crate::source::LinkType;

const READ_TIMEOUT_MS: i32 = 100;
/// How long one wait for packets lasts: bounds the reaction to stop, SIGHUP and boundaries.
const POLL_MS: u16 = 100;
const TICK: Duration = Duration::from_millis(250);

pub(crate) struct LiveSource {
    pub name: String,
    cap: Capture<Active>,
    pub link_type: LinkType,
    pub nanosecond: bool,
}

fn interface_names() -> String {
    match Device::list() {
        Ok(d) if !d.is_empty() => d.into_iter().map(|d| d.name).collect::<Vec<_>>().join(", "),
        Ok(_) => "none visible".into(),
        Err(e) => format!("cannot list them: {e}"),
    }
}

fn is_permission(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("permission") || m.contains("not permitted")
}

/// libpcap reports DLT_ values; files carry LINKTYPE_ values. They differ only for a few old
/// types; DLT_RAW is the one a Linux capture meets.
fn linktype_of(dlt: i32) -> LinkType {
    match dlt {
        12 | 14 => crate::source::linktype::RAW,
        11 => 100, // DLT_ATM_RFC1483
        d => d as LinkType,
    }
}

/// Opens, activates and filters one interface.
pub(crate) fn open(name: &str, plan: &CapturePlan) -> Result<LiveSource, CaptureError> {
    if name != "any" {
        if let Ok(list) = Device::list() {
            if !list.iter().any(|d| d.name == name) {
                return Err(CaptureError::UnknownInterface {
                    name: name.into(),
                    available: interface_names(),
                });
            }
        }
    }
    let open_err = |e: pcap::Error| {
        let msg = e.to_string();
        if is_permission(&msg) {
            CaptureError::Permission {
                iface: name.into(),
                msg,
            }
        } else if msg.contains("No such device") {
            CaptureError::UnknownInterface {
                name: name.into(),
                available: interface_names(),
            }
        } else {
            CaptureError::Open {
                iface: name.into(),
                msg,
            }
        }
    };
    let mut c = Capture::from_device(name)
        .map_err(open_err)?
        .snaplen(plan.snaplen as i32)
        .promisc(plan.promisc)
        .timeout(READ_TIMEOUT_MS);
    if let Some(b) = plan.buffer_size {
        c = c.buffer_size(i32::try_from(b).unwrap_or(i32::MAX));
    }
    // Linux's libpcap always honours nanosecond precision (it asks the kernel for ns stamps);
    // elsewhere microseconds are the safe assumption.
    let nanosecond = cfg!(target_os = "linux");
    if nanosecond {
        c = c.precision(pcap::Precision::Nano);
    }
    let cap = c.open().map_err(open_err)?;
    // Non-blocking, waited on with poll(2): with TPACKET_V3 a blocking read on a quiet interface
    // never returns (the read timeout only retires blocks that hold packets).
    let mut cap = cap.setnonblock().map_err(open_err)?;
    if let Some(f) = &plan.filter {
        cap.filter(f, true).map_err(|e| CaptureError::Filter {
            filter: f.clone(),
            msg: e.to_string(),
        })?;
    }
    let link_type = linktype_of(cap.get_datalink().0);
    Ok(LiveSource {
        name: name.into(),
        cap,
        link_type,
        nanosecond,
    })
}

fn update_stats(cap: &mut Capture<Active>, c: &Counters) {
    if let Ok(s) = cap.stats() {
        c.received.store(u64::from(s.received), Ordering::Relaxed);
        c.kernel_drops
            .store(u64::from(s.dropped), Ordering::Relaxed);
        c.if_drops.store(u64::from(s.if_dropped), Ordering::Relaxed);
    }
}

/// Captures into `ring` until `stop`; returns the first fatal error (the ring is closed cleanly
/// either way when possible).
pub(crate) fn run(
    mut src: LiveSource,
    mut ring: Ring,
    stop: Arc<AtomicBool>,
    rotate_gen: Arc<AtomicU64>,
) -> Result<(), CaptureError> {
    let counters = ring.counters.clone();
    let scale = if src.nanosecond { 1 } else { 1_000 };
    let mut failed: Option<CaptureError> = None;
    let mut last_tick = Instant::now();
    let mut stopping: Option<Instant> = None;
    loop {
        if stopping.is_none() && stop.load(Ordering::Relaxed) {
            stopping = Some(Instant::now());
        }
        if stopping
            .is_some_and(|t| t.elapsed() >= Duration::from_millis(2 * READ_TIMEOUT_MS as u64))
        {
            break;
        }
        let ready = {
            let mut fds = [PollFd::new(src.cap.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(POLL_MS)) {
                Ok(n) => n > 0,
                Err(nix::errno::Errno::EINTR) => false,
                Err(e) => {
                    let _ = ring.close();
                    return Err(CaptureError::Read {
                        iface: src.name.clone(),
                        msg: format!("poll: {e}"),
                    });
                }
            }
        };
        let r = if !ready {
            Ok(0)
        } else {
            src.cap.dispatch(None, |p| {
                if failed.is_some() {
                    return;
                }
                let ts = p.header.ts.tv_sec * 1_000_000_000 + p.header.ts.tv_usec * scale;
                if let Err(e) = ring.write(ts, ts, p.data, p.header.len, None, None) {
                    failed = Some(e);
                }
            })
        };
        if let Some(e) = failed.take() {
            update_stats(&mut src.cap, &counters);
            let _ = ring.close();
            return Err(e);
        }
        match r {
            Ok(_) | Err(pcap::Error::TimeoutExpired) => {}
            Err(e) => {
                update_stats(&mut src.cap, &counters);
                let _ = ring.close();
                return Err(CaptureError::Read {
                    iface: src.name.clone(),
                    msg: e.to_string(),
                });
            }
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            update_stats(&mut src.cap, &counters);
            if let Err(e) = ring.tick(now_ns(), rotate_gen.load(Ordering::Relaxed)) {
                let _ = ring.close();
                return Err(e);
            }
        }
    }
    update_stats(&mut src.cap, &counters);
    ring.close()
}
