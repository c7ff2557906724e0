//! The local APIC's xAPIC MMIO page at [`BASE`], and IA32_APIC_BASE's
//! modes: the page and the x2APIC MSRs are two views of one register
//! state ([`crate::apic`]), as on hardware.
//!
//! - The page: 4 KiB of registers 16 bytes apart, each the first 32 bits
//!   of its slot (SDM Vol. 3A 10.4.1, Table 10-1); register i is x2APIC
//!   MSR 0x800 + i. The other 12 bytes of a slot read 0 and ignore writes.
//!   Accesses of other sizes or alignments reach the bytes they cover
//!   ([`crate::bus`]; an 8-byte read of the TPR is the TPR and 0).
//! - What differs from x2APIC mode (SDM Vol. 3A 10.12.1.2): the ID in bits
//!   24–31; LDR (bits 24–31) and DFR (bits 28–31: flat 0xF or cluster 0x0)
//!   are the guest's; the ICR is two registers, the high one (0x310) holding
//!   the 8-bit destination and a write of the low one (0x300) sending;
//!   APR and RRD read 0; an EOI takes any value; ESR latches whatever is
//!   written; there is no SELF IPI. A read of a register the page lacks
//!   reads 0, a write to it is dropped, and either sets ESR bit 7
//!   ("illegal register address"); a write to a read-only one is dropped.
//! - The page is the APIC's only in xAPIC mode: in x2APIC or disabled mode
//!   it reads as all ones and ignores writes, as memory no device answers.
//! - IA32_APIC_BASE ([`transition`]): the state diagram of SDM Vol. 3A
//!   10.12.5 (Figure 10-27): xAPIC ↔ disabled, xAPIC → x2APIC, x2APIC →
//!   disabled; x2APIC → xAPIC, disabled → x2APIC and EN = 0 with EXTD = 1
//!   are #GP; so are reserved bits (0–7, 9, 36–63), a BSP flag not as it
//!   reads, and a base other than 0xFEE0_0000 (relocation is refused).

use crate::apic::{self, ApicAction, Apics, Form, APIC_BASE, BASE_BSP, BASE_ENABLE, BASE_X2APIC};
use crate::bus;

/// The page's guest-physical address and size.
pub const BASE: u64 = APIC_BASE;
pub const SIZE: u64 = 0x1000;

/// A local APIC's mode (IA32_APIC_BASE's EN and EXTD bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Disabled,
    XApic,
    X2Apic,
}

/// IA32_APIC_BASE as it reads in `mode` (on the BSP if `bsp`).
pub fn base(mode: Mode, bsp: bool) -> u64 {
    let bsp = if bsp { BASE_BSP } else { 0 };
    APIC_BASE
        | bsp
        | match mode {
            Mode::Disabled => 0,
            Mode::XApic => BASE_ENABLE,
            Mode::X2Apic => BASE_ENABLE | BASE_X2APIC,
        }
}

/// The mode a WRMSR of `value` to IA32_APIC_BASE takes an APIC in mode
/// `from` to, or None for #GP.
pub fn transition(from: Mode, value: u64, bsp: bool) -> Option<Mode> {
    // Everything but EN and EXTD must be as it reads: the base (no
    // relocation), the BSP flag, and the reserved bits clear.
    if value & !(BASE_ENABLE | BASE_X2APIC) != base(Mode::Disabled, bsp) {
        return None;
    }
    let to = match (value & BASE_ENABLE != 0, value & BASE_X2APIC != 0) {
        (false, false) => Mode::Disabled,
        (true, false) => Mode::XApic,
        (true, true) => Mode::X2Apic,
        (false, true) => return None, // the invalid state
    };
    match (from, to) {
        _ if from == to => Some(to),
        (Mode::XApic, _) | (Mode::X2Apic, Mode::Disabled) | (Mode::Disabled, Mode::XApic) => Some(to),
        _ => None,
    }
}

/// The x2APIC MSR number of the register at `offset` of the page, if the
/// offset is a register's first dword.
fn register_at(offset: u64) -> Option<u32> {
    (offset & 0xF == 0 && offset < SIZE).then(|| 0x800 + (offset >> 4) as u32)
}

impl Apics {
    /// A read of `size` bytes at `offset` in vCPU `v`'s xAPIC page.
    pub fn mmio_read(&mut self, v: usize, offset: u64, size: u8) -> u64 {
        if self.mode(v) != Some(Mode::XApic) {
            return bus::read(offset, size, |_| u32::MAX);
        }
        let mut illegal = false;
        let value = bus::read(offset, size, |at| match register_at(at) {
            Some(reg) => self.register(v, reg, Form::XApic).map_or_else(
                || {
                    illegal = true;
                    0
                },
                |r| r as u32,
            ),
            None => 0,
        });
        if illegal {
            self.error(v, apic::ESR_ILLEGAL_REGISTER);
        }
        value
    }

    /// A write of `size` bytes of `value` at `offset` in vCPU `v`'s xAPIC
    /// page: what it asks of the VMM.
    pub fn mmio_write(&mut self, v: usize, offset: u64, size: u8, value: u64) -> ApicAction {
        if self.mode(v) != Some(Mode::XApic) {
            return ApicAction::None;
        }
        let mut action = ApicAction::None;
        for p in bus::pieces(offset, size) {
            let Some(reg) = register_at(p.at) else { continue };
            let old = self.register(v, reg, Form::XApic);
            let new = bus::merge(old.unwrap_or(0) as u32, p, value);
            match self.set_register(v, reg, u64::from(new), Form::XApic) {
                Some(a) => action = a,
                None if old.is_none() => self.error(v, apic::ESR_ILLEGAL_REGISTER),
                None => {} // read-only
            }
        }
        action
    }
}

#[cfg(test)]
mod tests;
