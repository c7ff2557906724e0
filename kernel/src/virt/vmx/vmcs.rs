//! VMCS field encodings (SDM Vol. 3C appendix B) and the instructions that
//! read and write the current VMCS.

use core::arch::asm;

pub const VPID: u64 = 0x0000;
pub const EPTP: u64 = 0x201A;
pub const GUEST_PHYSICAL: u64 = 0x2400;
/// The VMX-preemption timer's value (32-bit guest state).
pub const PREEMPTION_TIMER: u64 = 0x482E;
pub const VMCS_LINK: u64 = 0x2800;
pub const GUEST_DEBUGCTL: u64 = 0x2802;
pub const GUEST_EFER: u64 = 0x2806;
pub const HOST_EFER: u64 = 0x2C02;
pub const PIN_CONTROLS: u64 = 0x4000;
pub const PROC_CONTROLS: u64 = 0x4002;
pub const EXCEPTION_BITMAP: u64 = 0x4004;
pub const CR3_TARGET_COUNT: u64 = 0x400A;
pub const EXIT_CONTROLS: u64 = 0x400C;
pub const ENTRY_CONTROLS: u64 = 0x4012;
pub const ENTRY_INTERRUPTION: u64 = 0x4016;
pub const ENTRY_ERROR_CODE: u64 = 0x4018;
pub const PROC2_CONTROLS: u64 = 0x401E;
pub const INSTRUCTION_ERROR: u64 = 0x4400;
pub const EXIT_REASON: u64 = 0x4402;
pub const EXIT_INSTRUCTION_LEN: u64 = 0x440C;
pub const EXIT_INTERRUPTION: u64 = 0x4404;
pub const EXIT_ERROR_CODE: u64 = 0x4406;
pub const IDT_VECTORING: u64 = 0x4408;
pub const GUEST_ES_SELECTOR: u64 = 0x0800;
pub const GUEST_LDTR_SELECTOR: u64 = 0x080C;
pub const GUEST_TR_SELECTOR: u64 = 0x080E;
pub const GUEST_ES_LIMIT: u64 = 0x4800;
pub const GUEST_LDTR_LIMIT: u64 = 0x480C;
pub const GUEST_TR_LIMIT: u64 = 0x480E;
pub const GUEST_GDTR_LIMIT: u64 = 0x4810;
pub const GUEST_IDTR_LIMIT: u64 = 0x4812;
pub const GUEST_ES_ACCESS: u64 = 0x4814;
pub const GUEST_LDTR_ACCESS: u64 = 0x4820;
pub const GUEST_TR_ACCESS: u64 = 0x4822;
pub const GUEST_INTERRUPTIBILITY: u64 = 0x4824;
pub const GUEST_ACTIVITY: u64 = 0x4826;
pub const GUEST_SYSENTER_CS: u64 = 0x482A;
pub const HOST_SYSENTER_CS: u64 = 0x4C00;
pub const CR0_MASK: u64 = 0x6000;
pub const CR4_MASK: u64 = 0x6002;
pub const CR0_SHADOW: u64 = 0x6004;
pub const CR4_SHADOW: u64 = 0x6006;
pub const QUALIFICATION: u64 = 0x6400;
pub const GUEST_CR0: u64 = 0x6800;
pub const GUEST_CR3: u64 = 0x6802;
pub const GUEST_CR4: u64 = 0x6804;
pub const GUEST_ES_BASE: u64 = 0x6806;
pub const GUEST_LDTR_BASE: u64 = 0x6812;
pub const GUEST_TR_BASE: u64 = 0x6814;
pub const GUEST_GDTR_BASE: u64 = 0x6816;
pub const GUEST_IDTR_BASE: u64 = 0x6818;
pub const GUEST_DR7: u64 = 0x681A;
pub const GUEST_RSP: u64 = 0x681C;
pub const GUEST_RIP: u64 = 0x681E;
pub const GUEST_RFLAGS: u64 = 0x6820;
pub const GUEST_PENDING_DEBUG: u64 = 0x6822;
pub const GUEST_SYSENTER_ESP: u64 = 0x6824;
pub const GUEST_SYSENTER_EIP: u64 = 0x6826;
pub const HOST_CR0: u64 = 0x6C00;
pub const HOST_CR3: u64 = 0x6C02;
pub const HOST_CR4: u64 = 0x6C04;
pub const HOST_ES_SELECTOR: u64 = 0x0C00;
pub const HOST_TR_SELECTOR: u64 = 0x0C0C;
pub const HOST_FS_BASE: u64 = 0x6C06;
pub const HOST_GS_BASE: u64 = 0x6C08;
pub const HOST_TR_BASE: u64 = 0x6C0A;
pub const HOST_GDTR_BASE: u64 = 0x6C0C;
pub const HOST_IDTR_BASE: u64 = 0x6C0E;
pub const HOST_SYSENTER_ESP: u64 = 0x6C10;
pub const HOST_SYSENTER_EIP: u64 = 0x6C12;
pub const HOST_RIP: u64 = 0x6C16;

/// Writes a field of the current VMCS; false if the CPU refused.
pub fn write(field: u64, value: u64) -> bool {
    let failed: u8;
    // SAFETY: VMWRITE only changes the current VMCS, which this CPU owns
    // while it runs the vCPU; a bad field fails (flags), it does not fault.
    unsafe {
        asm!("vmwrite {f}, {v}", "setna {r}", f = in(reg) field, v = in(reg) value, r = out(reg_byte) failed,
             options(nostack))
    };
    failed == 0
}

/// Reads a field of the current VMCS (0 if the CPU refused).
pub fn read(field: u64) -> u64 {
    let value: u64;
    // SAFETY: VMREAD only reads the current VMCS.
    unsafe { asm!("vmread {v}, {f}", f = in(reg) field, v = out(reg) value, options(nostack)) };
    value
}

/// Makes the VMCS at `pa` clear (inactive, launch state clear).
pub fn clear(pa: u64) -> bool {
    let failed: u8;
    // SAFETY: `pa` is a VMCS region of ours holding the revision id.
    unsafe {
        asm!("vmclear [{p}]", "setna {r}", p = in(reg) &pa, r = out(reg_byte) failed, options(nostack))
    };
    failed == 0
}

/// Makes the VMCS at `pa` current on this CPU.
pub fn load(pa: u64) -> bool {
    let failed: u8;
    // SAFETY: as for `clear`.
    unsafe {
        asm!("vmptrld [{p}]", "setna {r}", p = in(reg) &pa, r = out(reg_byte) failed, options(nostack))
    };
    failed == 0
}

/// Invalidates every guest-physical translation this CPU cached (INVEPT,
/// all contexts).
pub fn invept_all() {
    let descriptor = [0u64; 2];
    // SAFETY: INVEPT only drops cached translations.
    unsafe { asm!("invept {t}, [{d}]", t = in(reg) 2u64, d = in(reg) &descriptor, options(nostack)) };
}
