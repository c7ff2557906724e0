//! `guest-rtc-storm`: the CMOS clock's hostile twin. In 64-bit mode, its
//! local APIC in x2APIC mode and I/O APIC pin 8 (IRQ 8) routed to vector
//! 0x68, it programs the fastest periodic rate (status A rate select 3,
//! 8192 Hz) with PIE set and never reads status C, so the clock's IRQF
//! stays set after the first period; its handler only counts and EOIs.
//! It says `guest-rtc-storm: 8192 Hz, status C unread, for 3400 ms`,
//! spins with interrupts on (on the TSC, without PAUSE, which would yield
//! the CPU) 200 ms, writes the mark port 0xf5 (its VMM says the guest's
//! CPU time between two marks), spins 3 s, marks, spins 200 ms; then says
//! `guest-rtc-storm: <n> interrupt(s) in 3400 ms` and passes if `n` is 1
//! (coalesced: one pending), fails otherwise.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-rtc-storm")
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
    call tsc_rates64
    movq $irq_rtc, %rax
    movl $0x68, %ecx
    call gate64_set
    call x2apic_on64
    movl $0xFEC00000, %ebx          /* pin 8: APIC ID 0, edge, vector 0x68 */
    movl $0x21, (%rbx)
    movl $0, 0x10(%rbx)
    movl $0x20, (%rbx)
    movl $0x68, 0x10(%rbx)
    movb $0x0A, %al                 /* 8192 Hz */
    outb %al, $0x70
    movb $0x23, %al
    outb %al, $0x71
    movb $0x0B, %al                 /* PIE, 24-hour */
    outb %al, $0x70
    movb $0x42, %al
    outb %al, $0x71
    movq $msg_start, %rsi
    call puts64
    movq $200000, %rax
    call busy_us
    call mark
    movq $3000000, %rax
    call busy_us
    call mark
    movq $200000, %rax
    call busy_us
    movq $msg_count, %rsi
    call puts64
    movq count, %rax
    call put_dec64
    movq $msg_in, %rsi
    call puts64
    cmpq $1, count
    jne fail
    ret

fail:
    movq $msg_fail, %rsi
    call puts64
    jmp guest_fail64

/* Spins %rax microseconds by the TSC with interrupts on, without PAUSE. */
busy_us:
    pushq %rax
    pushq %rcx
    pushq %rdx
    movl long_tsc_khz, %ecx
    mulq %rcx
    movl $1000, %ecx
    divq %rcx
    movq %rax, %rcx
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    addq %rax, %rcx
    sti
1:  rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    cmpq %rcx, %rax
    jb 1b
    cli
    popq %rdx
    popq %rcx
    popq %rax
    ret

mark:
    movb $1, %al
    outb %al, $0xf5
    ret

/* Counts; status C is never read. */
irq_rtc:
    pushq %rax
    pushq %rcx
    pushq %rdx
    incq count
    movl $0x80B, %ecx
    xorl %eax, %eax
    xorl %edx, %edx
    wrmsr
    popq %rdx
    popq %rcx
    popq %rax
    iretq

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-rtc-storm"
msg_start:
    .asciz "guest-rtc-storm: 8192 Hz, status C unread, for 3400 ms\n"
msg_count:
    .asciz "guest-rtc-storm: "
msg_in:
    .asciz " interrupt(s) in 3400 ms\n"
msg_fail:
    .asciz "guest-rtc-storm: FAIL not one interrupt\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 8
count:
    .skip 8
"#,
    options(att_syntax)
);
