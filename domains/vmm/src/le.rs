//! Little-endian fields of byte buffers: reads that say `None` past the
//! end (for input a less-trusted party wrote: a kernel image), and writes
//! into buffers whose size the caller knows (a page the VMM fills).

pub fn u8_at(b: &[u8], o: usize) -> Option<u8> {
    b.get(o).copied()
}

pub fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o.checked_add(2)?)?.try_into().ok()?))
}

pub fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?))
}

pub fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o.checked_add(8)?)?.try_into().ok()?))
}

/// Writes `v` at `o`; `o + 2 <= b.len()` is the caller's invariant (a
/// constant offset into a buffer of constant size).
pub fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}

/// As [`put16`], four bytes.
pub fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

/// As [`put16`], eight bytes.
pub fn put64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_are_none() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(u16_at(&b, 6), Some(0x0807));
        assert_eq!(u16_at(&b, 7), None);
        assert_eq!(u32_at(&b, 4), Some(0x0807_0605));
        assert_eq!(u32_at(&b, 5), None);
        assert_eq!(u64_at(&b, 0), Some(0x0807_0605_0403_0201));
        assert_eq!(u64_at(&b, 1), None);
        assert_eq!(u8_at(&b, 8), None);
        assert_eq!(u32_at(&b, usize::MAX - 1), None, "no overflow");
    }

    #[test]
    fn writes_read_back() {
        let mut b = [0u8; 16];
        put16(&mut b, 0, 0xBEEF);
        put32(&mut b, 2, 0xDEAD_BEEF);
        put64(&mut b, 8, 0x0123_4567_89AB_CDEF);
        assert_eq!(
            (u16_at(&b, 0), u32_at(&b, 2), u64_at(&b, 8)),
            (Some(0xBEEF), Some(0xDEAD_BEEF), Some(0x0123_4567_89AB_CDEF))
        );
    }
}
