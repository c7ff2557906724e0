//! How an MMIO access of any size lands on a device made of 32-bit
//! registers: cut into the pieces that fall in each aligned dword.
//!
//! Devices such as the I/O APIC and the xAPIC page define only aligned
//! 32-bit accesses; what a CPU does with others is model-specific. Here an
//! access of 1, 2, 4 or 8 bytes at any offset is defined the same way for
//! every device: a read gives the bytes of the dwords it covers, a write
//! changes only the bytes it covers (each dword read, merged, written
//! back), so no guest access is ever undefined.

/// The part of an access that falls in one aligned dword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The dword's offset (a multiple of 4).
    pub at: u64,
    /// Which bits of the dword the access covers.
    pub mask: u32,
    /// Where those bits start in the dword, and in the access's value.
    pub dword_shift: u32,
    pub value_shift: u32,
}

/// The pieces of an access of `size` bytes (1, 2, 4 or 8; others are
/// taken as 8) at `offset`. An access that would reach the top of the
/// address space stops below its last byte.
pub fn pieces(offset: u64, size: u8) -> impl Iterator<Item = Piece> {
    let size = u64::from(if matches!(size, 1 | 2 | 4) { size } else { 8 });
    let end = offset.saturating_add(size);
    let mut at = offset;
    core::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let dword = at & !3;
        let first = (at - dword) as u32;
        let last = (end - dword).min(4) as u32; // one past the last byte
        let bits = 8 * (last - first);
        let mask = (u64::from(u32::MAX) >> (32 - bits) << (8 * first)) as u32;
        let p = Piece { at: dword, mask, dword_shift: 8 * first, value_shift: (8 * (at - offset)) as u32 };
        at = dword.checked_add(4).unwrap_or(end);
        Some(p)
    })
}

/// A read of `size` bytes at `offset`, given how to read each dword.
pub fn read(offset: u64, size: u8, mut dword: impl FnMut(u64) -> u32) -> u64 {
    pieces(offset, size)
        .fold(0, |v, p| v | (u64::from((dword(p.at) & p.mask) >> p.dword_shift) << p.value_shift))
}

/// The new value of a dword after the piece `p` of a write of `value`.
pub fn merge(old: u32, p: Piece, value: u64) -> u32 {
    let bits = ((value >> p.value_shift) as u32) << p.dword_shift;
    (old & !p.mask) | (bits & p.mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn aligned_and_unaligned_accesses() {
        let all: Vec<_> = pieces(0x10, 4).collect();
        assert_eq!(all, [Piece { at: 0x10, mask: u32::MAX, dword_shift: 0, value_shift: 0 }]);
        let all: Vec<_> = pieces(0x11, 1).collect();
        assert_eq!(all, [Piece { at: 0x10, mask: 0xFF00, dword_shift: 8, value_shift: 0 }]);
        let all: Vec<_> = pieces(0x0E, 4).collect();
        assert_eq!(
            all,
            [
                Piece { at: 0x0C, mask: 0xFFFF_0000, dword_shift: 16, value_shift: 0 },
                Piece { at: 0x10, mask: 0xFFFF, dword_shift: 0, value_shift: 16 }
            ]
        );
        let regs = |at: u64| (at as u32) * 0x0101_0101;
        assert_eq!(read(0x10, 8, regs), 0x1414_1414_1010_1010);
        assert_eq!(read(0x12, 2, regs), 0x1010);
        assert_eq!(read(0x13, 2, regs), 0x1410);
        assert_eq!(read(u64::MAX - 1, 8, |_| 0xAABB_CCDD), 0xBB, "stops below the top");
        let p = pieces(0x11, 2).next().unwrap();
        assert_eq!(merge(0xAABB_CCDD, p, 0x1234), 0xAA12_34DD);
    }

    proptest! {
        /// Every byte of an access lands exactly once, where it belongs.
        #[test]
        fn hostile_pieces(offset in any::<u64>(), size in any::<u8>(), value in any::<u64>()) {
            let mut bytes = 0u32;
            for p in pieces(offset, size) {
                prop_assert_eq!(p.at % 4, 0);
                prop_assert_eq!(p.mask.count_ones() % 8, 0);
                bytes += p.mask.count_ones() / 8;
                let m = merge(0, p, value);
                prop_assert_eq!(m & !p.mask, 0);
            }
            let want = u64::from(if matches!(size, 1 | 2 | 4) { size } else { 8 });
            prop_assert_eq!(u64::from(bytes), want.min(u64::MAX - offset));
            // A memory of dwords reads back what was written.
            let mut mem = std::collections::BTreeMap::new();
            for p in pieces(offset, size) {
                let old = *mem.get(&p.at).unwrap_or(&0);
                mem.insert(p.at, merge(old, p, value));
            }
            let back = read(offset, size, |at| *mem.get(&at).unwrap_or(&0));
            let width = 8 * u64::from(bytes);
            let mask = if width == 64 { u64::MAX } else { (1 << width) - 1 };
            prop_assert_eq!(back, value & mask);
        }
    }
}
