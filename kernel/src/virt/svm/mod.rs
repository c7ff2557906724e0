//! AMD-V: enabling SVM (AMD APM Vol. 2 15.4), and running guests (`run`).

pub mod apm;
pub mod debugreg;
pub mod msrs;
pub mod run;
pub mod vcpu;

use raw_cpuid::{CpuId, CpuIdReader};
use x86_64::registers::model_specific::{Efer, EferFlags, Msr};

use super::EnableError;
use crate::mem::kspace;

use apm::{VM_CR, VM_CR_SVMDIS, VM_HSAVE_PA};

/// Enables SVM on this CPU if it has nested paging and the firmware has not
/// disabled it: sets EFER.SVME and gives the CPU its host save area.
pub fn enable<R: CpuIdReader>(cpuid: &CpuId<R>) -> Result<(), EnableError> {
    if !cpuid.get_svm_info().is_some_and(|s| s.has_nested_paging()) {
        return Err(EnableError::NoNestedPaging);
    }
    // SAFETY: CPUID says SVM is there, so VM_CR exists.
    if unsafe { Msr::new(VM_CR).read() } & VM_CR_SVMDIS != 0 {
        return Err(EnableError::DisabledByFirmware);
    }
    let (pa, _) = kspace::alloc_frame().ok_or(EnableError::OutOfMemory)?;
    let (host, _) = kspace::alloc_frame().ok_or(EnableError::OutOfMemory)?;
    crate::arch::cpu::current().svm_host.store(host.as_u64(), core::sync::atomic::Ordering::Relaxed);
    // SAFETY: SVM is present and allowed; the host save area is a frame this
    // CPU owns for good. Setting SVME changes nothing until VMRUN.
    unsafe {
        Efer::update(|f| f.insert(EferFlags::SECURE_VIRTUAL_MACHINE_ENABLE));
        Msr::new(VM_HSAVE_PA).write(pa.as_u64());
    }
    Ok(())
}
