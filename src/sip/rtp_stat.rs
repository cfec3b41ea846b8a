//! End-of-call RTP statistics that user agents put in BYE and its 200: X-RTP-Stat (AVM FRITZ!Box, baresip,
//! AudioCodes, Poly), P-RTP-Stat (Cisco CUBE), RTP-RxStat / RTP-TxStat (Cisco phones), X-Siemens-RTP-stats.
//!
//! The fields are read lazily from the header value as `KEY=VALUE` pairs in order, unknown keys included;
//! nothing is copied. Vendors disagree on the separator: AVM, baresip, AudioCodes and Siemens use `;` and
//! put comma pairs inside values (`PL=rx,tx`, `IP=local,remote`), Cisco and Poly use `,`. So the separator
//! is `;` when the value has one outside quotes, else `,`. Values are as the sender wrote them: jitter is
//! in ms for AudioCodes/CUBE/Poly but in RTP timestamp units for baresip/AVM and Cisco phones' AvgJit.
use super::headers::HeaderIter;
use super::lex::{find_unquoted, parse_u64, split_unquoted, trim, SplitUnquoted};

/// Which statistics header a value came from; it decides what `Pkt`/`Oct` mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatHeader {
    XRtpStat,
    PRtpStat,
    RtpRxStat,
    RtpTxStat,
    XSiemensRtpStats,
}

impl StatHeader {
    /// Recognises the header name, case-insensitive ("Rtp-Rxstat" as Cisco phones write it).
    pub fn from_name(name: &[u8]) -> Option<StatHeader> {
        const NAMES: &[(&str, StatHeader)] = &[
            ("X-RTP-Stat", StatHeader::XRtpStat),
            ("P-RTP-Stat", StatHeader::PRtpStat),
            ("RTP-RxStat", StatHeader::RtpRxStat),
            ("RTP-TxStat", StatHeader::RtpTxStat),
            ("X-Siemens-RTP-stats", StatHeader::XSiemensRtpStats),
            ("X-Siemens-RTP-stats-list", StatHeader::XSiemensRtpStats),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, h)| h)
    }

    pub fn name(self) -> &'static str {
        match self {
            StatHeader::XRtpStat => "X-RTP-Stat",
            StatHeader::PRtpStat => "P-RTP-Stat",
            StatHeader::RtpRxStat => "RTP-RxStat",
            StatHeader::RtpTxStat => "RTP-TxStat",
            StatHeader::XSiemensRtpStats => "X-Siemens-RTP-stats",
        }
    }
}

/// One statistics header value; see the module doc for the field syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpStat<'a> {
    pub header: StatHeader,
    /// The header value, trimmed.
    pub value: &'a [u8],
}

impl<'a> RtpStat<'a> {
    /// `None` when `name` is not a statistics header.
    pub fn parse(name: &[u8], value: &'a [u8]) -> Option<RtpStat<'a>> {
        Some(RtpStat {
            header: StatHeader::from_name(name)?,
            value: trim(value),
        })
    }

    /// The field separator used by this value: `;` or `,`.
    pub fn separator(&self) -> u8 {
        if find_unquoted(self.value, b';').is_some() {
            b';'
        } else {
            b','
        }
    }

    /// Every field in order as (key, value), trimmed; empty fields (`;;`) are skipped and a field
    /// without `=` is given with an empty value.
    pub fn fields(&self) -> Fields<'a> {
        Fields {
            inner: split_unquoted(self.value, self.separator()),
        }
    }

    /// A field's value by key, case-insensitive.
    pub fn get(&self, key: &str) -> Option<&'a [u8]> {
        self.fields()
            .find(|(k, _)| k.eq_ignore_ascii_case(key.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first number of a field: AVM and baresip give `rx,tx` pairs, the first is the receive side.
    fn first_u64(&self, key: &str) -> Option<u64> {
        parse_u64(first_item(self.get(key)?))
    }

    fn first_f64(&self, key: &str) -> Option<f64> {
        let text = std::str::from_utf8(first_item(self.get(key)?)).ok()?;
        text.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    fn is(&self, h: StatHeader) -> bool {
        self.header == h
    }

    /// PS, or `Pkt` in RTP-TxStat.
    pub fn packets_sent(&self) -> Option<u64> {
        match self.header {
            StatHeader::RtpTxStat => self.first_u64("Pkt"),
            StatHeader::RtpRxStat => None,
            _ => self.first_u64("PS"),
        }
    }
    /// PR, or `Pkt` in RTP-RxStat.
    pub fn packets_received(&self) -> Option<u64> {
        match self.header {
            StatHeader::RtpRxStat => self.first_u64("Pkt"),
            StatHeader::RtpTxStat => None,
            _ => self.first_u64("PR"),
        }
    }
    /// OS, or `Oct` in RTP-TxStat (payload octets).
    pub fn octets_sent(&self) -> Option<u64> {
        match self.header {
            StatHeader::RtpTxStat => self.first_u64("Oct"),
            StatHeader::RtpRxStat => None,
            _ => self.first_u64("OS"),
        }
    }
    /// OR, or `Oct` in RTP-RxStat.
    pub fn octets_received(&self) -> Option<u64> {
        match self.header {
            StatHeader::RtpRxStat => self.first_u64("Oct"),
            StatHeader::RtpTxStat => None,
            _ => self.first_u64("OR"),
        }
    }
    /// Received packets lost: PL (first of a pair), or `LostPkt` in RTP-RxStat.
    pub fn packets_lost(&self) -> Option<u64> {
        if self.is(StatHeader::RtpRxStat) {
            self.first_u64("LostPkt")
        } else {
            self.first_u64("PL")
        }
    }
    /// Received packets discarded (PD, first of a pair).
    pub fn packets_discarded(&self) -> Option<u64> {
        self.first_u64("PD")
    }
    /// `LatePkt` (RTP-RxStat).
    pub fn late_packets(&self) -> Option<u64> {
        self.first_u64("LatePkt")
    }
    /// JI (first of a pair), or `AvgJit` in RTP-RxStat; units as the module doc says.
    pub fn jitter(&self) -> Option<f64> {
        if self.is(StatHeader::RtpRxStat) {
            self.first_f64("AvgJit")
        } else {
            self.first_f64("JI")
        }
    }
    /// LA: latency or round-trip delay in ms (CUBE allows negative values).
    pub fn latency_ms(&self) -> Option<f64> {
        self.first_f64("LA")
    }
    /// Call or stream duration in seconds: DU (Cisco, Poly), CD (AVM, baresip), `Dur` (Rx/TxStat).
    pub fn duration_s(&self) -> Option<u64> {
        match self.header {
            StatHeader::RtpRxStat | StatHeader::RtpTxStat => self.first_u64("Dur"),
            _ => self.first_u64("DU").or_else(|| self.first_u64("CD")),
        }
    }
    /// EN: the encoder (sent codec), as written ("PCMU", "G711U", "PCMU/8000").
    pub fn encoder(&self) -> Option<&'a [u8]> {
        self.get("EN")
    }
    /// DE: the decoder (received codec).
    pub fn decoder(&self) -> Option<&'a [u8]> {
        self.get("DE")
    }
    /// MOS, when the sender computes one.
    pub fn mos(&self) -> Option<f64> {
        self.first_f64("MOS")
    }
}

fn first_item(v: &[u8]) -> &[u8] {
    trim(v.split(|&b| b == b',').next().unwrap_or(v))
}

/// The fields of a statistics value; see [`RtpStat::fields`].
pub struct Fields<'a> {
    inner: SplitUnquoted<'a>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let field = self.inner.find(|f| !f.is_empty())?;
        Some(match field.iter().position(|&b| b == b'=') {
            Some(eq) => (trim(&field[..eq]), trim(&field[eq + 1..])),
            None => (field, &field[field.len()..]),
        })
    }
}

/// The statistics headers of a message, in order; see [`super::Message::rtp_stats`].
pub(crate) struct RtpStatIter<'a> {
    headers: HeaderIter<'a>,
}

impl<'a> RtpStatIter<'a> {
    pub(crate) fn new(headers: HeaderIter<'a>) -> Self {
        RtpStatIter { headers }
    }
}

impl<'a> Iterator for RtpStatIter<'a> {
    type Item = RtpStat<'a>;
    fn next(&mut self) -> Option<RtpStat<'a>> {
        self.headers
            .by_ref()
            .find_map(|(name, value)| RtpStat::parse(name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat<'a>(name: &str, value: &'a [u8]) -> RtpStat<'a> {
        RtpStat::parse(name.as_bytes(), value).unwrap()
    }

    #[test]
    fn cisco_cube_p_rtp_stat() {
        let s = stat(
            "P-RTP-Stat",
            b"PS=1000,OS=160000,PR=998,OR=159680,PL=2,JI=10,LA=0,DU=20,EN=PCMU,DE=PCMU",
        );
        assert_eq!(s.separator(), b',');
        assert_eq!(s.fields().count(), 10);
        assert_eq!(s.packets_sent(), Some(1000));
        assert_eq!(s.octets_sent(), Some(160000));
        assert_eq!(s.packets_received(), Some(998));
        assert_eq!(s.octets_received(), Some(159680));
        assert_eq!(s.packets_lost(), Some(2));
        assert_eq!(s.jitter(), Some(10.0));
        assert_eq!(s.latency_ms(), Some(0.0));
        assert_eq!(s.duration_s(), Some(20));
        assert_eq!(s.encoder(), Some(&b"PCMU"[..]));
        assert_eq!(s.decoder(), Some(&b"PCMU"[..]));
        // CUBE writes spaces after the commas and allows a negative round-trip delay.
        let s = stat(
            "p-rtp-stat",
            b"PS=5, OS=800, PR=4, OR=640, PL=1, JI=3, LA=-1, DU=2",
        );
        assert_eq!(
            (s.packets_sent(), s.latency_ms(), s.duration_s()),
            (Some(5), Some(-1.0), Some(2))
        );
    }

    #[test]
    fn audiocodes_x_rtp_stat_with_empty_field() {
        let s = stat(
            "X-RTP-Stat",
            b"PS=207;OS=49680;;PR=314;OR=50240;PL=0;JI=600;LA=40;",
        );
        assert_eq!(s.separator(), b';');
        let keys: Vec<&[u8]> = s.fields().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            vec![&b"PS"[..], b"OS", b"PR", b"OR", b"PL", b"JI", b"LA"]
        );
        assert_eq!(
            (s.packets_sent(), s.packets_received()),
            (Some(207), Some(314))
        );
        assert_eq!((s.jitter(), s.latency_ms()), (Some(600.0), Some(40.0)));
        assert_eq!(s.duration_s(), None);
    }

    #[test]
    fn baresip_and_avm_x_rtp_stat() {
        // baresip writes the AVM layout: rx,tx pairs inside `;`-separated fields.
        let s = stat(
            "X-RTP-Stat",
            b"EX=BareSip;CS=0;CD=12;PR=600;PS=601;PL=3,1;PD=0,0;JI=1.5,0.3;IP=192.168.1.2:5004,10.0.0.1:6000;EN=PCMU/8000;DE=PCMA/8000",
        );
        assert_eq!(s.get("ex"), Some(&b"BareSip"[..]));
        assert_eq!(s.duration_s(), Some(12));
        assert_eq!(s.packets_lost(), Some(3));
        assert_eq!(s.packets_discarded(), Some(0));
        assert_eq!(s.jitter(), Some(1.5));
        assert_eq!(s.get("IP"), Some(&b"192.168.1.2:5004,10.0.0.1:6000"[..]));
        assert_eq!(s.encoder(), Some(&b"PCMU/8000"[..]));
        assert_eq!(s.decoder(), Some(&b"PCMA/8000"[..]));
        // As seen from an AVM box (field order and extra keys differ).
        let s = stat(
            "X-RTP-Stat",
            b" PR=0;ER=0;PL=0;RB=0/0;DE=PCMU;EN=PCMU;JI=0;DL=0,0;IP=10.1.0.33:16384,132.52.127.200:20048",
        );
        assert_eq!(s.get("RB"), Some(&b"0/0"[..]));
        assert_eq!(s.get("DL"), Some(&b"0,0"[..]));
        assert_eq!(s.packets_received(), Some(0));
        assert_eq!(s.fields().count(), 9);
    }

    #[test]
    fn poly_comma_form_with_mos() {
        let s = stat(
            "X-RTP-Stat",
            b"PS=1234,OS=34560,PR=1236,OR=24720,JI=1,DU=1230,PL=0,EN=G711U,DE=G711U,MOS=4.0",
        );
        assert_eq!(s.mos(), Some(4.0));
        assert_eq!(s.duration_s(), Some(1230));
        assert_eq!(s.encoder(), Some(&b"G711U"[..]));
    }

    #[test]
    fn cisco_phone_rx_tx_stat() {
        let rx = stat(
            "Rtp-Rxstat",
            br#"Dur=13,Pkt=408,Oct=97680,LatePkt=8,LostPkt=0,AvgJit=0,VQMetrics="CCR=0.0017;ICR=0.0000;MOScq=4.21""#,
        );
        assert_eq!(rx.header, StatHeader::RtpRxStat);
        // The `;` inside the quoted VQMetrics does not make `;` the separator.
        assert_eq!(rx.separator(), b',');
        assert_eq!(rx.packets_received(), Some(408));
        assert_eq!(rx.octets_received(), Some(97680));
        assert_eq!(rx.packets_sent(), None);
        assert_eq!(rx.late_packets(), Some(8));
        assert_eq!(rx.packets_lost(), Some(0));
        assert_eq!(rx.jitter(), Some(0.0));
        assert_eq!(rx.duration_s(), Some(13));
        assert_eq!(
            rx.get("VQMetrics"),
            Some(&br#""CCR=0.0017;ICR=0.0000;MOScq=4.21""#[..])
        );
        let tx = stat("RTP-TxStat", b"Dur=13,Pkt=417,Oct=100080");
        assert_eq!(
            (tx.packets_sent(), tx.octets_sent(), tx.packets_received()),
            (Some(417), Some(100080), None)
        );
    }

    #[test]
    fn unknown_fields_and_garbage() {
        let s = stat(
            "X-RTP-Stat",
            b"MOS=3.8;Jitter=7;RTPStat=RTP: 258452 bytes, 1509 packets; RTCP:  1248 bytes",
        );
        let f: Vec<_> = s.fields().collect();
        assert_eq!(f[1], (&b"Jitter"[..], &b"7"[..]));
        assert_eq!(f[3], (&b"RTCP:  1248 bytes"[..], &b""[..]));
        assert_eq!(s.mos(), Some(3.8));
        assert_eq!(s.jitter(), None);
        let s = stat("X-RTP-Stat", b"PS=abc;PR=;JI=NaN;=5");
        assert_eq!(
            (s.packets_sent(), s.packets_received(), s.jitter()),
            (None, None, None)
        );
        assert_eq!(s.fields().last(), Some((&b""[..], &b"5"[..])));
        assert!(RtpStat::parse(b"X-Other", b"PS=1").is_none());
        assert_eq!(stat("X-RTP-Stat", b"").fields().count(), 0);
    }
}
