//! The kernel's own address space and the physical frames behind it: the
//! image mapped by section (text RX, rodata R, data RW, never W+X), a direct
//! map of all physical memory the firmware describes (RW, NX), device
//! registers mapped uncached on demand, and per-CPU stacks with guard pages.

use core::ops::Range;

use spin::Mutex;
use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

use super::frames::FrameAllocator;
use super::layout::{self, KERNEL_VMA, MMIO_BASE, MMIO_SIZE, OBJECTS_BASE, PHYS_OFFSET};
use super::memmap::{self, MemMapError, Ranges, Region, Reservation};
use super::paging::{Format, MapError, MapFlags, PageSize, PageTable, Table, TableMemory};
use super::PAGE_SIZE;

static FRAMES: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);
static KSPACE: Mutex<Option<Space>> = Mutex::new(None);

struct Space {
    pt: PageTable,
    mmio_next: u64,
    /// Every region the firmware's map names, of any kind (the direct map).
    span: Ranges,
}

/// Why the kernel's memory could not be set up.
#[derive(Clone, Copy, Debug)]
pub enum SetupError {
    Map(MapError),
    MemMap(MemMapError),
    /// No usable range below 4 GiB holds the frame bitmap.
    NoRoomForBitmap,
    /// Used before `init_frames`/`build`.
    NotReady,
}

impl From<MapError> for SetupError {
    fn from(e: MapError) -> Self {
        Self::Map(e)
    }
}

impl From<MemMapError> for SetupError {
    fn from(e: MemMapError) -> Self {
        Self::MemMap(e)
    }
}

/// Where the direct map shows physical address `pa`.
pub fn phys_to_virt(pa: PhysAddr) -> VirtAddr {
    VirtAddr::new(pa.as_u64() + PHYS_OFFSET)
}

/// Page-table frames come from the frame allocator and are reached through
/// the direct map.
struct Tables<'a, 'b> {
    frames: &'a mut FrameAllocator<'b>,
    /// Table frames taken (for charging them to a domain's quota).
    taken: u64,
}

impl<'a, 'b> Tables<'a, 'b> {
    fn new(frames: &'a mut FrameAllocator<'b>) -> Self {
        Self { frames, taken: 0 }
    }
}

impl TableMemory for Tables<'_, '_> {
    fn alloc_table(&mut self) -> Option<PhysAddr> {
        // Below 4 GiB: an AP loads CR3 from 32-bit code.
        let pa = self.frames.alloc_below(1 << 32)?;
        zero_frame(pa);
        self.taken += 1;
        Some(pa)
    }

    fn free_table(&mut self, pa: PhysAddr) {
        zero_frame(pa);
        // A table frame came from this allocator: freeing it cannot fail.
        let _ = self.frames.free(pa);
    }

    fn table(&mut self, pa: PhysAddr) -> &mut [u64; 512] {
        // SAFETY: `pa` is a page-table frame this allocator handed out; the
        // direct map covers it, and the KSPACE lock serialises all access.
        unsafe { &mut *phys_to_virt(pa).as_mut_ptr::<[u64; 512]>() }
    }
}

fn zero_frame(pa: PhysAddr) {
    // SAFETY: a frame just taken from the allocator belongs to no one else,
    // and the direct map covers it.
    unsafe { core::ptr::write_bytes(phys_to_virt(pa).as_mut_ptr::<u8>(), 0, PAGE_SIZE as usize) }
}

/// Builds the frame allocator from the memory map less `reserved`. Its bitmap
/// is carved out of usable memory below 4 GiB (which the boot page tables map)
/// and added to `reserved`. Returns (free, usable) frame counts.
pub fn init_frames<const N: usize>(
    regions: &[Region],
    reserved: &mut heapless::Vec<Reservation, N>,
) -> Result<(u64, u64), SetupError> {
    let ranges = memmap::usable(regions, reserved)?;
    let words = FrameAllocator::bitmap_words(&ranges);
    let bytes = (words as u64 * 8).next_multiple_of(PAGE_SIZE);
    let spot = ranges
        .iter()
        .find(|r| r.end - r.start >= bytes && r.start + bytes <= 1 << 32)
        .map(|r| r.start)
        .ok_or(SetupError::NoRoomForBitmap)?;
    reserved
        .push(Reservation { start: spot, end: spot + bytes, what: "frame bitmap" })
        .map_err(|_| SetupError::MemMap(MemMapError::TooManyRanges))?;
    let ranges: Ranges = memmap::usable(regions, reserved)?;
    // SAFETY: `spot..spot + bytes` is usable RAM, now reserved so that no one
    // else will ever own it, and the boot page tables map it at PHYS_OFFSET.
    let bits: &'static mut [u64] =
        unsafe { core::slice::from_raw_parts_mut(phys_to_virt(PhysAddr::new(spot)).as_mut_ptr(), words) };
    let fa = FrameAllocator::new(&ranges, bits).map_err(|_| SetupError::NoRoomForBitmap)?;
    let counts = (fa.free_count(), memmap::frames(&memmap::available(regions)?));
    *FRAMES.lock() = Some(fa);
    Ok(counts)
}

/// A zeroed frame, with its direct-map address.
pub fn alloc_frame() -> Option<(PhysAddr, VirtAddr)> {
    let pa = FRAMES.lock().as_mut()?.alloc()?;
    zero_frame(pa);
    Some((pa, phys_to_virt(pa)))
}

/// Frames leaked: never freed because a CPU may still cache them (a
/// shootdown it did not answer).
static LEAKED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Gives up `n` frames (`what`) for good, loudly: a CPU that did not answer
/// a shootdown may still reach them, so they may never be reused.
pub fn leak(n: u64, what: &str) {
    let total = LEAKED.fetch_add(n, core::sync::atomic::Ordering::Relaxed) + n;
    log::error!("leaked {n} frame(s) of {what}: {total} in all");
}

/// Frames free now.
pub fn free_frames() -> u64 {
    FRAMES.lock().as_ref().map_or(0, |f| f.free_count())
}

unsafe extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_start: u8;
    static __rodata_end: u8;
    static __data_start: u8;
    static __data_end: u8;
}

fn section(start: *const u8, end: *const u8) -> Range<u64> {
    (start as u64)..(end as u64)
}

/// Builds the kernel's page tables and switches to them. `guard` is a page
/// of the image to leave unmapped (the bootstrap stack's guard).
pub fn build(regions: &[Region], guard: u64, huge_pages: bool) -> Result<(), SetupError> {
    let mut frames = FRAMES.lock();
    let mut mem = Tables::new(frames.as_mut().ok_or(SetupError::NotReady)?);
    let pt = PageTable::new(&mut mem)?;
    let text = section(&raw const __text_start, &raw const __text_end);
    let rodata = section(&raw const __rodata_start, &raw const __rodata_end);
    let data = section(&raw const __data_start, &raw const __data_end);
    // All global: every address space shares the kernel's half.
    for (range, flags) in [(text, MapFlags::EXEC), (rodata, MapFlags::empty()), (data, MapFlags::WRITE)] {
        for va in range.step_by(PAGE_SIZE as usize).filter(|&va| va != guard) {
            let pa = PhysAddr::new(va - KERNEL_VMA);
            pt.map(&mut mem, VirtAddr::new(va), pa, PageSize::Size4K, flags | MapFlags::GLOBAL)?;
        }
    }
    let largest = if huge_pages { PageSize::Size1G } else { PageSize::Size2M };
    let span = memmap::span(regions)?;
    for r in span.iter() {
        let (va, pa) = (phys_to_virt(PhysAddr::new(r.start)), PhysAddr::new(r.start));
        pt.map_range(&mut mem, va, pa, r.end - r.start, MapFlags::WRITE | MapFlags::GLOBAL, largest)?;
    }
    // Every address space shares PML4 entries 256..512: give each region
    // its top-level table now, so later kernel mappings appear everywhere.
    for va in [MMIO_BASE, OBJECTS_BASE, layout::STACKS_BASE] {
        pt.ensure_top(&mut mem, (va >> 39) as usize & 511)?;
    }
    let root = PhysFrame::from_start_address(pt.root()).map_err(|_| MapError::Misaligned)?;
    // SAFETY: the new tables map everything the kernel touches from here on:
    // its image (the code running now and its stack), the direct map (frames,
    // boot information, ACPI tables); nothing still needs the identity map.
    unsafe {
        Cr3::write(root, Cr3Flags::empty());
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
    }
    *KSPACE.lock() = Some(Space { pt, mmio_next: MMIO_BASE, span });
    Ok(())
}

/// The physical address of the kernel's PML4 (for CPUs being started).
pub fn root() -> Option<PhysAddr> {
    KSPACE.lock().as_ref().map(|s| s.pt.root())
}

fn with_space<R>(f: impl FnOnce(&mut Space, &mut Tables) -> Result<R, SetupError>) -> Result<R, SetupError> {
    let mut space = KSPACE.lock();
    let space = space.as_mut().ok_or(SetupError::NotReady)?;
    let mut frames = FRAMES.lock();
    let mut mem = Tables::new(frames.as_mut().ok_or(SetupError::NotReady)?);
    f(space, &mut mem)
}

/// Whether any of `start..end` is memory the firmware's map names (RAM,
/// the kernel's, ACPI's, reserved): no device's registers may lie there.
pub fn names_memory(start: u64, end: u64) -> bool {
    KSPACE.lock().as_ref().is_none_or(|s| s.span.iter().any(|r| r.start < end && start < r.end))
}

/// Maps device registers at `pa..pa + len` uncached; returns the address of `pa`.
pub fn map_mmio(pa: u64, len: u64) -> Result<VirtAddr, SetupError> {
    with_space(|space, mem| {
        let start = super::align_down(pa, PAGE_SIZE);
        let size = super::align_up(pa + len, PAGE_SIZE) - start;
        if space.mmio_next + size > MMIO_BASE + MMIO_SIZE {
            return Err(SetupError::Map(MapError::OutOfMemory));
        }
        let va = VirtAddr::new(space.mmio_next);
        let flags = MapFlags::WRITE | MapFlags::GLOBAL | MapFlags::UNCACHED;
        space.pt.map_range(mem, va, PhysAddr::new(start), size, flags, PageSize::Size4K)?;
        space.mmio_next += size + PAGE_SIZE; // a hole between mappings
        Ok(va + (pa - start))
    })
}

/// Backs the `pages` pages of an object window at `va` with fresh zeroed
/// frames, mapped read-write, NX, global; false, and nothing left mapped,
/// if frames run out. The window's page tables stay once made (the
/// kernel's own, a few for a whole window).
pub fn window_back(va: u64, pages: usize) -> bool {
    let backed = with_space(|space, mem| {
        let mut done = 0;
        let ok = (0..pages).all(|p| {
            let at = VirtAddr::new(va + p as u64 * PAGE_SIZE);
            let Some(pa) = mem.frames.alloc() else { return false };
            zero_frame(pa);
            let flags = MapFlags::WRITE | MapFlags::GLOBAL;
            if space.pt.map(mem, at, pa, PageSize::Size4K, flags).is_err() {
                let _ = mem.frames.free(pa);
                return false;
            }
            done += 1;
            true
        });
        for p in (0..done).filter(|_| !ok) {
            let at = VirtAddr::new(va + p as u64 * PAGE_SIZE);
            if let Ok((pa, _)) = space.pt.unmap(mem, at) {
                x86_64::instructions::tlb::flush(at);
                let _ = mem.frames.free(pa);
            }
        }
        Ok(ok)
    });
    backed.unwrap_or(false)
}

/// Unmaps the pages of an object window from `va`, one for each of
/// `frames` (which gets the frame that was there), and flushes them from
/// this CPU's TLB. Other CPUs flush before they next take the kernel lock
/// (`hw::window`); the frames are the caller's to free.
pub fn window_unmap(va: u64, frames: &mut [u64]) {
    let _ = with_space(|space, mem| {
        for (p, f) in frames.iter_mut().enumerate() {
            let at = VirtAddr::new(va + p as u64 * PAGE_SIZE);
            *f = space.pt.unmap(mem, at).map_or(0, |(pa, _)| pa.as_u64());
            x86_64::instructions::tlb::flush(at);
        }
        Ok(())
    });
}

/// Backs CPU `cpu`'s stack `n` (see [`layout::stack_slot`]) with fresh
/// frames; returns its top.
pub fn map_stack(cpu: usize, n: u64) -> Result<VirtAddr, SetupError> {
    let (bottom, size) = layout::stack_slot(cpu, n);
    with_space(|space, mem| {
        for off in (0..size).step_by(PAGE_SIZE as usize) {
            let va = VirtAddr::new(bottom + off);
            if space.pt.translate(mem, va).is_some() {
                continue; // already backed (a CPU started twice)
            }
            let pa = mem.alloc_table().ok_or(MapError::OutOfMemory)?;
            space.pt.map(mem, va, pa, PageSize::Size4K, MapFlags::WRITE | MapFlags::GLOBAL)?;
        }
        Ok(VirtAddr::new(bottom + size))
    })
}

/// Maps the page at physical `pa` at the same virtual address, read and
/// execute only: the AP start-up code runs there while it turns paging on.
pub fn map_identity_exec(pa: u64) -> Result<(), SetupError> {
    with_space(|space, mem| {
        let (va, pa) = (VirtAddr::new(pa), PhysAddr::new(pa));
        Ok(space.pt.map(mem, va, pa, PageSize::Size4K, MapFlags::EXEC)?)
    })
}

/// Removes an identity mapping made by [`map_identity_exec`]. Other CPUs
/// drop any stale translation at their next CR3 load; none uses it again.
pub fn unmap_identity(pa: u64) -> Result<(), SetupError> {
    with_space(|space, mem| {
        space.pt.unmap(mem, VirtAddr::new(pa))?;
        x86_64::instructions::tlb::flush(VirtAddr::new(pa));
        Ok(())
    })
}

/// The PML4 entries of the kernel half, shared by every address space.
const KERNEL_HALF: Range<usize> = 256..512;

/// A new address space: an empty lower half and the kernel's upper half.
/// Returns it and the frames its tables took.
pub fn uspace_new() -> Result<(PageTable, u64), SetupError> {
    with_space(|space, mem| {
        let pt = PageTable::new(mem)?;
        pt.share(mem, &space.pt, KERNEL_HALF);
        Ok((pt, mem.taken))
    })
}

/// Runs `f` on the page-table memory; None before `init_frames`.
fn with_tables<R>(f: impl FnOnce(&mut Tables) -> R) -> Option<R> {
    let mut frames = FRAMES.lock();
    Some(f(&mut Tables::new(frames.as_mut()?)))
}

/// Maps one user page; returns the table frames it took.
pub fn uspace_map<F: Format>(
    pt: &Table<F>,
    va: VirtAddr,
    pa: PhysAddr,
    flags: MapFlags,
) -> Result<u64, MapError> {
    let map =
        |mem: &mut Tables| pt.map(mem, va, pa, PageSize::Size4K, flags | MapFlags::USER).map(|()| mem.taken);
    with_tables(map).unwrap_or(Err(MapError::OutOfMemory))
}

/// Unmaps one user page. The caller shoots down stale translations.
pub fn uspace_unmap<F: Format>(pt: &Table<F>, va: VirtAddr) -> Result<PhysAddr, MapError> {
    with_tables(|mem| pt.unmap(mem, va).map(|(pa, _)| pa)).unwrap_or(Err(MapError::OutOfMemory))
}

/// Where a user address leads, and with what rights.
pub fn uspace_translate<F: Format>(pt: &Table<F>, va: VirtAddr) -> Option<(PhysAddr, MapFlags)> {
    with_tables(|mem| pt.translate(mem, va)).flatten()
}

/// Frees an address space's tables (not what they map); returns how many
/// frames that gave back, the PML4 included.
pub fn uspace_destroy(pt: PageTable) -> u64 {
    destroy(pt, 0..256)
}

/// A new, empty guest-physical address space (EPT). Returns it and the
/// frames it took.
pub fn gspace_new<F: Format>() -> Result<(Table<F>, u64), SetupError> {
    with_space(|_, mem| Ok((Table::<F>::new(mem)?, mem.taken)))
}

/// The table under a 4-level table's first PML4 entry (made if need be):
/// the top of a 3-level walk over the first 512 GiB.
pub fn gspace_first<F: Format>(t: &Table<F>) -> Option<PhysAddr> {
    with_tables(|mem| t.ensure_top(mem, 0).ok()).flatten()
}

/// Frees a guest-physical address space's tables; returns how many frames.
pub fn gspace_destroy<F: Format>(ept: Table<F>) -> u64 {
    destroy(ept, 0..512)
}

/// Frees the tables under PML4 entries `entries` of `t`, and its PML4;
/// returns how many frames that gave back.
fn destroy<F: Format>(t: Table<F>, entries: Range<usize>) -> u64 {
    let free = |mem: &mut Tables| {
        let n = t.free_tables(mem, entries);
        mem.free_table(t.root());
        n + 1
    };
    with_tables(free).unwrap_or(0)
}

/// `n` zeroed, physically contiguous frames.
pub fn alloc_contiguous(n: u64) -> Option<PhysAddr> {
    let pa = FRAMES.lock().as_mut()?.alloc_contiguous(n)?;
    for i in 0..n {
        zero_frame(pa + i * PAGE_SIZE);
    }
    Some(pa)
}

/// Scrubs and frees `n` frames from `pa`, which `alloc_contiguous` gave.
pub fn free_contiguous(pa: PhysAddr, n: u64) {
    let mut frames = FRAMES.lock();
    let Some(frames) = frames.as_mut() else { return };
    for i in 0..n {
        zero_frame(pa + i * PAGE_SIZE);
        // Frames this allocator handed out: freeing cannot fail.
        let _ = frames.free(pa + i * PAGE_SIZE);
    }
}
