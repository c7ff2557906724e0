//! From a vCPU's state (`ipc::vstate::State`, what `VcpuStateRead` gives)
//! to what [`crate::mmio::decode`] needs of it ([`cpu`]), and back: the
//! checked register write that completes a load ([`completion`]).
//!
//! The paging mode is the CPU's own rule (SDM Vol. 3A 4.1.1): paging off
//! without CR0.PG (or CR0.PE), 4-level with EFER.LMA, else PAE with
//! CR4.PAE, else 32-bit (4 MiB pages with CR4.PSE). The code size is CS's
//! (L in IA-32e mode, else D), 16 in real mode. Segment bases are used as
//! the CPU uses them: in 64-bit code only FS's and GS's.

use ipc::vstate::{seg, Paging as Mode, State, Write};

use crate::mmio::{Access, Cpu, GuestMemory, Op, Paging, Refused};

/// CR4.PSE: 4 MiB pages under 32-bit paging.
const CR4_PSE: u64 = 1 << 4;

/// What decoding needs of the guest's `state`.
pub fn cpu(state: &State) -> Cpu {
    let paging = match state.paging() {
        Mode::None => Paging::Off,
        Mode::Bits32 => Paging::Bits32 { cr3: state.cr3, pse: state.cr4 & CR4_PSE != 0 },
        Mode::Pae => Paging::Pae { cr3: state.cr3 },
        Mode::Level4 => Paging::Long { cr3: state.cr3 },
    };
    let bitness = u32::from(state.code_size()) * 8;
    let s = &state.segments;
    let bases = if bitness == 64 {
        [0, 0, 0, 0, s[seg::FS].base, s[seg::GS].base]
    } else {
        [s[seg::ES].base, s[seg::CS].base, s[seg::SS].base, s[seg::DS].base, s[seg::FS].base, s[seg::GS].base]
    };
    Cpu { regs: state.gprs, rip: state.rip, bases, bitness, paging }
}

/// An MMIO access decoded from the guest's instruction, with what
/// completing it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub access: Access,
    /// The general registers as read at the exit.
    pub regs: [u64; 16],
    /// Where the guest goes on: past the instruction, wrapped to its code
    /// size (IP in 16-bit code, EIP in 32-bit).
    pub next_rip: u64,
}

/// Decodes the access at the guest's rip in `state` that faulted at `gpa`.
pub fn decode(mem: &impl GuestMemory, state: &State, gpa: u64) -> Result<Decoded, Refused> {
    let c = cpu(state);
    let access = crate::mmio::decode(mem, &c, gpa)?;
    let next = c.rip.wrapping_add(u64::from(access.len));
    let next_rip = match c.bitness {
        16 => next & 0xFFFF,
        32 => next & 0xFFFF_FFFF,
        _ => next,
    };
    Ok(Decoded { access, regs: state.gprs, next_rip })
}

/// The register write that completes `access` with `value` (a load's
/// device answer), made from the registers as read: the register's index
/// and its new value; None for a store, which changes no register. (Two
/// words, not a [`Write`]: it travels in every `Step`, whose size each
/// exit pays for.)
pub fn completion(access: &Access, regs: &[u64; 16], value: u64) -> Option<(u8, u64)> {
    let Op::Read { to, .. } = access.op else { return None };
    let mut after = *regs;
    access.complete(&mut after, value);
    let i = to.index & 15;
    Some((i, after[usize::from(i)]))
}

/// The `VcpuStateWrite` of a [`completion`].
pub fn write_of((i, value): (u8, u64)) -> Write {
    Write::none().gpr(usize::from(i & 15), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmio::Gpr;
    use ipc::vstate::{Segment, CR0_PE, CR0_PG, CR4_PAE, EFER_LMA};

    fn state(cr0: u64, cr4: u64, efer: u64, cs_attrib: u16) -> State {
        let mut s = State { cr0, cr4, efer, cr3: 0x5000, ..State::default() };
        s.segments[seg::CS] = Segment { attrib: cs_attrib, base: 0x100, ..Segment::default() };
        s.segments[seg::FS].base = 0xf5;
        s.segments[seg::DS].base = 0xd5;
        s
    }

    #[test]
    fn each_paging_mode_and_code_size() {
        let (pe, pg) = (CR0_PE, CR0_PE | CR0_PG);
        let real = cpu(&state(0, 0, 0, 0));
        assert_eq!((real.paging, real.bitness, real.bases[3]), (Paging::Off, 16, 0xd5));
        let flat = cpu(&state(pe, 0, 0, Segment::DB));
        assert_eq!((flat.paging, flat.bitness), (Paging::Off, 32));
        let b32 = cpu(&state(pg, CR4_PSE, 0, Segment::DB));
        assert_eq!(b32.paging, Paging::Bits32 { cr3: 0x5000, pse: true });
        let pae = cpu(&state(pg, CR4_PAE, 0, Segment::DB));
        assert_eq!(pae.paging, Paging::Pae { cr3: 0x5000 });
        let long = cpu(&state(pg, CR4_PAE, EFER_LMA, Segment::LONG));
        assert_eq!((long.paging, long.bitness), (Paging::Long { cr3: 0x5000 }, 64));
        assert_eq!(long.bases, [0, 0, 0, 0, 0xf5, 0], "64-bit code: FS and GS bases only");
        let compat = cpu(&state(pg, CR4_PAE, EFER_LMA, Segment::DB));
        assert_eq!((compat.bitness, compat.bases[1]), (32, 0x100), "compatibility mode");
    }

    #[test]
    fn a_load_completes_into_its_register_a_store_into_none() {
        let mut regs = [0u64; 16];
        regs[9] = 0xFFFF_FFFF_FFFF_FFFF;
        let load = Access {
            gpa: 0xfee0_0030,
            size: 4,
            op: Op::Read { to: Gpr { index: 9, size: 4, high: false }, sign: false },
            len: 7,
        };
        // A 32-bit destination clears the top half, as the CPU does.
        assert_eq!(completion(&load, &regs, 0x5_0014), Some((9, 0x5_0014)));
        assert_eq!(write_of((9, 0x5_0014)), Write::none().gpr(9, 0x5_0014));
        let byte = Access { op: Op::Read { to: Gpr { index: 0, size: 1, high: true }, sign: false }, ..load };
        regs[0] = 0x1234_5678;
        assert_eq!(completion(&byte, &regs, 0xAB), Some((0, 0x1234_AB78)), "AH");
        let store = Access { op: Op::Write { value: 1 }, ..load };
        assert_eq!(completion(&store, &regs, 0), None);
    }
}
