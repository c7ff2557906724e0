//! `guest-reset-loop`: the reboot's hostile twin. Each boot prints
//! `guest-reset-loop: resetting` and at once resets its machine through
//! the ACPI reset register (0x06 to port 0xCF9), for ever: its VMM must
//! bound the restarts (`vmm::reboot`). A reset that does not happen
//! leaves it halted with interrupts off.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-reset-loop")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    jmp long_mode

    .code64
    .global guest_main64
guest_main64:
    movq $msg_reset, %rsi
    call puts64
    movb $0x06, %al
    movw $0xCF9, %dx
    outb %al, %dx
1:  cli
    hlt
    jmp 1b

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-reset-loop"
msg_reset:
    .asciz "guest-reset-loop: resetting\n"
"#,
    options(att_syntax)
);
