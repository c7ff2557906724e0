//! The I/O APIC at [`BASE`]: 24 interrupt lines routed to the local APICs
//! through a redirection table (Intel 82093AA datasheet, version 0x11).
//!
//! - MMIO: IOREGSEL at +0x00 selects a register, IOWIN at +0x10 reads or
//!   writes it; every other offset of the page reads 0 and ignores writes.
//!   Accesses of other sizes or alignments reach the bytes they cover
//!   ([`crate::bus`]).
//! - Registers: 0x00 ID (bits 24–27 writable), 0x01 version (0x11, the
//!   highest entry 23 in bits 16–23), 0x02 arbitration (the ID, as the
//!   82093AA loads it), 0x10 + 2n / 0x11 + 2n entry n's low and high
//!   dwords; others read 0. An entry: vector (0–7), delivery mode (8–10),
//!   destination mode (11, logical), delivery status (12, read-only, always
//!   0: a delivery is handed over at once), polarity (13), remote IRR (14,
//!   read-only), trigger mode (15, level), mask (16), destination (56–63).
//!   Entries start masked.
//! - Lines: [`IoApic::raise`] and [`IoApic::lower`] are a device asserting
//!   and withdrawing its request. The polarity bit is the guest's to set
//!   (the ACPI tables say which each line has) and is kept, but does not
//!   invert a line: a device model says "asserted", not a wire level.
//! - Edge-triggered: a rising edge on an unmasked line delivers once; an
//!   edge on a masked line is lost (82093AA: "not delivered or held
//!   pending"). Level-triggered (fixed and lowest-priority modes only; the
//!   others are edge whatever bit 15 says): an asserted, unmasked line
//!   delivers and sets remote IRR, which holds further deliveries until an
//!   EOI of the entry's vector ([`IoApic::eoi`], the local APIC's EOI
//!   broadcast); if the line is still asserted then, it delivers again.
//!   Unmasking an asserted level line with remote IRR clear delivers.
//!
//! A [`Delivery`] names its destination as the entry does (8-bit physical
//! APIC ID or logical mask); the local APIC model resolves it to vCPUs.

use heapless::Vec;

use crate::bus;

/// The I/O APIC's guest-physical address and the size of its page.
pub const BASE: u64 = 0xFEC0_0000;
pub const SIZE: u64 = 0x1000;
/// How many interrupt lines (redirection entries) it has.
pub const LINES: usize = 24;

const IOREGSEL: u64 = 0x00;
const IOWIN: u64 = 0x10;
const REG_ID: u8 = 0x00;
const REG_VERSION: u8 = 0x01;
const REG_ARBITRATION: u8 = 0x02;
const REG_TABLE: u8 = 0x10;
/// 82093AA: version 0x11, entries 0..=23.
const VERSION: u32 = 0x11 | ((LINES as u32 - 1) << 16);

const VECTOR: u64 = 0xFF;
const MODE_SHIFT: u32 = 8;
const LOGICAL: u64 = 1 << 11;
const REMOTE_IRR: u64 = 1 << 14;
const LEVEL: u64 = 1 << 15;
const MASKED: u64 = 1 << 16;
/// The bits of an entry's low dword that a guest writes: all but delivery
/// status (12) and remote IRR (14), below bit 17.
const LOW_WRITABLE: u32 = 0x0001_AFFF;
const DEST_SHIFT: u32 = 56;

/// How an interrupt is delivered (the entry's bits 8–10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Fixed,
    LowestPriority,
    Smi,
    Nmi,
    Init,
    ExtInt,
    /// Modes 3 and 6, reserved: delivered as named, for the VMM to refuse.
    Reserved(u8),
}

impl Mode {
    fn from_bits(bits: u64) -> Self {
        match bits & 7 {
            0 => Mode::Fixed,
            1 => Mode::LowestPriority,
            2 => Mode::Smi,
            4 => Mode::Nmi,
            5 => Mode::Init,
            7 => Mode::ExtInt,
            m => Mode::Reserved(m as u8),
        }
    }
}

/// An interrupt for the local APICs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub line: u8,
    pub vector: u8,
    pub mode: Mode,
    /// Logical destination mode: `dest` is a logical mask, not an APIC ID.
    pub logical: bool,
    pub dest: u8,
    /// Level-triggered: the local APIC must broadcast its EOI
    /// ([`IoApic::eoi`]) before this line delivers again.
    pub level: bool,
}

#[derive(Clone, Debug)]
pub struct IoApic {
    select: u32,
    id: u32,
    table: [u64; LINES],
    /// Which lines are asserted.
    asserted: u32,
}

impl Default for IoApic {
    fn default() -> Self {
        Self::new()
    }
}

impl IoApic {
    pub fn new() -> Self {
        IoApic { select: 0, id: 0, table: [MASKED; LINES], asserted: 0 }
    }

    /// A read of `size` bytes at `offset` in the page.
    pub fn read(&self, offset: u64, size: u8) -> u64 {
        bus::read(offset, size, |at| self.dword(at))
    }

    /// A write of `size` bytes of `value` at `offset` in the page: the
    /// interrupt it lets through, if any (unmasking an asserted level line).
    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Option<Delivery> {
        let mut out = None;
        for p in bus::pieces(offset, size) {
            let new = bus::merge(self.dword(p.at), p, value);
            match p.at {
                IOREGSEL => self.select = new & 0xFF,
                IOWIN => out = self.write_register(self.select as u8, new).or(out),
                _ => {}
            }
        }
        out
    }

    fn dword(&self, at: u64) -> u32 {
        match at {
            IOREGSEL => self.select,
            IOWIN => self.register(self.select as u8),
            _ => 0,
        }
    }

    /// The register IOREGSEL selects, as IOWIN reads it.
    fn register(&self, index: u8) -> u32 {
        match index {
            REG_ID | REG_ARBITRATION => self.id,
            REG_VERSION => VERSION,
            i => match entry(i) {
                Some((n, false)) => self.table[n] as u32,
                Some((n, true)) => (self.table[n] >> 32) as u32,
                None => 0,
            },
        }
    }

    fn write_register(&mut self, index: u8, value: u32) -> Option<Delivery> {
        match (index, entry(index)) {
            (REG_ID, _) => self.id = value & 0x0F00_0000,
            (_, Some((n, true))) => {
                self.table[n] = (self.table[n] & 0xFFFF_FFFF) | (u64::from(value & 0xFF00_0000) << 32);
            }
            (_, Some((n, false))) => {
                let old = self.table[n];
                // The high dword and the read-only bits stay as they were.
                let mut e = (old & !u64::from(LOW_WRITABLE)) | u64::from(value & LOW_WRITABLE);
                if !level(e) {
                    e &= !REMOTE_IRR;
                }
                self.table[n] = e;
                return self.service(n);
            }
            _ => {} // version, arbitration and reserved registers are read-only
        }
        None
    }

    /// Line `line` is asserted by its device: the interrupt to deliver, if
    /// any. Lines past [`LINES`] do not exist and deliver nothing.
    pub fn raise(&mut self, line: usize) -> Option<Delivery> {
        if line >= LINES {
            return None;
        }
        let bit = 1 << line;
        let was = self.asserted & bit != 0;
        self.asserted |= bit;
        let e = self.table[line];
        if level(e) {
            self.service(line)
        } else if !was && e & MASKED == 0 {
            Some(delivery(line, e))
        } else {
            None
        }
    }

    /// Line `line` is no longer asserted. Nothing is delivered by a line
    /// going down.
    pub fn lower(&mut self, line: usize) {
        if line < LINES {
            self.asserted &= !(1 << line);
        }
    }

    /// The local APICs' EOI of `vector`: clears remote IRR of every level
    /// entry with that vector; those whose line is still asserted deliver
    /// again.
    pub fn eoi(&mut self, vector: u8) -> Vec<Delivery, LINES> {
        let mut out = Vec::new();
        for n in 0..LINES {
            let e = self.table[n];
            if e & REMOTE_IRR != 0 && e & VECTOR == u64::from(vector) {
                self.table[n] &= !REMOTE_IRR;
                if let Some(d) = self.service(n) {
                    // Never full: at most one delivery per line.
                    let _ = out.push(d);
                }
            }
        }
        out
    }

    /// A level-triggered line that is asserted, unmasked and not waiting
    /// for its EOI delivers (and then waits).
    fn service(&mut self, n: usize) -> Option<Delivery> {
        let e = self.table[n];
        if !level(e) || self.asserted & (1 << n) == 0 || e & (MASKED | REMOTE_IRR) != 0 {
            return None;
        }
        self.table[n] |= REMOTE_IRR;
        Some(delivery(n, e))
    }
}

/// Which entry (and which half: true for the high dword) register `index` is.
fn entry(index: u8) -> Option<(usize, bool)> {
    let i = usize::from(index.checked_sub(REG_TABLE)?);
    (i < 2 * LINES).then_some((i / 2, i % 2 == 1))
}

/// Whether an entry is level-triggered: only fixed and lowest-priority
/// deliveries can be.
fn level(e: u64) -> bool {
    e & LEVEL != 0 && matches!(Mode::from_bits(e >> MODE_SHIFT), Mode::Fixed | Mode::LowestPriority)
}

fn delivery(line: usize, e: u64) -> Delivery {
    Delivery {
        line: line as u8,
        vector: (e & VECTOR) as u8,
        mode: Mode::from_bits(e >> MODE_SHIFT),
        logical: e & LOGICAL != 0,
        dest: (e >> DEST_SHIFT) as u8,
        level: level(e),
    }
}

#[cfg(test)]
mod tests;
