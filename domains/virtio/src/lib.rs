//! What the virtio driver domains (`blk`, `net`) share: a PCI function's
//! configuration space for `virtio-drivers` through the kernel's Device
//! verbs (`pci`), `virtio-drivers`' `Hal` on the domain's BAR mappings and
//! DMA memory (`hal`), carved by the pools of `pool` (host-tested:
//! `cargo test -p ryokan-virtio --lib`), the transport's opening and the
//! binding of queues' interrupts to a notification.

#![cfg_attr(not(test), no_std)]

pub mod hal;
pub mod pci;
pub mod pool;
pub mod transport;

use ipc::syscall::Width;
use user::{sys, CapSlot, Caps, StartInfo};
use virtio_drivers::transport::pci::bus::{DeviceFunction, PciRoot};
use virtio_drivers::transport::pci::PciTransport;

/// The transport the drivers run on: virtio-pci with the platform's DMA.
pub type Transport = transport::Platform<PciTransport>;

/// The Device capability `device:BB:DD.F` (`name`) of function
/// `device`.`function` on bus 0: its BARs and DMA memory mapped
/// (`hal::init`), memory decoding and bus mastering on (the kernel lets a
/// function given `unconfined_dma` master the bus), and its virtio-pci
/// transport (`transport::Platform`: once its driver is made, check
/// `transport::accepted`); with the Device's slot.
pub fn open(
    start: &StartInfo,
    name: &str,
    device: u8,
    function: u8,
) -> Result<(CapSlot, Transport), &'static str> {
    let dev = start.slot(name).ok_or("no device capability in the start page")?;
    let me = start.slot("self").ok_or("no self capability")?;
    hal::init(dev, me)?;
    let mut root = PciRoot::new(pci::Cam::new(dev));
    let at = DeviceFunction { bus: 0, device, function };
    sys::device_config_write(dev, 0x04, Width::Word, 0x0006).map_err(|_| "command")?;
    let transport = PciTransport::new::<hal::Dma, _>(&mut root, at).map_err(|e| {
        log::info!("virtio: virtio-pci: {e}");
        "the virtio-pci transport"
    })?;
    Ok((dev, transport::Platform::new(transport)))
}

/// virtio 1.2 §4.1.4: a virtio capability's type (`cfg_type`) and the
/// common configuration's; in it, `queue_select` and `queue_msix_vector`.
const VIRTIO_CAP_TYPE: u16 = 3;
const COMMON_CFG: u32 = 1;
const QUEUE_SELECT: u64 = 0x16;
const QUEUE_MSIX_VECTOR: u64 = 0x1a;

/// How a function's interrupts reach its driver's notification: MSI-X's
/// as bit 0, INTx's as bit 3 ([`Self::bit`]; a driver's clients may ring
/// the same notification with bit 0, and its timers use the others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupts {
    /// MSI-X entry 0, every queue's vector.
    Msix,
    /// Its INTx line (`intx:BB:DD.F`, level-triggered, masked by the
    /// kernel from each interrupt on): after each the driver reads the
    /// device's ISR status, which lowers the line, then calls [`Self::ack`].
    Intx(CapSlot),
}

impl Interrupts {
    /// The notification's bit they raise.
    pub fn bit(self) -> u64 {
        match self {
            Interrupts::Msix => 1,
            Interrupts::Intx(_) => 1 << 3,
        }
    }

    /// After the device's ISR status was read: INTx's line unmasked for
    /// the next interrupt (nothing for MSI-X).
    pub fn ack(self) -> Result<(), &'static str> {
        match self {
            Interrupts::Msix => Ok(()),
            Interrupts::Intx(line) => sys::irq_wait(line).map_err(|_| "acknowledging the INTx line"),
        }
    }
}

/// Binds MSI-X entry 0 to notification `ntfn` through the kernel
/// and points each of `queues`' interrupts at it; for a function without
/// MSI-X (the kernel says `NotSupported`), binds its INTx line `intx` (the
/// driver's `intx:BB:DD.F`, if the system file gave one) instead, the
/// virtio-pci fallback (virtio 1.2 §4.1.4.5: the ISR status then says why).
pub fn interrupts_to_notification(
    dev: CapSlot,
    ntfn: CapSlot,
    queues: &[u16],
    intx: Option<CapSlot>,
) -> Result<Interrupts, &'static str> {
    match sys::device_irq_bind(dev, 0, ntfn, 1) {
        Ok(()) => {}
        Err(ipc::Error::NotSupported) => {
            let line = intx.ok_or("the function has no MSI-X and no INTx line was given (`intx`)")?;
            let intx = Interrupts::Intx(line);
            sys::irq_bind(line, ntfn, intx.bit()).map_err(|_| "the kernel bound no INTx line")?;
            return Ok(intx);
        }
        Err(_) => return Err("the kernel bound no MSI-X entry"),
    }
    let byte = |at: u16| sys::device_config_read(dev, at, Width::Byte).unwrap_or(0) as u16;
    let mut at = byte(0x34) & 0xfc;
    let mut common = None;
    for _ in 0..48 {
        if at < 0x40 {
            break;
        }
        if byte(at) == 0x09 && u32::from(byte(at + VIRTIO_CAP_TYPE)) == COMMON_CFG {
            let offset = sys::device_config_read(dev, at + 8, Width::Dword).unwrap_or(0);
            common = Some((usize::from(byte(at + 4)), u64::from(offset)));
            break;
        }
        at = byte(at + 1) & 0xfc;
    }
    let (bar, offset) = common.ok_or("no virtio common configuration")?;
    let regs = hal::bar_va(bar).ok_or("the common configuration's BAR is not mapped")? + offset;
    for &q in queues {
        // SAFETY: the common configuration lies in BAR `bar`, mapped here
        // (uncached, by the kernel), at `offset` (the device's capability);
        // these two registers are 16 bits, 2-aligned.
        let vector = unsafe {
            core::ptr::write_volatile((regs + QUEUE_SELECT) as *mut u16, q);
            core::ptr::write_volatile((regs + QUEUE_MSIX_VECTOR) as *mut u16, 0);
            core::ptr::read_volatile((regs + QUEUE_MSIX_VECTOR) as *const u16)
        };
        if vector != 0 {
            return Err("the device took no MSI-X vector for a queue");
        }
    }
    Ok(Interrupts::Msix)
}
