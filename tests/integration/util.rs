//! Helpers shared by the integration tests: a builder that runs the built `sipidx` and checks its
//! exit code with stderr shown, the fixture paths, and the DB, capture and oracle helpers.
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use sipidx::source::{open_capture, PcapWriter};

/// The `sipidx` binary cargo built for these tests.
pub const EXE: &str = env!("CARGO_BIN_EXE_sipidx");

/// A command line to run (the built `sipidx`, or a tool such as tshark or python3): arguments,
/// environment and working directory, then one of `ok`, `code`, `code_in` or `run`, which run it
/// and return its [`Outcome`].
pub struct TestCommand {
    cmd: Command,
}

/// A `sipidx` command with no arguments yet.
pub fn sipidx() -> TestCommand {
    tool(EXE)
}

/// Another program the tests run (python3, sngrep...), with the same checks as `sipidx`.
pub fn tool(program: &str) -> TestCommand {
    TestCommand {
        cmd: Command::new(program),
    }
}

/// A `sipidx` command run under an address-space limit of `kib` KiB: `ulimit -v` rather than a
/// cgroup, as it works unprivileged and everywhere.
pub fn sipidx_limited(kib: u64) -> TestCommand {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(EXE);
    TestCommand { cmd }
}

impl TestCommand {
    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(a);
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(key, val);
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn stdout(&mut self, s: Stdio) -> &mut Self {
        self.cmd.stdout(s);
        self
    }

    pub fn stderr(&mut self, s: Stdio) -> &mut Self {
        self.cmd.stderr(s);
        self
    }

    /// Starts the command in the background (for the tests that signal or kill it).
    pub fn spawn(&mut self) -> Child {
        self.cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.line()))
    }

    /// Runs the command whatever its exit code.
    pub fn run(&mut self) -> Outcome {
        let out = self
            .cmd
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", self.line()));
        Outcome {
            line: self.line(),
            out,
        }
    }

    /// Runs the command and asserts it exits 0.
    pub fn ok(&mut self) -> Outcome {
        self.code(0)
    }

    /// Runs the command and asserts it exits `n`.
    pub fn code(&mut self, n: i32) -> Outcome {
        self.code_in(&[n])
    }

    /// Runs the command and asserts its exit code is one of `codes` (e.g. 0 found, 1 none).
    pub fn code_in(&mut self, codes: &[i32]) -> Outcome {
        let o = self.run();
        if !o.code().is_some_and(|c| codes.contains(&c)) {
            panic!("{}\nexpected exit code in {codes:?}", o.report());
        }
        o
    }

    /// The command line, for failure messages.
    fn line(&self) -> String {
        let mut s = self.cmd.get_program().to_string_lossy().into_owned();
        for a in self.cmd.get_args() {
            let _ = write!(s, " {}", a.to_string_lossy());
        }
        s
    }
}

/// What a finished run gave: exit status, stdout and stderr.
pub struct Outcome {
    line: String,
    out: Output,
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    pub fn stdout_bytes(&self) -> &[u8] {
        &self.out.stdout
    }

    /// Stdout as NDJSON: one value per non-empty line.
    pub fn json_rows(&self) -> Vec<Value> {
        self.stdout()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }

    /// Stdout as one JSON value (e.g. `index --json`'s summary).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.out.stdout)
            .unwrap_or_else(|e| panic!("{}\nstdout is not one JSON value: {e}", self.report()))
    }

    /// The command, its exit status and both outputs, for a failure message.
    pub fn report(&self) -> String {
        format!(
            "{}: {}\n--- stdout\n{}--- stderr\n{}",
            self.line,
            self.out.status,
            self.stdout(),
            self.stderr()
        )
    }
}

// ---- fixtures ----

/// A path under testdata/.
pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

/// A capture of testdata/corpus, the repository's copy of the shared public corpus
/// (../shared/corpus beside the main checkout), with tshark's oracles in `expected/`.
pub fn corpus(name: &str) -> PathBuf {
    testdata("corpus").join(name)
}

/// A capture of testdata/crafted (scripts/craft_testdata.py), described by its MANIFEST.json.
pub fn crafted(name: &str) -> PathBuf {
    testdata("crafted").join(name)
}

/// A capture of testdata/hostile (scripts/craft_hostile.py).
pub fn hostile(name: &str) -> PathBuf {
    testdata("hostile").join(name)
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// The `files` entries of testdata/crafted/MANIFEST.json.
pub fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(crafted("MANIFEST.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["files"].as_array().unwrap().clone()
}

/// The MANIFEST.json entry of one crafted capture.
pub fn manifest_entry(name: &str) -> Value {
    manifest()
        .into_iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in MANIFEST.json"))
}

/// The messages per Call-ID a manifest entry records.
pub fn manifest_call_ids(e: &Value) -> BTreeMap<String, u64> {
    e["call_ids"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

/// Messages per Call-ID of JSON message rows; a row without one counts under "".
pub fn call_ids(rows: &[Value]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r["call_id"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    m
}

/// tshark's `-Y sip -T fields -e sip.Call-ID | sort | uniq -c` as messages per Call-ID, or `None`
/// where the oracle file is missing. A frame with several messages prints their Call-IDs
/// comma-joined, so each is counted once per message; frames without a Call-ID count under "".
pub fn tshark_call_ids(path: &Path) -> Option<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.is_empty() {
            continue;
        }
        let (n, ids) = t.split_once(' ').unwrap_or((t, ""));
        let n: u64 = n.parse().unwrap();
        if ids.is_empty() {
            *m.entry(String::new()).or_default() += n;
        }
        for id in ids.split(',').filter(|id| !id.is_empty()) {
            *m.entry(id.to_string()).or_default() += n;
        }
    }
    Some(m)
}

// ---- the DB ----

/// `sipidx index --db DB --settle 0s --quiet`, to which the caller adds options and inputs.
pub fn index_cmd(db: &Path) -> TestCommand {
    let mut c = sipidx();
    c.arg("index")
        .arg("--db")
        .arg(db)
        .args(["--settle", "0s", "--quiet"]);
    c
}

/// Indexes `inputs` into `db`; asserts the run succeeded.
pub fn index(db: &Path, inputs: &[&Path]) -> Outcome {
    index_with(db, inputs, &[])
}

/// Indexes `inputs` into `db` with `extra` options; asserts the run succeeded.
pub fn index_with(db: &Path, inputs: &[&Path], extra: &[&str]) -> Outcome {
    index_cmd(db).args(extra).args(inputs).ok()
}

/// `sipidx verify --json`: the exit code and every row (findings and the summary).
pub fn verify(db: &Path) -> (Option<i32>, Vec<Value>) {
    let o = sipidx().args(["verify", "--json", "--db"]).arg(db).run();
    (o.code(), o.json_rows())
}

/// `sipidx verify` finds nothing wrong with the DB.
pub fn assert_sound(db: &Path) {
    sipidx().args(["verify", "--db"]).arg(db).ok();
}

// ---- captures ----

/// One record of a little-endian classic pcap, read independently of sipidx.
pub struct PcapRecord {
    pub offset: u64,
    pub ts_ns: i64,
    /// The length the record header declares (more than `bytes` holds when the file is cut).
    pub incl_len: u64,
    /// The record header and its data, as far as the file holds them.
    pub bytes: Vec<u8>,
}

/// Splits a little-endian pcap (µs or ns magic) into its global header and records; a cut
/// final record is returned too.
pub fn pcap_records(data: &[u8]) -> (Vec<u8>, Vec<PcapRecord>) {
    let magic = u32::from_le_bytes(data[0..4].try_into().unwrap());
    let unit = match magic {
        0xa1b2_c3d4 => 1_000,
        0xa1b2_3c4d => 1,
        m => panic!("not a little-endian pcap (magic {m:#x})"),
    };
    let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let incl = u32_at(off + 8) as usize;
        out.push(PcapRecord {
            offset: off as u64,
            ts_ns: u32_at(off) as i64 * 1_000_000_000 + u32_at(off + 4) as i64 * unit,
            incl_len: incl as u64,
            bytes: data[off..(off + 16 + incl).min(data.len())].to_vec(),
        });
        off += 16 + incl;
    }
    (data[..24].to_vec(), out)
}

/// Split a capture into `n` pcap ring files of about equal packet counts, like `tcpdump -C`.
pub fn split(src: &Path, dir: &Path, n: usize) -> Vec<PathBuf> {
    let mut r = open_capture(src, 0).unwrap();
    let mut packets = Vec::new();
    while let Some(p) = r.next_packet().unwrap() {
        packets.push((p.ts_ns, p.link_type, p.data.to_vec(), p.orig_len));
    }
    let per = packets.len().div_ceil(n);
    let stem = src.file_stem().unwrap().to_string_lossy().into_owned();
    let mut out = Vec::new();
    for (i, chunk) in packets.chunks(per).enumerate() {
        let path = dir.join(format!("{stem}.ring{i:02}.pcap"));
        let f = std::fs::File::create(&path).unwrap();
        let mut w = PcapWriter::new(f, chunk[0].1, 262_144, true).unwrap();
        for (ts, _, data, len) in chunk {
            w.write_packet(*ts, data, *len).unwrap();
        }
        w.flush().unwrap();
        out.push(path);
    }
    out
}
