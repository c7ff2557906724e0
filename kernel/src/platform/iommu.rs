//! Reading the IOMMU description tables: Intel's DMAR (VT-d spec ch. 8) and
//! AMD's IVRS (AMD IOMMU spec ch. 5). Firmware tables are input: every length
//! is checked against the table before use.

/// The most IOMMU units recorded.
pub const MAX_UNITS: usize = 8;

/// The most PCI endpoints one unit's device scope lists that are kept.
pub const MAX_SCOPE: usize = 16;

/// A remapping unit: its register base, whether it covers every PCI
/// function its others do not (DMAR's INCLUDE_PCI_ALL; every IVHD here),
/// the functions (`bus << 8 | devfn`) its scope names directly, and the
/// first I/O APIC it names (its id, and the requester id its interrupt
/// requests carry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub base: u64,
    pub all: bool,
    pub scope: heapless::Vec<u16, MAX_SCOPE>,
    pub ioapic: Option<(u8, u16)>,
}

/// The remapping units a table describes.
pub type Units = heapless::Vec<Unit, MAX_UNITS>;

/// The unit that translates function `bdf`: the one whose scope names it,
/// else the one that takes the rest. A function behind a bridge a scope
/// names by path is not yet followed: its DMA then stays blocked.
pub fn unit_of(units: &[Unit], bdf: u16) -> Option<usize> {
    let named = units.iter().position(|u| u.scope.contains(&bdf));
    named.or_else(|| units.iter().position(|u| u.all))
}

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

/// The DRHD units (type 0) of a DMAR table (VT-d spec 8.3): register
/// bases, INCLUDE_PCI_ALL, and the endpoints (scope type 1) and I/O
/// APICs (type 3) their device scopes name by a path of one step.
pub fn parse_dmar(table: &[u8]) -> Result<Units, TableError> {
    let t = body(table)?;
    let mut units = Units::new();
    structures(t, 2, true, |ty, off| {
        if ty == 0 {
            let mut unit = Unit {
                base: u64_at(t, off + 8)?,
                all: t.get(off + 4)? & 1 != 0,
                scope: heapless::Vec::new(),
                ioapic: None,
            };
            let (end, mut at) = (off + usize::from(u16_at(t, off + 2)?), off + 16);
            while let Some(&[kind, len, _, _, id, bus, dev, func]) =
                t.get(at..at + 8).filter(|_| at + 8 <= end)
            {
                let len = usize::from(len);
                if len < 6 || at + len > end {
                    break;
                }
                let bdf = u16::from(bus) << 8 | u16::from(dev & 0x1f) << 3 | u16::from(func & 7);
                if kind == 1 && len == 8 {
                    let _ = unit.scope.push(bdf);
                }
                if kind == 3 && len == 8 && unit.ioapic.is_none() {
                    unit.ioapic = Some((id, bdf));
                }
                at += len;
            }
            units.push(unit).ok()?;
        }
        Some(())
    })?;
    Ok(units)
}

/// The IVHD blocks (types 0x10, 0x11, 0x40) of an IVRS table: their IOMMU
/// register base addresses, once each, and the first I/O APIC their
/// special device entries (type 48h, variety 1) name. Device entries of
/// types below 40h are 4 bytes, below 80h 8; the variable-length ones
/// (ACPI names) end the walk of their block.
pub fn parse_ivrs(table: &[u8]) -> Result<Units, TableError> {
    let t = body(table)?;
    let mut units = Units::new();
    structures(t, 2, false, |ty, off| {
        if matches!(ty, 0x10 | 0x11 | 0x40) {
            let base = u64_at(t, off + 8)?;
            let (end, mut at) =
                (off + usize::from(u16_at(t, off + 2)?), off + if ty == 0x10 { 24 } else { 40 });
            let mut ioapic = None;
            while let Some(&kind) = t.get(at).filter(|&&k| at < end && k < 0x80) {
                if let (0x48, Some(&[_, _, _, _, id, lo, hi, 1])) = (kind, t.get(at..(at + 8).min(end))) {
                    ioapic = ioapic.or(Some((id, u16::from_le_bytes([lo, hi]))));
                }
                at += if kind < 0x40 { 4 } else { 8 };
            }
            match units.iter_mut().find(|u| u.base == base) {
                Some(u) => u.ioapic = u.ioapic.or(ioapic),
                None => units.push(Unit { base, all: true, scope: heapless::Vec::new(), ioapic }).ok()?,
            }
        }
        Some(())
    })?;
    Ok(units)
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/platform/iommu.rs"]
mod tests;
