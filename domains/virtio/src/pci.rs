//! The function's configuration space for `virtio-drivers`, through the
//! kernel's Device verbs. The kernel keeps the BARs, so a write to one is
//! never sent: the sizing `virtio-drivers` does (all ones written, the
//! mask read back, the old value written again) is answered here from the
//! sizes the kernel gave when it mapped them (`hal::bar`).

use core::cell::Cell;

use ipc::syscall::Width;
use user::{sys, CapSlot};
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

const BAR0: u8 = 0x10;
const BARS: u8 = 6;

pub struct Cam {
    dev: CapSlot,
    /// The BAR (by number) being sized: all ones were written to it.
    sizing: Cell<Option<u8>>,
}

impl Cam {
    pub fn new(dev: CapSlot) -> Self {
        Cam { dev, sizing: Cell::new(None) }
    }

    fn read(&self, offset: u8) -> u32 {
        sys::device_config_read(self.dev, u16::from(offset), Width::Dword).unwrap_or(u32::MAX)
    }

    /// What BAR `i` reads while being sized: its size's mask, over the
    /// type bits it has (the upper half of a 64-bit BAR: the mask's).
    fn mask(&self, i: u8) -> u32 {
        let low = |j: u8| self.read(BAR0 + 4 * j);
        let wide = |j: u8| low(j) & 0b111 == 0b100;
        if i > 0 && wide(i - 1) {
            return crate::hal::bar(usize::from(i - 1)).map_or(0, |(_, size)| (!(size - 1) >> 32) as u32);
        }
        let Some((_, size)) = crate::hal::bar(usize::from(i)) else { return 0 };
        let flags = if low(i) & 1 != 0 { low(i) & 0b11 } else { low(i) & 0xf };
        !(size - 1) as u32 | flags
    }
}

fn bar_of(offset: u8) -> Option<u8> {
    (BAR0..BAR0 + 4 * BARS).contains(&offset).then(|| (offset - BAR0) / 4)
}

impl ConfigurationAccess for Cam {
    fn read_word(&self, _: DeviceFunction, offset: u8) -> u32 {
        match bar_of(offset) {
            Some(i) if self.sizing.get() == Some(i) => self.mask(i),
            _ => self.read(offset),
        }
    }

    fn write_word(&mut self, _: DeviceFunction, offset: u8, data: u32) {
        if let Some(i) = bar_of(offset) {
            self.sizing.set((data == u32::MAX).then_some(i));
            return;
        }
        // Status bits are written 0 (they clear on a 1).
        let data = if offset == 0x04 { data & 0xffff } else { data };
        if let Err(e) = sys::device_config_write(self.dev, u16::from(offset), Width::Dword, data) {
            log::info!("virtio: the kernel refused a write at {offset:#x}: {e:?}");
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        Cam { dev: self.dev, sizing: Cell::new(None) }
    }
}
