//! The message filter shared by `grep` (over captures) and `search` (over the index).
//! User-part filters are substrings, so `--from 2323` finds `sip:+492323123@host`.
use std::net::IpAddr;
use std::str::FromStr;

use crate::decode::Datagram;
use crate::sip::Message;
pub use crate::store::StatusFilter;

/// An address or a CIDR prefix (`10.0.0.0/8`, `2001:db8::/32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix as u32)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix as u32)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }

    /// True when this is a single address rather than a wider prefix.
    pub fn is_host(&self) -> bool {
        self.prefix == if self.addr.is_ipv4() { 32 } else { 128 }
    }
}

impl FromStr for IpNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_matches(|c| c == '[' || c == ']')
            .parse()
            .map_err(|_| format!("invalid IP address '{s}'"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("invalid prefix length in '{s}'")),
            },
        };
        Ok(IpNet { addr, prefix })
    }
}

/// Every field is optional; all given ones must match (logical AND).
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    pub from_user: Option<String>,
    pub to_user: Option<String>,
    pub ruri_user: Option<String>,
    pub call_id: Option<String>,
    /// Upper-case method names. Requests match by method; responses match by their CSeq method,
    /// and only when a status filter is given too (`--method INVITE --status 200`).
    pub methods: Vec<String>,
    pub status: Option<StatusFilter>,
    /// Case-insensitive substring of User-Agent or Server; stored lower-case.
    pub user_agent: Option<String>,
    pub ip: Option<IpNet>,
    pub port: Option<u16>,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
}

fn contains(hay: Option<&[u8]>, needle: &str) -> bool {
    let n = needle.as_bytes();
    match hay {
        Some(h) => n.is_empty() || h.windows(n.len()).any(|w| w == n),
        None => false,
    }
}

fn contains_ignore_case(hay: Option<&[u8]>, needle_lower: &str) -> bool {
    let n = needle_lower.as_bytes();
    match hay {
        Some(h) => {
            n.is_empty()
                || h.windows(n.len())
                    .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
        }
        None => false,
    }
}

impl MessageFilter {
    pub fn is_empty(&self) -> bool {
        self.from_user.is_none()
            && self.to_user.is_none()
            && self.ruri_user.is_none()
            && self.call_id.is_none()
            && self.methods.is_empty()
            && self.status.is_none()
            && self.user_agent.is_none()
            && self.ip.is_none()
            && self.port.is_none()
            && self.since_ns.is_none()
            && self.until_ns.is_none()
    }

    pub fn matches(&self, dg: &Datagram<'_>, msg: &Message<'_>) -> bool {
        if self.since_ns.is_some_and(|t| dg.ts_ns < t)
            || self.until_ns.is_some_and(|t| dg.ts_ns > t)
        {
            return false;
        }
        if let Some(net) = &self.ip {
            if !net.contains(dg.src) && !net.contains(dg.dst) {
                return false;
            }
        }
        if let Some(p) = self.port {
            if dg.src_port != p && dg.dst_port != p {
                return false;
            }
        }
        if let Some(id) = &self.call_id {
            if msg.call_id != Some(id.as_bytes()) {
                return false;
            }
        }
        if let Some(st) = self.status {
            match msg.status() {
                Some(code) if st.matches(code) => {}
                _ => return false,
            }
        }
        if !self.methods.is_empty() {
            let m = match msg.method() {
                Some(m) => Some(m),
                None if self.status.is_some() => msg.cseq.map(|c| c.method),
                None => None,
            };
            let ok = m.is_some_and(|m| {
                self.methods
                    .iter()
                    .any(|x| x.as_bytes().eq_ignore_ascii_case(m))
            });
            if !ok {
                return false;
            }
        }
        if let Some(u) = &self.from_user {
            if !contains(msg.from.and_then(|f| f.uri).and_then(|u| u.user), u) {
                return false;
            }
        }
        if let Some(u) = &self.to_user {
            if !contains(msg.to.and_then(|f| f.uri).and_then(|u| u.user), u) {
                return false;
            }
        }
        if let Some(u) = &self.ruri_user {
            if !contains(msg.request_uri().and_then(|u| u.user), u) {
                return false;
            }
        }
        if let Some(ua) = &self.user_agent {
            if !contains_ignore_case(msg.user_agent, ua) && !contains_ignore_case(msg.server, ua) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_net_matches_prefixes_of_both_families() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.1.2.3".parse().unwrap()));
        assert!(!n.contains("::1".parse().unwrap()));
        let h: IpNet = "2001:db8::1".parse().unwrap();
        assert!(h.is_host());
        assert!(h.contains("2001:db8::1".parse().unwrap()));
        assert!(!h.contains("2001:db8::2".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpNet>().is_err());
    }

    #[test]
    fn substring_helpers_find_user_parts() {
        assert!(contains(Some(b"+492323123"), "2323"));
        assert!(!contains(Some(b"+4912345"), "2323"));
        assert!(!contains(None, "2323"));
        assert!(contains_ignore_case(
            Some(b"Friendly-Scanner"),
            "friendly-scanner"
        ));
    }
}
