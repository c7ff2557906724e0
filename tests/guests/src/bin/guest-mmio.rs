//! `guest-mmio`: reads and writes its local APIC's xAPIC page at
//! 0xFEE0_0000 (32-bit, paging off), which no RAM backs, so that each
//! access faults to the VMM, which must decode the instruction and complete
//! it: loads in each addressing form a compiler emits (an absolute
//! address, [reg], [reg+disp], [reg+reg*s+disp]) and of each width (8-bit
//! with a high-byte register, 16, 32; movzx, movsx), stores of registers
//! and of immediates (8 and 32 bits), each checked by reading back the
//! task-priority register (TPR, 0x80) or the version register (0x30,
//! 0x0006_0014 in the VMM's model). Says `guest-mmio: xAPIC MMIO ok` and
//! passes; any value not as it must be is a `guest-mmio: FAIL check N`
//! line and a failure.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-mmio")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $0xfee00000, %ebx

    /* 1: an absolute address (A1 moffs32) into eax. */
    movl $1, %edi
    movl 0xfee00030, %eax
    cmpl $0x00060014, %eax
    jne bad
    /* 2: [reg+disp8] into ecx, the top of the register replaced. */
    movl $2, %edi
    movl $0xdeadbeef, %ecx
    movl 0x30(%ebx), %ecx
    cmpl $0x00060014, %ecx
    jne bad
    /* 3: [reg+reg*4+disp8] into edx. */
    movl $3, %edi
    movl $0x8, %esi
    movl 0x10(%ebx,%esi,4), %edx
    cmpl $0x00060014, %edx
    jne bad
    /* 4: [reg] into ebp (reg = 0xfee00030). */
    movl $4, %edi
    leal 0x30(%ebx), %esi
    movl (%esi), %ebp
    cmpl $0x00060014, %ebp
    jne bad
    /* 5: movzx of a byte and of a word. */
    movl $5, %edi
    movl $-1, %eax
    movzbl 0x30(%ebx), %eax
    cmpl $0x14, %eax
    jne bad
    movzwl 0x32(%ebx), %eax
    cmpl $0x6, %eax
    jne bad

    /* 6: a 32-bit store of a register, read back. */
    movl $6, %edi
    movl $0x20, %eax
    movl %eax, 0x80(%ebx)
    movl 0x80(%ebx), %ecx
    cmpl $0x20, %ecx
    jne bad
    /* 7: a 32-bit store of an immediate, read back into esi. */
    movl $7, %edi
    movl $0x40, 0x80(%ebx)
    movl 0x80(%ebx), %esi
    cmpl $0x40, %esi
    jne bad
    /* 8: an 8-bit store of an immediate, read into ah (a high byte). */
    movl $8, %edi
    movb $0x30, 0x80(%ebx)
    movl $0x11223344, %eax
    movb 0x80(%ebx), %ah
    cmpl $0x11223044, %eax
    jne bad
    /* 9: a 16-bit load into cx keeps the rest of ecx. */
    movl $9, %edi
    movl $0xabcd0000, %ecx
    movw 0x80(%ebx), %cx
    cmpl $0xabcd0030, %ecx
    jne bad
    /* 10: movsx of a byte that is negative (TPR 0xf0). */
    movl $10, %edi
    movb $0xf0, %dl
    movb %dl, 0x80(%ebx)
    movsbl 0x80(%ebx), %eax
    cmpl $0xfffffff0, %eax
    jne bad
    movl $0, 0x80(%ebx)

    movl $msg_ok, %esi
    call puts
    ret

bad:
    movl $msg_bad, %esi
    call puts
    movl %edi, %eax
    call put_dec
    call newline_mmio
    jmp guest_fail

newline_mmio:
    pushl %eax
    movb $0x0a, %al
    call putc
    popl %eax
    ret

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-mmio"
msg_ok:
    .asciz "guest-mmio: xAPIC MMIO ok\n"
msg_bad:
    .asciz "guest-mmio: FAIL check "
"#,
    options(att_syntax)
);
