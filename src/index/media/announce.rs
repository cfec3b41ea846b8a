//! SDP (and MEGACO) media announcements: the slab of announced addresses the per-packet path
//! reads, and the pass's handling of SIP messages (announcements, quality-report bodies).
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::feed::Origin;
use super::rtcp::{stat_row, vq_rows};
use super::{FastMap, MediaPass};
use crate::rtp::vq;
use crate::sip;
use crate::store::record::QosReportRecord;
use crate::store::StoreError;

/// A media address announced in SDP.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Announcement {
    /// None when MEGACO announced it (a gateway's port: no SIP dialog names it).
    pub(super) call_id: Option<String>,
    /// False for `m=image … udptl` (T.38): the port is not RTP.
    pub(super) rtp: bool,
    pub(super) rtpmap: Vec<(u8, String, u32)>,
    /// Capture time of the announcement or of the last packet to this address.
    pub(super) last_ns: i64,
    /// Unique to this announcement in this process (from 1; see `Maps::next_version`): a
    /// stream keeps what its payload type means while the version it was read from stays.
    #[serde(skip)]
    pub(super) version: u64,
}
/// The SDP-announced media addresses, in a slab so that a flow keeps a handle to its own
/// (`FlowSlot`) instead of hashing its two addresses for every packet.
#[derive(Debug, Default)]
pub(super) struct Announcements {
    pub(super) index: FastMap<(IpAddr, u16), usize>,
    slab: Vec<Option<((IpAddr, u16), Announcement)>>,
    /// Per slot, what every RTP packet reads or writes (version, T.38 or not, last packet
    /// time), apart from the announcement itself: a packet then touches 24 bytes in a dense
    /// vector instead of a cold slab entry (a cache miss per packet on a trunk). The live
    /// `last_ns` is here; the announcement's copy is brought up to date when it is read.
    heads: Vec<AnnouncementHead>,
    pub(super) free: Vec<usize>,
    /// Insertions per address bucket (a hash of address and port): a flow's cached "not
    /// announced" for an address holds while its bucket's count stays. Per bucket, not one
    /// count for all: on a trunk captured mid-call most media has no SDP in the capture, and a
    /// single count, moved by every new call's SDP, sent nearly every such packet back to the
    /// address map.
    pub(super) bucket_inserts: Vec<u32>,
}

const ADDRESS_BUCKETS: usize = 1 << 12;

/// See `Announcements::heads`; version 0 marks a free slot.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct AnnouncementHead {
    pub(super) version: u64,
    pub(super) last_ns: i64,
    pub(super) rtp: bool,
}

impl AnnouncementHead {
    pub(super) fn of(a: &Announcement) -> AnnouncementHead {
        AnnouncementHead {
            version: a.version,
            last_ns: a.last_ns,
            rtp: a.rtp,
        }
    }
}

impl Announcements {
    /// The hot part of a live slot's announcement.
    pub(super) fn head(&self, slot: usize) -> Option<&AnnouncementHead> {
        self.heads.get(slot).filter(|h| h.version != 0)
    }

    pub(super) fn head_mut(&mut self, slot: usize) -> Option<&mut AnnouncementHead> {
        self.heads.get_mut(slot).filter(|h| h.version != 0)
    }

    /// A packet to (or from) the address keeps its announcement alive until `ts_ns`.
    pub(super) fn touch_max(&mut self, k: &(IpAddr, u16), ts_ns: i64) {
        if let Some(&i) = self.index.get(k) {
            let h = &mut self.heads[i];
            h.last_ns = h.last_ns.max(ts_ns);
        }
    }

    pub(super) fn bucket(&self, k: &(IpAddr, u16)) -> u32 {
        use std::hash::BuildHasher;
        (self.index.hasher().hash_one(k) as usize & (ADDRESS_BUCKETS - 1)) as u32
    }

    /// Insertions so far into an address bucket.
    pub(super) fn inserts_in(&self, bucket: u32) -> u32 {
        self.bucket_inserts
            .get(bucket as usize)
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn get(&self, k: &(IpAddr, u16)) -> Option<&Announcement> {
        self.at(*self.index.get(k)?)
    }

    pub(super) fn contains_key(&self, k: &(IpAddr, u16)) -> bool {
        self.index.contains_key(k)
    }

    pub(super) fn slot_of(&self, k: &(IpAddr, u16)) -> Option<usize> {
        self.index.get(k).copied()
    }

    pub(super) fn at(&self, slot: usize) -> Option<&Announcement> {
        self.slab.get(slot)?.as_ref().map(|e| &e.1)
    }

    /// Replaces an address's announcement in its slot (its new version tells the flows).
    pub(super) fn insert(&mut self, k: (IpAddr, u16), a: Announcement) {
        if self.bucket_inserts.is_empty() {
            self.bucket_inserts = vec![0; ADDRESS_BUCKETS];
        }
        let b = self.bucket(&k) as usize;
        self.bucket_inserts[b] = self.bucket_inserts[b].wrapping_add(1);
        let head = AnnouncementHead::of(&a);
        if let Some(&i) = self.index.get(&k) {
            self.slab[i] = Some((k, a));
            self.heads[i] = head;
            return;
        }
        let i = match self.free.pop() {
            Some(i) => {
                self.slab[i] = Some((k, a));
                self.heads[i] = head;
                i
            }
            None => {
                self.slab.push(Some((k, a)));
                self.heads.push(head);
                self.slab.len() - 1
            }
        };
        self.index.insert(k, i);
    }

    /// Announcements with their live `last_ns`.
    fn sync_last_ns(&mut self) {
        for (e, h) in self.slab.iter_mut().zip(&self.heads) {
            if let Some((_, a)) = e {
                a.last_ns = h.last_ns;
            }
        }
    }

    pub(super) fn retain(&mut self, mut keep: impl FnMut(&Announcement) -> bool) {
        self.sync_last_ns();
        for (i, e) in self.slab.iter_mut().enumerate() {
            if let Some((k, a)) = e {
                if !keep(a) {
                    self.index.remove(k);
                    *e = None;
                    self.heads[i] = AnnouncementHead::default();
                    self.free.push(i);
                }
            }
        }
    }

    pub(super) fn drain(&mut self) -> impl Iterator<Item = ((IpAddr, u16), Announcement)> + '_ {
        self.sync_last_ns();
        self.index.clear();
        self.free.clear();
        self.heads.clear();
        self.slab.drain(..).flatten()
    }
}

impl MediaPass<'_> {
    pub(super) fn sip(&mut self, o: &Origin, msg: &sip::Message<'_>) -> Result<(), StoreError> {
        let call_id = self.announce(o.ts_ns, msg);
        let loc = o.location;
        let base = QosReportRecord {
            ts_ns: o.ts_ns,
            call_id: call_id.clone(),
            reporter_ip: o.src.to_string(),
            reporter_port: o.src_port,
            file_id: loc.file_id,
            offset: loc.offset,
            ..Default::default()
        };
        let is_vq = msg.content_type.is_some_and(|ct| {
            let ct = String::from_utf8_lossy(ct).to_ascii_lowercase();
            ct.starts_with("application/vq-rtcpxr")
        });
        if !self.keeps(loc.file_id) {
            return Ok(());
        }
        if is_vq {
            if let Some(r) = vq::parse(msg.body) {
                for row in vq_rows(&r, &base) {
                    self.qos.push(row)?;
                    self.out.qos_rows += 1;
                }
            }
        }
        for stat in msg.rtp_stats() {
            self.qos.push(stat_row(&stat, &base))?;
            self.out.qos_rows += 1;
        }
        Ok(())
    }

    /// Records the SDP media addresses of a message; returns its Call-ID.
    pub(super) fn announce(&mut self, ts_ns: i64, msg: &sip::Message<'_>) -> Option<String> {
        let call_id = msg.call_id.map(|c| String::from_utf8_lossy(c).into_owned());
        if let (Some(call_id), Some(Ok(sdp))) = (&call_id, msg.sdp()) {
            self.announce_sdp(&sdp, Some(call_id), ts_ns);
        }
        call_id
    }

    /// Records the media addresses in a MEGACO message's Local and Remote descriptors. They
    /// belong to no SIP dialog, and their RTCP ports are left to the heuristic.
    pub(super) fn announce_megaco(&mut self, ts_ns: i64, payload: &[u8]) {
        for text in sip::megaco::session_descriptions(payload) {
            if let Ok(sdp) = sip::sdp::parse(text) {
                self.announce_sdp(&sdp, None, ts_ns);
            }
        }
    }

    fn announce_sdp(
        &mut self,
        sdp: &sip::SessionDescription<'_>,
        call_id: Option<&str>,
        ts_ns: i64,
    ) {
        for media in &sdp.media {
            let Some(ip) = sdp.connection_for(media).and_then(|c| c.ip()) else {
                continue;
            };
            if media.port == 0 {
                continue;
            }
            let is_rtp = media.media != b"image";
            let rtpmap = media
                .rtpmaps()
                .map(|r| {
                    (
                        r.payload_type,
                        String::from_utf8_lossy(r.encoding).into_owned(),
                        r.clock_rate,
                    )
                })
                .collect();
            let version = self.state.maps.next_version();
            self.state.maps.announced.insert(
                (ip, media.port),
                Announcement {
                    call_id: call_id.map(str::to_owned),
                    rtp: is_rtp,
                    rtpmap,
                    last_ns: ts_ns,
                    version,
                },
            );
            if let (Some(call_id), true, false) = (call_id, is_rtp, media.rtcp_mux()) {
                let (rip, rport) = match media.rtcp() {
                    Some(r) => (r.connection.and_then(|c| c.ip()).unwrap_or(ip), r.port),
                    None => (ip, media.port.wrapping_add(1)),
                };
                self.state
                    .maps
                    .rtcp_addrs
                    .insert((rip, rport), (call_id.to_owned(), ts_ns));
            }
        }
    }
}
