//! RFC 6035 `application/vq-rtcpxr` bodies (SIP PUBLISH to a collector): VQSessionReport,
//! VQIntervalReport and VQAlertReport, with the local and remote metric sections.
//!
//! The body is lines of `Tag: value`; metric lines hold space-separated `KEY=VALUE` pairs
//! (values may be quoted). Vendors add `x-` tags and keys (snom `x-UserAgent`, Polycom
//! `x-SessionDesc`…): every pair is kept, unknown ones included, so nothing reported is lost.
//! Hand-written: no crate parses RFC 6035. Lenient: a malformed line is counted and skipped.

/// Which report the body carries (RFC 6035 §4.2: "VQSessionReport" etc., with an optional
/// ": CallTerm" marker on the session report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VqKind {
    Session,
    Interval,
    Alert,
}

impl VqKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VqKind::Session => "vq-session",
            VqKind::Interval => "vq-interval",
            VqKind::Alert => "vq-alert",
        }
    }
}

/// `LocalAddr:` / `RemoteAddr:` — `IP=… PORT=… SSRC=…`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VqAddr {
    pub ip: Option<String>,
    pub port: Option<u16>,
    pub ssrc: Option<u32>,
}

/// One metrics section (`LocalMetrics:` or `RemoteMetrics:`): (line tag, key, value) in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VqMetrics {
    pub fields: Vec<(String, String, String)>,
}

impl VqMetrics {
    /// The value of `key` (case-insensitive) on the line tagged `tag`.
    pub fn get(&self, tag: &str, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(t, k, _)| t.eq_ignore_ascii_case(tag) && k.eq_ignore_ascii_case(key))
            .map(|(_, _, v)| v.as_str())
    }
    pub fn num(&self, tag: &str, key: &str) -> Option<f64> {
        self.get(tag, key)?.trim().parse().ok()
    }
    /// PacketLoss NLR: network loss rate, percent.
    pub fn network_loss_pct(&self) -> Option<f64> {
        self.num("PacketLoss", "NLR")
    }
    /// PacketLoss JDR: jitter-buffer discard rate, percent.
    pub fn discard_pct(&self) -> Option<f64> {
        self.num("PacketLoss", "JDR")
    }
    /// Delay IAJ: interarrival jitter, ms.
    pub fn jitter_ms(&self) -> Option<f64> {
        self.num("Delay", "IAJ")
    }
    /// Delay MAJ: mean absolute jitter (RFC 6035 §4.7.3), ms.
    pub fn mean_abs_jitter_ms(&self) -> Option<f64> {
        self.num("Delay", "MAJ")
    }
    /// Delay RTD: round-trip delay, ms.
    pub fn round_trip_ms(&self) -> Option<f64> {
        self.num("Delay", "RTD")
    }
    pub fn mos_lq(&self) -> Option<f64> {
        self.num("QualityEst", "MOSLQ")
    }
    pub fn mos_cq(&self) -> Option<f64> {
        self.num("QualityEst", "MOSCQ")
    }
    /// QualityEst RLQ (listening-quality R factor), else RCQ.
    pub fn r_factor(&self) -> Option<f64> {
        self.num("QualityEst", "RLQ")
            .or_else(|| self.num("QualityEst", "RCQ"))
    }
    /// SessionDesc PD: the payload description (codec name).
    pub fn codec(&self) -> Option<&str> {
        self.get("SessionDesc", "PD")
    }
    pub fn payload_type(&self) -> Option<u8> {
        self.get("SessionDesc", "PT")?.trim().parse().ok()
    }
}

/// A parsed report. Strings are owned: reports are rare (one per call or interval).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VqReport {
    pub kind: Option<VqKind>,
    /// "CallTerm" on a final session report, or the alert's type.
    pub qualifier: Option<String>,
    pub call_id: Option<String>,
    pub local_id: Option<String>,
    pub remote_id: Option<String>,
    pub local_addr: VqAddr,
    pub remote_addr: VqAddr,
    pub start: Option<String>,
    pub stop: Option<String>,
    pub local: Option<VqMetrics>,
    pub remote: Option<VqMetrics>,
    /// Session-level lines not listed above (including `x-` ones): (tag, value).
    pub other: Vec<(String, String)>,
    pub bad_lines: u32,
}

/// `KEY=VALUE KEY="quoted value" …` → pairs; a token without `=` is kept with an empty value.
fn pairs(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &value[start..i];
        if key.is_empty() {
            i += 1;
            continue;
        }
        if i < b.len() && b[i] == b'=' {
            i += 1;
            let v = if i < b.len() && b[i] == b'"' {
                let s = i + 1;
                i = s;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
                let v = &value[s..i.min(b.len())];
                i += 1;
                v
            } else {
                let s = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                &value[s..i]
            };
            out.push((key.to_owned(), v.to_owned()));
        } else {
            out.push((key.to_owned(), String::new()));
        }
    }
    out
}

fn addr(value: &str) -> VqAddr {
    let mut a = VqAddr::default();
    for (k, v) in pairs(value) {
        match k.to_ascii_uppercase().as_str() {
            "IP" => a.ip = Some(v),
            "PORT" => a.port = v.parse().ok(),
            "SSRC" => {
                let h = v.trim_start_matches("0x").trim_start_matches("0X");
                a.ssrc = u32::from_str_radix(h, 16).ok().or_else(|| v.parse().ok());
            }
            _ => {}
        }
    }
    a
}

/// Parses a body. `None` when it does not start like an RFC 6035 report.
pub fn parse(body: &[u8]) -> Option<VqReport> {
    let text = String::from_utf8_lossy(body);
    let mut r = VqReport::default();
    #[derive(PartialEq)]
    enum Section {
        Session,
        Local,
        Remote,
    }
    let mut section = Section::Session;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // The report-type line may stand alone ("VQIntervalReport" without ": CallTerm").
        let Some((tag, value)) = line
            .split_once(':')
            .or_else(|| r.kind.is_none().then_some((line, "")))
        else {
            r.bad_lines += 1;
            continue;
        };
        let (tag, value) = (tag.trim(), value.trim());
        if r.kind.is_none() {
            r.kind = match tag.to_ascii_lowercase().as_str() {
                "vqsessionreport" => Some(VqKind::Session),
                "vqintervalreport" => Some(VqKind::Interval),
                "vqalertreport" => Some(VqKind::Alert),
                _ => return None,
            };
            r.qualifier = (!value.is_empty()).then(|| value.to_owned());
            continue;
        }
        match tag.to_ascii_lowercase().as_str() {
            "callid" => r.call_id = Some(value.to_owned()),
            "localid" => r.local_id = Some(value.to_owned()),
            "remoteid" => r.remote_id = Some(value.to_owned()),
            "localaddr" => r.local_addr = addr(value),
            "remoteaddr" => r.remote_addr = addr(value),
            "localmetrics" => {
                section = Section::Local;
                r.local.get_or_insert_with(VqMetrics::default);
            }
            "remotemetrics" => {
                section = Section::Remote;
                r.remote.get_or_insert_with(VqMetrics::default);
            }
            // Metric lines belong to the current section; anything else is session-level.
            t => {
                let metric = matches!(
                    t,
                    "timestamps"
                        | "sessiondesc"
                        | "jitterbuffer"
                        | "packetloss"
                        | "burstgaploss"
                        | "delay"
                        | "signal"
                        | "qualityest"
                ) || (t.starts_with("x-") && section != Section::Session);
                let target = match section {
                    Section::Local if metric => r.local.as_mut(),
                    Section::Remote if metric => r.remote.as_mut(),
                    _ => None,
                };
                if t == "timestamps" {
                    for (k, v) in pairs(value) {
                        match k.to_ascii_uppercase().as_str() {
                            "START" => r.start = r.start.take().or(Some(v)),
                            "STOP" => r.stop = r.stop.take().or(Some(v)),
                            _ => {}
                        }
                    }
                }
                match target {
                    Some(m) => m.fields.extend(
                        pairs(value)
                            .into_iter()
                            .map(|(k, v)| (tag.to_owned(), k, v)),
                    ),
                    None => r.other.push((tag.to_owned(), value.to_owned())),
                }
            }
        }
    }
    r.kind.map(|_| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6035 §5.1 example, with snom-style x- lines added.
    const SESSION: &str = "VQSessionReport: CallTerm\r\n\
CallID: 6dg37f1890463\r\n\
LocalID: Alice <sip:alice@atlanta.example.org>\r\n\
RemoteID: Bill <sip:bill@biloxi.example.org>\r\n\
OrigID: Alice <sip:alice@atlanta.example.org>\r\n\
LocalGroup: example-phone-55671\r\n\
LocalAddr: IP=10.10.1.100 PORT=5000 SSRC=0x2468abcd\r\n\
RemoteAddr: IP=11.1.1.150 PORT=5002 SSRC=0x1357ef89\r\n\
x-UserAgent: snomD785/10.1.54.13\r\n\
LocalMetrics:\r\n\
Timestamps: START=2004-10-10T18:23:43Z STOP=2004-10-10T18:24:29Z\r\n\
SessionDesc: PT=18 PD=G729 SR=8000 FD=20 FO=20 FPP=2 PPS=50 FMTP=\"annexb=no\" PLC=3 SSUP=on\r\n\
JitterBuffer: JBA=3 JBR=2 JBN=40 JBM=80 JBX=120\r\n\
PacketLoss: NLR=5.0 JDR=2.0\r\n\
BurstGapLoss: BLD=0 BD=0 GLD=2.0 GD=500 GMIN=16\r\n\
Delay: RTD=200 ESD=140 SOWD=200 IAJ=2 MAJ=10\r\n\
Signal: SL=-21 NL=-50 RERL=55\r\n\
QualityEst: RLQ=88 RCQ=85 EXTRI=90 MOSLQ=4.1 MOSCQ=4.0 QoEEstAlg=P.564\r\n\
x-Jitter: x-MaxJ=22\r\n\
RemoteMetrics:\r\n\
PacketLoss: NLR=1.5 JDR=0.0\r\n\
Delay: RTD=210 IAJ=7\r\n\
QualityEst: MOSLQ=3.9\r\n\
DialogID: 1890463548@alice.example.org;to-tag=8472761;from-tag=9123dh311\r\n";

    #[test]
    fn rfc6035_session_report() {
        let r = parse(SESSION.as_bytes()).unwrap();
        assert_eq!(r.kind, Some(VqKind::Session));
        assert_eq!(r.qualifier.as_deref(), Some("CallTerm"));
        assert_eq!(r.call_id.as_deref(), Some("6dg37f1890463"));
        assert_eq!(r.local_addr.ssrc, Some(0x2468abcd));
        assert_eq!(r.remote_addr.port, Some(5002));
        assert_eq!(r.start.as_deref(), Some("2004-10-10T18:23:43Z"));
        let l = r.local.as_ref().unwrap();
        assert_eq!(l.network_loss_pct(), Some(5.0));
        assert_eq!(l.discard_pct(), Some(2.0));
        assert_eq!(l.jitter_ms(), Some(2.0));
        assert_eq!(l.round_trip_ms(), Some(200.0));
        assert_eq!(l.mos_lq(), Some(4.1));
        assert_eq!(l.r_factor(), Some(88.0));
        assert_eq!(l.codec(), Some("G729"));
        assert_eq!(l.get("SessionDesc", "FMTP"), Some("annexb=no"));
        assert_eq!(l.get("x-Jitter", "x-MaxJ"), Some("22"));
        let rm = r.remote.as_ref().unwrap();
        assert_eq!(rm.network_loss_pct(), Some(1.5));
        assert_eq!(rm.mos_lq(), Some(3.9));
        assert!(r
            .other
            .iter()
            .any(|(t, v)| t == "x-UserAgent" && v.starts_with("snom")));
        assert!(r.other.iter().any(|(t, _)| t == "DialogID"));
    }

    #[test]
    fn not_a_report() {
        assert!(parse(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n").is_none());
        assert!(parse(b"").is_none());
        let r = parse(b"VQIntervalReport\r\nCallID: x\r\ngarbage\r\n").unwrap();
        assert_eq!(r.kind, Some(VqKind::Interval));
        assert_eq!(r.bad_lines, 1);
    }
}
