//! The 64-bit side of the test guests: `long_mode` (jumped to from a
//! guest's 32-bit `guest_main`) identity-maps the first 4 GiB with 2 MiB
//! pages (those from 0xC000_0000, where the devices are, uncached), enters
//! long mode with a 64-bit GDT and an IDT of 256 gates, and calls the
//! guest's `guest_main64`; its return passes (exit code 0).
//!
//! In 64-bit code (the calling convention of the crate, with 64-bit
//! registers):
//!
//! - `guest_exit64`: exit code `%al`; `guest_fail64`: exit code 1.
//! - `put_hex64`: prints `%rax` as `0x` and 16 hex digits; `put_dec64`:
//!   prints `%rax` in decimal; `newline64`. All keep every register.
//! - `gate64_set`: points vector `%ecx` at the handler at `%rax` (an
//!   interrupt gate; keeps every register).
//! - An exception (vectors 0–31) fails the guest with a line
//!   `<guest_name>: FAIL exception <vector> error <code> at rip <rip>`,
//!   except a #GP while `gp_resume` is set: it goes on at `gp_resume`
//!   (which is cleared) and counts in `gp_count` (64-bit words).
//! - `tsc_rates64`: `%eax` = the TSC's rate and `%edx` = the APIC timer's,
//!   in kHz, from CPUID 0x4000_0010 (fails the guest if there is none).
//! - `spin_us64`: spins `%rax` microseconds on the TSC (keeps every
//!   register; `tsc_rates64` first); `spin_sti64` the same with
//!   interrupts on (off again after).
//! - `wait_count64`: waits, interrupts on, until the 64-bit count at
//!   `%rdi` reaches `%rax`, for at most 2 s; carry set if it did not
//!   (interrupts off again after; keeps every register).
//! - `fail_line64`: fails the guest with a line `<guest_name>: FAIL
//!   <the line at %rsi>` (interrupts off).
//! - `x2apic_on64`: the local APIC in x2APIC mode, enabled (SVR 0x1FF;
//!   clobbers `%eax`, `%ecx`, `%edx`).
//! - `ioapic_read64`: `%eax` = I/O APIC register `%al`; `ioapic_write64`:
//!   register `%al` = `%edx` (keeps every register).
//! - `cmos_read64`: `%al` = CMOS register `%al` (the index port's bit 7 as
//!   given); `cmos_write64`: register `%al` = `%ah` (both keep the rest).

core::arch::global_asm!(
    r#"
    .section .text.guest_long, "ax"
    .code32
    .global long_mode
long_mode:
    cli
    /* PML4[0] -> PDPT; PDPT[0..4] -> four PDs of 512 2 MiB pages each. */
    movl $long_pdpt, %eax
    orl $3, %eax
    movl %eax, long_pml4
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $12, %eax
    addl $long_pd, %eax
    orl $3, %eax
    movl %eax, long_pdpt(,%ecx,8)
    movl $0, long_pdpt+4(,%ecx,8)
    incl %ecx
    cmpl $4, %ecx
    jb 1b
    xorl %ecx, %ecx
2:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax                 /* P, W, PS */
    cmpl $1536, %ecx                /* from 0xC000_0000: PCD */
    jb 3f
    orl $0x10, %eax
3:  movl %eax, long_pd(,%ecx,8)
    movl $0, long_pd+4(,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jb 2b
    movl %cr4, %eax
    orl $0x20, %eax                 /* PAE */
    movl %eax, %cr4
    movl $long_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx          /* EFER.LME */
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    lgdt long_gdt_ptr
    /* Far jump to the 64-bit code segment (hand-encoded, EMULATORS.md). */
    .byte 0xEA
    .long long_start
    .word 0x08

    .code64
long_start:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl %esp, %esp                 /* the top half cleared */
    andq $-16, %rsp
    /* The exception gates: stub i at long_stubs + 16 * i. */
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $4, %eax
    addq $long_stubs, %rax
    call gate64_set
    incl %ecx
    cmpl $32, %ecx
    jb 1b
    lidt long_idt_ptr
    call guest_main64
    xorl %eax, %eax

    .global guest_exit64
guest_exit64:
    movw $0xf4, %dx
    outb %al, %dx
1:  hlt
    jmp 1b

    .global guest_fail64
guest_fail64:
    movb $1, %al
    jmp guest_exit64

    .global gate64_set
gate64_set:
    pushq %rax
    pushq %rdi
    movl %ecx, %edi
    shlq $4, %rdi
    addq $long_idt, %rdi
    movw %ax, (%rdi)
    movw $0x08, 2(%rdi)
    movw $0x8E00, 4(%rdi)           /* present, DPL 0, interrupt gate */
    shrq $16, %rax
    movw %ax, 6(%rdi)
    shrq $16, %rax
    movl %eax, 8(%rdi)
    movl $0, 12(%rdi)
    popq %rdi
    popq %rax
    ret

    .global fail_line64
fail_line64:
    cli
    pushq %rsi
    movq $guest_name, %rsi
    call puts64
    movq $long_msg_fail, %rsi
    call puts64
    popq %rsi
    call puts64
    call newline64
    jmp guest_fail64

    .global x2apic_on64
x2apic_on64:
    movl $0x1B, %ecx                /* IA32_APIC_BASE: EXTD and EN */
    rdmsr
    orl $0xC00, %eax
    wrmsr
    movl $0x80F, %ecx               /* SVR: enabled, vector 0xFF */
    movl $0x1FF, %eax
    xorl %edx, %edx
    wrmsr
    ret

    .global ioapic_read64
ioapic_read64:
    pushq %rbx
    movl $0xFEC00000, %ebx
    movzbl %al, %eax
    movl %eax, (%rbx)
    movl 0x10(%rbx), %eax
    popq %rbx
    ret

    .global ioapic_write64
ioapic_write64:
    pushq %rbx
    movl $0xFEC00000, %ebx
    movb %al, (%rbx)
    movl %edx, 0x10(%rbx)
    popq %rbx
    ret

    .global cmos_read64
cmos_read64:
    pushq %rdx
    movw $0x70, %dx
    outb %al, %dx
    movw $0x71, %dx
    inb %dx, %al
    popq %rdx
    ret

    .global cmos_write64
cmos_write64:
    pushq %rdx
    movw $0x70, %dx
    outb %al, %dx
    movb %ah, %al
    movw $0x71, %dx
    outb %al, %dx
    popq %rdx
    ret

    /* The printing routines in a section of their own, which a guest that
       does not enter long mode through long_mode may use alone. */
    .section .text.guest_print64, "ax"
    .global newline64
newline64:
    pushq %rax
    movb $0x0a, %al
    call putc64
    popq %rax
    ret

    .global put_hex64
put_hex64:
    pushq %rax
    pushq %rbx
    pushq %rcx
    movq %rax, %rbx
    movb $0x30, %al
    call putc64
    movb $0x78, %al
    call putc64
    movl $16, %ecx
1:  rolq $4, %rbx
    movl %ebx, %eax
    andl $0xf, %eax
    movb long_hex(%rax), %al
    call putc64
    decl %ecx
    jnz 1b
    popq %rcx
    popq %rbx
    popq %rax
    ret

    .global put_dec64
put_dec64:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    movl $10, %ebx
    xorl %ecx, %ecx
1:  xorl %edx, %edx
    divq %rbx
    pushq %rdx
    incl %ecx
    testq %rax, %rax
    jnz 1b
2:  popq %rax
    addb $0x30, %al
    call putc64
    decl %ecx
    jnz 2b
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    ret

    .section .text.guest_long, "ax"
    .global tsc_rates64
tsc_rates64:
    pushq %rbx
    pushq %rcx
    movl $0x40000000, %eax
    cpuid
    cmpl $0x40000010, %eax
    jb 1f
    movl $0x40000010, %eax
    cpuid
    testl %eax, %eax
    jz 1f
    movl %eax, long_tsc_khz
    movl %ebx, %edx
    popq %rcx
    popq %rbx
    ret
1:  movq $guest_name, %rsi
    call puts64
    movq $long_msg_no_rate, %rsi
    call puts64
    jmp guest_fail64

    .global spin_us64
spin_us64:
    pushq %rax
    pushq %rcx
    pushq %rdx
    movl long_tsc_khz, %ecx
    mulq %rcx
    movl $1000, %ecx
    divq %rcx
    movq %rax, %rcx                 /* ticks to spin */
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
    popq %rax
    ret

    .global spin_sti64
spin_sti64:
    sti
    call spin_us64
    cli
    ret

    .global wait_count64
wait_count64:
    pushq %rax
    pushq %rcx
    pushq %rdx
    pushq %r8
    movq %rax, %r8
    movl long_tsc_khz, %ecx
    imulq $2000, %rcx               /* 2 s of TSC ticks */
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    addq %rax, %rcx
    sti
1:  cmpq %r8, (%rdi)
    jae 2f
    pause
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    cmpq %rcx, %rax
    jb 1b
    cli
    popq %r8
    popq %rdx
    popq %rcx
    popq %rax
    stc
    ret
2:  cli
    popq %r8
    popq %rdx
    popq %rcx
    popq %rax
    clc
    ret

    /* One 16-byte stub per exception: an error code (0 where the CPU
       pushes none), the vector, then long_trap. */
    .macro long_stub vec, err
    .balign 16
    .if \err == 0
    pushq $0
    .endif
    pushq $\vec
    jmp long_trap
    .endm

    .balign 16
long_stubs:
    long_stub 0, 0
    long_stub 1, 0
    long_stub 2, 0
    long_stub 3, 0
    long_stub 4, 0
    long_stub 5, 0
    long_stub 6, 0
    long_stub 7, 0
    long_stub 8, 1
    long_stub 9, 0
    long_stub 10, 1
    long_stub 11, 1
    long_stub 12, 1
    long_stub 13, 1
    long_stub 14, 1
    long_stub 15, 0
    long_stub 16, 0
    long_stub 17, 1
    long_stub 18, 0
    long_stub 19, 0
    long_stub 20, 0
    long_stub 21, 1
    long_stub 22, 0
    long_stub 23, 0
    long_stub 24, 0
    long_stub 25, 0
    long_stub 26, 0
    long_stub 27, 0
    long_stub 28, 0
    long_stub 29, 1
    long_stub 30, 1
    long_stub 31, 0

    /* Stack: vector, error code, rip, cs, rflags, rsp, ss. */
long_trap:
    cmpq $13, (%rsp)
    jne 1f
    cmpq $0, gp_resume
    je 1f
    pushq %rax
    movq gp_resume, %rax
    movq %rax, 24(%rsp)             /* the saved rip */
    movq $0, gp_resume
    incq gp_count
    popq %rax
    addq $16, %rsp
    iretq
1:  movq $guest_name, %rsi
    call puts64
    movq $long_msg_exception, %rsi
    call puts64
    movq (%rsp), %rax
    call put_dec64
    movq $long_msg_error, %rsi
    call puts64
    movq 8(%rsp), %rax
    call put_hex64
    movq $long_msg_at, %rsi
    call puts64
    movq 16(%rsp), %rax
    call put_hex64
    call newline64
    jmp guest_fail64

    .section .rodata.guest_print64, "a"
long_hex:
    .ascii "0123456789abcdef"

    .section .rodata.guest_long, "a"
long_msg_no_rate:
    .asciz ": FAIL no TSC rate in CPUID 0x40000010\n"
long_msg_exception:
    .asciz ": FAIL exception "
long_msg_fail:
    .asciz ": FAIL "
long_msg_error:
    .asciz " error "
long_msg_at:
    .asciz " at rip "
    .balign 8
long_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08 code, 64-bit */
    .quad 0x00CF92000000FFFF        /* 0x10 data */
long_gdt_end:
long_gdt_ptr:
    .word long_gdt_end - long_gdt - 1
    .quad long_gdt
long_idt_ptr:
    .word 256 * 16 - 1
    .quad long_idt

    .section .data.guest_long, "aw"
    .balign 8
    .global gp_resume
gp_resume:
    .quad 0
    .global gp_count
gp_count:
    .quad 0
    .global long_tsc_khz
long_tsc_khz:
    .long 0

    .section .bss.guest_long, "aw", @nobits
    .balign 4096
long_pml4:
    .skip 4096
long_pdpt:
    .skip 4096
long_pd:
    .skip 4 * 4096
long_idt:
    .skip 256 * 16
"#,
    options(att_syntax)
);
