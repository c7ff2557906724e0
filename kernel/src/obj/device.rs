//! A PCI function assigned to one domain, or (the root's) the whole of
//! segment 0, from which such assignments are made. Its configuration
//! space is reached only through the kernel, which keeps what would let a
//! holder reach beyond the function: the BARs and expansion ROM (their
//! placement), MSI and MSI-X, the PCIe and power-management capabilities
//! (a function-level reset or a D3 transition clears the BARs), extended
//! space, and bus mastering unless the function may do DMA.

use ipc::syscall::Width;

use super::pool::Ref;

/// PCI Local Bus 3.0 §6.2: the registers of a type 0 header that are the
/// holder's, as byte ranges: command and status, cache line size and
/// latency timer, interrupt line.
const HOLDER_HEADER: [(u16, u16); 3] = [(0x04, 0x08), (0x0c, 0x0e), (0x3c, 0x3d)];
/// The command register and its bus master enable bit (§6.2.2).
const COMMAND: u16 = 0x04;
pub const BUS_MASTER: u32 = 1 << 2;
/// The status register's "capabilities list" bit, and the list's head.
const STATUS: u16 = 0x06;
const HAS_CAPS: u32 = 1 << 4;
const CAP_HEAD: u16 = 0x34;
/// A vendor-specific capability (§6.7, ID 09h; virtio's are these), whose
/// third byte is its length.
const CAP_VENDOR: u32 = 0x09;
/// Capabilities live above the header and below extended space.
const CAPS: core::ops::Range<u16> = 0x40..0x100;
/// More capabilities than this in 192 bytes means a loop.
const MAX_CAPS: usize = 48;

/// The most vendor-specific capabilities whose bodies a holder may write.
pub const MAX_OPEN: usize = 8;

/// §6.2.5.1: the six base address registers, their low bits' meaning, and
/// the command register's decode enables (off while they are sized).
const BAR0: u16 = 0x10;
pub const BARS: usize = 6;
const BAR_IO: u32 = 1 << 0;
const BAR_64: u32 = 0b10 << 1;
const DECODE: u32 = 0b11;
/// The MSI-X capability (ID 11h, PCI 3.0 §6.8.2): its message control's
/// table size (N - 1), then the table's and the pending bits' BIR and
/// offset.
const CAP_MSIX: u32 = 0x11;
const PAGE: u64 = 4096;

/// A base address register as the firmware placed it, found when the
/// Device is made; `size` 0: none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bar {
    pub base: u64,
    pub size: u64,
    pub io: bool,
}

/// Where the function's MSI-X capability and table are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msix {
    pub cap: u16,
    pub entries: u16,
    /// (BAR, offset) of the table and of the pending bits.
    pub table: (u8, u64),
    pub pba: (u8, u64),
}

/// Sizes the BARs of a function through `read` and `write` (at an offset,
/// of a width), decoding off meanwhile (§6.2.5.1), every register put back.
pub fn size_bars(read: impl Fn(u16, Width) -> u32, mut write: impl FnMut(u16, Width, u32)) -> [Bar; BARS] {
    let command = read(COMMAND, Width::Word);
    write(COMMAND, Width::Word, command & !DECODE);
    let read = |at| read(at, Width::Dword);
    let mut bars = [Bar::default(); BARS];
    let mut i = 0;
    while i < BARS {
        let at = BAR0 + 4 * i as u16;
        let low = read(at);
        let wide = low & (BAR_IO | 0b110) == BAR_64 && i + 1 < BARS;
        let mut probe = |at: u16, v: u32| {
            write(at, Width::Dword, 0xffff_ffff);
            let mask = read(at);
            write(at, Width::Dword, v);
            mask
        };
        let mask = probe(at, low);
        let (base, size) = if low & BAR_IO != 0 {
            (u64::from(low & !0b11), u64::from(!(mask & !0b11) & 0xffff) + 1)
        } else if wide {
            let high = read(at + 4);
            let mask = u64::from(probe(at + 4, high)) << 32 | u64::from(mask);
            (u64::from(high) << 32 | u64::from(low & !0xf), (!(mask & !0xf)).wrapping_add(1))
        } else {
            (u64::from(low & !0xf), u64::from((!(mask & !0xf)).wrapping_add(1)))
        };
        // A register that keeps no bit (all zeros back) implements nothing.
        if mask != 0 && size != 0 {
            bars[i] = Bar { base, size, io: low & BAR_IO != 0 };
        }
        i += if wide { 2 } else { 1 };
    }
    write(COMMAND, Width::Word, command);
    bars
}

pub struct Device {
    /// `bus << 8 | device << 3 | function`; `None`: the whole segment.
    pub function: Option<u16>,
    pub owner: Ref,
    /// Whether its holder may turn on bus mastering.
    pub dma: bool,
    /// Byte ranges of vendor-specific capability bodies (past their ID,
    /// next pointer and length), which the holder may write.
    pub open: heapless::Vec<(u16, u16), MAX_OPEN>,
    pub bars: [Bar; BARS],
    pub msix: Option<Msix>,
    /// MSI-X entries bound: (entry, the kernel's vector, notification, bits).
    pub bound: heapless::Vec<(u16, u8, Ref, u64), MAX_BOUND>,
    /// Where its DMA reaches under the IOMMU; `None`: no IOMMU (or no DMA).
    pub space: Option<DmaSpace>,
    /// How many of its requests the IOMMU blocked (`state::faults`), and
    /// the last one's address and kind (a repeat is not logged again).
    pub faults: (u64, Option<(u64, bool, bool)>),
}

/// A function's own DMA space at the IOMMU: device addresses (IOVAs) the
/// kernel picks, from `IOVA_BASE` up with a page unmapped after each
/// mapping, so that no IOVA is a physical address of the machine's low
/// memory and a run past a buffer faults.
#[derive(Clone, Debug)]
pub struct DmaSpace {
    /// Its second-level table's root, and its domain id at the unit.
    pub root: x86_64::PhysAddr,
    pub did: u16,
    /// The next IOVA to give out.
    pub next: u64,
    /// Memory mapped: (object, IOVA, pages).
    pub maps: heapless::Vec<(Ref, u64, u64), MAX_DMA>,
}

/// The most memory objects one function may reach at once.
pub const MAX_DMA: usize = 8;
/// IOVAs from 4 GiB to 512 GiB (the reach of a unit's 3-level tables).
pub const IOVA_BASE: u64 = 1 << 32;
pub const IOVA_END: u64 = 1 << 39;

impl DmaSpace {
    /// Where `pages` more pages of memory `m` would go, if they may.
    pub fn place(&self, m: Ref, pages: u64) -> Result<u64, ipc::Error> {
        if self.maps.iter().any(|x| x.0 == m) {
            return Err(ipc::Error::AlreadyMapped);
        }
        let end = self.next.checked_add((pages + 1) * PAGE).filter(|&e| e <= IOVA_END);
        if self.maps.is_full() || end.is_none() {
            return Err(ipc::Error::OutOfObjects);
        }
        Ok(self.next)
    }
}

/// The most MSI-X entries of one function bound at once.
pub const MAX_BOUND: usize = 8;

impl Device {
    /// The root's device: every function of segment 0 (no function's
    /// configuration read: nothing open, no BARs, no MSI-X).
    pub fn segment(owner: Ref) -> Self {
        Device { function: None, ..Device::function(0, owner, false, |_| 0) }
    }

    /// Function `function`, found by `read` (a configuration byte at an
    /// offset): its capability list walked once, here, and never trusted
    /// past its bounds.
    pub fn function(function: u16, owner: Ref, dma: bool, read: impl Fn(u16) -> u32) -> Self {
        let status = read(STATUS) | read(STATUS + 1) << 8;
        let mut at = if status & HAS_CAPS != 0 { (read(CAP_HEAD) & 0xfc) as u16 } else { 0 };
        let mut caps: heapless::Vec<(u16, u32), MAX_CAPS> = heapless::Vec::new();
        while CAPS.contains(&at) && !caps.iter().any(|&(o, _)| o == at) && caps.push((at, read(at))).is_ok() {
            at = (read(at + 1) & 0xfc) as u16;
        }
        let mut open = heapless::Vec::new();
        for &(at, _) in caps.iter().filter(|&&(_, id)| id == CAP_VENDOR) {
            // A body ends where the capability says, or where the next one
            // starts if that is sooner: never over another's.
            let next = caps.iter().map(|&(o, _)| o).filter(|&o| o > at).min().unwrap_or(CAPS.end);
            let end = (at + read(at + 2) as u16).min(next);
            if at + 3 < end {
                let _ = open.push((at + 3, end));
            }
        }
        let dword = |at: u16| (0..4).rev().fold(0, |v, i| v << 8 | (read(at + i) & 0xff));
        let msix = caps.iter().find(|&&(_, id)| id == CAP_MSIX).map(|&(at, _)| {
            let place = |w: u32| ((w & 7) as u8, u64::from(w & !7));
            let entries = (dword(at) >> 16 & 0x7ff) as u16 + 1;
            Msix { cap: at, entries, table: place(dword(at + 4)), pba: place(dword(at + 8)) }
        });
        let bars = [Bar::default(); BARS];
        let (bound, faults) = (heapless::Vec::new(), (0, None));
        Device { function: Some(function), owner, dma, open, bars, msix, bound, space: None, faults }
    }
}

/// PCI 3.0 §6.8.2.3: MSI-X message control `was` with MSI-X on (its
/// function mask off) or off.
pub fn msix_control(was: u32, on: bool) -> u32 {
    const ENABLE: u32 = 1 << 15;
    const MASK_ALL: u32 = 1 << 14;
    if on {
        was & !MASK_ALL | ENABLE
    } else {
        was & !ENABLE
    }
}

impl Msix {
    /// The physical address of table entry `entry` (16 bytes: address
    /// low, high, data, vector control), if the table's BAR is in `bars`
    /// and the entry is 16-aligned (the device says where its table lies:
    /// one that is not would have an entry straddle a page).
    pub fn entry(&self, bars: &[Bar; BARS], entry: u16) -> Option<u64> {
        let bar = bars.get(usize::from(self.table.0)).filter(|b| b.size != 0 && !b.io)?;
        let at = self.table.1 + u64::from(entry) * 16;
        let pa = bar.base + at;
        (entry < self.entries && at + 16 <= bar.size && pa % 16 == 0).then_some(pa)
    }

    /// Whether page `page` (an offset into BAR `bar`) holds any of the
    /// table or its pending bits, which are the kernel's.
    pub fn covers(&self, bar: u8, page: u64) -> bool {
        let table = (self.table.0, self.table.1, u64::from(self.entries) * 16);
        let pba = (self.pba.0, self.pba.1, u64::from(self.entries).div_ceil(64) * 8);
        [table, pba].iter().any(|&(b, at, len)| b == bar && at < page + PAGE && page < at + len)
    }
}

/// The interrupt window: the I/O APIC, the MSI address range and the local
/// APICs (SDM Vol. 3A 11.11.1), which no BAR may cover.
pub const INTERRUPTS: core::ops::Range<u64> = 0xfec0_0000..0xff00_0000;

/// Why a memory BAR may not be mapped, if it may not: not whole pages, or
/// over the interrupt window (the caller checks memory the firmware names).
pub fn placement(bar: &Bar) -> Result<(), ipc::Error> {
    if bar.size == 0 || bar.io {
        return Err(ipc::Error::NotSupported);
    }
    if bar.base % PAGE != 0 || bar.size % PAGE != 0 {
        return Err(ipc::Error::Misaligned);
    }
    let end = bar.base.checked_add(bar.size).ok_or(ipc::Error::BadAddress)?;
    if bar.base < INTERRUPTS.end && INTERRUPTS.start < end {
        return Err(ipc::Error::BadAddress);
    }
    Ok(())
}

impl Device {
    /// The function, with the BARs `sizing` found.
    pub fn with_bars(mut self, bars: [Bar; BARS]) -> Self {
        self.bars = bars;
        self
    }

    /// Whether the holder may write `width` bytes at `offset`: every byte
    /// in a register that is its own.
    pub fn writable(&self, offset: u16, width: u16) -> bool {
        let mine = |b: u16| HOLDER_HEADER.iter().chain(self.open.iter()).any(|&(s, e)| (s..e).contains(&b));
        self.function.is_some() && (offset..offset + width).all(mine)
    }

    /// `value`, written at `offset` (`width` bytes), with the bus master
    /// bit cleared if it lands on the command register and the function
    /// may not do DMA.
    pub fn filtered(&self, offset: u16, width: u16, value: u32) -> u32 {
        if self.dma || !(offset..offset + width).contains(&COMMAND) {
            return value;
        }
        value & !(BUS_MASTER << (8 * (COMMAND - offset)))
    }
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/obj/device.rs"]
mod tests;
