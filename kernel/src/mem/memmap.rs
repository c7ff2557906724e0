//! The firmware's memory map, and the usable memory that is left of it once
//! the kernel, the boot modules, the boot information and anything else the
//! kernel must keep are taken out.
//!
//! Everything here is byte ranges, half open (`start..end`). The map comes
//! from the boot loader and is not trusted to be sorted, disjoint or sane:
//! available regions that overlap each other are merged, and where firmware
//! marks memory both available and anything else, the other kind wins.

use core::ops::Range;

use super::{align_down, align_up, PAGE_SIZE};

/// What the firmware says a region of the physical address space holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// RAM free for the OS.
    Available,
    /// Firmware-owned, or device memory.
    Reserved,
    /// ACPI tables; kept, since the kernel and domains may read them later.
    AcpiReclaimable,
    /// ACPI non-volatile storage.
    AcpiNvs,
    /// Bad RAM.
    Defective,
    /// A type this kernel does not know: treated as reserved.
    Unknown,
}

impl RegionKind {
    /// The name the kernel logs for this kind.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Reserved => "reserved",
            Self::AcpiReclaimable => "acpi-reclaimable",
            Self::AcpiNvs => "acpi-nvs",
            Self::Defective => "defective",
            Self::Unknown => "unknown",
        }
    }
}

/// One entry of the memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: u64,
    pub end: u64,
    pub kind: RegionKind,
}

/// A range the kernel keeps out of the frame allocator, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    pub start: u64,
    pub end: u64,
    pub what: &'static str,
}

/// At most this many disjoint usable ranges are tracked.
pub const MAX_RANGES: usize = 128;

/// A set of disjoint, sorted, frame-aligned ranges.
pub type Ranges = heapless::Vec<Range<u64>, MAX_RANGES>;

/// Why a memory map could not be turned into usable ranges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemMapError {
    /// The map is split into more than [`MAX_RANGES`] pieces.
    TooManyRanges,
}

/// The frame-aligned parts of the available regions, merged, before any
/// reservation is taken out.
pub fn available(regions: &[Region]) -> Result<Ranges, MemMapError> {
    let mut out = Ranges::new();
    for r in regions.iter().filter(|r| r.kind == RegionKind::Available) {
        let (start, end) = (align_up(r.start, PAGE_SIZE), align_down(r.end, PAGE_SIZE));
        if start < end {
            push(&mut out, start..end)?;
        }
    }
    merge(&mut out);
    Ok(out)
}

/// Non-available regions that overlap available ones: firmware contradicting
/// itself. The caller reserves them (other kinds win over "available").
pub fn conflicts(regions: &[Region]) -> impl Iterator<Item = Range<u64>> + '_ {
    regions
        .iter()
        .filter(|r| r.kind != RegionKind::Available)
        .filter(move |r| {
            regions.iter().any(|a| a.kind == RegionKind::Available && a.start < r.end && r.start < a.end)
        })
        .map(|r| r.start..r.end)
}

/// The available memory less every reservation (each widened to whole
/// frames): what the frame allocator may hand out.
pub fn usable(regions: &[Region], reserved: &[Reservation]) -> Result<Ranges, MemMapError> {
    let mut ranges = available(regions)?;
    for res in reserved {
        let (rs, re) = (align_down(res.start, PAGE_SIZE), align_up(res.end, PAGE_SIZE));
        if rs >= re {
            continue;
        }
        let mut next = Ranges::new();
        for r in ranges.iter() {
            // What of `r` lies below the reservation, and above it.
            for piece in [r.start..rs.min(r.end), re.max(r.start)..r.end] {
                if piece.start < piece.end {
                    push(&mut next, piece)?;
                }
            }
        }
        ranges = next;
    }
    Ok(ranges)
}

/// Every region of the map, of any kind, widened to whole frames and merged:
/// what the kernel's direct map covers.
pub fn span(regions: &[Region]) -> Result<Ranges, MemMapError> {
    let mut out = Ranges::new();
    for r in regions.iter().filter(|r| r.start < r.end) {
        push(&mut out, align_down(r.start, PAGE_SIZE)..align_up(r.end, PAGE_SIZE))?;
    }
    merge(&mut out);
    Ok(out)
}

/// The number of frames in a set of frame-aligned ranges.
pub fn frames(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| (r.end - r.start) / PAGE_SIZE).sum()
}

/// Sorts ranges and merges those that overlap or touch.
fn push(ranges: &mut Ranges, r: Range<u64>) -> Result<(), MemMapError> {
    ranges.push(r).map_err(|_| MemMapError::TooManyRanges)
}

fn merge(ranges: &mut Ranges) {
    ranges.sort_unstable_by_key(|r| r.start);
    let mut out = Ranges::new();
    for r in ranges.iter() {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            // Cannot overflow: `out` never holds more entries than `ranges`.
            _ => drop(out.push(r.clone())),
        }
    }
    *ranges = out;
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/mem/memmap.rs"]
mod tests;
