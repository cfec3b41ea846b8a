//! `sipidx capture` end to end: the real binary on the loopback interface (libpcap) and as a HEP
//! collector, fed by this test over 127.0.0.1 only. Tests that need capture rights skip with a
//! message where they are not granted; every run is bounded in time.
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sipidx::source::open_capture;

use crate::util::{assert_sound, corpus, index, sipidx, tempdir, tool, EXE};

/// A running `sipidx capture`, killed if the test ends early.
struct Cap {
    child: Child,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl Drop for Cap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pump(r: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            let mut b = b.lock().unwrap();
            b.push_str(&line);
            b.push('\n');
        }
    });
    buf
}

/// Starts a capture and waits until it says every source is open; `Err(stderr)` if it exits.
fn start(args: &[&str]) -> Result<Cap, String> {
    let mut child = sipidx()
        .arg("capture")
        .args(["--stats-json", "--stats-interval", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let stderr = pump(child.stderr.take().unwrap());
    let stdout = pump(child.stdout.take().unwrap());
    let mut cap = Cap {
        child,
        stderr,
        stdout,
    };
    let t0 = Instant::now();
    loop {
        if cap.stderr.lock().unwrap().contains("capturing from") {
            return Ok(cap);
        }
        if let Ok(Some(_)) = cap.child.try_wait() {
            std::thread::sleep(Duration::from_millis(50)); // let the pump finish
            return Err(cap.stderr.lock().unwrap().clone());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "capture did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts a libpcap capture, or `None` (with a message) where capturing is not permitted.
fn start_live(args: &[&str]) -> Option<Cap> {
    match start(args) {
        Ok(c) => Some(c),
        Err(e) if e.contains("no permission") => {
            eprintln!("SKIP: capturing on lo is not permitted here: {e}");
            None
        }
        Err(e) => panic!("capture failed to start: {e}"),
    }
}

fn signal(c: &Cap, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &c.child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

/// Waits up to 10 s for `child` to exit; panics with `what` if it does not.
fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `sig`, waits (bounded) for the exit; returns status, stderr and the final stats line.
fn stop(mut c: Cap, sig: &str) -> (ExitStatus, String, serde_json::Value) {
    signal(&c, sig);
    let status = wait_exit(&mut c.child, "capture did not stop");
    std::thread::sleep(Duration::from_millis(50));
    let err = c.stderr.lock().unwrap().clone();
    let out = c.stdout.lock().unwrap().clone();
    let last = out
        .lines()
        .last()
        .map(|l| serde_json::from_str(l).expect("stats JSON"))
        .unwrap_or(serde_json::Value::Null);
    (status, err, last)
}

/// Sends `sig` and asserts the capture exits `code` (its stderr shown if not); returns the final
/// stats line.
fn stop_with(c: Cap, sig: &str, code: i32) -> serde_json::Value {
    let (status, err, stats) = stop(c, sig);
    assert_eq!(status.code(), Some(code), "{err}");
    stats
}

fn ring_files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut done = Vec::new();
    let mut part = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        if n.starts_with("sipidx-") && n.ends_with(".part") {
            part.push(p);
        } else if n.starts_with("sipidx-") {
            done.push(p);
        }
    }
    done.sort();
    part.sort();
    (done, part)
}

/// A receiver on a free port, so the test's packets go somewhere real.
fn sink() -> (UdpSocket, u16) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let p = s.local_addr().unwrap().port();
    (s, p)
}

fn invite(call: &str, n: usize) -> Vec<u8> {
    format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK{n}\r\n\
         From: <sip:alice@127.0.0.1>;tag=a{n}\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {call}\r\n\
         CSeq: {n} INVITE\r\nContent-Length: 0\r\n{}\r\n",
        "X-Pad: 0123456789012345678901234567890123456789\r\n".repeat(4)
    )
    .into_bytes()
}

fn send_sip(port: u16, call: &str, count: usize, gap: Duration) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in 0..count {
        s.send_to(&invite(call, n), ("127.0.0.1", port)).unwrap();
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
    }
}

/// `sipidx grep --json` over files: one JSON value per SIP message.
fn grep(files: &[PathBuf]) -> Vec<serde_json::Value> {
    sipidx()
        .arg("grep")
        .arg("--json")
        .args(files)
        .code_in(&[0, 1])
        .json_rows()
}

/// Packet timestamps of a capture file read with the project's reader; panics on a bad file.
fn timestamps(p: &Path) -> Vec<i64> {
    let mut r = open_capture(p, 0).unwrap();
    let mut v = Vec::new();
    while let Some(pk) = r.next_packet().unwrap() {
        v.push(pk.ts_ns);
    }
    assert_eq!(r.stats().truncated_at, None, "{} is cut", p.display());
    assert_eq!(r.stats().corrupt_at, None, "{} is corrupt", p.display());
    v
}

fn tool_reads(tool: &str, p: &Path) -> Option<usize> {
    let o = Command::new(tool)
        .arg("-r")
        .arg(p)
        .arg("-n")
        .output()
        .ok()?;
    assert!(
        o.status.success(),
        "{tool} -r {}: {}",
        p.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    Some(String::from_utf8_lossy(&o.stdout).lines().count())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn size_rotation_bpf_and_sigterm_leave_valid_renamed_files() {
    let d = tempdir();
    let (_a, port) = sink();
    let (_b, other) = sink();
    let filter = format!("udp port {port}");
    let Some(c) = start_live(&["-i", "lo", "-w", s(d.path()), "-C", "2KB", "-f", &filter]) else {
        return;
    };
    send_sip(port, "kept@test", 40, Duration::ZERO);
    send_sip(other, "filtered@test", 20, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(500));
    let stats = stop_with(c, "TERM", 0);
    let (done, part) = ring_files(d.path());
    assert!(part.is_empty(), "left behind: {part:?}");
    // each message is ~430 bytes: 2KB holds 4 of them, then the file is closed
    assert!(done.len() >= 8, "{} files", done.len());
    let mut total = 0;
    for f in &done {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len < 2_000 + 600, "{} is {len} bytes", f.display());
        total += timestamps(f).len();
        if let Some(n) = tool_reads("tcpdump", f) {
            assert_eq!(n, timestamps(f).len());
        }
    }
    assert_eq!(total, 40);
    assert_eq!(stats["sources"][0]["packets"], 40);
    assert_eq!(stats["sources"][0]["files_written"], done.len());
    let msgs = grep(&done);
    assert_eq!(msgs.len(), 40);
    assert!(msgs.iter().all(|m| m["call_id"] == "kept@test"));
    assert!(msgs.iter().all(|m| m["dst_port"] == port));
    if let Some(n) = tool_reads("tshark", &done[0]) {
        assert!(n > 0);
    }
}

#[test]
fn sighup_rotates_sigint_exits_130_and_pcapng_reads_in_tshark() {
    let d = tempdir();
    let (_a, port) = sink();
    let f = format!("udp port {port}");
    let Some(c) = start_live(&["-i", "lo", "-w", s(d.path()), "--format", "pcapng", &f]) else {
        return;
    };
    send_sip(port, "first@test", 3, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(400));
    signal(&c, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    send_sip(port, "second@test", 2, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(400));
    stop_with(c, "INT", 130);
    let (done, part) = ring_files(d.path());
    assert!(part.is_empty());
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(done.iter().all(|p| p.extension().unwrap() == "pcapng"));
    let ids: Vec<_> = done
        .iter()
        .map(|f| {
            grep(std::slice::from_ref(f))
                .iter()
                .map(|m| m["call_id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(ids[0], vec!["first@test"; 3]);
    assert_eq!(ids[1], vec!["second@test"; 2]);
    for f in &done {
        if let Some(n) = tool_reads("tshark", f) {
            assert_eq!(n, timestamps(f).len());
        }
    }
}

#[test]
fn time_rotation_is_aligned_to_wall_clock_periods() {
    let d = tempdir();
    let (_a, port) = sink();
    let f = format!("udp port {port}");
    let Some(c) = start_live(&["-i", "lo", "-w", s(d.path()), "-G", "1s", &f]) else {
        return;
    };
    send_sip(port, "timed@test", 25, Duration::from_millis(100));
    std::thread::sleep(Duration::from_millis(300));
    stop_with(c, "TERM", 0);
    let (done, _) = ring_files(d.path());
    assert!(done.len() >= 3, "{} files over 2.5s", done.len());
    let mut seen = Vec::new();
    let mut total = 0;
    for f in &done {
        let ts = timestamps(f);
        total += ts.len();
        let second = ts[0] / 1_000_000_000;
        assert!(
            ts.iter().all(|t| t / 1_000_000_000 == second),
            "{} spans a 1s boundary",
            f.display()
        );
        assert!(!seen.contains(&second));
        seen.push(second);
    }
    assert_eq!(total, 25);
}

#[test]
fn ring_keeps_newest_n_files() {
    let d = tempdir();
    let (_a, port) = sink();
    let f = format!("udp port {port}");
    let args = ["-i", "lo", "-w", s(d.path()), "-C", "1KB", "-W", "3", &f];
    let Some(c) = start_live(&args) else {
        return;
    };
    // 2 messages per file: 30 messages make 15 files, of which the newest 3 stay
    for n in 0..30 {
        send_sip(port, &format!("call-{n:02}@ring"), 1, Duration::ZERO);
    }
    std::thread::sleep(Duration::from_millis(500));
    let stats = stop_with(c, "TERM", 0);
    let (done, _) = ring_files(d.path());
    assert_eq!(done.len(), 3, "{done:?}");
    let written = stats["sources"][0]["files_written"].as_u64().unwrap();
    assert_eq!(stats["files_deleted"].as_u64().unwrap(), written - 3);
    let ids: Vec<String> = grep(&done)
        .iter()
        .map(|m| m["call_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.last().unwrap(), "call-29@ring");
    assert!(!ids.contains(&"call-00@ring".to_string()));
}

#[test]
fn byte_and_age_budgets_cover_the_directory() {
    let d = tempdir();
    // an old ring file of an earlier run, and a file that is not the ring's
    let old = d
        .path()
        .join("sipidx-eth9-20200101T000000.000000Z-000000.pcap");
    std::fs::write(&old, b"old").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    let notes = d.path().join("notes.txt");
    std::fs::write(&notes, vec![b'n'; 10_000]).unwrap();
    let (_a, port) = sink();
    let f = format!("udp port {port}");
    let args = [
        "-i",
        "lo",
        "-w",
        s(d.path()),
        "-C",
        "1KB",
        "--keep-bytes",
        "3KB",
        "--keep-time",
        "1h",
        &f,
    ];
    let Some(c) = start_live(&args) else {
        return;
    };
    send_sip(port, "budget@test", 30, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(500));
    let stats = stop_with(c, "TERM", 0);
    assert!(
        !old.exists(),
        "the 2h-old ring file outlived --keep-time 1h"
    );
    assert!(notes.exists(), "a file that is not the ring's was deleted");
    let (done, _) = ring_files(d.path());
    let bytes: u64 = done
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(bytes <= 3_000, "{bytes} bytes kept");
    assert!(done.len() >= 2);
    assert!(stats["files_deleted"].as_u64().unwrap() >= 5);
}

#[test]
fn crash_leaves_one_readable_part_file() {
    let d = tempdir();
    let (_a, port) = sink();
    let f = format!("udp port {port}");
    let Some(c) = start_live(&["-i", "lo", "-w", s(d.path()), &f]) else {
        return;
    };
    send_sip(port, "crash@test", 5, Duration::ZERO);
    // staged records reach the file within a second
    std::thread::sleep(Duration::from_millis(1600));
    let (status, _, _) = stop(c, "KILL");
    assert!(!status.success());
    let (done, part) = ring_files(d.path());
    assert!(done.is_empty());
    assert_eq!(part.len(), 1);
    assert_eq!(grep(&part).len(), 5);
}

#[test]
fn drops_privileges_with_z_after_opening() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(o) = Command::new("id").args(["-u", "nobody"]).output() else {
        return;
    };
    let Ok(uid) = String::from_utf8_lossy(&o.stdout).trim().parse::<u32>() else {
        eprintln!("SKIP: no user nobody");
        return;
    };
    let d = tempdir();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (_a, port) = sink();
    let f = format!("udp port {port}");
    let Some(c) = start_live(&["-i", "lo", "-w", s(d.path()), "-Z", "nobody", &f]) else {
        return;
    };
    send_sip(port, "z@test", 3, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(400));
    stop_with(c, "TERM", 0);
    let (done, _) = ring_files(d.path());
    assert_eq!(done.len(), 1);
    assert_eq!(std::fs::metadata(&done[0]).unwrap().uid(), uid);
    assert_eq!(grep(&done).len(), 3);
}

#[test]
fn errors_name_the_problem() {
    let d = tempdir();
    let run = |args: &[&str]| {
        let o = sipidx().arg("capture").args(args).run();
        (o.code(), o.stderr())
    };
    let (code, err) = run(&["-i", "nosuchif0", "-w", s(d.path())]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no such interface 'nosuchif0'"), "{err}");
    assert!(err.contains("lo"), "existing interfaces not listed: {err}");

    let file = d.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, err) = run(&["-i", "lo", "-w", &format!("{}/sub", s(&file))]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is not writable"), "{err}");

    let (code, err) = run(&["-i", "lo", "-w", s(d.path()), "udp", "prot", "5060"]);
    assert_eq!(code, Some(2));
    if err.contains("no permission") {
        eprintln!("SKIP: filter error needs capture rights: {err}");
    } else {
        assert!(err.contains("bad capture filter 'udp prot 5060'"), "{err}");
        assert!(
            err.contains("syntax error"),
            "libpcap's message missing: {err}"
        );
    }

    let (code, err) = run(&["-w", s(d.path())]);
    assert_eq!(code, Some(2));
    assert!(err.contains("nothing to capture"), "{err}");

    // Without CAP_NET_RAW the error says which capability is missing.
    let setpriv = Command::new("setpriv")
        .args(["--bounding-set", "-net_raw,-net_admin"])
        .args(["--inh-caps", "-net_raw,-net_admin"])
        .arg(EXE)
        .args(["capture", "-i", "lo", "-w", s(d.path())])
        .output();
    match setpriv {
        Ok(o) if o.status.code() == Some(2) => {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("CAP_NET_RAW"), "{err}");
            assert!(err.contains("no permission"), "{err}");
        }
        _ => eprintln!("SKIP: setpriv cannot drop capabilities here"),
    }
}

/// Mounts a small tmpfs, or `None` where mounting is not allowed.
struct SmallFs(PathBuf);

impl SmallFs {
    fn new(dir: &Path, size: &str) -> Option<SmallFs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIP: cannot mount a small tmpfs to fill");
        }
        ok.then(|| SmallFs(dir.to_path_buf()))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_deletes_oldest_ring_files_or_stops_cleanly() {
    let d = tempdir();
    let Some(_fs) = SmallFs::new(d.path(), "200k") else {
        return;
    };
    let (_a, port) = sink();
    let f = format!("udp port {port}");
    let dir = d.path().join("ring");
    // With a budget: 300 messages (~150KB on the wire, with headers) do not fit twice in 200k,
    // yet the capture goes on, deleting the oldest files.
    let Some(c) = start_live(&["-i", "lo", "-w", s(&dir), "-C", "20KB", "-W", "1000", &f]) else {
        return;
    };
    for _ in 0..3 {
        send_sip(port, "full@test", 300, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_millis(300));
    let stats = stop_with(c, "TERM", 0);
    assert!(stats["files_deleted"].as_u64().unwrap() > 0, "{stats}");
    let (done, part) = ring_files(&dir);
    assert!(part.is_empty());
    for f in &done {
        timestamps(f);
    }
    let kept = grep(&done).len();
    assert!(kept > 100 && kept < 900, "{kept}");

    // Without a budget nothing may be deleted: a clear error, and the last file is whole.
    std::fs::remove_dir_all(&dir).unwrap();
    let dir2 = d.path().join("nobudget");
    let Some(c) = start_live(&["-i", "lo", "-w", s(&dir2), "-C", "20KB", &f]) else {
        return;
    };
    send_sip(port, "full@test", 600, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(1500));
    let mut c = c;
    let status = wait_exit(&mut c.child, "no stop on a full disk");
    std::thread::sleep(Duration::from_millis(50));
    let err = c.stderr.lock().unwrap().clone();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("disk full"), "{err}");
    let (done, part) = ring_files(&dir2);
    assert!(part.is_empty(), "{part:?}");
    assert!(!done.is_empty());
    for f in &done {
        timestamps(f);
        tool_reads("tcpdump", f);
    }
}

// ---- HEP ----

/// A HEP3 packet of this test's own encoder: IPv4, UDP or TCP, with capture id, node and key.
fn hep3(
    src: [u8; 4],
    dst: [u8; 4],
    ports: (u16, u16),
    proto: u8,
    ts: (u32, u32),
    key: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let chunks: Vec<(u16, Vec<u8>)> = vec![
        (1, vec![2]),
        (2, vec![proto]),
        (3, src.to_vec()),
        (4, dst.to_vec()),
        (7, ports.0.to_be_bytes().to_vec()),
        (8, ports.1.to_be_bytes().to_vec()),
        (9, ts.0.to_be_bytes().to_vec()),
        (10, ts.1.to_be_bytes().to_vec()),
        (11, vec![1]),
        (12, 2001u32.to_be_bytes().to_vec()),
        (14, key.to_vec()),
        (19, b"proxy-1".to_vec()),
        (15, payload.to_vec()),
    ];
    let mut body = Vec::new();
    for (t, v) in chunks {
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&t.to_be_bytes());
        body.extend_from_slice(&((v.len() + 6) as u16).to_be_bytes());
        body.extend_from_slice(&v);
    }
    let mut p = b"HEP3".to_vec();
    p.extend_from_slice(&((body.len() + 6) as u16).to_be_bytes());
    p.extend_from_slice(&body);
    p
}

fn free_port() -> u16 {
    let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    s.local_addr().unwrap().port()
}

#[test]
fn hep_collector_rebuilds_packets_udp_and_tcp_with_password() {
    let d = tempdir();
    let (pu, pt) = (sink().1, free_port());
    let udp = format!("udp:127.0.0.1:{pu}");
    let tcp = format!("tcp:127.0.0.1:{pt}");
    let args = [
        "-w",
        s(d.path()),
        "--format",
        "pcapng",
        "--hep-listen",
        &udp,
        "--hep-listen",
        &tcp,
        "--hep-password",
        "s3cret",
    ];
    let c = start(&args).expect("HEP collector needs no privileges");
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    for n in 0..5u32 {
        let p = hep3(
            [10, 1, 1, 1],
            [10, 2, 2, 2],
            (5060, 5080),
            17,
            (1_700_000_000 + n, 250_000),
            b"s3cret",
            &invite("hep-udp@test", n as usize),
        );
        tx.send_to(&p, ("127.0.0.1", pu)).unwrap();
    }
    for n in 0..3 {
        let p = hep3(
            [1; 4],
            [2; 4],
            (1, 2),
            17,
            (1, 0),
            b"wrong",
            &invite("bad@test", n),
        );
        tx.send_to(&p, ("127.0.0.1", pu)).unwrap();
    }
    // TCP: one SIP message split over two HEP packets, frames cut across writes
    let msg = invite("hep-tcp@test", 9);
    let (a, b) = msg.split_at(100);
    let mut stream = Vec::new();
    for (i, part) in [a, b].into_iter().enumerate() {
        stream.extend(hep3(
            [10, 3, 3, 3],
            [10, 4, 4, 4],
            (40000, 5061),
            6,
            (1_700_000_100, i as u32),
            b"s3cret",
            part,
        ));
    }
    let mut t = TcpStream::connect(("127.0.0.1", pt)).unwrap();
    let (x, y) = stream.split_at(37);
    t.write_all(x).unwrap();
    t.flush().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    t.write_all(y).unwrap();
    drop(t);
    std::thread::sleep(Duration::from_millis(600));
    let stats = stop_with(c, "TERM", 0);
    assert_eq!(stats["hep"]["rejected_auth"], 3, "{stats}");
    assert_eq!(stats["hep"]["received"], 10);
    let (done, _) = ring_files(d.path());
    assert_eq!(done.len(), 1);
    assert!(done[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("sipidx-hep-"));
    let msgs = grep(&done);
    assert_eq!(msgs.len(), 6, "{msgs:?}");
    let udp_msgs: Vec<_> = msgs
        .iter()
        .filter(|m| m["call_id"] == "hep-udp@test")
        .collect();
    assert_eq!(udp_msgs.len(), 5);
    let m = udp_msgs[0];
    assert_eq!(
        (&m["src_ip"], &m["src_port"], &m["dst_ip"], &m["dst_port"]),
        (
            &serde_json::json!("10.1.1.1"),
            &serde_json::json!(5060),
            &serde_json::json!("10.2.2.2"),
            &serde_json::json!(5080)
        )
    );
    assert_eq!(m["ts"], "2023-11-14T22:13:20.250000Z");
    let tcp_msg = msgs
        .iter()
        .find(|m| m["call_id"] == "hep-tcp@test")
        .expect("TCP-carried message reassembled");
    assert_eq!(tcp_msg["transport"], "tcp");
    assert_eq!(tcp_msg["dst_port"], 5061);

    // capture id and node: in the side table and in the pcapng comments
    let side = std::fs::read_to_string(d.path().join("hep-nodes.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = side
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{side}"); // the UDP agent and the TCP agent
    assert!(rows
        .iter()
        .all(|r| r["capture_id"] == 2001 && r["node"] == "proxy-1"));
    assert_eq!(
        rows.iter()
            .map(|r| r["packets"].as_u64().unwrap())
            .sum::<u64>(),
        7
    );
    assert_eq!(rows[0]["ranges"], serde_json::json!([[0, 5]]));
    if let Ok(o) = Command::new("tshark")
        .args(["-r", s(&done[0]), "-T", "fields", "-e", "frame.comment"])
        .output()
    {
        let text = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            text.lines()
                .filter(|l| l.contains("capture_id=2001 node=proxy-1"))
                .count(),
            7,
            "{text}"
        );
    }
    // the index takes the capture id of rebuilt packets from the side table: searchable by it
    let db = d.path().join("db");
    index(&db, &[d.path()]);
    let rows = sipidx::store::parquet::read_messages(&db, None, None).unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|m| m.hep_capture_id == Some(2001)));
    assert_sound(&db);
}

#[test]
fn sngrep_as_hep_sender() {
    if Command::new("sngrep").arg("-V").output().is_err() {
        eprintln!("SKIP: sngrep is not installed");
        return;
    }
    let d = tempdir();
    let port = sink().1;
    let listen = format!("udp:127.0.0.1:{port}");
    let c = start(&["-w", s(d.path()), "--hep-listen", &listen]).unwrap();
    let input = corpus("sip-sipp-5-calls-sll.pcap");
    tool("timeout")
        .args(["20", "sngrep", "-N", "-I", s(&input), "-H", &listen])
        .ok();
    std::thread::sleep(Duration::from_millis(500));
    stop_with(c, "TERM", 0);
    let (done, _) = ring_files(d.path());
    // Every message of the original comes back with its addresses, ports and time.
    let strip = |v: Vec<serde_json::Value>| {
        v.into_iter()
            .map(|mut m| {
                let o = m.as_object_mut().unwrap();
                o.remove("file");
                o.remove("offset");
                o.remove("hep_capture_id");
                m
            })
            .collect::<Vec<_>>()
    };
    let got = strip(grep(&done));
    let want = strip(grep(&[input]));
    assert_eq!(got.len(), 30);
    assert_eq!(got, want);
}

/// Live indexing: a call captured on lo is found by `sipidx search` within one rotation period
/// (plus the follower's poll interval).
#[test]
fn follow_mode_makes_a_captured_call_searchable_within_one_rotation() {
    let d = tempdir();
    let ring = d.path().join("ring");
    let db = d.path().join("db");
    let (_a, port) = sink();
    let f = format!("udp port {port}");
    let Some(cap) = start_live(&["-i", "lo", "-w", s(&ring), "-G", "1s", &f]) else {
        return;
    };
    let mut follower = sipidx()
        .args([
            "index",
            "--follow",
            "--quiet",
            "--settle",
            "0s",
            "--interval",
            "200ms",
            "--db",
        ])
        .arg(&db)
        .arg(&ring)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    send_sip(port, "followed@test", 1, Duration::ZERO);
    let sent = Instant::now();
    let found = loop {
        let o = sipidx()
            .args(["search", "--json", "--call-id", "followed@test", "--db"])
            .arg(&db)
            .run();
        if o.code() == Some(0) {
            break sent.elapsed();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(8),
            "not searchable after 8 s: {}",
            o.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // one rotation (1 s) + the follower's interval (0.2 s) + one indexing round, with slack
    assert!(found < Duration::from_secs(4), "searchable after {found:?}");
    stop_with(cap, "TERM", 0);
    // SIGTERM ends the follower cleanly
    Command::new("kill")
        .args(["-TERM", &follower.id().to_string()])
        .status()
        .unwrap();
    let st = wait_exit(&mut follower, "follower did not stop");
    assert_eq!(st.code(), Some(0));
    // many incremental rounds, stopped by a signal: the DB is sound
    assert_sound(&db);
}
