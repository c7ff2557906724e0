//! A PCI function's type-0 configuration header (PCI Local Bus 3.0 §6.1,
//! offsets 0x00–0x3F): its IDs and class, the command register, and BARs
//! the guest may size and place; the capabilities after it are the
//! function's own ([`crate::virtio_pci`]).
//!
//! A BAR holds what the guest wrote less the bits its size makes
//! read-only, so writing all ones reads back the size (§6.2.5.1); whether
//! it is decoded there is the bus's to judge ([`crate::pci::Bus`]).

/// What a BAR maps, and its size (a power of two: 16 bytes or more for
/// memory, 4 or more for I/O).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    Unused,
    /// 32-bit, non-prefetchable memory.
    Mem32(u32),
    Io(u32),
}

/// Command register bits (§6.2.2).
pub const COMMAND_IO: u16 = 1;
pub const COMMAND_MEMORY: u16 = 2;
const COMMAND_WRITABLE: u16 = 0x0007 | 0x0040 | 0x0100 | 0x0400; // I/O, memory, master, parity, SERR, INTx off
/// Status: a capability list at 0x34 (§6.2.3).
const STATUS_CAP_LIST: u16 = 1 << 4;
/// Where the capability list starts.
pub const CAPS_START: u8 = 0x40;

/// The header of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub vendor: u16,
    pub device: u16,
    /// Class code, subclass, programming interface (bits 23:0 of 0x08
    /// shifted up by 8) and revision.
    pub class_revision: u32,
    pub subsystem: (u16, u16),
    pub bars: [BarKind; 6],
    /// The addresses the guest wrote, with the read-only bits cleared.
    base: [u32; 6],
    command: u16,
    interrupt_line: u8,
    /// Whether the function has capabilities at [`CAPS_START`].
    caps: bool,
}

impl Header {
    pub fn new(vendor: u16, device: u16, class_revision: u32, bars: [BarKind; 6], caps: bool) -> Self {
        Header {
            vendor,
            device,
            class_revision,
            subsystem: (vendor, 0),
            bars,
            base: [0; 6],
            command: 0,
            interrupt_line: 0,
            caps,
        }
    }

    pub fn command(&self) -> u16 {
        self.command
    }

    /// Where BAR `i` is and how large, if it is one.
    pub fn bar(&self, i: usize) -> Option<(BarKind, u64)> {
        let kind = *self.bars.get(i)?;
        (kind != BarKind::Unused).then(|| (kind, u64::from(self.base[i])))
    }

    /// Places BAR `i` as firmware would before the guest runs.
    pub fn place(&mut self, i: usize, at: u32) {
        self.write(0x10 + 4 * i as u8, at);
    }

    /// Dword `offset & !3` of the header (offsets below 0x40).
    pub fn read(&self, offset: u8) -> u32 {
        match offset & !3 {
            0x00 => u32::from(self.device) << 16 | u32::from(self.vendor),
            0x04 => u32::from(if self.caps { STATUS_CAP_LIST } else { 0 }) << 16 | u32::from(self.command),
            0x08 => self.class_revision,
            0x0C => 0, // cache line, latency, header type 0 (one function), no BIST
            o @ 0x10..=0x24 => {
                let i = usize::from((o - 0x10) / 4);
                match self.bars[i] {
                    BarKind::Unused => 0,
                    BarKind::Mem32(_) => self.base[i],
                    BarKind::Io(_) => self.base[i] | 1,
                }
            }
            0x2C => u32::from(self.subsystem.1) << 16 | u32::from(self.subsystem.0),
            0x34 if self.caps => u32::from(CAPS_START),
            // Interrupt pin 0: the function has no INTx line (MSI-X only).
            0x3C => u32::from(self.interrupt_line),
            _ => 0,
        }
    }

    /// The guest wrote dword `offset & !3` (after merging its bytes into
    /// what [`Header::read`] gave).
    pub fn write(&mut self, offset: u8, value: u32) {
        match offset & !3 {
            0x04 => self.command = value as u16 & COMMAND_WRITABLE,
            o @ 0x10..=0x24 => {
                let i = usize::from((o - 0x10) / 4);
                self.base[i] = match self.bars[i] {
                    BarKind::Unused => 0,
                    BarKind::Mem32(size) => value & !(size - 1),
                    // I/O space is 64 KiB: the upper half is hardwired 0.
                    BarKind::Io(size) => value & !(size - 1) & 0xFFFF,
                };
            }
            0x3C => self.interrupt_line = value as u8,
            _ => {} // read-only (IDs, class, status, ROM: none)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        let bars = [
            BarKind::Mem32(0x4000),
            BarKind::Io(0x10),
            BarKind::Unused,
            BarKind::Unused,
            BarKind::Unused,
            BarKind::Unused,
        ];
        Header::new(0x1af4, 0x1042, 0x0100_0001, bars, true)
    }

    #[test]
    fn bars_size_and_place() {
        let mut h = header();
        h.write(0x10, u32::MAX);
        assert_eq!(h.read(0x10), 0xFFFF_C000, "the size, memory type 0");
        h.write(0x14, u32::MAX);
        assert_eq!(h.read(0x14), 0xFFF1, "the size, I/O, 16-bit decode");
        h.write(0x18, u32::MAX);
        assert_eq!(h.read(0x18), 0, "unused");
        h.place(0, 0xC000_1234);
        assert_eq!(h.bar(0), Some((BarKind::Mem32(0x4000), 0xC000_0000)));
        h.place(1, 0xC012);
        assert_eq!(h.bar(1), Some((BarKind::Io(0x10), 0xC010)));
        assert_eq!(h.bar(2), None);
        assert_eq!(h.bar(7), None);
    }

    #[test]
    fn read_only_fields_stay() {
        let mut h = header();
        for o in (0..0x40).step_by(4) {
            if !matches!(o, 0x04 | 0x10 | 0x14 | 0x3C) {
                let before = h.read(o);
                h.write(o, 0xDEAD_BEEF);
                assert_eq!(h.read(o), before, "{o:#x}");
            }
        }
        assert_eq!(h.read(0), 0x1042_1af4);
        assert_eq!(h.read(0x34), 0x40);
        h.write(4, 0xFFFF_FFFF);
        assert_eq!(h.read(4), 0x0010_0547, "writable command bits, status is read-only");
        h.write(0x3C, 0xFFFF_FF0B);
        assert_eq!(h.read(0x3C), 0x0B, "line writable, pin 0");
    }
}
