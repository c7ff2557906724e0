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
            out.push(start..end).map_err(|_| MemMapError::TooManyRanges)?;
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
            if re <= r.start || r.end <= rs {
                next.push(r.clone()).map_err(|_| MemMapError::TooManyRanges)?;
                continue;
            }
            if r.start < rs {
                next.push(r.start..rs).map_err(|_| MemMapError::TooManyRanges)?;
            }
            if re < r.end {
                next.push(re..r.end).map_err(|_| MemMapError::TooManyRanges)?;
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
        out.push(align_down(r.start, PAGE_SIZE)..align_up(r.end, PAGE_SIZE))
            .map_err(|_| MemMapError::TooManyRanges)?;
    }
    merge(&mut out);
    Ok(out)
}

/// The number of frames in a set of frame-aligned ranges.
pub fn frames(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| (r.end - r.start) / PAGE_SIZE).sum()
}

/// Sorts ranges and merges those that overlap or touch.
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
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn avail(start: u64, end: u64) -> Region {
        Region { start, end, kind: RegionKind::Available }
    }

    fn res(start: u64, end: u64) -> Reservation {
        Reservation { start, end, what: "test" }
    }

    #[test]
    fn available_regions_are_aligned_inward_and_merged() {
        let map = [
            avail(0x1000, 0x9fc00),
            Region { start: 0x9fc00, end: 0xa0000, kind: RegionKind::Reserved },
            avail(0x10_0000, 0x20_0800),
            avail(0x20_0000, 0x30_0000),
            avail(0x40_0001, 0x40_1fff),
        ];
        let r = available(&map).unwrap();
        assert_eq!(r.as_slice(), &[0x1000..0x9f000, 0x10_0000..0x30_0000]);
        assert_eq!(frames(&r), 0x9e + 0x200);
    }

    #[test]
    fn reservations_are_widened_to_frames_and_cut_out() {
        let map = [avail(0, 0x100_0000)];
        let r = usable(&map, &[res(0, 0x10_0000), res(0x20_0010, 0x20_1001)]).unwrap();
        assert_eq!(r.as_slice(), &[0x10_0000..0x20_0000, 0x20_2000..0x100_0000]);
    }

    #[test]
    fn span_covers_every_kind_merged() {
        let map = [
            avail(0x10_0000, 0x1ffe_0000),
            Region { start: 0x1ffe_0000, end: 0x2000_0000, kind: RegionKind::Reserved },
            Region { start: 0xfeff_c000, end: 0xff00_0000, kind: RegionKind::Reserved },
            avail(0x800, 0x9fc00),
        ];
        let s = span(&map).unwrap();
        assert_eq!(s.as_slice(), &[0..0xa0000, 0x10_0000..0x2000_0000, 0xfeff_c000..0xff00_0000]);
    }

    #[test]
    fn conflicting_regions_are_reported() {
        let map = [
            avail(0, 0x10_0000),
            Region { start: 0xf_0000, end: 0x10_0000, kind: RegionKind::Reserved },
            Region { start: 0x20_0000, end: 0x30_0000, kind: RegionKind::AcpiNvs },
        ];
        let c: heapless::Vec<_, 4> = conflicts(&map).collect();
        assert_eq!(c.as_slice(), &[0xf_0000..0x10_0000]);
    }

    #[test]
    fn too_fragmented_maps_are_refused() {
        let map = [avail(0, 0x1000_0000)];
        let holes: std::vec::Vec<_> =
            (0..200u64).map(|i| res(i * 0x10_0000 + 0x1000, i * 0x10_0000 + 0x2000)).collect();
        assert_eq!(usable(&map, &holes), Err(MemMapError::TooManyRanges));
    }

    proptest! {
        /// Every usable frame is inside an available region and outside every
        /// reservation, and no frame that is both is left out.
        #[test]
        fn usable_is_available_minus_reserved(
            regions in prop::collection::vec((0u64..64, 1u64..16, any::<bool>()), 1..8),
            reserved in prop::collection::vec((0u64..64, 1u64..8), 0..8),
        ) {
            let frame = |x: u64| x * 0x800; // half frames: exercises alignment
            let map: std::vec::Vec<Region> = regions.iter().map(|&(s, l, a)| Region {
                start: frame(s), end: frame(s + l),
                kind: if a { RegionKind::Available } else { RegionKind::Reserved },
            }).collect();
            let res: std::vec::Vec<Reservation> =
                reserved.iter().map(|&(s, l)| res(frame(s), frame(s + l))).collect();
            let u = usable(&map, &res).unwrap();
            for f in 0..64u64 {
                let (fs, fe) = (f * PAGE_SIZE, (f + 1) * PAGE_SIZE);
                let in_avail = map.iter().any(|r| r.kind == RegionKind::Available
                    && r.start <= fs && fe <= r.end)
                    || available(&map).unwrap().iter().any(|r| r.start <= fs && fe <= r.end);
                let hit_res = res.iter().any(|r| r.start < fe && fs < r.end);
                let in_usable = u.iter().any(|r| r.start <= fs && fe <= r.end);
                prop_assert_eq!(in_usable, in_avail && !hit_res, "frame {:#x}", fs);
            }
            for w in u.windows(2) {
                prop_assert!(w[0].end <= w[1].start);
            }
        }
    }
}
