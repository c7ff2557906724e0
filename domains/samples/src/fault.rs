//! Faults made on purpose, in assembly so that what happens is the CPU's
//! business (an exception the kernel reports to the supervisor), not
//! undefined behaviour in Rust's eyes. None of them returns if the kernel
//! keeps its promises; if one does, the caller reports that.

use core::arch::asm;

/// Reads the 8 bytes at `addr`.
pub fn read(addr: u64) -> u64 {
    let value: u64;
    // SAFETY: a read changes nothing; if `addr` is not readable the CPU
    // raises #PF and the kernel stops this domain before anything runs on.
    unsafe {
        asm!("mov {v}, qword ptr [{a}]", a = in(reg) addr, v = lateout(reg) value, options(nostack, readonly))
    };
    value
}

/// Writes a zero byte at `addr`, which must be memory nothing relies on
/// (read-only memory, whose write the CPU refuses with #PF).
///
/// # Safety
///
/// If the write does happen (`addr` is writable after all), it must not
/// break anything: pass an address of read-only data.
pub unsafe fn write(addr: u64) {
    // SAFETY: the caller's contract.
    unsafe { asm!("mov byte ptr [{a}], 0", a = in(reg) addr, options(nostack)) };
}

/// Executes `ud2`: #UD.
pub fn invalid_opcode() -> ! {
    // SAFETY: `ud2` only raises #UD.
    unsafe { asm!("ud2", options(noreturn, nomem, nostack)) }
}

/// Reads xmm0, which may hold another domain's or a guest's data were the
/// kernel to let a native domain use SSE: it does not (CR4.OSFXSR clear,
/// `kernel/src/virt/state.rs`), so this is #UD.
pub fn read_xmm0() -> u64 {
    let v: u64;
    // SAFETY: `movq` only reads a register (or raises #UD, as here).
    unsafe { asm!("movq {}, xmm0", out(reg) v, options(nomem, nostack)) };
    v
}
