//! What the format walkers (pcap, pcapng) tell the reader about the bytes in front of it, and the
//! byte-order accessors they share. Accessors read through `get`, so no input can make them panic.
use super::LinkType;

/// Largest captured length accepted for one packet: Wireshark's 256 KiB default maximum snapshot
/// length. A larger length in a record header means the header is garbage, so nothing is allocated by it.
pub(crate) const MAX_CAPLEN: u32 = 256 * 1024;

/// Largest pcapng block accepted. Bounds the stream buffer ("memory flat whatever the file size").
pub(crate) const MAX_BLOCK_LEN: u32 = 4 * 1024 * 1024;

/// One packet record found at the start of the window, described by offsets into that window so the
/// walker holds no borrow (the reader slices the data after advancing).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    pub ts_ns: i64,
    pub link_type: LinkType,
    pub interface_id: u32,
    /// Offset of the packet bytes from the start of the record.
    pub data_start: u32,
    pub caplen: u32,
    pub orig_len: u32,
    pub record_len: u32,
}

/// The outcome of looking at the bytes at the current position.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    /// A packet record.
    Packet(Record),
    /// A record of this many bytes was consumed without yielding a packet (pcapng SHB, IDB, ISB,
    /// unknown or malformed blocks).
    Consumed(u32),
    /// The record is not complete: at least this many bytes (from the record start) are needed.
    /// At the end of the input this means the file was cut inside the record.
    Need(u32),
    /// The lengths in the record header are impossible; the walk cannot find the next record.
    Corrupt(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ByteOrder {
    Little,
    Big,
}

/// Reads are little-endian with a swap for big-endian files, which compiles to one load and a
/// conditional swap rather than two loads behind a branch.
impl ByteOrder {
    #[inline]
    pub fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = b
            .get(at..)
            .and_then(|s| s.first_chunk::<2>())
            .map_or(0, |a| u16::from_le_bytes(*a));
        if self == ByteOrder::Big {
            v.swap_bytes()
        } else {
            v
        }
    }

    #[inline]
    pub fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = b
            .get(at..)
            .and_then(|s| s.first_chunk::<4>())
            .map_or(0, |a| u32::from_le_bytes(*a));
        if self == ByteOrder::Big {
            v.swap_bytes()
        } else {
            v
        }
    }

    #[inline]
    pub fn u64(self, b: &[u8], at: usize) -> u64 {
        let v = b
            .get(at..)
            .and_then(|s| s.first_chunk::<8>())
            .map_or(0, |a| u64::from_le_bytes(*a));
        if self == ByteOrder::Big {
            v.swap_bytes()
        } else {
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_read_both_orders_and_never_panic_out_of_range() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(ByteOrder::Little.u16(&b, 0), 0x0201);
        assert_eq!(ByteOrder::Big.u16(&b, 0), 0x0102);
        assert_eq!(ByteOrder::Little.u32(&b, 4), 0x0807_0605);
        assert_eq!(ByteOrder::Big.u32(&b, 4), 0x0506_0708);
        assert_eq!(ByteOrder::Big.u64(&b, 0), 0x0102_0304_0506_0708);
        assert_eq!(ByteOrder::Little.u32(&b, 5), 0);
        assert_eq!(ByteOrder::Little.u64(&b, usize::MAX), 0);
    }
}
