//! Entering and leaving user mode. Every entry from user mode — `syscall`,
//! an interrupt, an exception — leaves a [`TrapFrame`] at the top of the
//! CPU's kernel stack and calls [`trap::dispatch`]; every return goes
//! through `trap_return` with a frame there. The stubs only save and restore
//! state: all decisions are made in safe code.
//!
//! The machine's entry points, the top layer of the kernel: the boot of
//! every CPU (`multiboot`, `boot`), the interrupt and exception stubs
//! (`idt`) and their dispatch (`trap`), the syscall entry (here). They call
//! the core (`sched`); nothing below them names them.

pub mod boot;
pub mod idt;
pub mod multiboot;
pub mod trap;

use core::arch::global_asm;
use core::sync::atomic::Ordering;

use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::VirtAddr;

use super::cpu::{GS_KSTACK_TOP, GS_USER_RSP};
use super::gdt;
use super::trap::{vector, TrapFrame};

// `syscall` leaves the user RIP in rcx and RFLAGS in r11, and switches
// neither stack nor GS (SDM Vol. 2B SYSCALL). Build the same frame an
// interrupt from user mode would, and join the common path.
global_asm!(
    r#"
    .section .text.syscall_entry, "ax"
    .globl syscall_entry
syscall_entry:
    swapgs
    mov gs:[{user_rsp}], rsp
    mov rsp, gs:[{kstack}]
    push {user_ss}
    push qword ptr gs:[{user_rsp}]
    push r11
    push {user_cs}
    push rcx
    push 0
    push {syscall}
    jmp trap_saved

    .globl enter_user_frame
enter_user_frame:                    /* rdi: a TrapFrame at the stack top */
    mov rsp, rdi
    jmp trap_return
"#,
    user_rsp = const GS_USER_RSP,
    kstack = const GS_KSTACK_TOP,
    user_ss = const gdt::USER_DATA.0 as u64,
    user_cs = const gdt::USER_CODE.0 as u64,
    syscall = const vector::SYSCALL,
);

unsafe extern "C" {
    fn syscall_entry();
    fn enter_user_frame(frame: *mut TrapFrame) -> !;
}

/// Makes `syscall` enter the kernel on this CPU: kernel CS/SS from STAR,
/// entry at `syscall_entry`, interrupts (and DF, TF, AC) off on entry.
pub fn init_syscall() {
    // SAFETY: the selectors are this CPU's GDT's (kernel code/data, then
    // user data/code as SYSRET expects); the entry stub is above.
    unsafe {
        Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
        LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
        SFMask::write(
            RFlags::INTERRUPT_FLAG | RFlags::DIRECTION_FLAG | RFlags::TRAP_FLAG | RFlags::ALIGNMENT_CHECK,
        );
    }
    // Fails only if the selectors do not fit SYSRET's layout; they do.
    let _ = Star::write(gdt::USER_CODE, gdt::USER_DATA, gdt::KERNEL_CODE, gdt::KERNEL_DATA);
}

/// Where this CPU's frame for entering user mode lives: the top of its kernel
/// stack, where every entry from user mode puts one.
pub fn frame_slot(kstack_top: u64) -> *mut TrapFrame {
    (kstack_top as usize - core::mem::size_of::<TrapFrame>()) as *mut TrapFrame
}

/// Leaves the kernel into the user context in `frame`, abandoning the
/// current stack.
///
/// # Safety
/// `frame` must be this CPU's frame slot (see [`frame_slot`]), holding a user
/// context with user selectors, a canonical RIP and RSP, and RFLAGS.IF set.
pub unsafe fn enter_user(frame: *mut TrapFrame) -> ! {
    // SAFETY: the caller guarantees the frame; `trap_return` restores it.
    unsafe { enter_user_frame(frame) }
}

/// Called once per CPU when start-up is done: runs threads from now on.
pub fn run_cpu() -> ! {
    let me = super::cpu::current();
    let frame = frame_slot(me.kstack_top.load(Ordering::Relaxed));
    x86_64::instructions::interrupts::disable();
    let c = super::cpu::current_index();
    // SAFETY: `frame` is this CPU's frame slot at the top of its kernel stack,
    // which nothing else uses while this CPU runs this function (the caller is
    // on another stack or below the slot).
    let f = unsafe { &mut *frame };
    crate::sched::schedule(c, f);
    me.in_kernel.store(false, Ordering::SeqCst);
    // SAFETY: `schedule` filled the slot with a user context.
    unsafe { enter_user(frame) }
}
