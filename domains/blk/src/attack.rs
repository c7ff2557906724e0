//! `blk-dma`: a hostile disk driver (the DMA attack of must-show 3, #12).
//! It is given the virtio-blk function with DMA, as `blk` is, and points
//! the data buffer of one read request after another at memory outside
//! its DMA mapping: the kernel's image, and RAM where other domains'
//! frames lie. Each device address (IOVA) it was not given is no physical
//! address: the IOMMU blocks the device's write and the kernel logs the
//! fault; the device (QEMU's) answers the request done, its write
//! dropped, and is reset for the next one. Then it reads through its own IOVAs, to show
//! the device still serves, and signals `dma-witness`, which checks that
//! its memory is unchanged.
//!
//! Last it aims a read at the interrupt window, 0xFEE0_0000, where a
//! device's write is an interrupt request (VT-d spec 3.15), not memory,
//! one per dword: the sector it reads was first written (through its own
//! IOVAs) with MSI data for vectors it was not given, `COMPAT` in the
//! dwords whose address has bit 4 clear (compatibility-format requests)
//! and `REMAPPABLE` in the others (remappable-format requests, naming
//! handles 0-15, `REMAPPABLE` past them, or past the table). Under
//! interrupt remapping the first are blocked (CFI clear) and the others
//! find no entry; the kernel logs any vector that arrives unbidden.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use ryokan_virtio::{hal, pci, transport::Platform};
use user::{sys, time, Caps, StartInfo};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

user::entry!(main, heap_kib = 0);

const DEVICE: &str = "device:00:04.0";
const SECTOR: usize = 512;
/// Where the data of each hostile read is aimed, and what lies there.
const AIMS: [(u64, &str); 5] = [
    (0x0010_0000, "the kernel's image"),
    (0x0200_0000, "RAM at 32 MiB"),
    (0x0400_0000, "RAM at 64 MiB"),
    (0x0800_0000, "RAM at 128 MiB"),
    (0xfee0_0000, "the interrupt window"),
];
/// The sector the hostile reads read, and what its dwords hold: MSI data
/// for vectors the kernel gives no one (fixed, edge).
const AIMED_SECTOR: usize = 1000;
const COMPAT: u32 = 0xd8;
const REMAPPABLE: u32 = 0xd9;

/// The address the next data buffer's device address is replaced with
/// (0: none).
static AIM: AtomicU64 = AtomicU64::new(0);

/// `hal::Dma`, but for a data buffer while `AIM` is set: its device
/// address is `AIM`'s, outside the domain's DMA memory.
struct Hostile;

// SAFETY: as `hal::Dma`'s, which does all but hand out the aimed address;
// that buffer is never bounced, so never copied back.
unsafe impl Hal for Hostile {
    fn dma_alloc(pages: usize, direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        hal::Dma::dma_alloc(pages, direction)
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, vaddr: NonNull<u8>, pages: usize) -> i32 {
        // SAFETY: the caller's promise, passed on.
        unsafe { hal::Dma::dma_dealloc(paddr, vaddr, pages) }
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        // SAFETY: the caller's promise, passed on.
        unsafe { hal::Dma::mmio_phys_to_virt(paddr, size) }
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let aim = AIM.load(Ordering::Relaxed);
        if aim != 0 && buffer.len() >= SECTOR && direction == BufferDirection::DeviceToDriver {
            return aim;
        }
        // SAFETY: the caller's promise, passed on.
        unsafe { hal::Dma::share(buffer, direction) }
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        if AIMS.iter().any(|&(aim, _)| aim == paddr) {
            return; // never in the bounce area: nothing to copy back
        }
        // SAFETY: the caller's promise, passed on.
        unsafe { hal::Dma::unshare(paddr, buffer, direction) }
    }
}

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::info!("blk-dma: FAIL: {why}");
            1
        }
    }
}

/// The device, reset and set up afresh.
fn device(dev: user::CapSlot) -> Result<VirtIOBlk<Hostile, Platform<PciTransport>>, &'static str> {
    let mut root = PciRoot::new(pci::Cam::new(dev));
    let function = DeviceFunction { bus: 0, device: 4, function: 0 };
    let transport =
        PciTransport::new::<Hostile, _>(&mut root, function).map_err(|_| "the virtio-pci transport")?;
    VirtIOBlk::<Hostile, _>::new(Platform::new(transport)).map_err(|_| "virtio-blk setup")
}

fn run(start: &'static StartInfo) -> Result<(), &'static str> {
    let dev = start.slot(DEVICE).ok_or("no device:00:04.0 in the start page")?;
    let me = start.slot("self").ok_or("no self capability")?;
    let done = start.slot("notification:dma-done").ok_or("no notification:dma-done")?;
    hal::init(dev, me)?;
    sys::device_config_write(dev, 0x04, ipc::syscall::Width::Word, 0x0006).map_err(|_| "command")?;
    let mut stray = [0u8; SECTOR];
    for (i, d) in stray.chunks_mut(4).enumerate() {
        d.copy_from_slice(&if (i * 4) & 0x10 == 0 { COMPAT } else { REMAPPABLE }.to_le_bytes());
    }
    device(dev)?.write_blocks(AIMED_SECTOR, &stray).map_err(|_| "writing the aimed sector")?;
    for (aim, what) in AIMS {
        let mut blk = device(dev)?;
        let (mut req, mut resp, mut buf) = (BlkReq::default(), BlkResp::default(), [0u8; SECTOR]);
        AIM.store(aim, Ordering::Relaxed);
        // SAFETY: `req`, `buf` and `resp` outlive the request: the device
        // is reset (dropped) before they go.
        let sent = unsafe { blk.read_blocks_nb(AIMED_SECTOR, &mut req, &mut buf, &mut resp) };
        AIM.store(0, Ordering::Relaxed);
        let token = sent.map_err(|_| "the hostile read was not queued")?;
        time::delay_ms(20);
        let outcome = match blk.peek_used() {
            None => "the device never answered",
            // SAFETY: the buffers `read_blocks_nb` was given, untouched since.
            Some(_) => match unsafe { blk.complete_read_blocks(token, &req, &mut buf, &mut resp) } {
                // QEMU's device does: its write went where the IOMMU let
                // it, nowhere (the kernel's log says it was blocked).
                Ok(()) => "the device answered it done",
                Err(_) => "the device answered an I/O error",
            },
        };
        log::info!("blk-dma: a read into {aim:#x} ({what}): {outcome}");
        drop(blk);
    }
    let mut blk = device(dev)?;
    let mut buf = [0u8; SECTOR];
    blk.read_blocks(0, &mut buf).map_err(|_| "a read through its own IOVAs failed")?;
    log::info!("blk-dma: the device still serves a read through its own IOVAs");
    completion_interrupt(dev, me, &mut blk)?;
    log::info!("blk-dma: its device's completion interrupt arrived through MSI-X entry 0");
    sys::signal(done, 1).map_err(|_| "signalling dma-witness")?;
    Ok(())
}

/// Virtio 1.2 §4.1.4.3: in the common configuration, the queue selector
/// and the selected queue's MSI-X vector; §4.1.4.1: the capability of
/// type 1 says where that configuration is (BAR, offset).
const QUEUE_SELECT: u64 = 0x16;
const QUEUE_MSIX_VECTOR: u64 = 0x1a;

/// Where the device's common configuration is mapped here.
fn common_cfg(dev: user::CapSlot) -> Option<u64> {
    let read = |at: u16, width| sys::device_config_read(dev, at, width).ok();
    let mut at = read(0x34, ipc::syscall::Width::Byte)? as u16 & 0xfc;
    for _ in 0..48 {
        let byte = |o: u16| read(at + o, ipc::syscall::Width::Byte);
        if at < 0x40 {
            return None;
        }
        if byte(0)? == 0x09 && byte(3)? == 1 {
            let offset = read(at + 8, ipc::syscall::Width::Dword)?;
            return Some(hal::bar_va(byte(4)? as usize)? + u64::from(offset));
        }
        at = byte(1)? as u16 & 0xfc;
    }
    None
}

/// Binds MSI-X entry 0 to a notification of its own, has queue 0 raise it
/// and reads a sector: the completion's interrupt, a remappable-format
/// message under interrupt remapping (through the entry made for this
/// function alone), must reach the notification.
fn completion_interrupt(
    dev: user::CapSlot,
    me: user::CapSlot,
    blk: &mut VirtIOBlk<Hostile, Platform<PciTransport>>,
) -> Result<(), &'static str> {
    let common = common_cfg(dev).ok_or("no virtio common configuration mapped")?;
    let ntfn = sys::notification_create(me).map_err(|_| "creating a notification")?;
    sys::device_irq_bind(dev, 0, ntfn, 1).map_err(|_| "binding MSI-X entry 0")?;
    // SAFETY: the common configuration's two 16-bit registers, in BAR
    // memory `hal::init` mapped here uncached.
    let took = unsafe {
        core::ptr::write_volatile((common + QUEUE_SELECT) as *mut u16, 0);
        core::ptr::write_volatile((common + QUEUE_MSIX_VECTOR) as *mut u16, 0);
        core::ptr::read_volatile((common + QUEUE_MSIX_VECTOR) as *const u16)
    };
    if took != 0 {
        return Err("the device took no MSI-X vector for its queue");
    }
    blk.enable_interrupts();
    let mut buf = [0u8; SECTOR];
    blk.read_blocks(0, &mut buf).map_err(|_| "a read with interrupts failed")?;
    for _ in 0..200 {
        if sys::poll(ntfn).map_err(|_| "polling the notification")? & 1 != 0 {
            return Ok(());
        }
        time::delay_ms(1);
    }
    Err("the completion's interrupt never arrived")
}
