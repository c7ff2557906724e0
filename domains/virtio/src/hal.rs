//! `virtio-drivers`' `Hal` on this domain's mappings: each memory BAR of
//! the function mapped here (uncached, by the kernel), and one memory
//! object for DMA whose device address the kernel gives (`DeviceDma`).
//! Queues, and buffers a driver keeps lent to its device (`buffer`: a
//! network driver's receive buffers), are carved from it for good; any
//! other buffer the driver shares is copied through a bounce area in it
//! (the driver's own buffers lie in memory the device may not reach once
//! an IOMMU confines it), while one carved by `buffer` is shared as it
//! lies. Should either run out (`crate::pool`), the domain says
//! `virtio: FAIL: out of ...` and exits 1: the `Hal` gives the driver no
//! way to fail. A service checks a request's bounce room first
//! (`bounce_room_for`) and refuses one that has none (blk's `serve.rs`),
//! so that exit is left for start-up and for a driver that shares more
//! than that check counts.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::pool::{pages, Pool};
use ipc::Rights;
use user::{sys, CapSlot};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// Where BAR `i` is mapped: `BAR_VA + i * BAR_STRIDE`.
const BAR_VA: u64 = user::layout::FREE_BASE;
const BAR_STRIDE: u64 = 1 << 30;
/// The DMA memory: queues and lent buffers below `BOUNCE`, bounce buffers above.
const DMA_VA: u64 = user::layout::FREE2_BASE;
const DMA_PAGES: u64 = 32;
const BOUNCE: u64 = 16 * 4096;

/// Each BAR's physical base and size (0: not mapped).
static BASES: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
static SIZES: [AtomicU64; 6] = [const { AtomicU64::new(0) }; 6];
/// The DMA memory's device address; the pool of queues and lent buffers
/// (never given back) and the bounce area's (all free again once nothing
/// is shared).
static DEVICE_BASE: AtomicU64 = AtomicU64::new(0);
static QUEUES: Pool = Pool::new(0, BOUNCE);
static BOUNCES: Pool = Pool::new(BOUNCE, DMA_PAGES * 4096);

/// Maps every memory BAR of `dev`'s function, and the DMA memory.
pub fn init(dev: CapSlot, me: CapSlot) -> Result<(), &'static str> {
    let reg = |i: u16| sys::device_config_read(dev, 0x10 + 4 * i, ipc::syscall::Width::Dword).unwrap_or(0);
    let mut i = 0;
    while i < 6 {
        let low = reg(i);
        let wide = low & 0b111 == 0b100;
        if low & 1 == 0 {
            if let Ok(size) = sys::device_map(dev, i as u8, BAR_VA + u64::from(i) * BAR_STRIDE) {
                let high = if wide { u64::from(reg(i + 1)) << 32 } else { 0 };
                BASES[usize::from(i)].store(high | u64::from(low & !0xf), Ordering::Relaxed);
                SIZES[usize::from(i)].store(size, Ordering::Relaxed);
            }
        }
        i += if wide { 2 } else { 1 };
    }
    let mem = sys::memory_create(me, DMA_PAGES).map_err(|_| "no DMA memory")?;
    sys::memory_map(mem, me, DMA_VA, Rights::READ | Rights::WRITE).map_err(|_| "mapping DMA memory")?;
    let (at, bytes) = sys::device_dma(dev, mem).map_err(|_| "the kernel gave no device address")?;
    log::info!("virtio: {bytes} bytes of DMA memory at device address {at:#x}");
    DEVICE_BASE.store(at, Ordering::Relaxed);
    Ok(())
}

/// BAR `i`'s physical base and size, if it is mapped.
pub fn bar(i: usize) -> Option<(u64, u64)> {
    let size = SIZES.get(i)?.load(Ordering::Relaxed);
    (size != 0).then(|| (BASES[i].load(Ordering::Relaxed), size))
}

/// Where BAR `i` is mapped here, if it is.
pub fn bar_va(i: usize) -> Option<u64> {
    bar(i).map(|_| BAR_VA + i as u64 * BAR_STRIDE)
}

/// Whether the bounce area has room for a request moving `data` bytes:
/// virtio-drivers shares its header (16 bytes), the data and its status
/// byte, each bounced in pages of its own.
pub fn bounce_room_for(data: usize) -> bool {
    pages(16) + pages(data as u64) + pages(1) <= BOUNCES.room()
}

/// Out of DMA memory, where the driver cannot be told: says so, exits 1.
fn out_of(what: &str, bytes: u64, pool: &Pool) -> ! {
    log::info!("virtio: FAIL: out of {what}: {bytes} bytes asked, {} left", pool.room());
    sys::exit(1)
}

/// `bytes` of DMA memory (page-rounded, zeroed) lent to the device for
/// the domain's life, shared as it lies (no bounce): `None` if the pool
/// of queues and lent buffers has not that much room left.
pub fn buffer(bytes: usize) -> Option<&'static mut [u8]> {
    let at = QUEUES.take(bytes as u64)?;
    let va = (DMA_VA + at) as *mut u8;
    // SAFETY: `at..at + bytes` lies in the DMA memory, mapped read-write
    // here for the domain's life, below `BOUNCE` (the pool's end); the
    // pool gives no piece twice, so this slice is the only reference.
    unsafe {
        core::ptr::write_bytes(va, 0, bytes);
        Some(core::slice::from_raw_parts_mut(va, bytes))
    }
}

/// The offset in the DMA memory of a buffer wholly among the pieces
/// `buffer` carved, if it is one.
fn lent(buffer: NonNull<[u8]>) -> Option<u64> {
    let at = (buffer.as_ptr().cast::<u8>() as u64).checked_sub(DMA_VA)?;
    (at.checked_add(buffer.len() as u64)? <= QUEUES.taken_end()).then_some(at)
}

pub struct Dma;

// SAFETY: the memory `dma_alloc` gives is this domain's, zeroed, never
// given twice, and reached by the device at the address returned (the
// kernel's `DeviceDma`); `mmio_phys_to_virt` gives the kernel's mapping
// of the BAR that holds the address; shared buffers are bounced.
unsafe impl Hal for Dma {
    fn dma_alloc(pages: usize, _: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let bytes = pages as u64 * PAGE_SIZE as u64;
        let Some(at) = QUEUES.take(bytes) else { out_of("DMA memory for queues", bytes, &QUEUES) };
        let va = (DMA_VA + at) as *mut u8;
        // SAFETY: `at..at + pages` lies in the DMA memory (below `BOUNCE`:
        // the pool's end).
        unsafe { core::ptr::write_bytes(va, 0, pages * PAGE_SIZE) };
        (DEVICE_BASE.load(Ordering::Relaxed) + at, NonNull::new(va).unwrap_or(NonNull::dangling()))
    }

    unsafe fn dma_dealloc(_: PhysAddr, _: NonNull<u8>, _: usize) -> i32 {
        0 // queues live as long as the domain
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        let pa = paddr;
        let i = (0..6).find(|&i| bar(i).is_some_and(|(b, s)| b <= pa && pa + size as u64 <= b + s));
        let Some(i) = i else { panic!("virtio: {pa:#x} is in no BAR mapped here") };
        let va = BAR_VA + i as u64 * BAR_STRIDE + (pa - BASES[i].load(Ordering::Relaxed));
        NonNull::new(va as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        if let Some(at) = lent(buffer) {
            return DEVICE_BASE.load(Ordering::Relaxed) + at;
        }
        let len = buffer.len();
        let Some(at) = BOUNCES.take(len as u64) else { out_of("bounce memory", len as u64, &BOUNCES) };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the driver's buffer is `len` bytes; the bounce area at
            // `at` is as long, in the DMA memory (the pool's end).
            unsafe {
                core::ptr::copy_nonoverlapping(buffer.as_ptr().cast::<u8>(), (DMA_VA + at) as *mut u8, len)
            };
        }
        DEVICE_BASE.load(Ordering::Relaxed) + at
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let at = paddr - DEVICE_BASE.load(Ordering::Relaxed);
        if at < BOUNCE {
            return; // lent, not bounced
        }
        if direction != BufferDirection::DriverToDevice {
            // SAFETY: as in `share`, the other way: `at` is what it gave.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    (DMA_VA + at) as *const u8,
                    buffer.as_ptr().cast::<u8>(),
                    buffer.len(),
                )
            };
        }
        BOUNCES.give_back();
    }
}
