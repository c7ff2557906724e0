//! A guest's writes of DR0–DR3 and DR7 (and DR5, DR7's alias), which
//! AMD-V intercepts and the kernel does: DR0–DR3 go into the CPU (which
//! holds this vCPU's debug registers, `virt::state`), DR7 into the VMCB,
//! which VMRUN loads. Intercepted because an emulated AMD-V (QEMU 7.2's)
//! arms its breakpoints when a guest writes them but neither VMRUN nor
//! #VMEXIT disarms them, so one guest's breakpoints would fire in the host
//! and in other guests; on such a CPU a guest's breakpoints then never
//! fire. The source register comes from decode assists (APM Vol. 2
//! 15.33.1) or, without them, from the instruction, read through the
//! guest's page tables (`mem::guest`).

use x86_64::VirtAddr;

use x86::irq::{GENERAL_PROTECTION_FAULT_VECTOR as GP, INVALID_OPCODE_VECTOR as UD};
use x86_64::registers::control::Cr4Flags;
use x86_64::registers::debug::{DebugAddressRegister, Dr0, Dr1, Dr2, Dr3};

use super::apm;
use super::run::Vmcb;
use crate::mem::guest::{mov_to_dr, Paging};
use crate::mem::kspace;
use crate::mem::paging::NptTable;
use crate::obj::vcpu::GuestRegs;
use crate::virt::vcpu::{gprs, HwExit};

/// The DR intercepts' word (APM Vol. 2 B.1): writes of DR0-3, DR5, DR7.
pub const INTERCEPT_WRITES: u32 = apm::intercept_dr_write(0)
    | apm::intercept_dr_write(1)
    | apm::intercept_dr_write(2)
    | apm::intercept_dr_write(3)
    | apm::intercept_dr_write(5)
    | apm::intercept_dr_write(7);

/// Guest-physical memory of the guest whose nested tables are at `npt`:
/// the 8 bytes at `gpa` (8-aligned).
fn read_u64(npt: u64, gpa: u64) -> Option<u64> {
    let table = NptTable::from_root(x86_64::PhysAddr::new(npt));
    let (pa, _) = kspace::uspace_translate(&table, VirtAddr::try_new(gpa).ok()?)?;
    let va = kspace::phys_to_virt(pa).as_ptr::<u64>();
    // SAFETY: `pa` is a frame the guest's nested tables map, so the kernel
    // owns it and the direct map covers it; 8-aligned, inside the frame.
    Some(unsafe { core::ptr::read_volatile(va) })
}

/// The 15 bytes at the guest's rip (fewer where its mappings end).
fn fetch(paging: &Paging, linear: u64, npt: u64, out: &mut [u8; 15]) -> usize {
    for (i, b) in out.iter_mut().enumerate() {
        let l = linear.wrapping_add(i as u64);
        let Some(gpa) = paging.translate(l, |pa| read_u64(npt, pa)) else { return i };
        let Some(word) = read_u64(npt, gpa & !7) else { return i };
        *b = (word >> ((gpa & 7) * 8)) as u8;
    }
    out.len()
}

/// Does the write of DR`dr` that just exited (`info1`, `next_rip` as the
/// VMCB gave them), or says what the guest gets instead.
pub fn write(vmcb: &Vmcb, npt: u64, regs: &GuestRegs, dr: u8, info1: u64, next_rip: u64) -> HwExit {
    let gp = HwExit::Reflect { vector: GP, error: Some(0), len: 0 };
    let ud = HwExit::Reflect { vector: UD, error: None, len: 0 };
    let s = vmcb.debug_state();
    if s.cpl != 0 {
        return gp;
    }
    let paging = Paging { cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: s.efer };
    let (gpr, len) = if info1 & apm::DR_INFO_VALID != 0 && next_rip > s.rip {
        ((info1 & apm::DR_INFO_GPR) as u8, next_rip - s.rip)
    } else {
        let mut bytes = [0u8; 15];
        let n = fetch(&paging, s.cs_base.wrapping_add(s.rip), npt, &mut bytes);
        match mov_to_dr(&bytes[..n], paging.long()) {
            Some((d, gpr, len)) if d == dr => (gpr, len),
            _ => return ud,
        }
    };
    let mut value = gprs(regs, s.rsp)[usize::from(gpr & 15)];
    if !paging.long() {
        value &= 0xFFFF_FFFF;
    }
    match dr {
        0..=3 => set_address(dr, value),
        // CR4.DE: DR4/DR5 are reserved.
        5 if s.cr4 & Cr4Flags::DEBUGGING_EXTENSIONS.bits() != 0 => return ud,
        5 | 7 if value >> 32 != 0 => return gp,
        5 | 7 => vmcb.set_dr7(value | apm::DR7_INIT),
        _ => return ud,
    }
    HwExit::Skip { len }
}

/// Loads breakpoint address `dr` (0-3) into the CPU: inert while the
/// host's DR7 is 0x400 (VMRUN loads the guest's, #VMEXIT disarms); the
/// guest's own DR7 arms it in the guest.
fn set_address(dr: u8, value: u64) {
    match dr {
        0 => Dr0::write(value),
        1 => Dr1::write(value),
        2 => Dr2::write(value),
        _ => Dr3::write(value),
    }
}
