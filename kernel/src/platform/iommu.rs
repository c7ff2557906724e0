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
#[path = "../../../kernel-tests/unit/platform/iommu.rs"]
mod tests;
