//! `guest-triple`: loads an empty IDT and executes `int3`. The breakpoint
//! cannot be delivered (#GP), nor can that (#DF), nor that: the CPU shuts
//! down, which its VMM sees as a triple fault. Anything else prints a
//! `guest-triple: FAIL …` line and reports failure.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-triple")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $msg_start, %esi
    call puts
    lidt null_idt
    int3
    movl $msg_fail, %esi
    call puts
    jmp guest_fail

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-triple"
msg_start:
    .asciz "guest-triple: loading an empty IDT and executing int3\n"
msg_fail:
    .asciz "guest-triple: FAIL still running after int3\n"
    .balign 8
null_idt:
    .word 0
    .long 0
"#,
    options(att_syntax)
);
