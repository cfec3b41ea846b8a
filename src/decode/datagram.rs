//! What the decoder hands up: one transport payload with its addresses, time and origin; and
//! `OwnedDatagram`, its owned twin for consumers that queue datagrams (grep's delay buffer).
use std::net::IpAddr;

use crate::source::PacketLocation;

pub use crate::vocab::Transport;

/// Encapsulations met on the way to the payload, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Encap(pub u8);

impl Encap {
    pub const VLAN: Encap = Encap(1);
    pub const IPIP: Encap = Encap(2);
    pub const GRE: Encap = Encap(4);
    pub const ERSPAN: Encap = Encap(8);
    pub const HEP: Encap = Encap(16);

    pub fn contains(self, other: Encap) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
    pub fn insert(&mut self, other: Encap) {
        self.0 |= other.0;
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Names joined by '+', outermost first ("vlan+gre"); `None` when nothing encapsulated the packet.
    pub fn name(self) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let names = [
            (Encap::VLAN, "vlan"),
            (Encap::IPIP, "ipip"),
            (Encap::GRE, "gre"),
            (Encap::ERSPAN, "erspan"),
            (Encap::HEP, "hep"),
        ];
        let v: Vec<&str> = names
            .iter()
            .filter(|(e, _)| self.contains(*e))
            .map(|(_, n)| *n)
            .collect();
        Some(v.join("+"))
    }
}

/// HEP (HOMER Encapsulation Protocol) metadata of a payload that arrived inside HEP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HepInfo<'a> {
    /// 2 or 3.
    pub version: u8,
    pub capture_id: Option<u32>,
    pub auth_key: Option<&'a [u8]>,
    pub node_name: Option<&'a [u8]>,
    /// HEP payload type (1 = SIP, 5 = RTCP, 32+ = logs/QoS); None for HEPv2.
    pub payload_type: Option<u8>,
}

/// One UDP datagram, one framed SIP message from a TCP stream, or one HEP-carried payload.
#[derive(Clone, Copy, Debug)]
pub struct Datagram<'a> {
    pub ts_ns: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
    pub encap: Encap,
    /// The innermost 802.1Q/802.1ad VLAN id, if any.
    pub vlan: Option<u16>,
    pub payload: &'a [u8],
    /// The capture records this payload came from, earliest first (several after IP defragmentation
    /// or TCP reassembly; for HEP, the record of the HEP packet).
    pub locations: &'a [PacketLocation],
    pub hep: Option<HepInfo<'a>>,
}

/// HEP metadata that owns its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedHepInfo {
    pub version: u8,
    pub capture_id: Option<u32>,
    pub auth_key: Option<Vec<u8>>,
    pub node_name: Option<Vec<u8>>,
    pub payload_type: Option<u8>,
}

/// A [`Datagram`] that owns its bytes, to be held in a [`DelayBuffer`](super::DelayBuffer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedDatagram {
    pub ts_ns: i64,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
    pub encap: Encap,
    pub vlan: Option<u16>,
    pub payload: Vec<u8>,
    pub locations: Vec<PacketLocation>,
    pub hep: Option<OwnedHepInfo>,
}

impl OwnedDatagram {
    pub fn new(dg: &Datagram<'_>) -> OwnedDatagram {
        OwnedDatagram {
            ts_ns: dg.ts_ns,
            src: dg.src,
            dst: dg.dst,
            src_port: dg.src_port,
            dst_port: dg.dst_port,
            transport: dg.transport,
            encap: dg.encap,
            vlan: dg.vlan,
            payload: dg.payload.to_vec(),
            locations: dg.locations.to_vec(),
            hep: dg.hep.map(|h| OwnedHepInfo {
                version: h.version,
                capture_id: h.capture_id,
                auth_key: h.auth_key.map(<[u8]>::to_vec),
                node_name: h.node_name.map(<[u8]>::to_vec),
                payload_type: h.payload_type,
            }),
        }
    }

    pub fn as_datagram(&self) -> Datagram<'_> {
        Datagram {
            ts_ns: self.ts_ns,
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            transport: self.transport,
            encap: self.encap,
            vlan: self.vlan,
            payload: &self.payload,
            locations: &self.locations,
            hep: self.hep.as_ref().map(|h| HepInfo {
                version: h.version,
                capture_id: h.capture_id,
                auth_key: h.auth_key.as_deref(),
                node_name: h.node_name.as_deref(),
                payload_type: h.payload_type,
            }),
        }
    }

    /// Approximate memory held, for the delay buffer's byte bound.
    pub fn size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.payload.len()
            + self.locations.len() * std::mem::size_of::<PacketLocation>()
            + self.hep.as_ref().map_or(0, |h| {
                h.auth_key.as_ref().map_or(0, Vec::len) + h.node_name.as_ref().map_or(0, Vec::len)
            })
    }
}
