//! Big-endian field readers shared by the wire views.
//! Callers check the slice length first; these take fixed-size arrays so they cannot panic.

#[inline(always)]
pub(crate) fn be16(b: [u8; 2]) -> u16 {
    u16::from_be_bytes(b)
}

#[inline(always)]
pub(crate) fn be32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

/// The two bytes at `off`, or `None` past the end.
#[inline(always)]
pub(crate) fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    match b.get(off..off.checked_add(2)?) {
        Some(&[x, y]) => Some(be16([x, y])),
        _ => None,
    }
}

/// The four bytes at `off`, or `None` past the end.
#[inline(always)]
pub(crate) fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    match b.get(off..off.checked_add(4)?) {
        Some(&[a, c, d, e]) => Some(be32([a, c, d, e])),
        _ => None,
    }
}
