//! Building four-level page tables over any memory that can hold tables (the
//! kernel's physical memory, or a fake on the host), in these entry formats:
//! x86-64 paging (SDM Vol. 3A 4.5; also AMD's nested paging) and Intel's
//! extended page tables (SDM Vol. 3C 29.3), and the tables of devices' DMA:
//! VT-d's second-level tables (VT-d spec 9.8) and AMD-Vi's I/O page tables
//! (AMD IOMMU spec 2.2.3). Same walk, different bits.
//!
//! The builder enforces W^X: a mapping is never both writable and executable.

use core::ops::Range;

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
    /// A non-leaf entry (its leaves decide the access); `user` for user
    /// tables; `level`, of the table it names (1 = PT), only AMD-Vi's say.
    fn table(user: bool, level: usize) -> u64;
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
    fn table(_user: bool, _level: usize) -> u64 {
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
    fn table(user: bool, _level: usize) -> u64 {
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
        EPT_R | EPT_WB | huge(size) | bits_of(flags, &[(MapFlags::WRITE, EPT_W), (MapFlags::EXEC, EPT_X)])
    }
    fn table(_user: bool, _level: usize) -> u64 {
        EPT_R | EPT_W | EPT_X
    }
    fn flags(e: u64) -> MapFlags {
        let mut f = MapFlags::USER;
        f.set(MapFlags::WRITE, e & EPT_W != 0);
        f.set(MapFlags::EXEC, e & EPT_X != 0);
        f
    }
}

/// Intel VT-d second-level entries (VT-d spec 9.8): read and write bits;
/// a device's DMA never executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vtd;

impl Format for Vtd {
    const PRESENT: u64 = EPT_R | EPT_W;
    fn leaf(flags: MapFlags, size: PageSize) -> u64 {
        Ept::leaf(flags - MapFlags::EXEC, size) & !EPT_WB
    }
    fn table(_user: bool, _level: usize) -> u64 {
        EPT_R | EPT_W
    }
    fn flags(e: u64) -> MapFlags {
        Ept::flags(e)
    }
}

/// AMD-Vi I/O page table entries (AMD IOMMU spec 2.2.3): present, a
/// table entry's next level (0 in a leaf), read and write permissions;
/// a device's DMA never executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amdvi;

const IO_R: u64 = 1 << 61;
const IO_W: u64 = 1 << 62;

impl Format for Amdvi {
    const PRESENT: u64 = P;
    fn leaf(flags: MapFlags, size: PageSize) -> u64 {
        P | IO_R | huge(size) | bits_of(flags, &[(MapFlags::WRITE, IO_W)])
    }
    fn table(_user: bool, level: usize) -> u64 {
        P | IO_R | IO_W | (level as u64 & 7) << 9
    }
    fn flags(e: u64) -> MapFlags {
        Ept::flags((e & IO_W) >> 61)
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
/// A device's DMA space (device address to host-physical, Intel VT-d).
pub type VtdTable = Table<Vtd>;
/// A device's DMA space under AMD-Vi.
pub type AmdviTable = Table<Amdvi>;

fn index(va: VirtAddr, level: usize) -> usize {
    ((va.as_u64() >> (12 + 9 * (level - 1))) & 0x1ff) as usize
}

/// The x86-64 entry bits of each flag but `EXEC` (which is NX clear).
const X86_BITS: [(MapFlags, u64); 4] =
    [(MapFlags::WRITE, RW), (MapFlags::USER, US), (MapFlags::GLOBAL, G), (MapFlags::UNCACHED, PCD | PWT)];

fn leaf_bits(flags: MapFlags, size: PageSize) -> u64 {
    P | huge(size) | bits_of(flags, &X86_BITS) | if flags.contains(MapFlags::EXEC) { 0 } else { NX }
}

/// The bits of `table` whose flags `flags` has.
fn bits_of(flags: MapFlags, table: &[(MapFlags, u64)]) -> u64 {
    table.iter().filter(|&&(f, _)| flags.contains(f)).fold(0, |e, &(_, bits)| e | bits)
}

/// PS for a leaf above level 1 (a 2 MiB or 1 GiB page).
fn huge(size: PageSize) -> u64 {
    if size == PageSize::Size4K {
        0
    } else {
        PS
    }
}

fn flags_of(e: u64) -> MapFlags {
    let mut f = MapFlags::empty();
    f.set(MapFlags::EXEC, e & NX == 0);
    for (flag, bits) in X86_BITS {
        f.set(flag, e & bits == bits);
    }
    f
}

/// Frees every table below entries `at` of the level-`level` table at
/// `table`, clearing those entries; returns how many.
fn free_in<F: Format, M: TableMemory>(mem: &mut M, table: PhysAddr, level: usize, at: Range<usize>) -> u64 {
    let mut freed = 0;
    for i in at.filter(|&i| i < 512) {
        let e = mem.table(table)[i];
        if e & F::PRESENT == 0 || e & PS != 0 || level == 1 {
            continue;
        }
        let child = PhysAddr::new(e & ADDR);
        freed += free_in::<F, _>(mem, child, level - 1, 0..512) + 1;
        mem.free_table(child);
        mem.table(table)[i] = 0;
    }
    freed
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
                mem.table(table)[i] = t.as_u64() | F::table(flags.contains(MapFlags::USER), level - 1);
                t
            } else if e & PS != 0 {
                return Err(MapError::AlreadyMapped);
            } else {
                if flags.contains(MapFlags::USER) {
                    mem.table(table)[i] |= F::table(true, level - 1);
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
    pub fn free_tables(&self, mem: &mut impl TableMemory, entries: Range<usize>) -> u64 {
        free_in::<F, _>(mem, self.root, 4, entries)
    }

    /// Makes sure PML4 entry `index` (below 512) points at a table, so that
    /// what is mapped under it later shows in every address space sharing
    /// it; that table.
    pub fn ensure_top(&self, mem: &mut impl TableMemory, index: usize) -> Result<PhysAddr, MapError> {
        let index = index.min(511);
        if mem.table(self.root)[index] & F::PRESENT == 0 {
            let t = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
            mem.table(self.root)[index] = t.as_u64() | F::table(false, 3);
        }
        Ok(PhysAddr::new(mem.table(self.root)[index] & ADDR))
    }

    /// Copies PML4 entries `entries` of `from` into this table (the shared
    /// kernel half of every address space).
    pub fn share(&self, mem: &mut impl TableMemory, from: &Table<F>, entries: Range<usize>) {
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
#[path = "../../../kernel-tests/unit/mem/paging.rs"]
mod tests;
