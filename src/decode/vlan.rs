//! IEEE 802.1Q / 802.1ad (QinQ) tags: strips a stack of them, keeping the innermost VLAN id.
//! Bounded to `MAX_TAGS`; a tag is 4 bytes (TCI, then the next ethertype).
use super::wire::be16;

/// A tag header cut short, or more tags than a frame can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Malformed;

/// 802.1Q, 802.1ad, and the pre-standard QinQ TPID still sent by older switches.
pub(crate) const TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];
const MAX_TAGS: usize = 8;

#[inline]
pub(crate) fn is_tpid(ethertype: u16) -> bool {
    TPIDS.contains(&ethertype)
}

/// Strips VLAN tags while `ethertype` names one; returns the inner ethertype, the bytes after the
/// tags and the innermost VLAN id (12 bits), if any tag was present.
#[inline]
pub(crate) fn strip(
    mut ethertype: u16,
    mut rest: &[u8],
) -> Result<(u16, &[u8], Option<u16>), Malformed> {
    let mut vlan = None;
    let mut tags = 0;
    while is_tpid(ethertype) {
        if tags == MAX_TAGS {
            return Err(Malformed);
        }
        match rest {
            [t0, t1, e0, e1, tail @ ..] => {
                vlan = Some(be16([*t0, *t1]) & 0x0fff);
                ethertype = be16([*e0, *e1]);
                rest = tail;
            }
            _ => return Err(Malformed),
        }
        tags += 1;
    }
    Ok((ethertype, rest, vlan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qinq_keeps_innermost_id() {
        // outer 802.1ad id 100, inner 802.1Q id 200, then IPv4
        let b = [0x00, 100, 0x81, 0x00, 0x20, 200, 0x08, 0x00, 0x45];
        let (et, rest, vlan) = strip(0x88a8, &b).unwrap();
        assert_eq!(et, 0x0800);
        assert_eq!(rest, &[0x45]);
        assert_eq!(vlan, Some(200));
    }

    #[test]
    fn truncated_tag_and_endless_stack_are_malformed() {
        assert_eq!(strip(0x8100, &[0, 1, 8]), Err(Malformed));
        let endless: Vec<u8> = std::iter::repeat_n([0u8, 1, 0x81, 0x00], 20)
            .flatten()
            .collect();
        assert_eq!(strip(0x8100, &endless), Err(Malformed));
    }

    #[test]
    fn untagged_passes_through() {
        assert_eq!(
            strip(0x86dd, &[1, 2]).unwrap(),
            (0x86dd, &[1u8, 2][..], None)
        );
    }
}
