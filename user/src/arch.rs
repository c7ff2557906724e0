//! The only assembly of the runtime: the entry stub, the `syscall`
//! instruction (with the six argument registers, and with the eleven of a
//! message), and reading the time-stamp counter.

use core::arch::asm;

// The kernel (or the supervisor) starts the first thread here with rsp =
// `ipc::boot::STACK_TOP` and rdi = the start page. The stack is aligned
// again anyway, then the Rust entry the binary's `entry!` defines is called
// (SysV ABI: rsp is 16-byte aligned before the call). It never returns; if it
// did, `ud2` faults, and the supervisor hears of it.
#[cfg(target_os = "none")]
core::arch::global_asm!(
    ".pushsection .text.ryokan_start, \"ax\", @progbits",
    ".global _start",
    ".type _start, @function",
    "_start:",
    "    xor ebp, ebp",
    "    and rsp, -16",
    "    call __ryokan_main",
    "    ud2",
    ".size _start, . - _start",
    ".popsection",
);

/// Makes syscall `nr` with arguments `a`; returns rax (0 or an error code)
/// and the four result registers. Registers as in `ipc::syscall`.
///
/// # Safety
///
/// A syscall can change this domain's address space and threads: the call
/// must not unmap memory Rust code still refers to (`MemoryUnmap`), nor
/// start a thread in this domain at code that breaks its invariants
/// (`ThreadCreate`).
pub unsafe fn syscall_raw(nr: u64, a: [u64; 6]) -> (u64, [u64; 4]) {
    let (rax, r0, r1, r2, r3);
    // SAFETY: the kernel preserves every register but rax, rdi, rsi, rdx,
    // r10 (results), rcx and r11 (clobbered by `syscall`); r8 and r9 are
    // treated as clobbered too, to depend on less. It does not touch our
    // stack. What the call does to our memory is the caller's contract.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr => rax,
            inlateout("rdi") a[0] => r0,
            inlateout("rsi") a[1] => r1,
            inlateout("rdx") a[2] => r2,
            inlateout("r10") a[3] => r3,
            inlateout("r8") a[4] => _,
            inlateout("r9") a[5] => _,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    (rax, [r0, r1, r2, r3])
}

/// Makes message syscall `nr` (`ipc::msg::nr`) with the eleven message
/// registers `r` (`rdi, rsi, rdx, r10, r8, r9, r12, r13, r14, r15, rbx`, see
/// `ipc::msg`); returns rax (0 or an error code) and the eleven registers as
/// the kernel left them.
///
/// # Safety
///
/// As for [`syscall_raw`] (`nr` could name any syscall).
pub unsafe fn ipc_raw(nr: u64, r: [u64; ipc::msg::REGS]) -> (u64, [u64; ipc::msg::REGS]) {
    let mut o = r;
    let rax;
    // SAFETY: the kernel preserves every register but rax, the eleven
    // message registers (results), rcx and r11 (clobbered by `syscall`).
    // LLVM reserves rbx, so it cannot be an operand, and no register is left
    // to park it in: the caller's rbx goes to the stack (hence no `nostack`)
    // while the message's last word travels through r11, which is free for
    // it before and after `syscall`. What the call does to our memory is the
    // caller's contract.
    unsafe {
        asm!(
            "push rbx",
            "mov rbx, r11",
            "syscall",
            "mov r11, rbx",
            "pop rbx",
            inlateout("rax") nr => rax,
            inlateout("rdi") o[0],
            inlateout("rsi") o[1],
            inlateout("rdx") o[2],
            inlateout("r10") o[3],
            inlateout("r8") o[4],
            inlateout("r9") o[5],
            inlateout("r12") o[6],
            inlateout("r13") o[7],
            inlateout("r14") o[8],
            inlateout("r15") o[9],
            inlateout("r11") o[10],
            lateout("rcx") _,
        );
    }
    (rax, o)
}

/// Calls `f(arg)` on the stack whose top is `top`, for good.
///
/// # Safety
///
/// `top` must be 16-byte aligned, the top of mapped, writable memory that
/// nothing else uses, large enough for what `f` does.
pub unsafe fn call_on_stack(top: u64, f: extern "C" fn(*mut u8) -> !, arg: *mut u8) -> ! {
    // SAFETY: the caller's contract; `f` never returns (`ud2` if it did).
    unsafe {
        asm!(
            "mov rsp, {top}",
            "call {f}",
            "ud2",
            top = in(reg) top,
            f = in(reg) f,
            in("rdi") arg,
            options(noreturn),
        )
    }
}

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `rdtsc` only reads the counter into edx:eax.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    u64::from(hi) << 32 | u64::from(lo)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Linux's `syscall` keeps every register but rax, rcx and r11: made
    /// with `getpid`, the message path must hand back all eleven registers
    /// as it loaded them (r11 and rbx included), and leave rbx as it was.
    #[test]
    fn all_eleven_message_registers_go_through() {
        const GETPID: u64 = 39;
        let regs: [u64; ipc::msg::REGS] = core::array::from_fn(|i| 0x1111 * (i as u64 + 1));
        // SAFETY: `getpid` reads nothing of ours and changes nothing.
        let (rax, out) = unsafe { ipc_raw(GETPID, regs) };
        assert_eq!(rax, u64::from(std::process::id()));
        assert_eq!(out, regs);
    }
}
