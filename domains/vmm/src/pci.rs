//! The guest's PCI bus 0: a host bridge at 00:00.0 and one virtio-blk
//! function per disk from 00:01.0 on ([`crate::virtio_pci`]), reached
//! through configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2: the
//! address at port 0xCF8, the data at 0xCFC–0xCFF), which Linux probes
//! and uses with no MCFG table; the DSDT declares the bridge
//! ([`crate::acpi`]).
//!
//! BARs: the VMM places them as firmware would ([`Bus::new`]: function
//! `n`'s BAR 0 at [`MMIO_WINDOW`]`.start + n·16 KiB`, BAR 1 at
//! [`IO_WINDOW`]`.start + n·16`) and turns on I/O and memory decoding;
//! the guest may size and move them. A BAR decodes only while its
//! decoding is on, it lies wholly in its window (the memory window lies
//! above all guest RAM, whose most is 3 GiB, and below the I/O APIC and
//! the local APICs) and it overlaps no other decoding BAR (design
//! choice: two that overlap both stop decoding, so that neither can be
//! reached through the other's address). Accesses nothing decodes read
//! all ones and are dropped, as on a PC.

pub mod header;

use core::ops::Range;

use crate::msix::Message;
use crate::virtio_blk::Disk;
use crate::virtio_pci::{Effect, VirtioPci};
use header::{BarKind, Header};
use vq::GuestMemory;

/// The configuration address and data ports.
pub const CONFIG_ADDRESS: u16 = 0xCF8;
pub const CONFIG_DATA: u16 = 0xCFC;
/// The guest-physical range BARs of memory may decode in.
pub const MMIO_WINDOW: Range<u64> = 0xC000_0000..0xFEC0_0000;
/// The I/O ports BARs of I/O may decode in.
pub const IO_WINDOW: Range<u64> = 0xC000..0x1_0000;
/// The most disks (functions 00:01.0 to 00:08.0).
pub const MAX_FUNCTIONS: usize = 8;
/// Mechanism #1's enable bit.
const ENABLE: u32 = 1 << 31;

/// Where an access to a BAR went: the function (its index, 0 for
/// 00:01.0) and the offset in its BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    pub function: usize,
    pub offset: u64,
}

#[derive(Clone, Debug)]
pub struct Bus {
    address: u32,
    bridge: Header,
    functions: heapless::Vec<VirtioPci, MAX_FUNCTIONS>,
}

impl Bus {
    /// The bus with one virtio-blk function for each of `disks` (at most
    /// [`MAX_FUNCTIONS`]; more are left off), its BARs placed.
    pub fn new(disks: &[Disk]) -> Self {
        // Vendor 0x1b36 device 0x0008: a generic PCIe host bridge (class 06/00/00).
        let unused = [BarKind::Unused; 6];
        let bridge = Header::new(0x1b36, 0x0008, 0x0600_0000, unused, false);
        let mut functions = heapless::Vec::new();
        for (n, d) in disks.iter().take(MAX_FUNCTIONS).enumerate() {
            let mut f = VirtioPci::blk(*d);
            f.header.place(0, (MMIO_WINDOW.start + n as u64 * 0x4000) as u32);
            f.header.place(1, (IO_WINDOW.start + n as u64 * 0x10) as u32);
            f.header.write(4, u32::from(header::COMMAND_IO | header::COMMAND_MEMORY));
            let _ = functions.push(f); // at most MAX_FUNCTIONS
        }
        Bus { address: 0, bridge, functions }
    }

    pub fn functions(&mut self) -> &mut [VirtioPci] {
        &mut self.functions
    }

    /// Whether `port` is one of the configuration ports.
    pub fn owns_port(port: u16) -> bool {
        (CONFIG_ADDRESS..CONFIG_DATA + 4).contains(&port)
    }

    /// The function the address register selects and the dword offset, if
    /// enabled and on bus 0, function 0 of a present device.
    fn selected(&self) -> Option<(Option<usize>, u8)> {
        let a = self.address;
        let (bus, device, function, offset) = ((a >> 16) as u8, (a >> 11) & 31, (a >> 8) & 7, a as u8 & !3);
        if a & ENABLE == 0 || bus != 0 || function != 0 {
            return None;
        }
        match device {
            0 => Some((None, offset)),
            d if (d as usize) <= self.functions.len() => Some((Some(d as usize - 1), offset)),
            _ => None,
        }
    }

    fn config_dword(&self, f: Option<usize>, offset: u8) -> u32 {
        match f {
            None => self.bridge.read(offset),
            Some(i) => self.functions.get(i).map_or(u32::MAX, |x| x.config_read(offset)),
        }
    }

    /// An IN of `size` bytes from configuration port `port`.
    pub fn port_read(&self, port: u16, size: u8) -> u32 {
        if port == CONFIG_ADDRESS && size == 4 {
            return self.address;
        }
        let Some(at) = port.checked_sub(CONFIG_DATA) else {
            return u32::MAX; // a narrow access to the address port: nothing there
        };
        let Some((f, offset)) = self.selected() else {
            return u32::MAX;
        };
        let dword = self.config_dword(f, offset);
        crate::bus::read(u64::from(at), size, |_| dword) as u32
    }

    /// An OUT of `size` bytes of `value` to configuration port `port`.
    pub fn port_write(&mut self, port: u16, size: u8, value: u32) -> Effect {
        if port == CONFIG_ADDRESS {
            if size == 4 {
                self.address = value & (ENABLE | 0x00FF_FFFC);
            }
            return Effect::default();
        }
        let (Some(at), Some((f, offset))) = (port.checked_sub(CONFIG_DATA), self.selected()) else {
            return Effect::default();
        };
        let mut dword = self.config_dword(f, offset);
        for p in crate::bus::pieces(u64::from(at), size) {
            dword = crate::bus::merge(dword, p, u64::from(value));
        }
        match f {
            None => {
                self.bridge.write(offset, dword);
                Effect::default()
            }
            Some(i) => {
                self.functions.get_mut(i).map_or_else(Effect::default, |x| x.config_write(offset, dword))
            }
        }
    }

    /// Where BAR `bar` of function `i` decodes, if it does.
    fn decodes(&self, i: usize, bar: usize) -> Option<Range<u64>> {
        let (mine, window) = self.placed(i, bar)?;
        let inside = window.start <= mine.start && mine.end <= window.end;
        let clash = (0..self.functions.len()).any(|j| {
            (0..2).any(|b| {
                (j, b) != (i, bar)
                    && self
                        .placed(j, b)
                        .is_some_and(|(o, w)| w == window && o.start < mine.end && mine.start < o.end)
            })
        });
        (inside && !clash).then_some(mine)
    }

    /// BAR `bar` of function `i` with its decoding on: its range and window.
    fn placed(&self, i: usize, bar: usize) -> Option<(Range<u64>, Range<u64>)> {
        let h = &self.functions.get(i)?.header;
        let (kind, base) = h.bar(bar)?;
        let (size, on, window) = match kind {
            BarKind::Mem32(s) => (s, header::COMMAND_MEMORY, MMIO_WINDOW),
            BarKind::Io(s) => (s, header::COMMAND_IO, IO_WINDOW),
            BarKind::Unused => return None,
        };
        (h.command() & on != 0).then(|| (base..base + u64::from(size), window))
    }

    fn find(&self, bar: usize, at: u64) -> Option<Target> {
        (0..self.functions.len()).find_map(|i| {
            let r = self.decodes(i, bar)?;
            r.contains(&at).then(|| Target { function: i, offset: at - r.start })
        })
    }

    /// The function whose BAR 0 decodes guest-physical `gpa`.
    pub fn mmio_target(&self, gpa: u64) -> Option<Target> {
        self.find(0, gpa)
    }

    /// The function whose BAR 1 (notify) decodes `port`.
    pub fn io_target(&self, port: u16) -> Option<Target> {
        self.find(1, u64::from(port))
    }

    /// A read of BAR 0 at `gpa` (all ones if nothing decodes it).
    pub fn mmio_read(&mut self, gpa: u64, size: u8) -> u64 {
        match self.mmio_target(gpa) {
            Some(t) => self.functions[t.function].bar0_read(t.offset, size),
            None => u64::MAX,
        }
    }

    /// A write to BAR 0 at `gpa`, with the function it went to.
    pub fn mmio_write(
        &mut self,
        gpa: u64,
        size: u8,
        value: u64,
        ram: &impl GuestMemory,
    ) -> (Option<usize>, Effect) {
        match self.mmio_target(gpa) {
            Some(t) => (Some(t.function), self.functions[t.function].bar0_write(t.offset, size, value, ram)),
            None => (None, Effect::default()),
        }
    }

    /// A kick: an OUT to a notify register, as (function, queue).
    pub fn notify(&self, port: u16, size: u8) -> Option<(usize, u16)> {
        let t = self.io_target(port)?;
        Some((t.function, self.functions[t.function].notify(t.offset, size)?))
    }

    /// Queue `q` of function `f` used buffers: its interrupt, if one goes.
    pub fn queue_interrupt(&mut self, f: usize, q: u16) -> Option<Message> {
        self.functions.get_mut(f)?.queue_interrupt(q)
    }
}

#[cfg(test)]
mod tests;
