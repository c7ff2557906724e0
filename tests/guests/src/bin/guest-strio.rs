//! `guest-strio`: a string port instruction, `rep outsb` of three bytes
//! (`XY!`) to the UART. Done as a single OUT it would leave rcx, rsi and
//! the output wrong; its VMM stops it instead, saying why (exit code 5).
//! If it goes on, the guest prints `guest-strio: FAIL …` and fails.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-strio")
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
    movl $bytes, %esi
    movl $3, %ecx
    movw $0x3f8, %dx
    rep outsb
    movl $msg_fail, %esi
    call puts
    jmp guest_fail

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-strio"
msg_start:
    .asciz "guest-strio: rep outsb to the UART\n"
msg_fail:
    .asciz "guest-strio: FAIL rep outsb went on\n"
bytes:
    .ascii "XY!"
"#,
    options(att_syntax)
);
