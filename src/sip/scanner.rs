//! Scanner signs: User-Agents of SIP attack tools, and a per-source flood detector for
//! INVITE/REGISTER bursts. Both are deterministic for a given input order and allocation-free
//! per packet once a source is known.
//!
//! The User-Agent list is the consensus of public blocklists (the iptables string rules, Kamailio
//! `secfilter`/`$ua` recipes and fail2ban setups VoIP operators share): tools that announce
//! themselves. Deliberately left out, because operators run them or real products send them:
//! `sipsak` and `SIPp` (monitoring and load tests; the corpus has SIPp calls), `PortSIP VoIP SDK`
//! (a commercial SDK in real softphones, though attackers often spoof it: judge it by behaviour,
//! which the [`FloodDetector`] does), bare `cisco` (some lists name an openH323 scanner so, but
//! genuine gear sends `Cisco-SIPGateway/IOS-…`), and anything a real UA could plausibly contain.
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;

use super::dialog::{DialogState, DialogSummary};

/// (needle, whole word): short needles must stand alone so `iwar` does not fire inside a word.
const SCANNER_AGENTS: &[(&[u8], bool)] = &[
    (b"friendly-scanner", false),
    (b"friendly-request", false),
    (b"sipvicious", false),
    (b"svmap", false),
    (b"svwar", false),
    (b"svcrack", false),
    (b"sipcli", false),
    (b"vaxsipuseragent", false),
    (b"vaxipuseragent", false),
    (b"sundayddr", false),
    (b"iwar", true),
    (b"sip-scan", false),
    (b"sipscan", false),
    (b"sivus", true),
    (b"smap", true),
    (b"siparmyknife", false),
    (b"sippts", false),
    (b"voiphopper", false),
    (b"nmap nse", false),
    (b"pplsip", false),
];

/// Whether a User-Agent (or Server) value names a known SIP scanning / cracking tool
/// (case-insensitive). See the module doc for what is deliberately not matched.
pub fn is_scanner_user_agent(ua: &[u8]) -> bool {
    SCANNER_AGENTS
        .iter()
        .any(|&(needle, word)| contains_ci(ua, needle, word))
}

fn contains_ci(hay: &[u8], needle: &[u8], whole_word: bool) -> bool {
    if needle.is_empty() || hay.len() < needle.len() {
        return false;
    }
    (0..=hay.len() - needle.len()).any(|i| {
        hay[i..i + needle.len()].eq_ignore_ascii_case(needle)
            && (!whole_word
                || (i
                    .checked_sub(1)
                    .and_then(|p| hay.get(p))
                    .is_none_or(|b| !b.is_ascii_alphanumeric())
                    && hay
                        .get(i + needle.len())
                        .is_none_or(|b| !b.is_ascii_alphanumeric())))
    })
}

/// Flood detection settings: `threshold` INVITE/REGISTER requests from one source IP within
/// `window_ns` flag it; at most `max_sources` sources are tracked at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FloodConfig {
    pub window_ns: i64,
    pub threshold: u32,
    pub max_sources: usize,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            window_ns: 10_000_000_000,
            threshold: 50,
            max_sources: 65_536,
        }
    }
}

/// A source that crossed the threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flagged {
    /// Time of the request that crossed the threshold.
    pub first_ns: i64,
    /// INVITE/REGISTER requests from this source: the threshold's worth that flagged it and all
    /// that came after.
    pub requests: u64,
}

#[derive(Debug)]
struct Source {
    /// The last `threshold` request times, oldest first.
    times: VecDeque<i64>,
    last_ns: i64,
}

/// Sliding-window counter of INVITE and REGISTER requests per source IP. OPTIONS is not counted:
/// monitoring pings it legitimately at high rates. Memory is bounded: each source keeps at most
/// `threshold` timestamps, and when `max_sources` are tracked, sources idle for a whole window
/// are dropped, then the least recently seen (ties by address). Flagged sources are kept in a
/// separate map bounded by `max_sources` too (the first ones flagged are kept).
#[derive(Debug)]
pub struct FloodDetector {
    cfg: FloodConfig,
    sources: HashMap<IpAddr, Source>,
    /// (last_ns, ip) of every tracked source: the eviction order.
    by_last: BTreeSet<(i64, IpAddr)>,
    flagged: HashMap<IpAddr, Flagged>,
}

impl FloodDetector {
    pub fn new(cfg: FloodConfig) -> Self {
        let cfg = FloodConfig {
            threshold: cfg.threshold.max(1),
            max_sources: cfg.max_sources.max(1),
            ..cfg
        };
        FloodDetector {
            cfg,
            sources: HashMap::new(),
            by_last: BTreeSet::new(),
            flagged: HashMap::new(),
        }
    }

    /// Counts one request; returns true when this request makes `src` flagged for the first time.
    /// Feed requests in capture time order; a time earlier than the source's last is taken as
    /// equal to it (reordering across interfaces), so the window never runs backwards.
    pub fn observe(&mut self, ts_ns: i64, src: IpAddr, method: &[u8]) -> bool {
        if !matches!(method, b"INVITE" | b"REGISTER") {
            return false;
        }
        if let Some(f) = self.flagged.get_mut(&src) {
            f.requests += 1;
        }
        if !self.sources.contains_key(&src) && self.sources.len() >= self.cfg.max_sources {
            self.evict(ts_ns);
        }
        let threshold = self.cfg.threshold as usize;
        let s = self.sources.entry(src).or_insert_with(|| Source {
            times: VecDeque::with_capacity(threshold.min(64)),
            last_ns: ts_ns,
        });
        self.by_last.remove(&(s.last_ns, src));
        let ts = ts_ns.max(s.last_ns);
        s.last_ns = ts;
        self.by_last.insert((ts, src));
        s.times.push_back(ts);
        if s.times.len() > threshold {
            s.times.pop_front();
        }
        let crossed = s.times.len() == threshold
            && s.times
                .front()
                .is_some_and(|&t| ts - t < self.cfg.window_ns);
        if crossed && !self.flagged.contains_key(&src) && self.flagged.len() < self.cfg.max_sources
        {
            self.flagged.insert(
                src,
                Flagged {
                    first_ns: ts,
                    requests: threshold as u64,
                },
            );
            return true;
        }
        false
    }

    /// Drops sources idle for a whole window; if none is, the least recently seen one.
    fn evict(&mut self, now_ns: i64) {
        let idle: Vec<(i64, IpAddr)> = self
            .by_last
            .iter()
            .take_while(|(t, _)| now_ns.saturating_sub(*t) >= self.cfg.window_ns)
            .copied()
            .collect();
        let victims = if idle.is_empty() {
            self.by_last.iter().next().copied().into_iter().collect()
        } else {
            idle
        };
        for (t, ip) in victims {
            self.by_last.remove(&(t, ip));
            self.sources.remove(&ip);
        }
    }

    pub fn is_flagged(&self, src: &IpAddr) -> bool {
        self.flagged.contains_key(src)
    }

    /// Flagged sources, ordered by address.
    pub fn flagged(&self) -> Vec<(IpAddr, Flagged)> {
        let mut v: Vec<_> = self.flagged.iter().map(|(k, f)| (*k, *f)).collect();
        v.sort_unstable_by_key(|(ip, _)| *ip);
        v
    }

    /// Sources currently tracked (for tests and memory accounting).
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }
}

/// Per source address: dialogs it started, and how many of those were answered or registered.
/// Fed one summary at a time, so a run can stream its dialogs instead of holding them.
#[derive(Debug, Default)]
pub struct SourceOutcomes(HashMap<IpAddr, (u64, u64)>);

impl SourceOutcomes {
    pub fn add(&mut self, d: &DialogSummary) {
        if let Some(f) = &d.first {
            let e = self.0.entry(f.src_ip).or_default();
            e.0 += 1;
            let ok = matches!(
                d.state(),
                DialogState::Answered | DialogState::Registered | DialogState::Unregistered
            );
            e.1 += ok as u64;
        }
    }
}

/// The flood rule, the one place it is written: a source whose request rate reached
/// `per_minute` in some minute (`rate` is keyed by source and minute) and whose dialogs almost
/// all fail (fewer than one in ten succeed). A busy SBC sends as many INVITEs per minute as a
/// scanner, but its calls get answered.
pub fn flooders(
    outcomes: &SourceOutcomes,
    rate: &HashMap<(IpAddr, i64), u32>,
    per_minute: u32,
) -> BTreeSet<IpAddr> {
    rate.iter()
        .filter(|(_, n)| **n >= per_minute)
        .map(|((ip, _), _)| *ip)
        .filter(|ip| outcomes.0.get(ip).is_some_and(|(n, ok)| *ok * 10 < *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One INVITE from `src` answered with `code`, as a folded summary.
    fn call_from(src: &str, n: u32, code: u16) -> DialogSummary {
        let seen = |ts_ns| crate::sip::dialog::Seen {
            ts_ns,
            src_ip: src.parse().unwrap(),
            src_port: 5060,
            dst_ip: "10.0.0.2".parse().unwrap(),
            dst_port: 5060,
        };
        let id = format!("{n}@{src}");
        let invite = format!(
            "INVITE sip:100@10.0.0.2 SIP/2.0\r\nCall-ID: {id}\r\nFrom: <sip:a@x>;tag=f\r\n\
             To: <sip:100@10.0.0.2>\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let answer = format!(
            "SIP/2.0 {code} X\r\nCall-ID: {id}\r\nFrom: <sip:a@x>;tag=f\r\n\
             To: <sip:100@10.0.0.2>;tag=t\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let mut d = DialogSummary::new(&id);
        d.observe(seen(1), &crate::sip::parse(invite.as_bytes()).unwrap());
        d.observe(seen(2), &crate::sip::parse(answer.as_bytes()).unwrap());
        d
    }

    #[test]
    fn a_fast_source_is_a_flooder_only_when_its_calls_fail() {
        let (scanner, sbc, slow): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
            "10.0.0.4".parse().unwrap(),
        );
        let mut outcomes = SourceOutcomes::default();
        for n in 0..20 {
            outcomes.add(&call_from("10.0.0.1", n, 404));
            // as fast as the scanner, but 18 of its 20 calls are answered
            outcomes.add(&call_from("10.0.0.3", n, if n < 2 { 404 } else { 200 }));
            outcomes.add(&call_from("10.0.0.4", n, 404));
        }
        let rate = HashMap::from([((scanner, 7), 100), ((sbc, 7), 100), ((slow, 7), 99)]);
        assert_eq!(flooders(&outcomes, &rate, 100), BTreeSet::from([scanner]));
        assert!(flooders(&outcomes, &rate, 101).is_empty());
    }

    #[test]
    fn known_scanners_match_case_insensitively() {
        for ua in [
            "friendly-scanner",
            "Friendly-Scanner/1.0",
            "sipvicious/0.3.0",
            "SIPVicious",
            "sipcli/v1.8",
            "VaxSIPUserAgent/3.1",
            "sundayddr",
            "iWar",
            "iWar 0.8",
            "sip-scan",
            "SIPScan",
            "Nmap NSE",
            "sippts",
        ] {
            assert!(is_scanner_user_agent(ua.as_bytes()), "{ua}");
        }
    }

    #[test]
    fn real_products_do_not_match() {
        for ua in [
            "Cisco-SIPGateway/IOS-12.x",
            "PortSIP VoIP SDK 11.2",
            "Asterisk PBX 18.0.0",
            "FreeSWITCH-mod_sofia/1.10.7",
            "sipsak 0.9.6",
            "SIPp",
            "Linksys/SPA942-6.1.5(a)",
            "Kiwari phone", // contains "iwar" inside a word
            "X-Lite release 1104o stamp 56125",
            "",
        ] {
            assert!(!is_scanner_user_agent(ua.as_bytes()), "{ua}");
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn flood_flags_at_threshold_within_window() {
        let cfg = FloodConfig {
            window_ns: 10_000_000_000,
            threshold: 50,
            max_sources: 16,
        };
        let mut d = FloodDetector::new(cfg);
        let a = ip("198.51.100.7");
        // 49 requests in 9.8 s: not yet
        for i in 0..49 {
            assert!(!d.observe(i * 200_000_000, a, b"REGISTER"));
        }
        assert!(!d.is_flagged(&a));
        // OPTIONS does not count
        assert!(!d.observe(9_850_000_000, a, b"OPTIONS"));
        assert!(d.observe(9_900_000_000, a, b"INVITE"));
        assert!(!d.observe(9_950_000_000, a, b"INVITE"), "flagged once");
        assert_eq!(
            d.flagged(),
            vec![(
                a,
                Flagged {
                    first_ns: 9_900_000_000,
                    requests: 51
                }
            )]
        );
    }

    #[test]
    fn slow_source_is_never_flagged() {
        let mut d = FloodDetector::new(FloodConfig {
            threshold: 5,
            window_ns: 1_000,
            max_sources: 4,
        });
        let a = ip("192.0.2.1");
        for i in 0..100 {
            assert!(!d.observe(i * 300, a, b"INVITE"));
        }
        assert!(d.flagged().is_empty());
    }

    #[test]
    fn memory_stays_bounded_and_idle_sources_go_first() {
        let mut d = FloodDetector::new(FloodConfig {
            threshold: 3,
            window_ns: 1_000,
            max_sources: 4,
        });
        let busy = ip("10.0.0.1");
        d.observe(0, busy, b"INVITE");
        d.observe(1, busy, b"INVITE");
        for i in 0..1000u32 {
            let src = IpAddr::from([172, 16, (i >> 8) as u8, i as u8]);
            d.observe(2 + i as i64, src, b"REGISTER");
            assert!(d.tracked() <= 4);
        }
        // a fresh scanner source is still detected with the table full
        let scanner = ip("203.0.113.9");
        let t = 5_000;
        assert!(!d.observe(t, scanner, b"INVITE"));
        assert!(!d.observe(t + 1, scanner, b"INVITE"));
        assert!(d.observe(t + 2, scanner, b"INVITE"));
        assert_eq!(
            d.tracked(),
            1,
            "every idle source went when the table was full"
        );
    }
}
