//! Building four-level page tables over any memory that can hold tables (the
//! kernel's physical memory, or a fake on the host), in two entry formats:
//! x86-64 paging (SDM Vol. 3A 4.5; also AMD's nested paging) and Intel's
//! extended page tables (SDM Vol. 3C 29.3). Same walk, different bits.
//!
//! The builder enforces W^X: a mapping is never both writable and executable.

use bitflags::bitflags;
use x86_64::{PhysAddr, VirtAddr};

bitflags! {
    /// What a mapping allows. Absent `EXEC`, the page is no-execute.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct MapFlags: u8 {
        const WRITE = 1 << 0;
        const EXEC = 1 << 1;
        const USER = 1 << 2;
        const GLOBAL = 1 << 3;
        /// Strong uncacheable (PCD|PWT with the default PAT): for device registers.
        const UNCACHED = 1 << 4;
    }
}

/// The page sizes of four-level paging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    Size4K,
    Size2M,
    Size1G,
}

impl PageSize {
    /// Bytes in a page of this size.
    pub const fn bytes(self) -> u64 {
        match self {
            Self::Size4K => 1 << 12,
            Self::Size2M => 1 << 21,
            Self::Size1G => 1 << 30,
        }
    }

    /// The level of the table whose entry maps a page of this size (1 = PT).
    const fn level(self) -> usize {
        match self {
            Self::Size4K => 1,
            Self::Size2M => 2,
            Self::Size1G => 3,
        }
    }
}

/// Why a mapping was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// An address or length is not aligned to the page size.
    Misaligned,
    /// Writable and executable at once.
    WritableAndExecutable,
    /// Something is mapped there already.
    AlreadyMapped,
    /// Nothing is mapped there.
    NotMapped,
    /// No frame for a page table.
    OutOfMemory,
}

/// Memory that page tables live in.
pub trait TableMemory {
    /// A zeroed frame for a new table.
    fn alloc_table(&mut self) -> Option<PhysAddr>;
    /// The table at `pa`, which this memory handed out.
    fn table(&mut self, pa: PhysAddr) -> &mut [u64; 512];
    /// Takes back a table frame that `alloc_table` handed out.
    fn free_table(&mut self, pa: PhysAddr);
}

const P: u64 = 1 << 0;
const RW: u64 = 1 << 1;
const US: u64 = 1 << 2;
const PWT: u64 = 1 << 3;
const PCD: u64 = 1 << 4;
const PS: u64 = 1 << 7;
const G: u64 = 1 << 8;
const NX: u64 = 1 << 63;
const ADDR: u64 = 0x000F_FFFF_FFFF_F000;

/// The bits of one entry format.
pub trait Format: Copy {
    /// An entry is present if any of these bits is set.
    const PRESENT: u64;
    /// Whether a page may be writable and executable at once: never in the
    /// kernel's or a domain's tables; in a guest's (its RAM holds the code
    /// it loads), where the guest's own page tables apply W^X if it wants.
    const WRITE_AND_EXEC: bool = false;
    /// A leaf mapping a page of `size` with `flags`.
    fn leaf(flags: MapFlags, size: PageSize) -> u64;
    /// A non-leaf entry (its leaves decide the access); `user` for user tables.
    fn table(user: bool) -> u64;
    /// The rights a leaf grants.
    fn flags(e: u64) -> MapFlags;
}

/// x86-64 paging entries (and AMD-V nested paging, which uses them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X86;

/// Intel EPT entries: read, write, execute bits; write-back memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ept;

/// AMD nested page tables: x86-64 entries, every level user-accessible
/// (AMD APM Vol. 2 15.25.5), guest RAM writable and executable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Npt;

impl Format for Npt {
    const PRESENT: u64 = P;
    const WRITE_AND_EXEC: bool = true;
    fn leaf(flags: MapFlags, size: PageSize) -> u64 {
        leaf_bits(flags | MapFlags::USER, size)
    }
    fn table(_user: bool) -> u64 {
        P | RW | US
    }
    fn flags(e: u64) -> MapFlags {
        flags_of(e)
    }
}

impl Format for X86 {
    const PRESENT: u64 = P;
    fn leaf(flags: MapFlags, size: PageSize) -> u64 {
        leaf_bits(flags, size)
    }
    fn table(user: bool) -> u64 {
        P | RW | if user { US } else { 0 }
    }
    fn flags(e: u64) -> MapFlags {
        flags_of(e)
    }
}

const EPT_R: u64 = 1 << 0;
const EPT_W: u64 = 1 << 1;
const EPT_X: u64 = 1 << 2;
const EPT_WB: u64 = 6 << 3;

impl Format for Ept {
    const PRESENT: u64 = EPT_R | EPT_W | EPT_X;
    const WRITE_AND_EXEC: bool = true;
    fn leaf(flags: MapFlags, size: PageSize) -> u64 {
        let mut e = EPT_R | EPT_WB;
        if flags.contains(MapFlags::WRITE) {
            e |= EPT_W;
        }
        if flags.contains(MapFlags::EXEC) {
            e |= EPT_X;
        }
        if size != PageSize::Size4K {
            e |= PS;
        }
        e
    }
    fn table(_user: bool) -> u64 {
        EPT_R | EPT_W | EPT_X
    }
    fn flags(e: u64) -> MapFlags {
        let mut f = MapFlags::USER;
        f.set(MapFlags::WRITE, e & EPT_W != 0);
        f.set(MapFlags::EXEC, e & EPT_X != 0);
        f
    }
}

/// A four-level table of format `F`, named by the frame of its top level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table<F: Format> {
    root: PhysAddr,
    format: core::marker::PhantomData<F>,
}

/// x86-64 page tables.
pub type PageTable = Table<X86>;
/// Extended page tables (guest-physical to host-physical, Intel).
pub type EptTable = Table<Ept>;
/// Nested page tables (guest-physical to host-physical, AMD).
pub type NptTable = Table<Npt>;

fn index(va: VirtAddr, level: usize) -> usize {
    ((va.as_u64() >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

fn leaf_bits(flags: MapFlags, size: PageSize) -> u64 {
    let mut e = P;
    if flags.contains(MapFlags::WRITE) {
        e |= RW;
    }
    if !flags.contains(MapFlags::EXEC) {
        e |= NX;
    }
    if flags.contains(MapFlags::USER) {
        e |= US;
    }
    if flags.contains(MapFlags::GLOBAL) {
        e |= G;
    }
    if flags.contains(MapFlags::UNCACHED) {
        e |= PCD | PWT;
    }
    if size != PageSize::Size4K {
        e |= PS;
    }
    e
}

fn flags_of(e: u64) -> MapFlags {
    let mut f = MapFlags::empty();
    f.set(MapFlags::WRITE, e & RW != 0);
    f.set(MapFlags::EXEC, e & NX == 0);
    f.set(MapFlags::USER, e & US != 0);
    f.set(MapFlags::GLOBAL, e & G != 0);
    f.set(MapFlags::UNCACHED, e & PCD != 0);
    f
}

impl<F: Format> Table<F> {
    /// A new, empty address space.
    pub fn new(mem: &mut impl TableMemory) -> Result<Self, MapError> {
        Ok(Self::from_root(mem.alloc_table().ok_or(MapError::OutOfMemory)?))
    }

    /// The table whose PML4 is at `root` (e.g. the one in CR3).
    pub const fn from_root(root: PhysAddr) -> Self {
        Self { root, format: core::marker::PhantomData }
    }

    /// The physical address of the PML4, for CR3.
    pub const fn root(&self) -> PhysAddr {
        self.root
    }

    /// Maps one page of `size` at `va` to `pa`.
    pub fn map(
        &self,
        mem: &mut impl TableMemory,
        va: VirtAddr,
        pa: PhysAddr,
        size: PageSize,
        flags: MapFlags,
    ) -> Result<(), MapError> {
        if flags.contains(MapFlags::WRITE | MapFlags::EXEC) && !F::WRITE_AND_EXEC {
            return Err(MapError::WritableAndExecutable);
        }
        if va.as_u64() % size.bytes() != 0 || pa.as_u64() % size.bytes() != 0 {
            return Err(MapError::Misaligned);
        }
        let mut table = self.root;
        for level in (size.level() + 1..=4).rev() {
            let i = index(va, level);
            let e = mem.table(table)[i];
            table = if e & F::PRESENT == 0 {
                let t = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
                mem.table(table)[i] = t.as_u64() | F::table(flags.contains(MapFlags::USER));
                t
            } else if e & PS != 0 {
                return Err(MapError::AlreadyMapped);
            } else {
                if flags.contains(MapFlags::USER) {
                    mem.table(table)[i] |= F::table(true);
                }
                PhysAddr::new(e & ADDR)
            };
        }
        let slot = &mut mem.table(table)[index(va, size.level())];
        if *slot & F::PRESENT != 0 {
            return Err(MapError::AlreadyMapped);
        }
        *slot = pa.as_u64() | F::leaf(flags, size);
        Ok(())
    }

    /// Maps `len` bytes at `va` to `pa` with the largest pages that fit the
    /// alignment, up to `max`.
    pub fn map_range(
        &self,
        mem: &mut impl TableMemory,
        va: VirtAddr,
        pa: PhysAddr,
        len: u64,
        flags: MapFlags,
        max: PageSize,
    ) -> Result<(), MapError> {
        if len % PageSize::Size4K.bytes() != 0 {
            return Err(MapError::Misaligned);
        }
        let mut off = 0;
        while off < len {
            let size = [PageSize::Size1G, PageSize::Size2M, PageSize::Size4K]
                .into_iter()
                .filter(|s| s.bytes() <= max.bytes())
                .find(|s| {
                    (va.as_u64() + off) % s.bytes() == 0
                        && (pa.as_u64() + off) % s.bytes() == 0
                        && len - off >= s.bytes()
                })
                .unwrap_or(PageSize::Size4K);
            self.map(mem, va + off, pa + off, size, flags)?;
            off += size.bytes();
        }
        Ok(())
    }

    /// Removes the mapping of the page at `va`; returns where it pointed.
    /// The caller flushes the TLB.
    pub fn unmap(&self, mem: &mut impl TableMemory, va: VirtAddr) -> Result<(PhysAddr, PageSize), MapError> {
        let (table, i, size) = self.walk(mem, va).ok_or(MapError::NotMapped)?;
        let e = mem.table(table)[i];
        if va.as_u64() % size.bytes() != 0 {
            return Err(MapError::Misaligned);
        }
        mem.table(table)[i] = 0;
        Ok((PhysAddr::new(e & ADDR & !(size.bytes() - 1)), size))
    }

    /// Where `va` leads, and with what rights.
    pub fn translate(&self, mem: &mut impl TableMemory, va: VirtAddr) -> Option<(PhysAddr, MapFlags)> {
        let (table, i, size) = self.walk(mem, va)?;
        let e = mem.table(table)[i];
        let base = e & ADDR & !(size.bytes() - 1);
        Some((PhysAddr::new(base + (va.as_u64() & (size.bytes() - 1))), F::flags(e)))
    }

    /// Frees every table below PML4 entries `entries` (their leaves are not
    /// the table's to free), clearing those entries. Returns how many.
    pub fn free_tables(&self, mem: &mut impl TableMemory, entries: core::ops::Range<usize>) -> u64 {
        fn walk<F: Format>(mem: &mut impl TableMemory, table: PhysAddr, level: usize) -> u64 {
            let mut freed = 0;
            for i in 0..512 {
                let e = mem.table(table)[i];
                if e & F::PRESENT == 0 || e & PS != 0 || level == 1 {
                    continue;
                }
                let child = PhysAddr::new(e & ADDR);
                freed += walk::<F>(mem, child, level - 1) + 1;
                mem.free_table(child);
            }
            freed
        }
        let mut freed = 0;
        for i in entries.filter(|&i| i < 512) {
            let e = mem.table(self.root)[i];
            if e & F::PRESENT != 0 {
                let child = PhysAddr::new(e & ADDR);
                freed += walk::<F>(mem, child, 3) + 1;
                mem.free_table(child);
                mem.table(self.root)[i] = 0;
            }
        }
        freed
    }

    /// Makes sure PML4 entry `index` points at a table, so that what is
    /// mapped under it later shows in every address space sharing it.
    pub fn ensure_top(&self, mem: &mut impl TableMemory, index: usize) -> Result<(), MapError> {
        if index < 512 && mem.table(self.root)[index] & F::PRESENT == 0 {
            let t = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
            mem.table(self.root)[index] = t.as_u64() | F::table(false);
        }
        Ok(())
    }

    /// Copies PML4 entries `entries` of `from` into this table (the shared
    /// kernel half of every address space).
    pub fn share(&self, mem: &mut impl TableMemory, from: &Table<F>, entries: core::ops::Range<usize>) {
        for i in entries.filter(|&i| i < 512) {
            let e = mem.table(from.root)[i];
            mem.table(self.root)[i] = e;
        }
    }

    /// The table, index and page size of the present leaf entry mapping `va`.
    fn walk(&self, mem: &mut impl TableMemory, va: VirtAddr) -> Option<(PhysAddr, usize, PageSize)> {
        let mut table = self.root;
        for level in (1..=4).rev() {
            let i = index(va, level);
            let e = mem.table(table)[i];
            if e & F::PRESENT == 0 {
                return None;
            }
            let size = match level {
                1 => Some(PageSize::Size4K),
                2 if e & PS != 0 => Some(PageSize::Size2M),
                3 if e & PS != 0 => Some(PageSize::Size1G),
                _ => None,
            };
            if let Some(size) = size {
                return Some((table, i, size));
            }
            table = PhysAddr::new(e & ADDR);
        }
        None
    }
}

#[cfg(test)]
mod tests {
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
        pt.map(
            &mut m,
            VirtAddr::new(K + 0x20_0000),
            PhysAddr::new(0x40_0000),
            PageSize::Size2M,
            MapFlags::WRITE,
        )
        .unwrap();
        pt.map(
            &mut m,
            VirtAddr::new(0x4000_0000),
            PhysAddr::new(0x8000_0000),
            PageSize::Size1G,
            MapFlags::USER,
        )
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

    #[test]
    fn freeing_the_lower_half_returns_every_table() {
        let mut m = FakeMemory::default();
        let kernel = PageTable::new(&mut m).unwrap();
        kernel.map(&mut m, VirtAddr::new(K), PhysAddr::new(0), PageSize::Size4K, MapFlags::EXEC).unwrap();
        let user = PageTable::new(&mut m).unwrap();
        user.share(&mut m, &kernel, 256..512);
        let before = m.tables.len();
        for va in [0x1000u64, 0x40_0000, 0x7fff_ffff_f000, 0x8000_0000] {
            user.map(&mut m, VirtAddr::new(va), PhysAddr::new(0x5000), PageSize::Size4K, MapFlags::USER)
                .unwrap();
        }
        user.map(&mut m, VirtAddr::new(0x4000_0000), PhysAddr::new(0), PageSize::Size2M, MapFlags::USER)
            .unwrap();
        let added = (m.tables.len() - before) as u64;
        assert_eq!(
            user.translate(&mut m, VirtAddr::new(K)),
            Some((PhysAddr::new(0), MapFlags::EXEC)),
            "shared"
        );
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
}
