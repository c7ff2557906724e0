//! Hardware virtualization: which of Intel VT-x with EPT or AMD-V with NPT
//! this CPU offers, and switching it on (VMXON, or EFER.SVME).

/// Assembler lines for `svm_enter` and `vmx_enter`: `$op` for each of
/// rbx, rcx, rdx, rsi, rbp and r8-r15 (`\r`) at its offset (`gpr`) in
/// the `GuestRegs` at rdi; rax, rdi and CR2 are the stubs' own.
macro_rules! guest_gprs {
    ($op:literal) => {
        concat!(
            ".set gpr, 8\n.irp r, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15\n",
            ".ifnc \\r, rdi\n",
            $op,
            "\n.endif\n.set gpr, gpr + 8\n.endr\n"
        )
    };
}

pub mod grave;
pub mod msrs;
pub mod state;
pub mod svm;
pub mod vcpu;
pub mod vmx;

/// How long a guest may spin in a PAUSE loop before it exits and gives
/// way (`HwExit::Spin`): PAUSEs on AMD-V (its filter count), cycles on
/// VT-x (PLE_WINDOW); KVM's 3,000 and 4,096, near enough for both. Only
/// on a CPU that has the filter or PAUSE-loop exiting: QEMU's AMD-V has
/// neither, and its guests spin unexited (their VMM may then wait behind a
/// spinning sibling vCPU for that one's credit).
pub const PAUSE_LOOP: u16 = 4096;

use raw_cpuid::CpuId;

/// What a CPU offers for running guests (as [`MODE`] holds it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Virt {
    /// Intel VT-x with EPT, in VMX root operation now.
    Vmx = 1,
    /// AMD-V with nested paging, enabled now.
    Svm = 2,
    /// Neither: guests are unavailable; domains still run.
    None = 0,
}

/// Why a CPU that has the feature could not enable it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnableError {
    /// The firmware locked the feature off (IA32_FEATURE_CONTROL or VM_CR).
    DisabledByFirmware,
    /// Present without second-level address translation (EPT or NPT).
    NoNestedPaging,
    /// No frame for the VMXON region or host save area.
    OutOfMemory,
    /// VMXON itself failed.
    VmxonFailed,
}

static MODE: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// What the machine offers for guests (what the bootstrap CPU enabled).
pub fn available() -> Virt {
    match MODE.load(core::sync::atomic::Ordering::Relaxed) {
        m if m == Virt::Vmx as u8 => Virt::Vmx,
        m if m == Virt::Svm as u8 => Virt::Svm,
        _ => Virt::None,
    }
}

/// Detects and enables virtualization on the running CPU, and says what it
/// found, one line.
pub fn enable() -> Virt {
    let cpuid = CpuId::new();
    let has_vmx = cpuid.get_feature_info().is_some_and(|f| f.has_vmx());
    let has_svm = cpuid.get_extended_processor_and_feature_identifiers().is_some_and(|f| f.has_svm());
    let result = if has_vmx {
        Some(vmx::enable().map(|()| Virt::Vmx).map_err(|e| ("VT-x", e)))
    } else if has_svm {
        Some(svm::enable(&cpuid).map(|()| Virt::Svm).map_err(|e| ("AMD-V", e)))
    } else {
        None
    };
    match result {
        Some(Ok(Virt::Vmx)) => log::info!("virt: VT-x with EPT enabled (VMXON succeeded)"),
        Some(Ok(_)) => log::info!("virt: AMD-V with NPT enabled (EFER.SVME set)"),
        Some(Err((what, e))) => {
            log::warn!("virt: {what} present but unusable ({e:?}): guests are unavailable")
        }
        None => log::info!("virt: no VT-x with EPT or AMD-V with NPT: guests are unavailable"),
    }
    let virt = result.and_then(Result::ok).unwrap_or(Virt::None);
    if virt != Virt::None {
        msrs::host_init();
    }
    if crate::arch::cpu::current_index() == 0 {
        MODE.store(virt as u8, core::sync::atomic::Ordering::Relaxed);
    }
    virt
}
