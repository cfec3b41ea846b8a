//! `streams`: RTP streams of the archive matching filters, like tshark's `rtp,streams`, from the
//! index's `rtp_streams` table, in (start, stream_id) order.
use std::path::Path;

use super::filter::IpNet;
use super::rows::StreamRow;
use crate::store::parquet::{for_each_row, DayRange};
use crate::store::record::RtpStreamRecord;
use crate::store::StoreError;

/// Which streams `streams` prints; every set condition must hold.
#[derive(Clone, Debug, Default)]
pub struct StreamFilter {
    pub call_id: Option<String>,
    pub ip: Option<IpNet>,
    pub port: Option<u16>,
    pub ssrc: Option<u32>,
    /// Case-insensitive: the codec name or tshark's payload text contains it.
    pub codec: Option<String>,
    /// Streams active in `[since, until)`.
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub min_loss_pct: Option<f64>,
    pub max_mos: Option<f64>,
    pub unmatched: bool,
}

impl StreamFilter {
    pub fn matches(&self, s: &RtpStreamRecord) -> bool {
        let ip_ok = |ip: &str| {
            ip.parse()
                .is_ok_and(|a| self.ip.is_some_and(|n| n.contains(a)))
        };
        let lc = |x: &str| x.to_ascii_lowercase();
        self.call_id
            .as_ref()
            .is_none_or(|c| s.call_id.as_deref() == Some(c))
            && (self.ip.is_none() || ip_ok(&s.src_ip) || ip_ok(&s.dst_ip))
            && self.port.is_none_or(|p| s.src_port == p || s.dst_port == p)
            && self.ssrc.is_none_or(|x| s.ssrc == x)
            && self.codec.as_ref().is_none_or(|c| {
                let c = lc(c);
                s.codec.as_deref().is_some_and(|x| lc(x).contains(&c))
                    || lc(&s.payload).contains(&c)
            })
            && self.since_ns.is_none_or(|t| s.end_ns >= t)
            && self.until_ns.is_none_or(|t| s.start_ns < t)
            && self.min_loss_pct.is_none_or(|m| s.lost_pct >= m)
            && self.max_mos.is_none_or(|m| s.mos.is_some_and(|x| x <= m))
            && (!self.unmatched || s.call_id.is_none())
    }
}

/// Streams matching `f`, ordered by (start, stream_id).
pub fn read_streams(db: &Path, f: &StreamFilter) -> Result<Vec<StreamRow>, StoreError> {
    // A stream starts at most IDLE before it is still active at `since`; open the range a day.
    let day = 86_400_000_000_000i64;
    let days = DayRange::from_ns(f.since_ns.map(|t| t - day), f.until_ns);
    let mut out = Vec::new();
    for_each_row::<RtpStreamRecord>(db, days, |s| {
        if f.matches(&s) {
            out.push(s);
        }
        Ok(())
    })?;
    out.sort_by(|a, b| (a.start_ns, &a.stream_id).cmp(&(b.start_ns, &b.stream_id)));
    Ok(out.into_iter().map(|stream| StreamRow { stream }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_by_loss_mos_and_unmatched() {
        let s = RtpStreamRecord {
            src_ip: "10.0.0.1".into(),
            dst_ip: "10.0.0.2".into(),
            src_port: 4000,
            dst_port: 5000,
            lost_pct: 3.0,
            mos: Some(3.2),
            codec: Some("PCMA".into()),
            ..Default::default()
        };
        let f = |f: StreamFilter| f.matches(&s);
        assert!(f(StreamFilter {
            min_loss_pct: Some(2.0),
            max_mos: Some(3.5),
            unmatched: true,
            codec: Some("pcma".into()),
            ip: "10.0.0.0/24".parse().ok(),
            port: Some(5000),
            ..Default::default()
        }));
        assert!(!f(StreamFilter {
            min_loss_pct: Some(3.5),
            ..Default::default()
        }));
        assert!(!f(StreamFilter {
            call_id: Some("x".into()),
            ..Default::default()
        }));
        assert!(!f(StreamFilter {
            ip: "10.0.1.0/24".parse().ok(),
            ..Default::default()
        }));
    }
}
