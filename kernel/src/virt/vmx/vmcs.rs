//! The instructions that read and write the current VMCS, whose field
//! encodings (SDM Vol. 3C appendix B) are `x86::vmx::vmcs`'s.

use core::arch::asm;

/// Writes a field of the current VMCS; false if the CPU refused.
pub fn write(field: u32, value: u64) -> bool {
    let failed: u8;
    // SAFETY: VMWRITE only changes the current VMCS, which this CPU owns
    // while it runs the vCPU; a bad field fails (flags), it does not fault.
    unsafe {
        asm!("vmwrite {f}, {v}", "setna {r}", f = in(reg) u64::from(field), v = in(reg) value, r = out(reg_byte) failed,
             options(nostack))
    };
    failed == 0
}

/// Reads a field of the current VMCS (0 if the CPU refused).
pub fn read(field: u32) -> u64 {
    let value: u64;
    // SAFETY: VMREAD only reads the current VMCS.
    unsafe { asm!("vmread {v}, {f}", f = in(reg) u64::from(field), v = out(reg) value, options(nostack)) };
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
    unsafe {
        asm!("invept {t}, [{d}]", t = in(reg) super::sdm::INVEPT_ALL_CONTEXTS, d = in(reg) &descriptor, options(nostack))
    };
}
