//! Host tests of `mem::memmap` (not the kernel: `kernel/src/mem/memmap.rs` includes them).

#![allow(clippy::single_range_in_vec_init)]
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
