//! A guest's RDMSR and WRMSR of an MSR the kernel keeps (`ipc::msr`), on
//! VT-x: EFER, FS_BASE, GS_BASE and SYSENTER_* in their VMCS guest fields,
//! the rest in the vCPU's MSR list (`virt::msrs`).
//!
//! Long mode: EFER is loaded at entry and saved at exit (the "load/save
//! IA32_EFER" controls, `run::setup`); the guest sets LME here and CR0.PG
//! itself (unrestricted guest: CR0.PG is not intercepted), which makes the
//! CPU set LMA. The "IA-32e mode guest" entry control must equal LMA at
//! every entry (SDM Vol. 3C 26.3.1.1): a VM exit stores LMA into it
//! (27.2, on every CPU with unrestricted guest: IA32_VMX_MISC bit 5), and
//! a write of EFER here sets it to match.

use ipc::msr::{self, Kept, Mode};
use x86::vmx::vmcs::control::{self, EntryControls};
use x86::vmx::vmcs::guest;
use x86_64::registers::control::Cr0Flags;

use super::vmcs;
use crate::obj::vcpu::{msr_frame, GuestRegs};
use crate::virt::msrs;
use crate::virt::vcpu::HwExit;

/// Does the guest's RDMSR (`write` false) or WRMSR of `m` of `len` bytes,
/// with its registers `regs`, on the vCPU whose VMCS is at `hw` (current);
/// a write the CPU would refuse is #GP. Out of line: the exits a VMM
/// answers pay nothing for it.
#[cold]
#[inline(never)]
pub fn exit(m: Kept, write: bool, regs: &mut GuestRegs, hw: u64, len: u64) -> HwExit {
    let frame = msr_frame(hw);
    if write {
        let value = (regs.rdx << 32) | (regs.rax & 0xFFFF_FFFF);
        let paging = vmcs::read(guest::CR0) & Cr0Flags::PAGING.bits() != 0;
        let mode = Mode { efer: vmcs::read(guest::IA32_EFER_FULL), paging };
        let Some(v) = msr::check_write(m, value, mode) else {
            return HwExit::Reflect { vector: 13, error: Some(0), len: 0 };
        };
        set(m, v, frame);
    } else {
        let v = get(m, frame);
        regs.rax = v & 0xFFFF_FFFF;
        regs.rdx = v >> 32;
    }
    HwExit::Skip { len }
}

/// The guest's value of `m`.
pub fn get(m: Kept, frame: u64) -> u64 {
    match field(m) {
        Some(f) => vmcs::read(f),
        None => msrs::slot(m).map_or(0, |i| msrs::guest(frame, i)),
    }
}

/// Sets the guest's `m` to `v`, a value `msr::check_write` allowed.
pub fn set(m: Kept, v: u64, frame: u64) {
    if let Some(f) = field(m) {
        vmcs::write(f, v);
    } else if let Some(i) = msrs::slot(m) {
        msrs::set_guest(frame, i, v);
    }
    if m == Kept::Efer {
        let entry = vmcs::read(control::VMENTRY_CONTROLS);
        let long = u64::from(EntryControls::IA32E_MODE_GUEST.bits());
        let entry = if v & msr::efer::LMA != 0 { entry | long } else { entry & !long };
        vmcs::write(control::VMENTRY_CONTROLS, entry);
    }
}

/// The VMCS guest field that holds `m`, if one does.
fn field(m: Kept) -> Option<u32> {
    Some(match m {
        Kept::Efer => guest::IA32_EFER_FULL,
        Kept::FsBase => guest::FS_BASE,
        Kept::GsBase => guest::GS_BASE,
        Kept::SysenterCs => guest::IA32_SYSENTER_CS,
        Kept::SysenterEsp => guest::IA32_SYSENTER_ESP,
        Kept::SysenterEip => guest::IA32_SYSENTER_EIP,
        _ => return None,
    })
}
