//! `guest-mmio`: reads and writes its local APIC's xAPIC page at
//! 0xFEE0_0000 (32-bit, paging off), which no RAM backs, so that each
//! access faults to the VMM, which must decode the instruction and complete
//! it: loads in each addressing form a compiler emits (an absolute
//! address, [reg], [reg+disp], [reg+reg*s+disp]) and of each width (8-bit
//! with a high-byte register, 16, 32; movzx, movsx), stores of registers
//! and of immediates (8 and 32 bits), each checked by reading back the
//! task-priority register (TPR, 0x80) or the version register (0x30,
//! 0x0006_0014 in the VMM's model), then says `guest-mmio: xAPIC MMIO
//! ok`. Then it enters long mode with the page mapped at linear
//! 0x4000_0000 through a 4 KiB page of a 4-level walk (so the VMM must
//! walk its tables, not take linear for physical) and checks 64-bit forms:
//! REX registers (r9d, r13-r15, r10b), rip-relative, a 64-bit load and a
//! store of an immediate, [reg+reg*8+disp32], movsxd, movzx, an absolute
//! disp32 (SIB without base or index), [rsp+disp8], [rbp+disp8], [r13],
//! [r12+disp8], an index alone ([rcx*8+disp32]), 16-bit stores of a
//! register and an immediate, movsx of a word, a 64-bit store of a
//! register, 32-bit addressing (prefix 0x67), FS and GS overrides (bases
//! by WRMSR), a 64-bit moffs (movabs), a store from ah; says
//! `guest-mmio: long mode MMIO ok` and passes. Any value not as it must be
//! is a `guest-mmio: FAIL check N` line and a failure.

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

    /* Long mode: PML4[0] -> PDPT; PDPT[0] -> PD identity-mapping the
       first GiB (2 MiB pages); PDPT[1] -> PD1, PD1[0] -> PT, PT[0] = the
       xAPIC page: linear 0x4000_0000 is guest-physical 0xFEE0_0000,
       through a 4 KiB page of a 4-level walk (so the VMM must walk). */
    movl $pdpt, %eax
    orl $3, %eax
    movl %eax, pml4
    movl $pd0, %eax
    orl $3, %eax
    movl %eax, pdpt
    movl $pd1, %eax
    orl $3, %eax
    movl %eax, pdpt + 8
    movl $pt, %eax
    orl $3, %eax
    movl %eax, pd1
    movl $0xfee00013, pt            /* P, W, PCD */
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, pd0(,%ecx,8)
    incl %ecx
    cmpl $512, %ecx
    jb 1b
    movl %cr4, %eax
    orl $0x20, %eax                 /* PAE */
    movl %eax, %cr4
    movl $pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx          /* EFER.LME */
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    lgdt gdt64_ptr
    /* Far jump to the 64-bit code segment (hand-encoded, EMULATORS.md). */
    .byte 0xEA
    .long long_entry
    .word 0x08

    .code64
long_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movq $0x40000000, %rbx
    /* 11: [reg+disp8] into r9d (REX), the top of r9 cleared. */
    movl $11, %edi
    movq $-1, %r9
    movl 0x30(%rbx), %r9d
    cmpq $0x00060014, %r9
    jne bad64
    /* 12: rip-relative. */
    movl $12, %edi
    movl apic_alias + 0x30(%rip), %eax
    cmpl $0x00060014, %eax
    jne bad64
    /* 13: a 64-bit load: the version and the slot's next dword (0). */
    movl $13, %edi
    movq $-1, %rax
    movq 0x30(%rbx), %rax
    cmpq $0x00060014, %rax
    jne bad64
    /* 14: [reg+reg*8+disp32] into r14d, a negative index: 0x100 - 26 * 8. */
    movl $14, %edi
    movq $-26, %rcx
    movl 0x100(%rbx,%rcx,8), %r14d
    cmpl $0x00060014, %r14d
    jne bad64
    /* 15: a 64-bit store of an immediate, read back by movsxd into r13. */
    movl $15, %edi
    movq $0x50, 0x80(%rbx)
    movslq 0x80(%rbx), %r13
    cmpq $0x50, %r13
    jne bad64
    /* 16: a store from r10b, read back by movzx into r15. */
    movl $16, %edi
    movb $0x60, %r10b
    movb %r10b, 0x80(%rbx)
    movzbq 0x80(%rbx), %r15
    cmpq $0x60, %r15
    jne bad64
    movq $0, 0x80(%rbx)
    /* 17: an absolute disp32 (SIB, no base, no index). */
    movl $17, %edi
    movl $-1, %eax
    movl apic_alias + 0x30, %eax
    cmpl $0x00060014, %eax
    jne bad64
    /* 18: [rsp+disp8] (SIB with rsp as base). */
    movl $18, %edi
    movq %rsp, %r11
    movq %rbx, %rsp
    movl 0x30(%rsp), %ecx
    movq %r11, %rsp
    cmpl $0x00060014, %ecx
    jne bad64
    /* 19: [rbp+disp8], and [r13] (which needs a disp8 of 0). */
    movl $19, %edi
    movq %rbx, %rbp
    movl 0x30(%rbp), %edx
    cmpl $0x00060014, %edx
    jne bad64
    leaq 0x30(%rbx), %r13
    movl (%r13), %edx
    cmpl $0x00060014, %edx
    jne bad64
    /* 20: [r12+disp8] (r12 needs a SIB byte). */
    movl $20, %edi
    movq %rbx, %r12
    movl 0x30(%r12), %r8d
    cmpl $0x00060014, %r8d
    jne bad64
    /* 21: an index alone, [rcx*8+disp32]. */
    movl $21, %edi
    movq $6, %rcx
    movl apic_alias(,%rcx,8), %eax
    cmpl $0x00060014, %eax
    jne bad64
    /* 22: 16-bit stores (register, immediate), movsx of a word. */
    movl $22, %edi
    movw $0x70, %cx
    movw %cx, 0x80(%rbx)
    movl 0x80(%rbx), %eax
    cmpl $0x70, %eax
    jne bad64
    movw $0x50, 0x80(%rbx)
    movl 0x80(%rbx), %eax
    cmpl $0x50, %eax
    jne bad64
    movq $-1, %rax
    movswq 0x30(%rbx), %rax
    cmpq $0x14, %rax
    jne bad64
    /* 23: a 64-bit store of a register. */
    movl $23, %edi
    movq $0x20, %rax
    movq %rax, 0x80(%rbx)
    movl 0x80(%rbx), %eax
    cmpl $0x20, %eax
    jne bad64
    /* 24: 32-bit addressing in long mode (address-size prefix 0x67). */
    movl $24, %edi
    movl 0x30(%ebx), %eax
    cmpl $0x00060014, %eax
    jne bad64
    /* 25: FS and GS overrides, their bases set by WRMSR. */
    movl $25, %edi
    movl $0xC0000100, %ecx          /* FS_BASE */
    movl $0x40000000, %eax
    xorl %edx, %edx
    wrmsr
    movl $0xC0000101, %ecx          /* GS_BASE */
    movl $0x3FFFFFF0, %eax
    wrmsr
    movl %fs:0x30, %eax
    cmpl $0x00060014, %eax
    jne bad64
    movq $0x30, %rcx
    movl %gs:0x10(%rcx), %eax       /* 0x3FFFFFF0 + 0x40 */
    cmpl $0x00060014, %eax
    jne bad64
    /* 26: a 64-bit moffs (movabs) into eax. */
    movl $26, %edi
    movl $-1, %eax
    movabsl apic_alias + 0x30, %eax
    cmpl $0x00060014, %eax
    jne bad64
    /* 27: a store from ah (a high byte), read back by movzx. */
    movl $27, %edi
    movl $0x3000, %eax
    movb %ah, 0x80(%rbx)
    movzbl 0x80(%rbx), %ecx
    cmpl $0x30, %ecx
    jne bad64
    movq $0, 0x80(%rbx)
    leaq msg_ok64(%rip), %rsi
    call puts64
    xorl %eax, %eax
    jmp exit64
bad64:
    leaq msg_bad(%rip), %rsi
    call puts64
    movl %edi, %eax
    call put_dec64
    call newline64
    movl $1, %eax
exit64:
    movw $0xf4, %dx
    outb %al, %dx
2:  hlt
    jmp 2b

    .code32

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
msg_ok64:
    .asciz "guest-mmio: long mode MMIO ok\n"

    .set apic_alias, 0x40000000
    .balign 8
gdt64:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08 code, 64-bit */
    .quad 0x00CF92000000FFFF        /* 0x10 data */
gdt64_end:
gdt64_ptr:
    .word gdt64_end - gdt64 - 1
    .quad gdt64

    .section .bss.guest_main, "aw", @nobits
    .balign 4096
pml4: .skip 4096
pdpt: .skip 4096
pd0: .skip 4096
pd1: .skip 4096
pt: .skip 4096
"#,
    options(att_syntax)
);
