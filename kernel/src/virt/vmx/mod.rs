//! Intel VT-x: entering VMX root operation (SDM Vol. 3C 24.7, 24.11.5), and
//! running guests (`run`, `vmcs`).

pub mod msrs;
pub mod run;
pub mod sdm;
pub mod vcpu;
pub mod vmcs;

use core::arch::asm;

use x86_64::registers::control::{Cr0, Cr4, Cr4Flags};
use x86_64::registers::model_specific::Msr;

use super::EnableError;
use crate::mem::kspace;

use x86::msr::{
    IA32_FEATURE_CONTROL, IA32_VMX_BASIC, IA32_VMX_CR0_FIXED0, IA32_VMX_CR0_FIXED1, IA32_VMX_CR4_FIXED0,
    IA32_VMX_CR4_FIXED1, IA32_VMX_EPT_VPID_CAP, IA32_VMX_PROCBASED_CTLS, IA32_VMX_PROCBASED_CTLS2,
};
use x86::vmx::vmcs::control::{PrimaryControls, SecondaryControls};

use sdm::{BASIC_REVISION, FEATURE_CONTROL_VMXON_OUTSIDE_SMX as FC_VMXON_OUTSIDE_SMX};
use sdm::{EPT_CAP_WALK4, EPT_CAP_WB, FEATURE_CONTROL_LOCKED as FC_LOCKED};

fn rdmsr(msr: u32) -> u64 {
    // SAFETY: the caller checked CPUID.1:ECX.VMX, which makes these VMX
    // capability MSRs and IA32_FEATURE_CONTROL exist.
    unsafe { Msr::new(msr).read() }
}

/// The VMCS revision identifier (SDM Vol. 3C A.1).
pub fn revision() -> u32 {
    (rdmsr(IA32_VMX_BASIC) & BASIC_REVISION) as u32
}

/// Enables VMX on this CPU: checks that EPT (with a 4-level walk and
/// write-back tables) is there, unlocks VMX in IA32_FEATURE_CONTROL if the
/// firmware left it open, honours the CR0/CR4 fixed bits, and runs VMXON.
pub fn enable() -> Result<(), EnableError> {
    // A control may be set if its bit is set in the high half of its
    // capability MSR (SDM Vol. 3C A.3.2, A.3.3).
    let allowed = |msr, bit: u32| (rdmsr(msr) >> 32) as u32 & bit != 0;
    let secondary = allowed(IA32_VMX_PROCBASED_CTLS, PrimaryControls::SECONDARY_CONTROLS.bits());
    let ept = secondary && allowed(IA32_VMX_PROCBASED_CTLS2, SecondaryControls::ENABLE_EPT.bits());
    let caps = if ept { rdmsr(IA32_VMX_EPT_VPID_CAP) } else { 0 };
    if !ept || caps & EPT_CAP_WALK4 == 0 || caps & EPT_CAP_WB == 0 {
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
    let revision = revision();
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
