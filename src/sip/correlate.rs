//! Leg correlation: the dialogs a B2BUA or SBC creates for one call get one `correlation_id`.
//! Union-find over header links and an optional number-and-time fallback; the id is the smallest
//! Call-ID of each group, so the result does not depend on the order dialogs are given in.
//!
//! Links, strongest first:
//! 1. one leg's X-Call-ID / X-CID / X-Orig-Call-ID (or a configured header such as X-Leg-ID)
//!    equals the other leg's Call-ID, or both legs carry the same such value;
//! 2. (optional) both are calls with the same caller and callee numbers, compared on their last
//!    `suffix_digits` digits (B2BUAs rewrite `+4930…` to `030…`), starting within `window_ns` of
//!    each other. Legs are chained in start order, so three legs 1.5 s apart form one group.
use std::collections::HashMap;

use super::dialog::{DialogKind, DialogSummary};

/// What leg correlation looks at; the CLI fills it from `--correlate-header` and the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrelateConfig {
    /// Headers whose values link legs besides X-Call-ID, X-CID, X-Orig-Call-ID (e.g. `X-Leg-ID`).
    pub headers: Vec<String>,
    /// The number-and-time fallback; `None` disables it.
    pub fallback: Option<NumberMatch>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumberMatch {
    /// Largest difference between two legs' start times, in nanoseconds.
    pub window_ns: i64,
    /// How many trailing digits of the caller and callee numbers must agree.
    pub suffix_digits: usize,
}

impl Default for NumberMatch {
    fn default() -> Self {
        NumberMatch {
            window_ns: 2_000_000_000,
            suffix_digits: 8,
        }
    }
}

impl Default for CorrelateConfig {
    fn default() -> Self {
        CorrelateConfig {
            headers: Vec::new(),
            fallback: Some(NumberMatch::default()),
        }
    }
}

/// The facts about one dialog that correlation needs, borrowed from its summary.
#[derive(Clone, Copy, Debug)]
pub struct Leg<'a> {
    pub call_id: &'a str,
    /// X-Call-ID-style values and the configured headers' values.
    pub x_call_ids: &'a [String],
    pub values: &'a [String],
    /// The fallback applies to calls only (registrations of one user are not one call).
    pub is_call: bool,
    pub from_user: Option<&'a str>,
    pub to_user: Option<&'a str>,
    pub ruri_user: Option<&'a str>,
    pub start_ns: Option<i64>,
}

impl<'a> From<&'a DialogSummary> for Leg<'a> {
    fn from(d: &'a DialogSummary) -> Self {
        let first = d.first.as_ref();
        Leg {
            call_id: &d.call_id,
            x_call_ids: &d.x_call_ids,
            values: &d.correlation_values,
            is_call: d.kind() == DialogKind::Call,
            from_user: first.and_then(|f| f.from_user.as_deref()),
            to_user: first.and_then(|f| f.to_user.as_deref()),
            ruri_user: first.and_then(|f| f.ruri_user.as_deref()),
            start_ns: d.invite_ns().or(d.start_ns),
        }
    }
}

type Member<'a> = (i64, &'a str, usize);

struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
        }
    }
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}

/// A number reduced for comparison: the last `n` digits when it is written as a telephone
/// number (digits with `+ - . ( )` and spaces), else the whole user part lower-cased.
fn number_key(user: Option<&str>, n: usize) -> Option<String> {
    let user = user?.trim();
    if user.is_empty() {
        return None;
    }
    let phone = user
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'(' | b')' | b' '));
    if phone {
        let digits: Vec<u8> = user.bytes().filter(u8::is_ascii_digit).collect();
        if digits.is_empty() {
            return None;
        }
        let tail = &digits[digits.len().saturating_sub(n)..];
        Some(String::from_utf8_lossy(tail).into_owned())
    } else {
        Some(user.to_ascii_lowercase())
    }
}

/// The correlation id of every leg, in input order: the smallest Call-ID of its group.
pub fn correlate(legs: &[Leg<'_>], cfg: &CorrelateConfig) -> Vec<String> {
    correlate_groups(legs, cfg)
        .into_iter()
        .map(|j| legs[j as usize].call_id.to_string())
        .collect()
}

/// The legs [`correlate_groups`] works on: a slice, or a packed store that makes each on demand
/// (an indexing run keeps millions of dialogs' keys, not their summaries).
pub trait Legs<'a> {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn leg(&self, i: usize) -> Leg<'a>;
}

impl<'a> Legs<'a> for &[Leg<'a>] {
    fn len(&self) -> usize {
        <[Leg<'a>]>::len(self)
    }
    fn leg(&self, i: usize) -> Leg<'a> {
        self[i]
    }
}

/// As [`correlate`], naming each leg's group by the index of the leg with the smallest Call-ID.
pub fn correlate_groups<'a>(legs: impl Legs<'a>, cfg: &CorrelateConfig) -> Vec<u32> {
    let n = legs.len();
    let mut uf = UnionFind::new(n);
    // Call-IDs and carried values share one namespace: a value equal to a Call-ID links to that
    // leg, a value two legs carry links them.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for i in 0..n {
        let leg = legs.leg(i);
        match owner.get(leg.call_id) {
            Some(&j) => uf.union(i, j),
            None => {
                owner.insert(leg.call_id, i);
            }
        }
    }
    for i in 0..n {
        let leg = legs.leg(i);
        for v in leg.x_call_ids.iter().chain(leg.values) {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match owner.get(v) {
                Some(&j) => uf.union(i, j),
                None => {
                    owner.insert(v, i);
                }
            }
        }
    }
    if let Some(nm) = cfg.fallback {
        // (caller, callee) → (start, Call-ID, index) of every call leg with those numbers
        let mut groups: HashMap<(String, String), Vec<Member<'_>>> = HashMap::new();
        for i in 0..n {
            let leg = legs.leg(i);
            let (Some(start), true) = (leg.start_ns, leg.is_call) else {
                continue;
            };
            let Some(from) = number_key(leg.from_user, nm.suffix_digits) else {
                continue;
            };
            let mut callees: Vec<String> = [leg.to_user, leg.ruri_user]
                .into_iter()
                .filter_map(|u| number_key(u, nm.suffix_digits))
                .collect();
            callees.dedup();
            for to in callees {
                groups
                    .entry((from.clone(), to))
                    .or_default()
                    .push((start, leg.call_id, i));
            }
        }
        for members in groups.values_mut() {
            members.sort_unstable();
            for w in members.windows(2) {
                if w[1].0 - w[0].0 <= nm.window_ns {
                    uf.union(w[0].2, w[1].2);
                }
            }
        }
    }
    // per root, the member with the smallest Call-ID
    let mut smallest: Vec<u32> = vec![u32::MAX; n];
    for i in 0..n {
        let root = uf.find(i);
        let s = &mut smallest[root];
        if *s == u32::MAX || legs.leg(i).call_id < legs.leg(*s as usize).call_id {
            *s = i as u32;
        }
    }
    (0..n).map(|i| smallest[uf.find(i)]).collect()
}

/// [`correlate`] over dialog summaries.
pub fn correlate_dialogs(dialogs: &[DialogSummary], cfg: &CorrelateConfig) -> Vec<String> {
    let legs: Vec<Leg<'_>> = dialogs.iter().map(Leg::from).collect();
    correlate(&legs, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg<'a>(
        call_id: &'a str,
        x: &'a [String],
        from: &'a str,
        to: &'a str,
        start_ms: i64,
    ) -> Leg<'a> {
        Leg {
            call_id,
            x_call_ids: x,
            values: &[],
            is_call: true,
            from_user: Some(from),
            to_user: Some(to),
            ruri_user: Some(to),
            start_ns: Some(start_ms * 1_000_000),
        }
    }

    #[test]
    fn x_call_id_links_to_the_other_legs_call_id() {
        let x = vec!["a-leg@pbx".to_string()];
        let legs = [
            leg("z-leg@sbc", &x, "alice", "bob", 10),
            leg("a-leg@pbx", &[], "alice", "bob", 0),
            leg("other@pbx", &[], "carol", "dave", 0),
        ];
        let cfg = CorrelateConfig {
            fallback: None,
            ..Default::default()
        };
        assert_eq!(
            correlate(&legs, &cfg),
            ["a-leg@pbx", "a-leg@pbx", "other@pbx"]
        );
    }

    #[test]
    fn shared_configured_header_value_links_legs() {
        let v = vec!["leg-77".to_string()];
        let mut a = leg("b", &[], "1", "2", 0);
        a.values = &v;
        let mut b = leg("a", &[], "3", "4", 50_000);
        b.values = &v;
        let c = leg("c", &[], "1", "2", 50_000);
        let cfg = CorrelateConfig {
            headers: vec!["X-Leg-ID".into()],
            fallback: None,
        };
        assert_eq!(correlate(&[a, b, c], &cfg), ["a", "a", "c"]);
    }

    #[test]
    fn number_fallback_matches_suffix_within_window_only() {
        let legs = [
            leg("leg2", &[], "004930123456", "+4940987654321", 500),
            leg("leg1", &[], "+4930123456", "040987654321", 0),
            // same numbers, but 10 s later: a redial, not this call
            leg("leg3", &[], "+4930123456", "040987654321", 10_500),
            // different callee
            leg("leg4", &[], "+4930123456", "040987654322", 100),
        ];
        let ids = correlate(&legs, &CorrelateConfig::default());
        assert_eq!(ids, ["leg1", "leg1", "leg3", "leg4"]);
        let off = CorrelateConfig {
            fallback: None,
            ..Default::default()
        };
        assert_eq!(correlate(&legs, &off), ["leg2", "leg1", "leg3", "leg4"]);
    }

    #[test]
    fn result_does_not_depend_on_input_order() {
        let x1 = vec!["c".to_string()];
        let x2 = vec!["b".to_string()];
        let legs = vec![
            leg("d", &x1, "u1", "u2", 0),
            leg("c", &[], "u3", "u4", 0),
            leg("b", &[], "u5", "u6", 0),
            leg("a", &x2, "u7", "u8", 0),
            leg("e", &[], "u7", "u8", 1_000),
        ];
        let cfg = CorrelateConfig::default();
        let base: HashMap<&str, String> = legs
            .iter()
            .map(|l| l.call_id)
            .zip(correlate(&legs, &cfg))
            .collect();
        assert_eq!(base["d"], "c");
        assert_eq!(base["e"], "a");
        let mut rev = legs.clone();
        rev.reverse();
        for (l, id) in rev.iter().zip(correlate(&rev, &cfg)) {
            assert_eq!(base[l.call_id], id);
        }
    }

    /// Two legs as an SBC writes them: the B leg names the A leg in X-Leg-ID, kept by
    /// `observe_with` only when configured; X-CID is always kept.
    #[test]
    fn dialogs_link_through_observed_headers() {
        use crate::sip::dialog::Seen;
        let invite = |call_id: &str, extra: &str| {
            format!(
                "INVITE sip:+15551234567@b.example SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                 From: <sip:alice@a.example>;tag=1\r\nTo: <sip:bob@b.example>\r\n\
                 Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
            )
        };
        let seen = |ms: i64| Seen {
            ts_ns: ms * 1_000_000,
            src_ip: "10.0.0.1".parse().unwrap(),
            src_port: 5060,
            dst_ip: "10.0.0.2".parse().unwrap(),
            dst_port: 5060,
        };
        let cfg = CorrelateConfig {
            headers: vec!["X-Leg-ID".into()],
            fallback: None,
        };
        let msgs = [
            ("a-leg", invite("a-leg", ""), 0),
            ("b-leg", invite("b-leg", "X-Leg-ID: a-leg\r\n"), 20),
            ("c-leg", invite("c-leg", "X-CID: b-leg\r\n"), 40),
            ("d-leg", invite("d-leg", ""), 60),
        ];
        let observe = |cfg: &CorrelateConfig| -> Vec<DialogSummary> {
            msgs.iter()
                .map(|(id, m, t)| {
                    let mut d = DialogSummary::new(id);
                    d.observe_with(
                        seen(*t),
                        &crate::sip::parse(m.as_bytes()).unwrap(),
                        &cfg.headers,
                    );
                    d
                })
                .collect()
        };
        let dialogs = observe(&cfg);
        assert_eq!(dialogs[1].correlation_values, ["a-leg"]);
        assert_eq!(dialogs[2].x_call_ids, ["b-leg"]);
        assert_eq!(
            correlate_dialogs(&dialogs, &cfg),
            ["a-leg", "a-leg", "a-leg", "d-leg"]
        );
        // without the configured header only the X-CID link remains
        let plain = observe(&CorrelateConfig {
            headers: vec![],
            fallback: None,
        });
        assert!(plain[1].correlation_values.is_empty());
        assert_eq!(
            correlate_dialogs(&plain, &cfg),
            ["a-leg", "b-leg", "b-leg", "d-leg"]
        );
        // the number fallback: same caller and callee, within 2 s, links all four
        assert_eq!(
            correlate_dialogs(&plain, &CorrelateConfig::default()),
            ["a-leg"; 4]
        );
    }

    #[test]
    fn non_numeric_users_compare_whole() {
        assert_eq!(number_key(Some("Alice"), 8).as_deref(), Some("alice"));
        assert_eq!(
            number_key(Some("+1 (555) 123-4567"), 8).as_deref(),
            Some("51234567")
        );
        assert_eq!(number_key(Some(""), 8), None);
    }
}
