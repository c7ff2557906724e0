//! A guest's virtio device as a modern virtio-pci function (virtio 1.2
//! §4.1; no legacy interface): its configuration space with the virtio
//! and MSI-X capabilities, BAR 0 (memory) with the common configuration
//! ([`common`]), the ISR, the device configuration and the MSI-X table and
//! PBA ([`crate::msix`]), and BAR 1 (I/O) with the queues' notify
//! registers.
//!
//! Why this transport (the design left it open between virtio-mmio and
//! virtio-pci): Debian's kernel finds virtio-pci behind a PCI host bridge
//! in the DSDT with no command line (virtio-mmio in ACPI needs its
//! `LNRO0005` devices), MSI-X vectors map one to one onto VirqLines, and
//! the notify structure may be in an I/O BAR (§4.1.4.4; Linux's
//! `vp_modern_probe` takes I/O or memory BARs for every capability, and
//! QEMU's `modern-pio-notify` does the same), so a kick is a port OUT,
//! which the kernel's doorbells turn into a notification with no decoding
//! and no VMM exit. Notify register of queue `q`: BAR 1 + 2·`q`
//! (`queue_notify_off` = `q`, multiplier 2); a 16-bit write of any value
//! kicks (Linux writes the queue's index).
//!
//! The function has no INTx pin: only MSI-X (Linux's virtio-pci tries it
//! first). Configuration space: the type-0 header ([`crate::pci::header`])
//! and at [`CAPS`] the capability list, read-only but for MSI-X's message
//! control.

pub mod common;

use crate::msix::{Message, Msix, MAX_VECTORS};
use crate::pci::header::{BarKind, Header, CAPS_START};
use crate::virtio_blk::{Disk, CONFIG_LEN, PCI_DEVICE, QUEUE_SIZE};
pub use common::{Event, Refused};
use vq::GuestMemory;

pub const VENDOR: u16 = 0x1af4;
/// BAR 0's size and the structures in it.
pub const BAR0_SIZE: u32 = 0x4000;
pub const COMMON_AT: u64 = 0x0000;
pub const ISR_AT: u64 = 0x1000;
pub const DEVICE_AT: u64 = 0x2000;
pub const MSIX_TABLE_AT: u64 = 0x3000;
pub const MSIX_PBA_AT: u64 = 0x3800;
/// BAR 1's size: the notify registers of up to 8 queues.
pub const BAR1_SIZE: u32 = 0x10;
/// `notify_off_multiplier`.
pub const NOTIFY_MULTIPLIER: u32 = 2;
/// The capability list: MSI-X at 0x40, then common, ISR, device, notify.
pub const CAPS: usize = 0x50;
const MSIX_CAP: u8 = 0x11;
const VENDOR_CAP: u8 = 0x09;
/// ISR bits (§4.1.4.5).
const ISR_QUEUE: u8 = 1;
const ISR_CONFIG: u8 = 2;

/// The capability list's bytes (from [`CAPS_START`]); MSI-X's message
/// control (bytes 2–3) is filled in when read.
fn caps() -> [u8; CAPS] {
    let mut c = [0u8; CAPS];
    let mut put = |at: usize, bytes: &[u8]| c[at..at + bytes.len()].copy_from_slice(bytes);
    put(0x00, &[MSIX_CAP, 0x4C, 0, 0]);
    put(0x04, &(MSIX_TABLE_AT as u32).to_le_bytes()); // BIR 0
    put(0x08, &(MSIX_PBA_AT as u32).to_le_bytes());
    // struct virtio_pci_cap: vndr, next, len, cfg_type, bar, id, pad, offset, length.
    let vendor = |next: u8, len: u8, cfg: u8, bar: u8, offset: u64, length: usize| {
        let mut v = [0u8; 16];
        v[..6].copy_from_slice(&[VENDOR_CAP, next, len, cfg, bar, 0]);
        v[8..12].copy_from_slice(&(offset as u32).to_le_bytes());
        v[12..].copy_from_slice(&(length as u32).to_le_bytes());
        v
    };
    put(0x0C, &vendor(0x5C, 16, 1, 0, COMMON_AT, common::LEN));
    put(0x1C, &vendor(0x6C, 16, 3, 0, ISR_AT, 4));
    put(0x2C, &vendor(0x7C, 16, 4, 0, DEVICE_AT, CONFIG_LEN));
    put(0x3C, &vendor(0, 20, 2, 1, 0, BAR1_SIZE as usize));
    put(0x4C, &NOTIFY_MULTIPLIER.to_le_bytes());
    c
}

/// What an access did that the VMM acts on: an event of the transport,
/// and the interrupts to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effect {
    pub event: Option<Event>,
    pub irqs: heapless::Vec<Message, MAX_VECTORS>,
}

/// One virtio-pci function.
#[derive(Clone, Debug)]
pub struct VirtioPci {
    pub header: Header,
    common: Common,
    msix: Msix,
    isr: u8,
    device: [u8; CONFIG_LEN],
    caps: [u8; CAPS],
}

use common::Common;

impl VirtioPci {
    /// The virtio-blk function of `disk`: one queue, two MSI-X vectors
    /// (configuration and queue).
    pub fn blk(disk: Disk) -> Self {
        let bars = [
            BarKind::Mem32(BAR0_SIZE),
            BarKind::Io(BAR1_SIZE),
            BarKind::Unused,
            BarKind::Unused,
            BarKind::Unused,
            BarKind::Unused,
        ];
        // Class 01/00/00 (SCSI storage, as virtio-blk functions show), revision 1 (§4.1.2.1).
        let mut header = Header::new(VENDOR, PCI_DEVICE, 0x0100_0001, bars, true);
        header.subsystem = (VENDOR, 0x0002);
        let msix = Msix::new(2);
        VirtioPci {
            header,
            common: Common::new(disk.features(), 1, QUEUE_SIZE, msix.vectors() as u16),
            caps: caps(),
            msix,
            isr: 0,
            device: disk.config(),
        }
    }

    pub fn common(&self) -> &Common {
        &self.common
    }

    /// Dword `offset & !3` of the configuration space.
    pub fn config_read(&self, offset: u8) -> u32 {
        let at = offset & !3;
        if at < CAPS_START {
            return self.header.read(at);
        }
        let i = usize::from(at - CAPS_START);
        let Some(b) = self.caps.get(i..i + 4) else {
            return 0;
        };
        let mut v = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if at == CAPS_START {
            v |= u32::from(self.msix.control()) << 16;
        }
        v
    }

    /// The guest wrote dword `offset & !3` of the configuration space.
    pub fn config_write(&mut self, offset: u8, value: u32) -> Effect {
        let at = offset & !3;
        let mut e = Effect::default();
        if at < CAPS_START {
            self.header.write(at, value);
        } else if at == CAPS_START {
            e.irqs = self.msix.set_control((value >> 16) as u16);
        }
        e
    }

    /// A read of BAR 0. Reading the ISR clears it (§4.1.4.5).
    pub fn bar0_read(&mut self, offset: u64, size: u8) -> u64 {
        let in_ = |at: u64, len: u64| offset.wrapping_sub(at) < len;
        if in_(COMMON_AT, common::LEN as u64) {
            self.common.read(offset - COMMON_AT, size)
        } else if in_(ISR_AT, 4) {
            core::mem::take(&mut self.isr).into()
        } else if in_(DEVICE_AT, CONFIG_LEN as u64) {
            let o = offset - DEVICE_AT;
            (0..u64::from(size.min(8))).fold(0, |v, i| {
                v | u64::from(self.device.get((o + i) as usize).copied().unwrap_or(0)) << (8 * i)
            })
        } else if in_(MSIX_TABLE_AT, self.msix.table_bytes()) {
            self.dwords(offset - MSIX_TABLE_AT, size, |m, o| m.read_table(o))
        } else if in_(MSIX_PBA_AT, 8) {
            self.dwords(offset - MSIX_PBA_AT, size, |m, o| m.read_pba(o))
        } else {
            0
        }
    }

    fn dwords(&self, offset: u64, size: u8, f: impl Fn(&Msix, u64) -> u32) -> u64 {
        crate::bus::read(offset, size, |o| f(&self.msix, o))
    }

    /// A write to BAR 0 (`ram`: the guest's RAM, which queues must lie in).
    pub fn bar0_write(&mut self, offset: u64, size: u8, value: u64, ram: &impl GuestMemory) -> Effect {
        let mut e = Effect::default();
        if offset.wrapping_sub(COMMON_AT) < common::LEN as u64 {
            e.event = self.common.write(offset - COMMON_AT, size, value, ram);
            match e.event {
                Some(Event::QueueRefused { .. }) => {
                    if let Some(m) = self.config_interrupt() {
                        let _ = e.irqs.push(m); // the first
                    }
                }
                Some(Event::Reset) => self.isr = 0,
                _ => {}
            }
        } else if offset.wrapping_sub(MSIX_TABLE_AT) < self.msix.table_bytes() {
            for p in crate::bus::pieces(offset - MSIX_TABLE_AT, size) {
                let old = self.msix.read_table(p.at);
                if let Some(m) = self.msix.write_table(p.at, crate::bus::merge(old, p, value)) {
                    let _ = e.irqs.push(m); // at most two pieces
                }
            }
        }
        // The ISR, the device configuration and the PBA are read-only.
        e
    }

    /// A write to BAR 1: the queue it kicks, if it is one the driver
    /// enabled and the device is live.
    pub fn notify(&self, offset: u64, size: u8) -> Option<u16> {
        let q = u16::try_from(offset / u64::from(NOTIFY_MULTIPLIER)).ok()?;
        let live = self.common.status() & common::status::DRIVER_OK != 0;
        let enabled = self.common.queue(q).is_some_and(|r| r.enabled);
        (size == 2 && offset % 2 == 0 && live && enabled).then_some(q)
    }

    /// The device used buffers of queue `q`: the interrupt to send, if the
    /// guest's vector for it is live (else it is pending).
    pub fn queue_interrupt(&mut self, q: u16) -> Option<Message> {
        self.isr |= ISR_QUEUE;
        let vector = self.common.queue(q)?.vector;
        self.msix.signal(vector)
    }

    fn config_interrupt(&mut self) -> Option<Message> {
        self.isr |= ISR_CONFIG;
        self.msix.signal(self.common.config_vector())
    }

    /// The device cannot go on (a queue broke, §2.1.2): DEVICE_NEEDS_RESET
    /// and the configuration interrupt to send.
    pub fn needs_reset(&mut self) -> Option<Message> {
        self.common.needs_reset();
        self.config_interrupt()
    }
}

#[cfg(test)]
mod tests;
