//! Dialog fold tests: message builders, a `Flow` that checks every fold is order independent,
//! and the cases by subject (calls, registrations and other methods, the real-capture corpus).
use super::*;
use crate::sip::parse;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const CALLER: &str = "10.0.0.1";
const CALLEE: &str = "10.0.0.2";

/// A message with the usual headers; `to_tag` and `extra` as given.
fn sip(
    start: &str,
    cseq: &str,
    from_tag: &str,
    to_tag: Option<&str>,
    reverse: bool,
    extra: &[&str],
) -> Vec<u8> {
    let (from, to) = ("<sip:alice@a.example>", "<sip:bob@b.example>");
    let (from_tag, to_tag) = (Some(from_tag), to_tag);
    // a request from the callee swaps From and To
    let (f, ft, t, tt) = if reverse {
        (to, to_tag, from, from_tag)
    } else {
        (from, from_tag, to, to_tag)
    };
    let mut s = String::new();
    let _ = write!(
        s,
        "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
    );
    let _ = write!(s, "From: {f}");
    if let Some(tag) = ft {
        let _ = write!(s, ";tag={tag}");
    }
    let _ = write!(s, "\r\nTo: {t}");
    if let Some(tag) = tt {
        let _ = write!(s, ";tag={tag}");
    }
    let _ = write!(s, "\r\nCall-ID: c1@a.example\r\nCSeq: {cseq}\r\n");
    for h in extra {
        let _ = write!(s, "{h}\r\n");
    }
    s.push_str("Content-Length: 0\r\n\r\n");
    s.into_bytes()
}

struct Flow(Vec<(i64, bool, Vec<u8>)>);

impl Flow {
    fn new() -> Self {
        Flow(Vec::new())
    }
    /// `ms` after start; `up` = sent by the caller.
    fn add(&mut self, ms: i64, up: bool, m: Vec<u8>) -> &mut Self {
        self.0.push((ms * 1_000_000, up, m));
        self
    }
    fn summaries(&self) -> Vec<DialogSummary> {
        self.0
            .iter()
            .map(|(ts, up, m)| {
                let (a, b) = (CALLER.parse().unwrap(), CALLEE.parse().unwrap());
                let (src_ip, dst_ip) = if *up { (a, b) } else { (b, a) };
                let seen = Seen {
                    ts_ns: *ts,
                    src_ip,
                    src_port: 5060,
                    dst_ip,
                    dst_port: 5060,
                };
                let mut d = DialogSummary::new("c1@a.example");
                d.observe(seen, &parse(m).unwrap());
                d
            })
            .collect()
    }
    /// Folded in order, and checked equal to reverse order and to shuffled partial merges.
    fn fold(&self) -> DialogSummary {
        let parts = self.summaries();
        let forward = fold_all(parts.clone());
        let mut rev = parts.clone();
        rev.reverse();
        assert_eq!(forward, fold_all(rev), "reverse order");
        for seed in 1..20 {
            assert_eq!(forward, random_split_merge(&parts, seed), "seed {seed}");
        }
        forward
    }
}

fn fold_all(parts: Vec<DialogSummary>) -> DialogSummary {
    let mut d = DialogSummary::default();
    for p in parts {
        d.merge(p);
    }
    d
}

/// splitmix64: enough randomness to split and shuffle deterministically.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Shuffle the messages, cut them into random chunks (files, threads), fold each chunk,
/// then merge the partial summaries pairwise in random order.
fn random_split_merge(parts: &[DialogSummary], seed: u64) -> DialogSummary {
    let mut rng = Rng(seed);
    let mut v = parts.to_vec();
    rng.shuffle(&mut v);
    let mut chunks: Vec<DialogSummary> = Vec::new();
    while !v.is_empty() {
        let n = 1 + rng.below(v.len().min(5));
        chunks.push(fold_all(v.drain(..n).collect()));
    }
    while chunks.len() > 1 {
        let a = chunks.swap_remove(rng.below(chunks.len()));
        let i = rng.below(chunks.len());
        let mut b = std::mem::take(&mut chunks[i]);
        b.merge(a);
        chunks[i] = b;
    }
    chunks.pop().unwrap_or_default()
}

const INV: &str = "INVITE sip:bob@b.example SIP/2.0";

fn ms(d: Option<f64>) -> Option<i64> {
    d.map(|x| x.round() as i64)
}

mod calls;
mod corpus;
mod register;
