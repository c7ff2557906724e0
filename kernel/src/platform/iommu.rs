//! Reading the IOMMU description tables: Intel's DMAR (VT-d spec ch. 8) and
//! AMD's IVRS (AMD IOMMU spec ch. 5). Firmware tables are input: every length
//! is checked against the table before use.

/// The most IOMMU units recorded.
pub const MAX_UNITS: usize = 8;

/// The register bases of the remapping units a table describes.
pub type Units = heapless::Vec<u64, MAX_UNITS>;

/// Why a table was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// Shorter than its header or than its length field says.
    Truncated,
    /// A sub-structure's length is zero or runs past the table's end.
    BadLength,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// The table as long as its header says, if it is that long.
fn body(table: &[u8]) -> Result<&[u8], TableError> {
    let len = table.get(4..8).ok_or(TableError::Truncated)?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    table.get(..len).filter(|_| len >= 48).ok_or(TableError::Truncated)
}

/// Walks the sub-structures after the 48-byte header: `(type, offset, length)`.
fn structures(
    t: &[u8],
    len_at: usize,
    len_u16: bool,
    mut f: impl FnMut(u16, usize) -> Option<()>,
) -> Result<(), TableError> {
    let mut off = 48;
    while off < t.len() {
        let ty = if len_u16 { u16_at(t, off) } else { t.get(off).map(|&b| u16::from(b)) };
        let len = u16_at(t, off + len_at);
        let (Some(ty), Some(len)) = (ty, len) else {
            return Err(TableError::BadLength);
        };
        let len = len as usize;
        if len < 4 || off + len > t.len() {
            return Err(TableError::BadLength);
        }
        f(ty, off);
        off += len;
    }
    Ok(())
}

/// The DRHD units (type 0) of a DMAR table: their register base addresses.
pub fn parse_dmar(table: &[u8]) -> Result<Units, TableError> {
    let t = body(table)?;
    let mut units = Units::new();
    structures(t, 2, true, |ty, off| {
        if ty == 0 {
            units.push(u64_at(t, off + 8)?).ok()?;
        }
        Some(())
    })?;
    Ok(units)
}

/// The IVHD blocks (types 0x10, 0x11, 0x40) of an IVRS table: their IOMMU
/// register base addresses, once each.
pub fn parse_ivrs(table: &[u8]) -> Result<Units, TableError> {
    let t = body(table)?;
    let mut units = Units::new();
    structures(t, 2, false, |ty, off| {
        if matches!(ty, 0x10 | 0x11 | 0x40) {
            let base = u64_at(t, off + 8)?;
            if !units.contains(&base) {
                units.push(base).ok()?;
            }
        }
        Some(())
    })?;
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(sig: &[u8; 4], structs: &[&[u8]]) -> Vec<u8> {
        let mut t = vec![0u8; 48];
        t[..4].copy_from_slice(sig);
        for s in structs {
            t.extend_from_slice(s);
        }
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t
    }

    fn drhd(base: u64) -> Vec<u8> {
        let mut s = vec![0u8; 16];
        s[2..4].copy_from_slice(&16u16.to_le_bytes());
        s[8..16].copy_from_slice(&base.to_le_bytes());
        s
    }

    fn ivhd(ty: u8, base: u64) -> Vec<u8> {
        let mut s = vec![0u8; 24];
        s[0] = ty;
        s[2..4].copy_from_slice(&24u16.to_le_bytes());
        s[8..16].copy_from_slice(&base.to_le_bytes());
        s
    }

    #[test]
    fn dmar_units_are_found() {
        let rmrr = {
            let mut s = vec![0u8; 24];
            s[0] = 1;
            s[2..4].copy_from_slice(&24u16.to_le_bytes());
            s
        };
        let t = table(b"DMAR", &[&drhd(0xfed9_0000), &rmrr, &drhd(0xfed9_1000)]);
        assert_eq!(parse_dmar(&t).unwrap().as_slice(), &[0xfed9_0000, 0xfed9_1000]);
    }

    #[test]
    fn ivrs_units_are_found_once() {
        let t = table(b"IVRS", &[&ivhd(0x10, 0xfeb8_0000), &ivhd(0x11, 0xfeb8_0000)]);
        assert_eq!(parse_ivrs(&t).unwrap().as_slice(), &[0xfeb8_0000]);
    }

    #[test]
    fn hostile_lengths_are_refused() {
        let mut zero = drhd(1);
        zero[2] = 0;
        assert_eq!(parse_dmar(&table(b"DMAR", &[&zero])), Err(TableError::BadLength));
        let mut long = drhd(1);
        long[2] = 200;
        assert_eq!(parse_dmar(&table(b"DMAR", &[&long])), Err(TableError::BadLength));
        let mut t = table(b"DMAR", &[&drhd(1)]);
        t[4] = 200; // header claims more than there is
        assert_eq!(parse_dmar(&t), Err(TableError::Truncated));
        assert_eq!(parse_ivrs(&[0u8; 10]), Err(TableError::Truncated));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut t = vec![0u8; 48 + (x % 64) as usize];
            for b in t.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            let len = t.len() as u32;
            t[4..8].copy_from_slice(&len.to_le_bytes());
            let _ = parse_dmar(&t);
            let _ = parse_ivrs(&t);
        }
    }
}
