//! Host tests of `mem::paging` (not the kernel: `kernel/src/mem/paging.rs` includes them).

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

/// Page tables in host memory, at made-up physical addresses.
#[derive(Default)]
struct FakeMemory {
    tables: HashMap<u64, Box<[u64; 512]>>,
    next: u64,
}

impl TableMemory for FakeMemory {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        self.next += 0x1000;
        self.tables.insert(0x100_0000 + self.next, Box::new([0; 512]));
        Some(PhysAddr::new(0x100_0000 + self.next))
    }
    fn table(&mut self, pa: PhysAddr) -> &mut [u64; 512] {
        self.tables.get_mut(&pa.as_u64()).expect("a table this memory made")
    }
    fn free_table(&mut self, pa: PhysAddr) {
        self.tables.remove(&pa.as_u64()).expect("a table this memory made");
    }
}

const K: u64 = 0xFFFF_FFFF_8000_0000;

#[test]
fn maps_and_translates_all_sizes() {
    let mut m = FakeMemory::default();
    let pt = PageTable::new(&mut m).unwrap();
    let rx = MapFlags::EXEC | MapFlags::GLOBAL;
    pt.map(&mut m, VirtAddr::new(K), PhysAddr::new(0x20_0000), PageSize::Size4K, rx).unwrap();
    pt.map(&mut m, VirtAddr::new(K + 0x20_0000), PhysAddr::new(0x40_0000), PageSize::Size2M, MapFlags::WRITE)
        .unwrap();
    pt.map(&mut m, VirtAddr::new(0x4000_0000), PhysAddr::new(0x8000_0000), PageSize::Size1G, MapFlags::USER)
        .unwrap();
    assert_eq!(pt.translate(&mut m, VirtAddr::new(K + 0x123)), Some((PhysAddr::new(0x20_0123), rx)));
    assert_eq!(
        pt.translate(&mut m, VirtAddr::new(K + 0x21_2345)),
        Some((PhysAddr::new(0x41_2345), MapFlags::WRITE))
    );
    assert_eq!(
        pt.translate(&mut m, VirtAddr::new(0x7fff_ffff)),
        Some((PhysAddr::new(0xbfff_ffff), MapFlags::USER))
    );
    assert_eq!(pt.translate(&mut m, VirtAddr::new(K + 0x1000)), None);
    assert_eq!(pt.translate(&mut m, VirtAddr::new(0x8000_0000)), None);
}

#[test]
fn refuses_wx_misaligned_and_overlapping() {
    let mut m = FakeMemory::default();
    let pt = PageTable::new(&mut m).unwrap();
    let (va, pa) = (VirtAddr::new(0x20_0000), PhysAddr::new(0x20_0000));
    let wx = MapFlags::WRITE | MapFlags::EXEC;
    assert_eq!(pt.map(&mut m, va, pa, PageSize::Size4K, wx), Err(MapError::WritableAndExecutable));
    assert_eq!(pt.translate(&mut m, va), None, "a refused mapping leaves nothing behind");
    assert_eq!(
        pt.map(&mut m, va + 0x1000u64, pa, PageSize::Size2M, MapFlags::WRITE),
        Err(MapError::Misaligned)
    );
    pt.map(&mut m, va, pa, PageSize::Size2M, MapFlags::WRITE).unwrap();
    assert_eq!(
        pt.map(&mut m, va + 0x1000u64, pa, PageSize::Size4K, MapFlags::WRITE),
        Err(MapError::AlreadyMapped)
    );
    assert_eq!(pt.map(&mut m, va, pa, PageSize::Size2M, MapFlags::empty()), Err(MapError::AlreadyMapped));
}

#[test]
fn map_range_uses_large_pages_where_aligned() {
    let mut m = FakeMemory::default();
    let pt = PageTable::new(&mut m).unwrap();
    let len = 0x4000_0000 + 0x20_0000 + 0x3000;
    pt.map_range(
        &mut m,
        VirtAddr::new(K - 0x4000_0000),
        PhysAddr::new(0),
        len,
        MapFlags::WRITE,
        PageSize::Size1G,
    )
    .unwrap();
    let tables_used = m.tables.len();
    // PML4, PDPT, one PD and one PT: the gigabyte is one entry.
    assert_eq!(tables_used, 4);
    for off in [0u64, 0x3fff_ffff, 0x4000_0000, 0x401f_ffff, 0x4020_2fff] {
        let (pa, _) = pt.translate(&mut m, VirtAddr::new(K - 0x4000_0000 + off)).unwrap();
        assert_eq!(pa.as_u64(), off);
    }
    assert_eq!(pt.translate(&mut m, VirtAddr::new(K - 0x4000_0000 + len)), None);
}

#[test]
fn unmap_removes_the_page() {
    let mut m = FakeMemory::default();
    let pt = PageTable::new(&mut m).unwrap();
    let va = VirtAddr::new(0x8000);
    pt.map(&mut m, va, PhysAddr::new(0x8000), PageSize::Size4K, MapFlags::EXEC).unwrap();
    assert_eq!(pt.unmap(&mut m, va), Ok((PhysAddr::new(0x8000), PageSize::Size4K)));
    assert_eq!(pt.translate(&mut m, va), None);
    assert_eq!(pt.unmap(&mut m, va), Err(MapError::NotMapped));
}

#[test]
fn ept_entries_have_ept_bits() {
    let mut m = FakeMemory::default();
    let ept = EptTable::new(&mut m).unwrap();
    let gpa = VirtAddr::new(0x10_0000);
    ept.map(&mut m, gpa, PhysAddr::new(0x4000_0000), PageSize::Size4K, MapFlags::WRITE).unwrap();
    ept.map(&mut m, VirtAddr::new(0x20_0000), PhysAddr::new(0x20_0000), PageSize::Size2M, MapFlags::EXEC)
        .unwrap();
    let (pa, f) = ept.translate(&mut m, VirtAddr::new(0x10_0123)).unwrap();
    assert_eq!(pa, PhysAddr::new(0x4000_0123));
    assert!(f.contains(MapFlags::WRITE) && !f.contains(MapFlags::EXEC));
    // The raw leaf: R|W, write-back, no X; non-leaf entries R|W|X.
    let root = m.tables[&ept.root().as_u64()][0];
    assert_eq!(root & 7, 7);
    let leaf = ept.translate(&mut m, VirtAddr::new(0x20_0000)).unwrap();
    assert!(leaf.1.contains(MapFlags::EXEC) && !leaf.1.contains(MapFlags::WRITE));
    let pdpt = PhysAddr::new(root & ADDR);
    let pd = PhysAddr::new(m.tables[&pdpt.as_u64()][0] & ADDR);
    let pt = PhysAddr::new(m.tables[&pd.as_u64()][0] & ADDR);
    assert_eq!(m.tables[&pt.as_u64()][0x100] & 0x7f, 0b011_0011, "R|W, WB");
    assert_eq!(m.tables[&pd.as_u64()][1] & 0xff, 0b1011_0101, "R|X, WB, large");
    // Guest RAM is writable and executable: the guest loads its own code.
    let rwx = MapFlags::WRITE | MapFlags::EXEC;
    ept.map(&mut m, VirtAddr::new(0x1000), PhysAddr::new(0x1000), PageSize::Size4K, rwx).unwrap();
    assert_eq!(ept.translate(&mut m, VirtAddr::new(0x1000)).unwrap().1, rwx | MapFlags::USER);
    let npt = NptTable::new(&mut m).unwrap();
    npt.map(&mut m, VirtAddr::new(0x1000), PhysAddr::new(0x1000), PageSize::Size4K, rwx).unwrap();
    assert_eq!(npt.translate(&mut m, VirtAddr::new(0x1000)).unwrap().1, rwx | MapFlags::USER);
}

/// AMD-Vi's I/O page tables: each table entry says the level of the
/// table it names (the unit walks by it), a leaf says 0, read always and
/// write as asked; nothing executes, and the same walk frees them.
#[test]
fn amdvi_entries_say_their_next_level_and_permissions() {
    let mut m = FakeMemory::default();
    let io = AmdviTable::new(&mut m).unwrap();
    let iova = VirtAddr::new(0x1_0000_2000);
    io.map(&mut m, iova, PhysAddr::new(0x4000_0000), PageSize::Size4K, MapFlags::WRITE | MapFlags::USER)
        .unwrap();
    io.map(&mut m, iova + 0x1000u64, PhysAddr::new(0x5000_0000), PageSize::Size4K, MapFlags::empty())
        .unwrap();
    let (ir, iw) = (1u64 << 61, 1u64 << 62);
    let mut t = io.root();
    for (level, i) in [(4, 0), (3, 4), (2, 0)] {
        let e = m.tables[&t.as_u64()][i];
        assert_eq!(
            e & !ADDR,
            1 | (level - 1) << 9 | ir | iw,
            "the level-{level} entry names a level-{} table",
            level - 1
        );
        t = PhysAddr::new(e & ADDR);
    }
    assert_eq!(m.tables[&t.as_u64()][2], 0x4000_0000 | 1 | ir | iw, "a leaf: next level 0, read and write");
    assert_eq!(m.tables[&t.as_u64()][3], 0x5000_0000 | 1 | ir, "read only");
    assert_eq!(io.translate(&mut m, iova + 0x1008u64), Some((PhysAddr::new(0x5000_0008), MapFlags::USER)));
    assert_eq!(
        io.map(&mut m, iova, PhysAddr::new(0), PageSize::Size4K, MapFlags::WRITE | MapFlags::EXEC),
        Err(MapError::WritableAndExecutable)
    );
    assert_eq!(io.free_tables(&mut m, 0..512), 3);
}

#[test]
fn freeing_the_lower_half_returns_every_table() {
    let mut m = FakeMemory::default();
    let kernel = PageTable::new(&mut m).unwrap();
    kernel.map(&mut m, VirtAddr::new(K), PhysAddr::new(0), PageSize::Size4K, MapFlags::EXEC).unwrap();
    let user = PageTable::new(&mut m).unwrap();
    user.share(&mut m, &kernel, 256..512);
    let before = m.tables.len();
    for va in [0x1000u64, 0x40_0000, 0x7fff_ffff_f000, 0x8000_0000] {
        user.map(&mut m, VirtAddr::new(va), PhysAddr::new(0x5000), PageSize::Size4K, MapFlags::USER).unwrap();
    }
    user.map(&mut m, VirtAddr::new(0x4000_0000), PhysAddr::new(0), PageSize::Size2M, MapFlags::USER).unwrap();
    let added = (m.tables.len() - before) as u64;
    assert_eq!(user.translate(&mut m, VirtAddr::new(K)), Some((PhysAddr::new(0), MapFlags::EXEC)), "shared");
    assert_eq!(user.free_tables(&mut m, 0..256), added);
    assert_eq!(m.tables.len(), before);
    assert_eq!(user.translate(&mut m, VirtAddr::new(0x1000)), None);
    assert!(kernel.translate(&mut m, VirtAddr::new(K)).is_some(), "the kernel half is untouched");
}

proptest! {
    /// Random 4 KiB mappings translate back exactly; W+X never appears.
    #[test]
    fn random_mappings_translate_back(pages in prop::collection::btree_map(0u64..(1 << 24), (0u64..(1 << 20), 0u8..32), 1..64)) {
        let mut m = FakeMemory::default();
        let pt = PageTable::new(&mut m).unwrap();
        for (&vpn, &(pfn, f)) in &pages {
            let flags = MapFlags::from_bits_truncate(f);
            let r = pt.map(&mut m, VirtAddr::new(vpn << 12), PhysAddr::new(pfn << 12), PageSize::Size4K, flags);
            if flags.contains(MapFlags::WRITE | MapFlags::EXEC) {
                prop_assert_eq!(r, Err(MapError::WritableAndExecutable));
            } else {
                prop_assert_eq!(r, Ok(()));
            }
        }
        for (&vpn, &(pfn, f)) in &pages {
            let flags = MapFlags::from_bits_truncate(f);
            let got = pt.translate(&mut m, VirtAddr::new((vpn << 12) + 0x7ff));
            if flags.contains(MapFlags::WRITE | MapFlags::EXEC) {
                prop_assert_eq!(got, None);
            } else {
                prop_assert_eq!(got, Some((PhysAddr::new((pfn << 12) + 0x7ff), flags)));
            }
        }
    }
}
