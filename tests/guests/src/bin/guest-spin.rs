//! `guest-spin`: CPU-bound. Counts down 40 rounds of 2,000,000 (a
//! two-instruction loop: 4 million instructions a round; `count=<n>` on the
//! command line sets another count) and prints `spin <n>` after each round,
//! then `guest-spin: done` and reports success. The progress lines of two
//! of them on one CPU show how the scheduler shares it.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-spin")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set ROUNDS, 40
    .set COUNT, 2000000

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $COUNT, count
    movl $opt_count, %esi
    call cmdline_has
    testl %eax, %eax
    jz 4f
    /* The decimal number after `count=`, if it is not 0. */
    movl %eax, %esi
    xorl %eax, %eax
3:  movzbl (%esi), %ecx
    subl $0x30, %ecx
    cmpl $9, %ecx
    ja 5f
    imull $10, %eax
    addl %ecx, %eax
    incl %esi
    jmp 3b
5:  testl %eax, %eax
    jz 4f
    movl %eax, count
4:  movl $msg_start, %esi
    call puts
    movl $ROUNDS, %eax
    call put_dec
    movl $msg_rounds, %esi
    call puts
    movl count, %eax
    call put_dec
    movb $0x0a, %al
    call putc
    movl $1, %edi
1:  movl count, %ecx
2:  decl %ecx
    jnz 2b
    movl $msg_spin, %esi
    call puts
    movl %edi, %eax
    call put_dec
    movb $0x0a, %al
    call putc
    incl %edi
    cmpl $ROUNDS + 1, %edi
    jne 1b
    movl $msg_done, %esi
    call puts
    ret

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-spin"
msg_start:
    .asciz "guest-spin: counting down "
msg_rounds:
    .asciz " rounds of "
opt_count:
    .asciz "count="
msg_spin:
    .asciz "spin "
msg_done:
    .asciz "guest-spin: done\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 4
count:
    .skip 4
"#,
    options(att_syntax)
);
