//! Seeded mutation fuzzer for the targets in lib.rs: runs on the stable toolchain (cargo-fuzz's
//! libFuzzer needs nightly's sanitizer flags), deterministic for a given --seed.
//!
//! Usage: sipidx-fuzz [--seconds S] [--iters N] [--seed X] [--corpus DIR] [TARGET...]
//! Inputs come from DIR/<target>/ (default fuzz/corpus). A panic saves the input under
//! fuzz/artifacts/<target>/ and makes the exit status 1; an input taking over a second is saved too.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sipidx_fuzz::TARGETS;

/// xorshift64*: a tiny PRNG is all mutation needs, and keeps runs reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const INTERESTING: &[u32] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
];
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b":",
    b";",
    b",",
    b"\"",
    b"<",
    b">",
    b"SIP/2.0",
    b"Content-Length: ",
    b"Call-ID: ",
    b"m=audio ",
    b"c=IN IP4 ",
    b"a=rtpmap:",
    b"=",
    b" ",
    b"999999999999999999999",
    b"-1",
    b"\x00",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
    for _ in 0..1 + rng.below(8) {
        let len = input.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = rng.next() as u8;
            }
            2 if len >= 4 => {
                // an interesting 16/32-bit value, either byte order: lengths and counts live here
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let w = if rng.below(2) == 0 { 2 } else { 4 };
                let i = rng.below(len - w + 1);
                let b = if rng.below(2) == 0 {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                input[i..i + w].copy_from_slice(&b[4 - w..]);
            }
            3 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                input.drain(a..b);
            }
            4 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(256)).min(len);
                let chunk = input[a..b].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            5 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, t.iter().copied());
            }
            6 if !pool.is_empty() => {
                // splice: our head, another seed's tail
                let other = &pool[rng.below(pool.len())];
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            7 if len > 0 => input.truncate(rng.below(len)),
            _ => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
        }
    }
    input.truncate(1 << 20);
}

fn seeds(dir: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| std::fs::read(e.path()).ok().map(|b| (e.path(), b)))
        .collect();
    v.sort(); // read_dir order differs between machines; runs must not
    v.into_iter().map(|(_, b)| b).collect()
}

fn save(target: &str, kind: &str, data: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("artifacts")
        .join(target);
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    let h = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let p = dir.join(format!("{kind}-{h:016x}"));
    std::fs::write(&p, data).expect("save artifact");
    p
}

fn main() {
    let mut seconds = 10.0f64;
    let mut iters = u64::MAX;
    let mut seed = 6u64;
    let mut corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--seconds" => seconds = val().parse().expect("--seconds"),
            "--iters" => iters = val().parse().expect("--iters"),
            "--seed" => seed = val().parse().expect("--seed"),
            "--corpus" => corpus = PathBuf::from(val()),
            "--list" => {
                TARGETS.iter().for_each(|t| println!("{}", t.name));
                return;
            }
            _ => names.push(a),
        }
    }
    // capture targets go through a file: on tmpfs when there is one
    let scratch = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("scratch dir");
    // keep panics quiet while fuzzing; the input is saved and the message printed once
    std::panic::set_hook(Box::new(|_| {}));
    let mut failed = false;
    for t in TARGETS
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
    {
        let pool = seeds(&corpus.join(t.name));
        if pool.is_empty() {
            eprintln!("{}: no seeds in {}", t.name, corpus.join(t.name).display());
            failed = true;
            continue;
        }
        let mut rng = Rng(seed ^ 0x9E37_79B9_7F4A_7C15 ^ t.name.len() as u64);
        let start = Instant::now();
        let budget = Duration::from_secs_f64(seconds);
        let (mut n, mut crashes, mut slow) = (0u64, 0u64, 0u64);
        while n < iters && start.elapsed() < budget {
            let mut input = pool[rng.below(pool.len())].clone();
            if n >= pool.len() as u64 {
                mutate(&mut rng, &mut input, &pool);
            }
            let t0 = Instant::now();
            let r = std::panic::catch_unwind(|| (t.run)(&input, scratch.path()));
            if let Err(e) = r {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                let p = save(t.name, "crash", &input);
                eprintln!(
                    "{}: PANIC at iteration {n}: {msg}; input saved to {}",
                    t.name,
                    p.display()
                );
                crashes += 1;
                failed = true;
            } else if t0.elapsed() > Duration::from_secs(1) {
                let p = save(t.name, "slow", &input);
                eprintln!(
                    "{}: input took {:?}; saved to {}",
                    t.name,
                    t0.elapsed(),
                    p.display()
                );
                slow += 1;
                failed = true;
            }
            n += 1;
        }
        println!(
            "{}: {n} executions in {:.1}s ({} seeds), {crashes} crashes, {slow} slow",
            t.name,
            start.elapsed().as_secs_f64(),
            pool.len()
        );
    }
    std::process::exit(i32::from(failed));
}
