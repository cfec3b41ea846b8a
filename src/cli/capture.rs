//! `capture` arguments → `capture::CapturePlan`, plus the signal wiring: SIGINT/SIGTERM stop
//! cleanly (a second SIGINT exits at once), SIGHUP rotates now.
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::EXIT_MATCH;
use crate::capture::{self, Budget, CapturePlan, Control, FileFormat, HepListen};
use crate::query::params::{parse_size, parse_std_duration as parse_duration};

/// Exit status after a clean stop by SIGINT (SIGTERM gives 0).
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum FormatArg {
    Pcap,
    Pcapng,
}

#[derive(Args, Debug)]
#[command(after_help = "\
Files: DIR/sipidx-IFACE-YYYYmmddTHHMMSS.ffffffZ-SEQ.pcap (HEP: IFACE is `hep`), written as NAME.part \
and renamed once complete and fsynced; HEP capture ids and node names also go to DIR/hep-nodes.jsonl.
Sizes take units (100MB = 10^8 bytes, 64MiB = 2^26); durations too (2s, 15m, 1h, 30d).
Signals: SIGTERM and SIGINT close the current file and stop; SIGHUP starts a new file.
Exit status: 0 stopped by SIGTERM, 130 stopped by SIGINT, 2 error.")]
pub struct CaptureArgs {
    /// Interface to capture on (repeatable; `any` for all); one thread and one ring per interface
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,
    /// Directory for the ring files (created if missing)
    #[arg(short = 'w', long = "dir", value_name = "DIR")]
    pub dir: PathBuf,
    /// BPF capture filter, tcpdump syntax (or give it as trailing words)
    #[arg(short = 'f', long = "filter", value_name = "FILTER")]
    pub filter: Option<String>,
    /// BPF capture filter words, as with tcpdump (`udp port 5060`)
    #[arg(value_name = "FILTER", trailing_var_arg = true)]
    pub filter_words: Vec<String>,
    /// Bytes kept of each packet
    #[arg(short = 's', long, value_name = "BYTES", default_value_t = 262_144)]
    pub snaplen: u32,
    /// Do not put the interface into promiscuous mode
    #[arg(short = 'p', long)]
    pub no_promisc: bool,
    /// Kernel capture buffer (64MiB); a bare number is KiB, as in tcpdump
    #[arg(short = 'B', long, value_name = "SIZE")]
    pub buffer_size: Option<String>,
    /// Start a new file once the current one reaches SIZE (100MB); a bare number is millions of
    /// bytes, as in tcpdump
    #[arg(short = 'C', long, value_name = "SIZE")]
    pub rotate_size: Option<String>,
    /// Start a new file at every wall-clock multiple of DURATION (15m starts files at :00, :15,
    /// :30, :45 UTC); a bare number is seconds
    #[arg(short = 'G', long, value_name = "DURATION")]
    pub rotate_time: Option<String>,
    /// Keep only the newest N complete files of each ring (per interface, and for HEP)
    #[arg(short = 'W', long = "ring", value_name = "N")]
    pub ring: Option<u32>,
    /// Keep the newest complete files of the directory within SIZE (500GB); a bare number is bytes
    #[arg(long, value_name = "SIZE")]
    pub keep_bytes: Option<String>,
    /// Delete complete files of the directory older than DURATION (30d); a bare number is seconds
    #[arg(long, value_name = "DURATION")]
    pub keep_time: Option<String>,
    /// File format
    #[arg(long, value_enum, default_value = "pcap")]
    pub format: FormatArg,
    /// Switch to USER after opening the interfaces and sockets (DIR must be writable by USER)
    #[arg(short = 'Z', long = "user", value_name = "USER")]
    pub user: Option<String>,
    /// Print counters every DURATION (0: only at exit); a bare number is seconds
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub stats_interval: String,
    /// Also print the counters as JSON lines on stdout
    #[arg(long)]
    pub stats_json: bool,
    /// Receive HEP v2/v3 on udp:ADDR:PORT or tcp:ADDR:PORT (repeatable) into the `hep` ring
    #[arg(long = "hep-listen", value_name = "PROTO:ADDR:PORT")]
    pub hep_listen: Vec<HepListen>,
    /// Drop HEP packets whose auth key is not PASSWORD
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "SIPIDX_HEP_PASSWORD",
        hide_env_values = true
    )]
    pub hep_password: Option<String>,
}

pub fn plan(a: CaptureArgs) -> Result<CapturePlan> {
    let filter = match (a.filter, a.filter_words.is_empty()) {
        (Some(_), false) => {
            bail!("give the capture filter either with -f or as trailing words, not both")
        }
        (Some(f), true) => Some(f),
        (None, false) => Some(a.filter_words.join(" ")),
        (None, true) => None,
    };
    if a.interfaces.is_empty() && a.hep_listen.is_empty() {
        bail!("nothing to capture: give -i IFACE and/or --hep-listen udp:ADDR:PORT");
    }
    if filter.is_some() && a.interfaces.is_empty() {
        bail!("a capture filter applies to interfaces (-i), and none was given");
    }
    let opt_size = |s: &Option<String>, bare, what: &str| {
        s.as_deref()
            .map(|s| parse_size(s, bare).with_context(|| what.to_string()))
            .transpose()
    };
    let opt_dur = |s: &Option<String>, what: &str| {
        s.as_deref()
            .map(|s| parse_duration(s).with_context(|| what.to_string()))
            .transpose()
    };
    let rotate_time = opt_dur(&a.rotate_time, "-G/--rotate-time")?;
    if rotate_time.is_some_and(|d| d < Duration::from_secs(1)) {
        bail!("-G/--rotate-time must be at least 1s");
    }
    let rotate_size = opt_size(&a.rotate_size, 1_000_000, "-C/--rotate-size")?;
    if rotate_size == Some(0) {
        bail!("-C/--rotate-size must be above 0");
    }
    if a.ring == Some(0) {
        bail!("-W/--ring must be at least 1");
    }
    if a.ring.is_some() && rotate_size.is_none() && rotate_time.is_none() {
        bail!("-W/--ring needs -C or -G: without rotation there is only one file");
    }
    let stats = parse_duration(&a.stats_interval).context("--stats-interval")?;
    Ok(CapturePlan {
        interfaces: a.interfaces,
        dir: a.dir,
        filter,
        snaplen: if a.snaplen == 0 { 262_144 } else { a.snaplen },
        promisc: !a.no_promisc,
        buffer_size: opt_size(&a.buffer_size, 1024, "-B/--buffer-size")?,
        rotate_size,
        rotate_time,
        budget: Budget {
            ring_files: a.ring,
            keep_bytes: opt_size(&a.keep_bytes, 1, "--keep-bytes")?,
            keep_time: opt_dur(&a.keep_time, "--keep-time")?,
        },
        format: match a.format {
            FormatArg::Pcap => FileFormat::Pcap,
            FormatArg::Pcapng => FileFormat::Pcapng,
        },
        user: a.user,
        stats_interval: (!stats.is_zero()).then_some(stats),
        stats_json: a.stats_json,
        hep_listen: a.hep_listen,
        hep_password: a.hep_password.map(String::into_bytes),
    })
}

pub fn run(a: CaptureArgs) -> Result<u8> {
    let plan = plan(a)?;
    let control = Control::default();
    let interrupted = Arc::new(AtomicBool::new(false));
    let reg = || -> std::io::Result<()> {
        // Registered before the flag is set, so only a second SIGINT finds it true and exits.
        signal_hook::flag::register_conditional_shutdown(SIGINT, 130, interrupted.clone())?;
        signal_hook::flag::register(SIGINT, interrupted.clone())?;
        signal_hook::flag::register(SIGINT, control.stop.clone())?;
        signal_hook::flag::register(SIGTERM, control.stop.clone())?;
        signal_hook::flag::register(SIGHUP, control.rotate.clone())?;
        Ok(())
    };
    reg().context("installing signal handlers")?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut err = std::io::stderr();
    capture::run(&plan, &control, &mut out, &mut err)?;
    Ok(if interrupted.load(Ordering::Relaxed) {
        EXIT_INTERRUPTED
    } else {
        EXIT_MATCH
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(v: &[&str]) -> Result<CapturePlan> {
        let mut full = vec!["sipidx", "capture"];
        full.extend_from_slice(v);
        let cli = super::super::Cli::try_parse_from(full)?;
        match cli.command {
            super::super::args::Command::Capture(a) => plan(a),
            _ => unreachable!(),
        }
    }

    #[test]
    fn units_and_bare_numbers() {
        assert_eq!(parse_size("100MB", 1).unwrap(), 100_000_000);
        assert_eq!(parse_size("64MiB", 1).unwrap(), 64 << 20);
        assert_eq!(parse_size("100", 1_000_000).unwrap(), 100_000_000);
        assert!(parse_size("lots", 1).is_err());
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(
            parse_duration("30d").unwrap(),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn plan_from_tcpdump_like_flags() {
        let p = args(&[
            "-i",
            "lo",
            "-i",
            "any",
            "-w",
            "/tmp/x",
            "-C",
            "10",
            "-G",
            "15m",
            "-W",
            "4",
            "-B",
            "2048",
            "--keep-bytes",
            "1GB",
            "--format",
            "pcapng",
            "udp",
            "port",
            "5060",
        ])
        .unwrap();
        assert_eq!(p.interfaces, ["lo", "any"]);
        assert_eq!(p.filter.as_deref(), Some("udp port 5060"));
        assert_eq!(p.rotate_size, Some(10_000_000));
        assert_eq!(p.rotate_time, Some(Duration::from_secs(900)));
        assert_eq!(p.buffer_size, Some(2048 * 1024));
        assert_eq!(p.budget.ring_files, Some(4));
        assert_eq!(p.budget.keep_bytes, Some(1_000_000_000));
        assert_eq!(p.format, FileFormat::Pcapng);
        assert!(args(&["-i", "lo", "-w", "d", "-f", "udp", "tcp"]).is_err());
        assert!(args(&["-w", "d"]).is_err());
        assert!(args(&["-i", "lo", "-w", "d", "-W", "3"]).is_err());
        let h = args(&["-w", "d", "--hep-listen", "udp:127.0.0.1:9060"]).unwrap();
        assert_eq!(h.hep_listen.len(), 1);
        assert!(args(&["-w", "d", "--hep-listen", "quic:1.2.3.4:1"]).is_err());
    }
}
