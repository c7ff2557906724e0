//! Completing an MMIO access that arrived as an EPT/NPT fault: the
//! faulting instruction is fetched through the guest's own page tables
//! ([`translate`], [`fetch`]), decoded with `iced-x86`, and turned into a
//! read or write of 1, 2, 4 or 8 bytes ([`decode`]) that the VMM performs
//! on its device model before it advances RIP by the instruction's length.
//!
//! - Paging: none (real mode, or protected mode with CR0.PG clear),
//!   32-bit (4 KiB pages, and 4 MiB pages with CR4.PSE, PSE-36 high bits
//!   included), PAE (4 KiB and 2 MiB) and 4-level long mode (4 KiB, 2 MiB,
//!   1 GiB). Only the present bit and the page-size bit are looked at: the
//!   CPU already fetched the instruction and made the access, so the walk
//!   only has to find where they went; a walk that fails (the guest changed
//!   its tables meanwhile, or an entry is not in RAM) is refused. 5-level
//!   paging (LA57) is not offered to guests, so not walked.
//! - The instruction's bytes: up to 15 from its linear address, across a
//!   page boundary if it crosses one (each page translated on its own); a
//!   second page that is not mapped only ends the fetch, so an instruction
//!   that ends before it still decodes.
//! - What is emulated: exactly the forms compilers emit for device
//!   registers (Linux's `readl`/`writel`, volatile accesses):
//!   `mov r/m, reg` and `mov reg, r/m` of every width (REX, 0x66, high-byte
//!   registers), `mov` with a `moffs` address (A0–A3), `mov r/m, imm`
//!   (C6/C7), `movzx` and `movsx`/`movsxd` loads. Everything else is
//!   refused with a [`Refused`] naming why (string instructions, a LOCK
//!   prefix or XCHG, SSE/AVX and other vector forms, any other
//!   instruction), which the VMM turns into a fault for the guest.
//! - The decoded access is checked against the fault: its memory
//!   operand's linear address (from the guest's registers and segment
//!   bases) must translate to the faulting guest-physical address, and
//!   the access must not cross a page. So an instruction changed by
//!   another vCPU between the fault and the fetch is refused, not
//!   performed somewhere else.

use iced_x86::{Code, Decoder, DecoderError, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

/// Reads of guest-physical memory, as the VMM has it mapped (tests fake it).
pub trait GuestMemory {
    /// Fills `buf` from guest-physical `gpa`; false if any of it is not RAM.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool;
}

/// How the guest translates linear addresses (CR0.PG, CR4.PAE/PSE, EFER.LMA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// Linear addresses are physical.
    Off,
    /// 32-bit paging; `pse` is CR4.PSE (4 MiB pages).
    Bits32 {
        cr3: u64,
        pse: bool,
    },
    Pae {
        cr3: u64,
    },
    /// 4-level paging (IA-32e mode).
    Long {
        cr3: u64,
    },
}

/// The guest's state at the fault, as far as decoding needs it.
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    /// rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8–r15 (the encoding's order).
    pub regs: [u64; 16],
    pub rip: u64,
    /// The segment bases of ES, CS, SS, DS, FS, GS (in 64-bit mode 0 but
    /// for FS and GS, as the CPU uses them).
    pub bases: [u64; 6],
    /// The code size: 16, 32 or 64 (CS.L, CS.D).
    pub bitness: u32,
    pub paging: Paging,
}

/// A general register as an operand: its index (as in [`Cpu::regs`]) and
/// which bits of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gpr {
    pub index: u8,
    /// 1, 2, 4 or 8 bytes.
    pub size: u8,
    /// AH, CH, DH or BH: bits 8–15 of register `index` (0–3).
    pub high: bool,
}

/// What the access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Read `Access::size` bytes into `to`, zero- or sign-extended to its size.
    Read { to: Gpr, sign: bool },
    /// Write `value` (already cut to `Access::size` bytes).
    Write { value: u64 },
}

/// A decoded MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// The guest-physical address (the fault's, checked against the instruction).
    pub gpa: u64,
    /// 1, 2, 4 or 8.
    pub size: u8,
    pub op: Op,
    /// The instruction's length: how far RIP advances.
    pub len: u8,
}

/// Why an access is not emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A linear address the guest's page tables do not map (or a table
    /// entry not in RAM, or a non-canonical address).
    NotMapped { linear: u64 },
    /// The bytes at RIP are no instruction (or end before it does).
    Invalid { linear: u64 },
    /// A string instruction (MOVS, STOS, LODS, CMPS, SCAS, INS, OUTS).
    String,
    /// LOCK or XCHG: an atomic read-modify-write.
    Locked,
    /// SSE, AVX and other vector forms.
    Vector,
    /// Another instruction (named), or one whose memory operand is no plain one.
    Unsupported { mnemonic: Mnemonic },
    /// The instruction's memory operand is not the faulting address, or its
    /// access crosses into another page.
    Elsewhere { linear: u64 },
}

impl Refused {
    /// The fault the guest gets: #PF for an address its tables do not map
    /// (with that address, for CR2), #UD for bytes that are no instruction,
    /// #GP(0) for an instruction the VMM cannot complete.
    pub fn fault(&self) -> (u8, Option<u64>) {
        match *self {
            Refused::NotMapped { linear } => (14, Some(linear)),
            Refused::Invalid { .. } => (6, None),
            _ => (13, None),
        }
    }
}

const PRESENT: u64 = 1;
const PAGE_SIZE: u64 = 1 << 7;
const ADDRESS: u64 = 0x000F_FFFF_FFFF_F000;

/// The guest-physical address of `linear` under `paging`.
pub fn translate(mem: &impl GuestMemory, paging: Paging, linear: u64) -> Result<u64, Refused> {
    let missing = Refused::NotMapped { linear };
    let entry8 = |gpa: u64| -> Result<u64, Refused> {
        let mut b = [0u8; 8];
        if !mem.read(gpa, &mut b) {
            return Err(missing);
        }
        Some(u64::from_le_bytes(b)).filter(|e| e & PRESENT != 0).ok_or(missing)
    };
    match paging {
        Paging::Off => Ok(linear),
        Paging::Bits32 { cr3, pse } => {
            let linear = linear & 0xFFFF_FFFF;
            let entry4 = |gpa: u64| -> Result<u64, Refused> {
                let mut b = [0u8; 4];
                if !mem.read(gpa, &mut b) {
                    return Err(missing);
                }
                Some(u64::from(u32::from_le_bytes(b))).filter(|e| e & PRESENT != 0).ok_or(missing)
            };
            let pde = entry4((cr3 & 0xFFFF_F000) + (linear >> 22) * 4)?;
            if pse && pde & PAGE_SIZE != 0 {
                // PSE-36: PDE bits 13–20 are physical address bits 32–39.
                let base = (pde & 0xFFC0_0000) | (((pde >> 13) & 0xFF) << 32);
                return Ok(base | (linear & 0x3F_FFFF));
            }
            let pte = entry4((pde & 0xFFFF_F000) + ((linear >> 12) & 0x3FF) * 4)?;
            Ok((pte & 0xFFFF_F000) | (linear & 0xFFF))
        }
        Paging::Pae { cr3 } => {
            let linear = linear & 0xFFFF_FFFF;
            let pdpte = entry8((cr3 & 0xFFFF_FFE0) + (linear >> 30) * 8)?;
            directory(&entry8, pdpte, linear)
        }
        Paging::Long { cr3 } => {
            // Canonical: bits 63–47 all equal.
            if (linear as i64) >> 47 != 0 && (linear as i64) >> 47 != -1 {
                return Err(missing);
            }
            let pml4e = entry8((cr3 & ADDRESS) + ((linear >> 39) & 0x1FF) * 8)?;
            let pdpte = entry8((pml4e & ADDRESS) + ((linear >> 30) & 0x1FF) * 8)?;
            if pdpte & PAGE_SIZE != 0 {
                return Ok((pdpte & ADDRESS & !0x3FFF_FFFF) | (linear & 0x3FFF_FFFF));
            }
            directory(&entry8, pdpte, linear)
        }
    }
}

/// The rest of a PAE or long-mode walk, from the entry `upper` that points
/// at a page directory: a 2 MiB page there, or a table of 4 KiB pages.
fn directory(entry8: &impl Fn(u64) -> Result<u64, Refused>, upper: u64, linear: u64) -> Result<u64, Refused> {
    let pde = entry8((upper & ADDRESS) + ((linear >> 21) & 0x1FF) * 8)?;
    if pde & PAGE_SIZE != 0 {
        return Ok((pde & ADDRESS & !0x1F_FFFF) | (linear & 0x1F_FFFF));
    }
    let pte = entry8((pde & ADDRESS) + ((linear >> 12) & 0x1FF) * 8)?;
    Ok((pte & ADDRESS) | (linear & 0xFFF))
}

/// Up to 15 bytes of the instruction at linear address `linear` (as many
/// as the pages from there hold, ending at the first that is not mapped):
/// the bytes and how many were read. None if not even the first byte could.
pub fn fetch(
    mem: &impl GuestMemory,
    paging: Paging,
    linear: u64,
    wide: bool,
) -> Result<([u8; 15], usize), Refused> {
    let mut bytes = [0u8; 15];
    let mut n = 0;
    while n < bytes.len() {
        let at = linear.wrapping_add(n as u64) & if wide { u64::MAX } else { 0xFFFF_FFFF };
        let gpa = match translate(mem, paging, at) {
            Ok(gpa) => gpa,
            Err(e) if n == 0 => return Err(e),
            Err(_) => break,
        };
        let room = (0x1000 - (at & 0xFFF)) as usize;
        let take = room.min(bytes.len() - n);
        if !mem.read(gpa, &mut bytes[n..n + take]) {
            if n == 0 {
                return Err(Refused::NotMapped { linear: at });
            }
            break;
        }
        n += take;
    }
    Ok((bytes, n))
}

/// The access the instruction at the guest's RIP makes, which faulted at
/// guest-physical `gpa`.
pub fn decode(mem: &impl GuestMemory, cpu: &Cpu, gpa: u64) -> Result<Access, Refused> {
    let wide = cpu.bitness == 64;
    let ip = match cpu.bitness {
        16 => cpu.rip & 0xFFFF,
        32 => cpu.rip & 0xFFFF_FFFF,
        _ => cpu.rip,
    };
    let linear_ip = cpu.bases[1].wrapping_add(ip) & if wide { u64::MAX } else { 0xFFFF_FFFF };
    let (bytes, n) = fetch(mem, cpu.paging, linear_ip, wide)?;
    let bitness = if matches!(cpu.bitness, 16 | 32) { cpu.bitness } else { 64 };
    let mut decoder = Decoder::with_ip(bitness, &bytes[..n], ip, DecoderOptions::NONE);
    let instr = decoder.decode();
    if instr.is_invalid() {
        let linear = match decoder.last_error() {
            // It runs into a page that is not mapped.
            DecoderError::NoMoreBytes if n < bytes.len() => {
                return Err(Refused::NotMapped { linear: linear_ip.wrapping_add(n as u64) });
            }
            _ => linear_ip,
        };
        return Err(Refused::Invalid { linear });
    }
    let (size, op) = classify(&instr, cpu)?;
    // Where the instruction says it goes, through the guest's tables.
    let linear = instr
        .virtual_address(memory_operand(&instr)?, 0, |r, _, _| register(cpu, r))
        .ok_or(Refused::Unsupported { mnemonic: instr.mnemonic() })?;
    let linear = if wide { linear } else { linear & 0xFFFF_FFFF };
    let elsewhere = Refused::Elsewhere { linear };
    if (linear & 0xFFF) + u64::from(size) > 0x1000 || translate(mem, cpu.paging, linear)? != gpa {
        return Err(elsewhere);
    }
    Ok(Access { gpa, size, op, len: instr.len() as u8 })
}

/// The size and kind of access of an instruction, if it is one emulated.
fn classify(instr: &Instruction, cpu: &Cpu) -> Result<(u8, Op), Refused> {
    let unsupported = Refused::Unsupported { mnemonic: instr.mnemonic() };
    if instr.has_lock_prefix() || instr.mnemonic() == Mnemonic::Xchg {
        return Err(Refused::Locked);
    }
    // (VEX and EVEX forms whose operands are all general registers, such
    // as BMI's, are refused below as other instructions.)
    if (0..instr.op_count()).any(|i| instr.op_kind(i) == OpKind::Register && vector(instr.op_register(i))) {
        return Err(Refused::Vector);
    }
    if (0..instr.op_count()).any(|i| {
        matches!(
            instr.op_kind(i),
            OpKind::MemorySegSI
                | OpKind::MemorySegESI
                | OpKind::MemorySegRSI
                | OpKind::MemoryESDI
                | OpKind::MemoryESEDI
                | OpKind::MemoryESRDI
                | OpKind::MemorySegDI
                | OpKind::MemorySegEDI
                | OpKind::MemorySegRDI
        )
    }) {
        return Err(Refused::String);
    }
    let reg = |i: u32| gpr(instr.op_register(i)).ok_or(unsupported);
    let read = |size: u8, sign: bool| -> Result<(u8, Op), Refused> {
        (instr.op_kind(1) == OpKind::Memory).then_some(()).ok_or(unsupported)?;
        Ok((size, Op::Read { to: reg(0)?, sign }))
    };
    let write = |value: u64, size: u8| -> (u8, Op) { (size, Op::Write { value: value & mask(size) }) };
    match instr.code() {
        Code::Mov_r8_rm8 | Code::Mov_AL_moffs8 => read(1, false),
        Code::Mov_r16_rm16 | Code::Mov_AX_moffs16 => read(2, false),
        Code::Mov_r32_rm32 | Code::Mov_EAX_moffs32 => read(4, false),
        Code::Mov_r64_rm64 | Code::Mov_RAX_moffs64 => read(8, false),
        Code::Movzx_r16_rm8 | Code::Movzx_r32_rm8 | Code::Movzx_r64_rm8 => read(1, false),
        Code::Movzx_r16_rm16 | Code::Movzx_r32_rm16 | Code::Movzx_r64_rm16 => read(2, false),
        Code::Movsx_r16_rm8 | Code::Movsx_r32_rm8 | Code::Movsx_r64_rm8 => read(1, true),
        Code::Movsx_r16_rm16 | Code::Movsx_r32_rm16 | Code::Movsx_r64_rm16 | Code::Movsxd_r16_rm16 => {
            read(2, true)
        }
        Code::Movsxd_r32_rm32 => read(4, false),
        Code::Movsxd_r64_rm32 => read(4, true),
        Code::Mov_rm8_r8
        | Code::Mov_rm16_r16
        | Code::Mov_rm32_r32
        | Code::Mov_rm64_r64
        | Code::Mov_moffs8_AL
        | Code::Mov_moffs16_AX
        | Code::Mov_moffs32_EAX
        | Code::Mov_moffs64_RAX => {
            if instr.op_kind(0) != OpKind::Memory {
                return Err(unsupported);
            }
            let from = reg(1)?;
            Ok(write(value_of(cpu, from), from.size))
        }
        Code::Mov_rm8_imm8 | Code::Mov_rm16_imm16 | Code::Mov_rm32_imm32 | Code::Mov_rm64_imm32 => {
            if instr.op_kind(0) != OpKind::Memory {
                return Err(unsupported);
            }
            let size = match instr.code() {
                Code::Mov_rm8_imm8 => 1,
                Code::Mov_rm16_imm16 => 2,
                Code::Mov_rm32_imm32 => 4,
                _ => 8,
            };
            // The immediate as the operand kind extends it (imm32 to 64 signed).
            Ok(write(instr.immediate(1), size))
        }
        _ => Err(unsupported),
    }
}

/// Which operand is the memory operand.
fn memory_operand(instr: &Instruction) -> Result<u32, Refused> {
    (0..instr.op_count())
        .find(|&i| instr.op_kind(i) == OpKind::Memory)
        .ok_or(Refused::Unsupported { mnemonic: instr.mnemonic() })
}

fn mask(size: u8) -> u64 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        4 => 0xFFFF_FFFF,
        _ => u64::MAX,
    }
}

/// Whether `r` is a vector, mask or x87 register.
fn vector(r: Register) -> bool {
    (Register::XMM0..=Register::ZMM31).contains(&r)
        || (Register::MM0..=Register::MM7).contains(&r)
        || (Register::K0..=Register::K7).contains(&r)
        || (Register::ST0..=Register::ST7).contains(&r)
        || (Register::TMM0..=Register::TMM7).contains(&r)
}

/// `r` as a general register, if it is one.
pub fn gpr(r: Register) -> Option<Gpr> {
    let n = r as u32;
    let from = |first: Register| n - first as u32;
    Some(if (Register::AL..=Register::R15L).contains(&r) {
        match from(Register::AL) {
            // AL, CL, DL, BL, then AH, CH, DH, BH (without REX), then SPL..R15L.
            i @ 0..=3 => Gpr { index: i as u8, size: 1, high: false },
            i @ 4..=7 => Gpr { index: i as u8 - 4, size: 1, high: true },
            i => Gpr { index: i as u8 - 4, size: 1, high: false },
        }
    } else if (Register::AX..=Register::R15W).contains(&r) {
        Gpr { index: from(Register::AX) as u8, size: 2, high: false }
    } else if (Register::EAX..=Register::R15D).contains(&r) {
        Gpr { index: from(Register::EAX) as u8, size: 4, high: false }
    } else if (Register::RAX..=Register::R15).contains(&r) {
        Gpr { index: from(Register::RAX) as u8, size: 8, high: false }
    } else {
        return None;
    })
}

/// The value of a general register operand.
fn value_of(cpu: &Cpu, g: Gpr) -> u64 {
    let v = cpu.regs[usize::from(g.index & 15)];
    let v = if g.high { v >> 8 } else { v };
    v & mask(g.size)
}

/// What iced asks while working out an address: registers and segment bases.
fn register(cpu: &Cpu, r: Register) -> Option<u64> {
    let segments = [Register::ES, Register::CS, Register::SS, Register::DS, Register::FS, Register::GS];
    if let Some(i) = segments.iter().position(|&s| s == r) {
        return Some(cpu.bases[i]);
    }
    gpr(r).map(|g| value_of(cpu, g))
}

impl Access {
    /// Completes a read of `value` (the device's answer, `self.size` bytes)
    /// into the guest's registers as the instruction would: extended to the
    /// destination's size, then written as a CPU writes a register of that
    /// size (a 32-bit write clears the top half; 8- and 16-bit writes keep
    /// the rest). A write access changes nothing.
    pub fn complete(&self, regs: &mut [u64; 16], value: u64) {
        let Op::Read { to, sign } = self.op else { return };
        let bits = 8 * u32::from(self.size);
        let v = value & mask(self.size);
        let v = if sign && bits < 64 && v >> (bits - 1) & 1 != 0 { v | !mask(self.size) } else { v };
        let r = &mut regs[usize::from(to.index & 15)];
        *r = match (to.size, to.high) {
            (1, true) => (*r & !0xFF00) | ((v & 0xFF) << 8),
            (1, false) => (*r & !0xFF) | (v & 0xFF),
            (2, _) => (*r & !0xFFFF) | (v & 0xFFFF),
            (4, _) => v & 0xFFFF_FFFF,
            _ => v,
        };
    }
}

#[cfg(test)]
mod tests;
