//! Intel VT-x: entering VMX root operation (SDM Vol. 3C 24.7, 24.11.5), and
//! running guests (`run`, `vmcs`).

pub mod run;
pub mod vcpu;
pub mod vmcs;

use core::arch::asm;

use x86_64::registers::control::{Cr0, Cr4, Cr4Flags};
use x86_64::registers::model_specific::Msr;

use super::EnableError;
use crate::mem::kspace;

const IA32_FEATURE_CONTROL: u32 = 0x3A;
const IA32_VMX_BASIC: u32 = 0x480;
const IA32_VMX_PROCBASED_CTLS: u32 = 0x482;
const IA32_VMX_PROCBASED_CTLS2: u32 = 0x48B;
const IA32_VMX_CR0_FIXED0: u32 = 0x486;
const IA32_VMX_CR0_FIXED1: u32 = 0x487;
const IA32_VMX_CR4_FIXED0: u32 = 0x488;
const IA32_VMX_CR4_FIXED1: u32 = 0x489;
const IA32_VMX_EPT_VPID_CAP: u32 = 0x48C;

const FC_LOCKED: u64 = 1 << 0;
const FC_VMXON_OUTSIDE_SMX: u64 = 1 << 2;

fn rdmsr(msr: u32) -> u64 {
    // SAFETY: the caller checked CPUID.1:ECX.VMX, which makes these VMX
    // capability MSRs and IA32_FEATURE_CONTROL exist.
    unsafe { Msr::new(msr).read() }
}

/// The VMCS revision identifier (SDM Vol. 3C A.1).
pub fn revision() -> u32 {
    rdmsr(IA32_VMX_BASIC) as u32 & 0x7FFF_FFFF
}

/// Enables VMX on this CPU: checks that EPT (with a 4-level walk and
/// write-back tables) is there, unlocks VMX in IA32_FEATURE_CONTROL if the
/// firmware left it open, honours the CR0/CR4 fixed bits, and runs VMXON.
pub fn enable() -> Result<(), EnableError> {
    let secondary = rdmsr(IA32_VMX_PROCBASED_CTLS) >> 32 & (1 << 31) != 0;
    let ept = secondary && rdmsr(IA32_VMX_PROCBASED_CTLS2) >> 32 & (1 << 1) != 0;
    let caps = if ept { rdmsr(IA32_VMX_EPT_VPID_CAP) } else { 0 };
    if !ept || caps & (1 << 6) == 0 || caps & (1 << 14) == 0 {
        return Err(EnableError::NoNestedPaging);
    }
    let fc = rdmsr(IA32_FEATURE_CONTROL);
    if fc & FC_LOCKED == 0 {
        // SAFETY: setting the lock with VMX-outside-SMX is how firmware is
        // meant to leave this MSR; nothing else depends on it being open.
        unsafe { Msr::new(IA32_FEATURE_CONTROL).write(fc | FC_LOCKED | FC_VMXON_OUTSIDE_SMX) };
    } else if fc & FC_VMXON_OUTSIDE_SMX == 0 {
        return Err(EnableError::DisabledByFirmware);
    }
    let cr0 = (Cr0::read_raw() | rdmsr(IA32_VMX_CR0_FIXED0)) & rdmsr(IA32_VMX_CR0_FIXED1);
    let cr4 = (Cr4::read_raw() | Cr4Flags::VIRTUAL_MACHINE_EXTENSIONS.bits() | rdmsr(IA32_VMX_CR4_FIXED0))
        & rdmsr(IA32_VMX_CR4_FIXED1);
    // SAFETY: the fixed-bit MSRs allow these values in VMX operation; the
    // bits they force (NE, PE, PG, VMXE) are ones this kernel runs with anyway.
    unsafe {
        Cr0::write_raw(cr0);
        Cr4::write_raw(cr4);
    }
    let (pa, va) = kspace::alloc_frame().ok_or(EnableError::OutOfMemory)?;
    let revision = rdmsr(IA32_VMX_BASIC) as u32 & 0x7FFF_FFFF;
    // SAFETY: a fresh, zeroed frame of our own, mapped at `va`.
    unsafe { core::ptr::write_volatile(va.as_mut_ptr::<u32>(), revision) };
    let failed: u8;
    // SAFETY: the VMXON region is a 4 KiB-aligned frame holding the VMCS
    // revision id, owned by this CPU for as long as it stays in VMX operation.
    unsafe {
        asm!(
            "vmxon [{pa}]",
            "setna {failed}",
            pa = in(reg) &pa.as_u64(),
            failed = out(reg_byte) failed,
            options(nostack),
        )
    };
    if failed != 0 {
        return Err(EnableError::VmxonFailed);
    }
    Ok(())
}
