//! `guest-reboot`: counts its boots in CMOS memory (byte 0x48) and resets
//! its machine twice, through each reset a PC has, in 64-bit mode.
//!
//! - Every boot: its RAM is the image's again (a `.bss` word it sets is
//!   found clear) and its CMOS clock's status B is 0x02 (BCD, 24-hour) as
//!   at power-on, whatever the boot before set; it prints `guest-reboot:
//!   boot <n>` (n = the count read, plus one).
//! - Boot 1 (the byte reads 0): writes 1, sets status B to binary mode,
//!   and resets through the ACPI reset register (0x06 to port 0xCF9).
//! - Boot 2 (1): writes 2 and pulses the reset line through the keyboard
//!   controller (command 0xFE to port 0x64).
//! - Boot 3 (2): reports success on the exit port.
//!
//! A reset that does not happen leaves it halted with interrupts off (its
//! VMM ends it as halted); any other count, dirty RAM or status B fails
//! it with a `guest-reboot: FAIL <what>` line and exit code 1.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-reboot")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set COUNT, 0x48
    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    jmp long_mode

    .code64
    .global guest_main64
guest_main64:
    cmpq $0, dirty
    movq $msg_dirty, %rsi
    jne fail_line64
    movq $1, dirty
    movb $0x0B, %al
    call cmos_read64
    cmpb $0x02, %al
    movq $msg_status_b, %rsi
    jne fail_line64
    movb $COUNT, %al
    call cmos_read64
    movzbq %al, %rbx
    movq $msg_boot, %rsi
    call puts64
    leaq 1(%rbx), %rax
    call put_dec64
    call newline64
    cmpq $2, %rbx
    je 3f
    movq $msg_count, %rsi
    ja fail_line64
    /* The next boot's count. */
    leaq 1(%rbx), %rax
    movb %al, %ah
    movb $COUNT, %al
    call cmos_write64
    cmpq $1, %rbx
    je 2f
    /* Boot 1: binary mode, then the ACPI reset register. */
    movw $(0x0B | 0x06 << 8), %ax
    call cmos_write64
    movq $msg_cf9, %rsi
    call puts64
    movb $0x06, %al
    movw $0xCF9, %dx
    outb %al, %dx
    jmp 9f
2:  /* Boot 2: the keyboard controller's reset pulse. */
    movq $msg_kbd, %rsi
    call puts64
    movb $0xFE, %al
    movw $0x64, %dx
    outb %al, %dx
9:  cli
    hlt
    jmp 9b
3:  movq $msg_done, %rsi
    call puts64
    ret


    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-reboot"
msg_dirty:
    .asciz "its RAM kept the boot before's (a .bss word was set)"
msg_status_b:
    .asciz "status B is not 0x02 (BCD, 24-hour) at boot"
msg_count:
    .asciz "the boot count in CMOS byte 0x48 is past 2"
msg_boot:
    .asciz "guest-reboot: boot "
msg_cf9:
    .asciz "guest-reboot: resetting through the reset register 0xcf9\n"
msg_kbd:
    .asciz "guest-reboot: resetting through the keyboard controller (0xfe to port 0x64)\n"
msg_done:
    .asciz "guest-reboot: three boots, done\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 8
dirty:
    .skip 8
"#,
    options(att_syntax)
);
