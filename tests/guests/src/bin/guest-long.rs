//! `guest-long`: a 64-bit guest. Started in 32-bit protected mode by
//! Multiboot, it identity-maps its first GiB (2 MiB pages, user-accessible),
//! enables PAE, sets EFER.LME and SCE by WRMSR and turns paging on, which
//! enters long mode; then, in 64-bit code with its own GDT and IDT:
//!
//! - writes every MSR the kernel keeps (`ipc::msr`) with values of its own,
//!   derived from `tag=<T>` on its command line (1 or 2): FS_BASE, GS_BASE
//!   and KERNEL_GS_BASE point at words that say which they are; STAR,
//!   LSTAR (one of 16 entry stubs, stub T), CSTAR, SFMASK, SYSENTER_*, PAT
//!   and TSC_AUX;
//! - reads `%fs:0` and `%gs:0`, SWAPGS, `%gs:0` again; SYSCALL (with DF
//!   set, which SFMASK clears) to its stub, SYSRET to ring 3, SYSCALL back;
//!   RDTSCP (ECX = TSC_AUX); RDMSR of MTRRcap and MISC_ENABLE (its VMM's);
//! - expects #GP from its own IDT for a PAT with a reserved type, EFER.SVME,
//!   a non-canonical LSTAR and an unknown MSR (read and written);
//! - `rounds=<n>` times, `round_ms=<ms>` apart (spinning on the TSC at the
//!   `tsc_khz=` its VMM appends), reads every kept MSR back and repeats the
//!   segment-base, SYSCALL and RDTSCP checks: a guest beside it on the
//!   same CPU with other values must never show through.
//!
//! Each result is a line `guest-long: …`; any mismatch prints
//! `guest-long: FAIL …` and reports failure on the exit port.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-long")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $opt_tag, %esi
    call cmdline_number
    movl %eax, tag
    movl $opt_rounds, %esi
    call cmdline_number
    movl %eax, rounds
    movl $opt_round_ms, %esi
    call cmdline_number
    movl %eax, round_ms
    movl $opt_tsc_khz, %esi
    call cmdline_number
    movl %eax, tsc_khz
    movl tag, %eax
    cmpl $1, %eax
    jb 9f
    cmpl $2, %eax
    ja 9f
    /* Page tables: PML4[0] -> PDPT[0] -> PD of 512 2 MiB pages (P, W, U, PS). */
    movl $pdpt, %eax
    orl $7, %eax
    movl %eax, pml4
    movl $pd, %eax
    orl $7, %eax
    movl %eax, pdpt
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x87, %eax
    movl %eax, pd(,%ecx,8)
    movl $0, pd+4(,%ecx,8)
    incl %ecx
    cmpl $512, %ecx
    jb 1b
    movl %cr4, %eax
    orl $0x20, %eax                 /* PAE */
    movl %eax, %cr4
    movl $pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx          /* EFER: LME | SCE */
    rdmsr
    orl $0x101, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax           /* PG: long mode is active */
    movl %eax, %cr0
    lgdt gdt64_ptr
    /* Far jump to the 64-bit code segment (hand-encoded, EMULATORS.md). */
    .byte 0xEA
    .long long_entry
    .word 0x08
9:  movl $msg_no_tag, %esi
    call puts
    jmp guest_fail

    .code64
long_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movq $stack64_top, %rsp
    call idt64_install
    movl $0xC0000080, %ecx
    rdmsr
    shlq $32, %rdx
    movl %eax, %eax
    orq %rdx, %rax
    movq $msg_efer, %rsi
    call puts64
    call put_hex64
    call newline64
    call table_make
    call table_write
    call table_check
    movq $msg_written, %rsi
    call puts64
    call live_check
    movq $msg_segments, %rsi
    call puts64
    movq $msg_syscall, %rsi
    call puts64
    movq tag, %rax
    call put_hex64
    call newline64
    movq $msg_rdtscp, %rsi
    call puts64
    movq $0x100, %rax
    addq tag, %rax
    call put_hex64
    call newline64
    /* The VMM's MSRs. */
    movl $0xFE, %ecx
    call rdmsr64
    movq $msg_mtrrcap, %rsi
    call puts64
    call put_hex64
    movl $0x1A0, %ecx
    call rdmsr64
    movq $msg_misc, %rsi
    call puts64
    call put_hex64
    call newline64
    /* What the CPU refuses with #GP. */
    movl $0x277, %ecx               /* PAT, entry 0 of type 2 (reserved) */
    movl $0x00070402, %eax
    movl $0x00070406, %edx
    movq $msg_pat, %rsi
    call wrmsr_refused
    movl $0xC0000080, %ecx          /* EFER.SVME */
    movl $0x1501, %eax
    xorl %edx, %edx
    movq $msg_svme, %rsi
    call wrmsr_refused
    movl $0xC0000082, %ecx          /* LSTAR, non-canonical */
    xorl %eax, %eax
    movl $0x00008000, %edx
    movq $msg_lstar, %rsi
    call wrmsr_refused
    movl $0xC0DE0042, %ecx          /* nobody's MSR */
    movl $1, %eax
    xorl %edx, %edx
    movq $msg_unknown_w, %rsi
    call wrmsr_refused
    movq $after_rdmsr, expect_gp
    movl $0xC0DE0042, %ecx
    rdmsr
    movq $msg_fail_unknown_r, %rsi
    jmp fail64
after_rdmsr:
    movq $msg_unknown_r, %rsi
    call puts64
    /* Rounds: everything still ours, the other guest's slices between. */
    xorq %r12, %r12
2:  cmpq rounds, %r12
    jae 3f
    movq round_ms, %rax
    call delay64
    call table_check
    call live_check
    incq %r12
    jmp 2b
3:  movq $msg_rounds, %rsi
    call puts64
    movq %r12, %rax
    call put_hex64
    movq $msg_rounds2, %rsi
    call puts64
    movw $0xf4, %dx
    movb $0, %al
    outb %al, %dx
4:  hlt
    jmp 4b

/* %rcx's MSR into %rax (edx:eax). */
rdmsr64:
    pushq %rdx
    rdmsr
    shlq $32, %rdx
    movl %eax, %eax
    orq %rdx, %rax
    popq %rdx
    ret

/* WRMSR of edx:eax to %ecx must raise #GP; then prints the line at %rsi. */
wrmsr_refused:
    movq $wrmsr_was_refused, expect_gp
    wrmsr
    movq $msg_fail_taken, %rsi
    jmp fail64
wrmsr_was_refused:
    call puts64
    ret

/* The kept MSRs and this guest's values (tag T). */
table_make:
    movq tag, %rbx
    movq $msr_tab, %rdi
    movq $0xC0000080, %rax          /* EFER: SCE, LME; LMA the CPU's */
    movq $0x501, %rdx
    call table_put
    movq $0xC0000100, %rax          /* FS_BASE: slots[T] */
    leaq slots(,%rbx,8), %rdx
    call table_put
    movq $0xC0000101, %rax          /* GS_BASE: slots[8 + T] */
    leaq slots+64(,%rbx,8), %rdx
    call table_put
    movq $0xC0000102, %rax          /* KERNEL_GS_BASE: slots[16 + T] */
    leaq slots+128(,%rbx,8), %rdx
    call table_put
    movq $0xC0000081, %rax          /* STAR: SYSRET base 0x18, SYSCALL 0x08 */
    movq $0x0018000800000000, %rdx
    orq %rbx, %rdx
    call table_put
    movq $0xC0000082, %rax          /* LSTAR: stub T */
    movq %rbx, %rdx
    shlq $4, %rdx
    addq $sys_stubs, %rdx
    call table_put
    movq $0xC0000083, %rax          /* CSTAR */
    movq %rbx, %rdx
    shlq $12, %rdx
    call table_put
    movq $0xC0000084, %rax          /* SFMASK: DF, and TF or IF */
    movq %rbx, %rdx
    shlq $8, %rdx
    orq $0x400, %rdx
    call table_put
    movq $0x174, %rax               /* SYSENTER_CS */
    leaq 0x10(%rbx), %rdx
    call table_put
    movq $0x175, %rax               /* SYSENTER_ESP */
    movq %rbx, %rdx
    shlq $13, %rdx
    call table_put
    movq $0x176, %rax               /* SYSENTER_EIP */
    movq %rbx, %rdx
    shlq $14, %rdx
    call table_put
    movq $0x277, %rax               /* PAT: entry 7 WP (T 1) or WB (T 2) */
    leaq 4(%rbx), %rdx
    shlq $56, %rdx
    movq $0x0007040600070406, %rcx
    orq %rcx, %rdx
    call table_put
    movq $0xC0000103, %rax          /* TSC_AUX */
    leaq 0x100(%rbx), %rdx
    call table_put
    ret
table_put:
    movq %rax, (%rdi)
    movq %rdx, 8(%rdi)
    addq $16, %rdi
    incq msr_count
    ret

table_write:
    movq $msr_tab, %rsi
    movq msr_count, %r8
1:  movl (%rsi), %ecx
    movl 8(%rsi), %eax
    movl 12(%rsi), %edx
    wrmsr
    addq $16, %rsi
    decq %r8
    jnz 1b
    ret

table_check:
    movq $msr_tab, %rsi
    movq msr_count, %r8
1:  movl (%rsi), %ecx
    call rdmsr64
    cmpq 8(%rsi), %rax
    jne 2f
    addq $16, %rsi
    decq %r8
    jnz 1b
    ret
2:  movq %rsi, %rdi
    movq %rax, %rbx
    movq $msg_fail_msr, %rsi
    call puts64
    movq (%rdi), %rax
    call put_hex64
    movq $msg_read, %rsi
    call puts64
    movq %rbx, %rax
    call put_hex64
    movq $msg_want, %rsi
    call puts64
    movq 8(%rdi), %rax
    call put_hex64
    call newline64
    jmp fail64_quiet

/* The segment bases, SWAPGS, SYSCALL/SYSRET and RDTSCP, live. */
live_check:
    movq tag, %rbx
    movq %fs:0, %rax
    leaq 0x5100(%rbx), %rcx
    movq $msg_fail_fs, %rsi
    cmpq %rcx, %rax
    jne fail64_value
    movq %gs:0, %rax
    leaq 0x5108(%rbx), %rcx
    movq $msg_fail_gs, %rsi
    cmpq %rcx, %rax
    jne fail64_value
    swapgs
    movq %gs:0, %rax
    swapgs
    leaq 0x5110(%rbx), %rcx
    movq $msg_fail_kgs, %rsi
    cmpq %rcx, %rax
    jne fail64_value
    /* SYSCALL with DF set: SFMASK clears it in the handler. */
    pushfq
    std
    movq %rsp, saved_rsp
    movq $0, phase
    syscall
back_in_ring0:
    movq saved_rsp, %rsp
    popfq
    movq ring3_cs, %rax
    movq $0x2b, %rcx
    movq $msg_fail_ring3, %rsi
    cmpq %rcx, %rax
    jne fail64_value
    rdtscp
    movl %ecx, %eax
    leaq 0x100(%rbx), %rcx
    movq $msg_fail_aux, %rsi
    cmpq %rcx, %rax
    jne fail64_value
    ret

/* SYSCALL's entry stubs: LSTAR is stub T; each says its number in %r10. */
    .balign 16
sys_stubs:
    .set n, 0
    .rept 16
    .balign 16
    movq $n, %r10
    jmp sys_common
    .set n, n + 1
    .endr

sys_common:
    movq tag, %rax
    movq %r10, %rbx
    movq $msg_fail_stub, %rsi
    cmpq %rax, %rbx
    jne fail64_value
    pushfq
    popq %rax
    movq $msg_fail_sfmask, %rsi
    testq $0x400, %rax
    jnz fail64_value
    movq $msg_fail_r11, %rsi
    testq $0x400, %r11
    jz fail64_value
    cmpq $0, phase
    jne 1f
    /* From ring 0: SYSRET to ring 3 (CS 0x2b, SS 0x23), which calls back. */
    movq $1, phase
    movq $ring3, %rcx
    movq $0x402, %r11               /* DF, to be cleared again */
    sysretq
1:  movq tag, %rbx
    jmp back_in_ring0

ring3:
    movw %cs, %ax
    movzwq %ax, %rax
    movq %rax, ring3_cs
    syscall

/* A 64-bit IDT: #GP to gp64 (which may expect it), the rest to trap64. */
idt64_install:
    movq $idt64, %rdi
    xorl %ecx, %ecx
1:  movq $trap64, %rax
    cmpl $13, %ecx
    jne 2f
    movq $gp64, %rax
2:  movw %ax, (%rdi)
    movw $0x08, 2(%rdi)
    movw $0x8E00, 4(%rdi)
    shrq $16, %rax
    movw %ax, 6(%rdi)
    shrq $16, %rax
    movl %eax, 8(%rdi)
    movl $0, 12(%rdi)
    addq $16, %rdi
    incl %ecx
    cmpl $32, %ecx
    jb 1b
    lidt idt64_ptr
    ret

/* #GP: resumes at `expect_gp` if set (once), else fails. */
gp64:
    pushq %rax
    movq expect_gp, %rax
    testq %rax, %rax
    jz 1f
    movq %rax, 16(%rsp)
    movq $0, expect_gp
    popq %rax
    addq $8, %rsp
    iretq
1:  movq $msg_fail_gp, %rsi
    call puts64
    movq 16(%rsp), %rax
    call put_hex64
    call newline64
    jmp fail64_quiet

trap64:
    movq $msg_fail_trap, %rsi
    call puts64
    movq (%rsp), %rax
    call put_hex64
    movq $msg_then, %rsi
    call puts64
    movq 8(%rsp), %rax
    call put_hex64
    call newline64
    jmp fail64_quiet

/* Spins %rax milliseconds on the TSC (at tsc_khz). */
delay64:
    pushq %rcx
    pushq %rdx
    imulq tsc_khz, %rax
    movq %rax, %rcx
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    addq %rax, %rcx
1:  pause
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    cmpq %rcx, %rax
    jb 1b
    popq %rdx
    popq %rcx
    ret

/* Fails: the line at %rsi, then "got <rax> want <rcx>". */
fail64_value:
    pushq %rcx
    pushq %rax
    call puts64
    movq $msg_got, %rsi
    call puts64
    popq %rax
    call put_hex64
    movq $msg_want, %rsi
    call puts64
    popq %rax
    call put_hex64
    call newline64
    jmp fail64_quiet
fail64:
    call puts64
fail64_quiet:
    movw $0xf4, %dx
    movb $1, %al
    outb %al, %dx
1:  hlt
    jmp 1b

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-long"
opt_tag:
    .asciz "tag="
opt_rounds:
    .asciz "rounds="
opt_round_ms:
    .asciz "round_ms="
opt_tsc_khz:
    .asciz "tsc_khz="
msg_no_tag:
    .asciz "guest-long: FAIL no tag=1 or tag=2 on the command line\n"
msg_efer:
    .asciz "guest-long: long mode, efer "
msg_written:
    .asciz "guest-long: 13 msrs written and read back\n"
msg_segments:
    .asciz "guest-long: fs, gs and swapgs to kernel gs: own bases\n"
msg_syscall:
    .asciz "guest-long: syscall to stub, sysret to ring 3, syscall back: stub "
msg_rdtscp:
    .asciz "guest-long: rdtscp aux "
msg_mtrrcap:
    .asciz "guest-long: mtrrcap "
msg_misc:
    .asciz " misc_enable "
msg_pat:
    .asciz "guest-long: pat of a reserved type refused with #GP\n"
msg_svme:
    .asciz "guest-long: efer.svme refused with #GP\n"
msg_lstar:
    .asciz "guest-long: non-canonical lstar refused with #GP\n"
msg_unknown_w:
    .asciz "guest-long: wrmsr of an unknown msr refused with #GP\n"
msg_unknown_r:
    .asciz "guest-long: rdmsr of an unknown msr refused with #GP\n"
msg_rounds:
    .asciz "guest-long: "
msg_rounds2:
    .asciz " rounds, msrs kept\n"
msg_fail_taken:
    .asciz "guest-long: FAIL a wrmsr the CPU refuses was taken\n"
msg_fail_unknown_r:
    .asciz "guest-long: FAIL rdmsr of an unknown msr was answered\n"
msg_fail_msr:
    .asciz "guest-long: FAIL msr "
msg_read:
    .asciz " read "
msg_want:
    .asciz " want "
msg_got:
    .asciz " got "
msg_then:
    .asciz " then "
msg_fail_fs:
    .asciz "guest-long: FAIL fs:0"
msg_fail_gs:
    .asciz "guest-long: FAIL gs:0"
msg_fail_kgs:
    .asciz "guest-long: FAIL gs:0 after swapgs"
msg_fail_ring3:
    .asciz "guest-long: FAIL cs in ring 3"
msg_fail_aux:
    .asciz "guest-long: FAIL rdtscp aux"
msg_fail_stub:
    .asciz "guest-long: FAIL syscall reached another stub"
msg_fail_sfmask:
    .asciz "guest-long: FAIL sfmask left rflags"
msg_fail_r11:
    .asciz "guest-long: FAIL r11 lacks the caller's DF"
msg_fail_gp:
    .asciz "guest-long: FAIL unexpected #GP at "
msg_fail_trap:
    .asciz "guest-long: FAIL unexpected exception: "

    .balign 8
gdt64:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08 code, 64-bit */
    .quad 0x00CF92000000FFFF        /* 0x10 data */
    .quad 0x00CFFA000000FFFF        /* 0x18 user code, 32-bit (SYSRET's base) */
    .quad 0x00CFF2000000FFFF        /* 0x20 user data */
    .quad 0x00AFFA000000FFFF        /* 0x28 user code, 64-bit */
gdt64_end:
gdt64_ptr:
    .word gdt64_end - gdt64 - 1
    .quad gdt64
idt64_ptr:
    .word 32 * 16 - 1
    .quad idt64

    .section .data.guest_main, "aw"
    .balign 8
/* What FS, GS and KERNEL_GS_BASE point at: slot i holds 0x5100 + i. */
slots:
    .set n, 0
    .rept 24
    .quad 0x5100 + n
    .set n, n + 1
    .endr
tag: .quad 0
rounds: .quad 0
round_ms: .quad 0
tsc_khz: .quad 0
expect_gp: .quad 0
phase: .quad 0
saved_rsp: .quad 0
ring3_cs: .quad 0
msr_count: .quad 0
msr_tab:
    .fill 32, 8, 0

    .section .bss.guest_main, "aw", @nobits
    .balign 4096
pml4: .skip 4096
pdpt: .skip 4096
pd: .skip 4096
idt64: .skip 32 * 16
    .balign 16
    .skip 8192
stack64_top:
"#,
    options(att_syntax)
);
