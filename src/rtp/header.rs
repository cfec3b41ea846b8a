//! Zero-copy view of an RTP fixed header (RFC 3550 §5.1) with its CSRC list, header extension
//! (§5.3.1) and padding. `RtpHeader::parse` checks every length once; no accessor panics after it.

use super::RtpError;

/// RFC 3550 §5.1: the fixed part of the header is 12 octets.
pub const FIXED_HEADER_LEN: usize = 12;

/// A borrowed RTP packet whose header, CSRC list and extension were found to fit in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    buf: &'a [u8],
    payload_offset: usize,
    /// Octets of padding at the end, clipped to what follows the header.
    padding_len: usize,
    padding_valid: bool,
}

impl<'a> RtpHeader<'a> {
    /// Parses an RTP version 2 packet. Padding is not an error here: a count of zero or one that
    /// overruns the payload is clipped and reported by `padding_valid()` (Wireshark does the same
    /// when it dissects a known flow, while its heuristic rejects such packets).
    #[inline]
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort);
        }
        if buf[0] >> 6 != 2 {
            return Err(RtpError::BadVersion);
        }
        let csrc_count = usize::from(buf[0] & 0x0f);
        let mut offset = FIXED_HEADER_LEN + 4 * csrc_count;
        if offset > buf.len() {
            return Err(RtpError::CsrcOverrun);
        }
        if buf[0] & 0x10 != 0 {
            if buf.len() < offset + 4 {
                return Err(RtpError::ExtensionOverrun);
            }
            let words = usize::from(u16::from_be_bytes([buf[offset + 2], buf[offset + 3]]));
            offset += 4 + 4 * words;
            if offset > buf.len() {
                return Err(RtpError::ExtensionOverrun);
            }
        }
        let remaining = buf.len() - offset;
        let (padding_len, padding_valid) = if buf[0] & 0x20 != 0 {
            // The last octet counts the padding, itself included (§5.1 "P").
            let count = usize::from(buf[buf.len() - 1]);
            if count == 0 || count > remaining {
                (remaining.min(count), false)
            } else {
                (count, true)
            }
        } else {
            (0, true)
        };
        Ok(RtpHeader {
            buf,
            payload_offset: offset,
            padding_len,
            padding_valid,
        })
    }

    #[inline]
    pub fn version(&self) -> u8 {
        self.buf[0] >> 6
    }
    #[inline]
    pub fn padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }
    #[inline]
    pub fn extension(&self) -> bool {
        self.buf[0] & 0x10 != 0
    }
    #[inline]
    pub fn csrc_count(&self) -> u8 {
        self.buf[0] & 0x0f
    }
    #[inline]
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }
    #[inline]
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }
    #[inline]
    pub fn sequence_number(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }
    #[inline]
    pub fn timestamp(&self) -> u32 {
        be32(self.buf, 4)
    }
    #[inline]
    pub fn ssrc(&self) -> u32 {
        be32(self.buf, 8)
    }
    /// The i-th contributing source, if the CSRC count covers it.
    pub fn csrc(&self, i: usize) -> Option<u32> {
        (i < usize::from(self.csrc_count())).then(|| be32(self.buf, FIXED_HEADER_LEN + 4 * i))
    }
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let buf = self.buf;
        (0..usize::from(buf[0] & 0x0f)).map(move |i| be32(buf, FIXED_HEADER_LEN + 4 * i))
    }
    /// "defined by profile" field of the header extension (0xBEDE for RFC 8285 one-byte form).
    pub fn extension_profile(&self) -> Option<u16> {
        let at = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count());
        self.extension()
            .then(|| u16::from_be_bytes([self.buf[at], self.buf[at + 1]]))
    }
    /// Header extension body (without its 4-octet header); empty when there is none.
    pub fn extension_data(&self) -> &'a [u8] {
        if !self.extension() {
            return &[];
        }
        let at = FIXED_HEADER_LEN + 4 * usize::from(self.csrc_count()) + 4;
        &self.buf[at..self.payload_offset]
    }
    /// Offset of the payload: after the CSRCs and the header extension.
    #[inline]
    pub fn payload_offset(&self) -> usize {
        self.payload_offset
    }
    /// Payload octets, padding excluded.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_offset..self.buf.len() - self.padding_len]
    }
    #[inline]
    pub fn padding_len(&self) -> usize {
        self.padding_len
    }
    /// False when P is set but the count is 0 or longer than the payload.
    pub fn padding_valid(&self) -> bool {
        self.padding_valid
    }
    /// The whole packet, header included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_header_fields() {
        let pkt = [
            0x80, 0x88, 0x12, 0x34, 0x00, 0x00, 0x01, 0x40, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3,
        ];
        let h = RtpHeader::parse(&pkt).unwrap();
        assert_eq!(h.version(), 2);
        assert!(h.marker());
        assert_eq!(h.payload_type(), 8);
        assert_eq!(h.sequence_number(), 0x1234);
        assert_eq!(h.timestamp(), 320);
        assert_eq!(h.ssrc(), 0xdeadbeef);
        assert_eq!(h.payload(), &[1, 2, 3]);
        assert_eq!(h.csrcs().count(), 0);
        assert_eq!(h.extension_profile(), None);
    }

    #[test]
    fn csrc_extension_and_padding_are_skipped() {
        let mut pkt = vec![0xb2, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        pkt.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 10]); // two CSRCs
        pkt.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]); // one-word extension
        pkt.extend_from_slice(&[7, 7, 7]); // payload
        pkt.extend_from_slice(&[0, 0, 3]); // 3 octets of padding
        let h = RtpHeader::parse(&pkt).unwrap();
        assert_eq!(h.csrc_count(), 2);
        assert_eq!(h.csrc(1), Some(10));
        assert_eq!(h.csrc(2), None);
        assert_eq!(h.extension_profile(), Some(0xbede));
        assert_eq!(h.extension_data(), &[0x10, 0xaa, 0, 0]);
        assert_eq!(h.payload_offset(), 28);
        assert_eq!(h.payload(), &[7, 7, 7]);
        assert!(h.padding_valid());
    }

    #[test]
    fn truncated_or_foreign_packets_are_errors() {
        assert_eq!(RtpHeader::parse(&[0x80; 11]), Err(RtpError::TooShort));
        assert_eq!(RtpHeader::parse(&[0x40; 12]), Err(RtpError::BadVersion));
        let mut csrc = [0u8; 12];
        csrc[0] = 0x81;
        assert_eq!(RtpHeader::parse(&csrc), Err(RtpError::CsrcOverrun));
        let mut ext = [0u8; 16];
        ext[0] = 0x90;
        ext[15] = 5;
        assert_eq!(RtpHeader::parse(&ext), Err(RtpError::ExtensionOverrun));
        assert_eq!(
            RtpHeader::parse(&ext[..14]),
            Err(RtpError::ExtensionOverrun)
        );
    }

    #[test]
    fn bad_padding_is_clipped_not_fatal() {
        let mut pkt = [0u8; 14];
        pkt[0] = 0xa0;
        pkt[13] = 9; // 9 > 2 octets after the header
        let h = RtpHeader::parse(&pkt).unwrap();
        assert!(!h.padding_valid());
        assert_eq!(h.payload(), &[] as &[u8]);
        pkt[13] = 0;
        assert!(!RtpHeader::parse(&pkt).unwrap().padding_valid());
    }
}
