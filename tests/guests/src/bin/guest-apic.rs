//! `guest-apic`: its local APIC's timer in each mode, through each of its
//! interfaces, in 64-bit mode, the rates from CPUID 0x4000_0010.
//!
//! - xAPIC mode (the MMIO page at 0xFEE0_0000, as at reset): a one-shot
//!   of 1 s counts down (its current count read twice, 10 µs apart, below
//!   its initial count) and stops when that is written 0; a one-shot of
//!   2 ms comes once, no sooner than 1.9 ms by the TSC, its current count
//!   reading 0 after; a periodic 1 ms timer ticks
//!   10 times in no less than 9 ms, and stops when its initial count is
//!   written 0; a masked one never comes; RDMSR of an x2APIC register in
//!   xAPIC mode is #GP.
//! - x2APIC mode (IA32_APIC_BASE.EXTD; the MSRs from 0x800): the page
//!   reads all ones; one-shot and periodic as above; TSC-deadline mode
//!   (CPUID leaf 1 ecx bit 24 must say it): IA32_TSC_DEADLINE 2 ms ahead
//!   comes once, not before the deadline by the TSC, and then reads 0; a
//!   deadline already passed comes at once; 0 disarms; an initial count is
//!   ignored in this mode; the reserved timer mode (3) and an APIC MSR
//!   that does not exist are #GP.
//!
//! Each part says `guest-apic: <what> ok`; a check that fails is a
//! `guest-apic: FAIL <what>` line and exit code 1.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-apic")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set VECTOR, 0x50
    .set APIC, 0xFEE00000
    /* 1 s at the APIC timer's 1 GHz (CPUID 0x4000_0010 says the rate). */
    .set LONG_COUNT, 1000000000

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    jmp long_mode

    .code64
    .global guest_main64
guest_main64:
    call tsc_rates64
    movl %edx, apic_khz
    movq $tick, %rax
    movl $VECTOR, %ecx
    call gate64_set
    movl $APIC, %ebx                /* zero-extended: the page's address */
    movl $0x1FF, 0xF0(%rbx)         /* SVR: enabled */

    /* xAPIC: a one-shot of 1 s counts down below its initial count, and
       stops when that is written 0. */
    movl $0xB, 0x3E0(%rbx)          /* divide by 1 */
    movl $VECTOR, 0x320(%rbx)       /* LVT timer: one-shot */
    movl $LONG_COUNT, 0x380(%rbx)
    movl 0x390(%rbx), %r9d
    movq $10, %rax
    call spin_us64
    movl 0x390(%rbx), %r10d
    movl $0, 0x380(%rbx)
    movq $msg_current, %rsi
    testl %r10d, %r10d
    jz fail
    cmpl %r9d, %r10d
    jae fail
    cmpl $LONG_COUNT, %r9d
    ja fail
    /* xAPIC one-shot: 2 ms. */
    call stamp
    movl apic_khz, %eax
    addl %eax, %eax
    movl %eax, 0x380(%rbx)          /* initial count */
    call one_shot_checked
    movl 0x390(%rbx), %eax
    movq $msg_current_after, %rsi
    testl %eax, %eax
    jnz fail

    /* xAPIC periodic: 1 ms, 10 ticks, then stopped. */
    movl $(VECTOR | 1 << 17), 0x320(%rbx)
    call stamp
    movl apic_khz, %eax
    movl %eax, 0x380(%rbx)
    call periodic_checked
    movl $0, 0x380(%rbx)
    call stopped_checked

    /* xAPIC masked: never comes. */
    movl $(VECTOR | 1 << 16), 0x320(%rbx)
    movl apic_khz, %eax
    movl %eax, 0x380(%rbx)
    call none_checked
    movl $0, 0x380(%rbx)

    /* RDMSR of the x2APIC ID in xAPIC mode: #GP. */
    movq $1f, gp_resume
    movl $0x802, %ecx
    rdmsr
    movq $msg_x2_in_xapic, %rsi
    jmp fail
1:  movq $msg_xapic_ok, %rsi
    call puts64

    /* x2APIC mode. */
    movl $0x1B, %ecx
    rdmsr
    orl $0xC00, %eax
    wrmsr
    movb $1, x2
    movl 0x30(%rbx), %eax
    movq $msg_page, %rsi
    cmpl $0xFFFFFFFF, %eax
    jne fail

    /* x2APIC one-shot. */
    movl $0x83E, %ecx
    movl $0xB, %eax
    xorl %edx, %edx
    wrmsr
    movl $0x832, %ecx
    movl $VECTOR, %eax
    wrmsr
    /* The long one-shot's count, by MSR. */
    movl $0x838, %ecx
    movl $LONG_COUNT, %eax
    wrmsr
    movl $0x839, %ecx
    rdmsr
    movl %eax, %r9d
    movq $10, %rax
    call spin_us64
    rdmsr
    movl %eax, %r10d
    movl $0x838, %ecx
    xorl %eax, %eax
    wrmsr
    movq $msg_current, %rsi
    testl %r10d, %r10d
    jz fail
    cmpl %r9d, %r10d
    jae fail
    cmpl $LONG_COUNT, %r9d
    ja fail
    call stamp
    movl $0x838, %ecx
    movl apic_khz, %eax
    addl %eax, %eax
    xorl %edx, %edx
    wrmsr
    call one_shot_checked
    movl $0x839, %ecx
    rdmsr
    movq $msg_current_after, %rsi
    testl %eax, %eax
    jnz fail

    /* x2APIC periodic. */
    movl $0x832, %ecx
    movl $(VECTOR | 1 << 17), %eax
    wrmsr
    call stamp
    movl $0x838, %ecx
    movl apic_khz, %eax
    wrmsr
    call periodic_checked
    movl $0x838, %ecx
    xorl %eax, %eax
    wrmsr
    call stopped_checked

    /* TSC-deadline: offered? */
    movl $1, %eax
    cpuid
    movq $msg_no_deadline, %rsi
    btl $24, %ecx
    jnc fail
    movl $0x832, %ecx
    movl $(VECTOR | 2 << 17), %eax
    xorl %edx, %edx
    wrmsr
    /* The deadline: 2 ms ahead. */
    call stamp
    movl long_tsc_khz, %eax
    addq %rax, %rax
    addq stamp_tsc, %rax
    movq %rax, deadline
    movq %rax, %rdx
    shrq $32, %rdx
    movl $0x6E0, %ecx
    wrmsr
    movq $1, %rax
    movq $msg_deadline_late, %rsi
    call wait_ticks
    movq tick_tsc, %rax
    movq $msg_deadline_early, %rsi
    cmpq deadline, %rax
    jb fail
    movq $5000, %rax
    call spin_sti64
    movq $msg_deadline_twice, %rsi
    cmpq $1, ticks
    jne fail
    movl $0x6E0, %ecx
    rdmsr
    orl %edx, %eax
    movq $msg_deadline_kept, %rsi
    jnz fail
    /* A deadline passed: at once (within 2 s). */
    movq $0, ticks
    rdtsc
    subl $1000, %eax
    sbbl $0, %edx
    movl $0x6E0, %ecx
    wrmsr
    movq $1, %rax
    movq $msg_deadline_passed, %rsi
    call wait_ticks
    /* Armed, then disarmed by 0: nothing. */
    call stamp
    movl long_tsc_khz, %eax
    addq stamp_tsc, %rax
    movq %rax, %rdx
    shrq $32, %rdx
    movl $0x6E0, %ecx
    wrmsr
    xorl %eax, %eax
    xorl %edx, %edx
    wrmsr
    /* An initial count in this mode: ignored. */
    movl $0x838, %ecx
    movl apic_khz, %eax
    wrmsr
    call none_checked
    /* The reserved mode, and an APIC MSR there is not: #GP. */
    movq $1f, gp_resume
    movl $0x832, %ecx
    movl $(VECTOR | 3 << 17), %eax
    xorl %edx, %edx
    wrmsr
    movq $msg_reserved_mode, %rsi
    jmp fail
1:  movq $1f, gp_resume
    movl $0x8FF, %ecx
    rdmsr
    movq $msg_no_register, %rsi
    jmp fail
1:  movq $msg_gp_count, %rsi
    cmpq $3, gp_count
    jne fail
    movq $msg_x2apic_ok, %rsi
    call puts64
    ret

/* The TSC now into stamp_tsc; the tick count cleared. */
stamp:
    pushq %rax
    pushq %rdx
    movq $0, ticks
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    movq %rax, stamp_tsc
    popq %rdx
    popq %rax
    ret

/* One tick comes, no sooner than 2 ms after the stamp, and no second. */
one_shot_checked:
    movq $1, %rax
    movq $msg_one_shot_late, %rsi
    call wait_ticks
    movq tick_tsc, %rax
    subq stamp_tsc, %rax
    movl long_tsc_khz, %ecx
    imulq $19, %rcx
    movl $10, %r8d
    xchgq %rax, %rcx
    xorl %edx, %edx
    divq %r8                        /* 1.9 ms of TSC ticks */
    movq $msg_one_shot_early, %rsi
    cmpq %rax, %rcx
    jb fail
    movq $10000, %rax
    call spin_sti64
    movq $msg_one_shot_twice, %rsi
    cmpq $1, ticks
    jne fail
    ret

/* Ten ticks of 1 ms, in no less than 9 ms. */
periodic_checked:
    movq $10, %rax
    movq $msg_periodic_late, %rsi
    call wait_ticks
    movq tick_tsc, %rax
    subq stamp_tsc, %rax
    movl long_tsc_khz, %ecx
    imulq $9, %rcx
    movq $msg_periodic_fast, %rsi
    cmpq %rcx, %rax
    jb fail
    ret

/* After a stop: 10 ms to settle (an interrupt raised before it may
   still be on its way), then no tick in 10 ms. */
stopped_checked:
    movq $10000, %rax
    call spin_sti64
    movq ticks, %r12
    movq $10000, %rax
    call spin_sti64
    movq $msg_not_stopped, %rsi
    cmpq ticks, %r12
    jne fail
    ret

/* No tick in 5 ms. */
none_checked:
    movq $0, ticks
    movq $5000, %rax
    call spin_sti64
    movq $msg_unexpected_tick, %rsi
    cmpq $0, ticks
    jne fail
    ret

/* Waits, interrupts on, until %rax ticks came; fails with the line at
   %rsi if they do not within 2 s. */
wait_ticks:
    pushq %rdi
    movq $ticks, %rdi
    call wait_count64
    popq %rdi
    jc fail
    ret

tick:
    pushq %rax
    pushq %rcx
    pushq %rdx
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    movq %rax, tick_tsc
    incq ticks
    cmpb $0, x2
    jne 1f
    movl $APIC, %eax
    movl $0, 0xB0(%rax)             /* EOI, on the page */
    jmp 2f
1:  movl $0x80B, %ecx               /* EOI, by MSR */
    xorl %eax, %eax
    xorl %edx, %edx
    wrmsr
2:  popq %rdx
    popq %rcx
    popq %rax
    iretq

fail:
    cli
    pushq %rsi
    movq $msg_fail, %rsi
    call puts64
    popq %rsi
    call puts64
    cmpb $0, x2
    movq $msg_in_xapic, %rsi
    je 1f
    movq $msg_in_x2apic, %rsi
1:  call puts64
    jmp guest_fail64

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-apic"
msg_fail:
    .asciz "guest-apic: FAIL "
msg_in_xapic:
    .asciz " (xAPIC mode)\n"
msg_in_x2apic:
    .asciz " (x2APIC mode)\n"
msg_current:
    .asciz "the current count is not running below the initial count"
msg_current_after:
    .asciz "the current count is not 0 after a one-shot"
msg_one_shot_late:
    .asciz "no one-shot interrupt in 2 s"
msg_one_shot_early:
    .asciz "the 2 ms one-shot came before 1.9 ms"
msg_one_shot_twice:
    .asciz "the one-shot came more than once"
msg_periodic_late:
    .asciz "no 10 periodic ticks in 2 s"
msg_periodic_fast:
    .asciz "10 periodic ticks of 1 ms in less than 9 ms"
msg_not_stopped:
    .asciz "a periodic timer ticked on after its initial count was 0"
msg_unexpected_tick:
    .asciz "a masked or ignored timer ticked"
msg_x2_in_xapic:
    .asciz "rdmsr of the x2APIC ID in xAPIC mode was answered"
msg_xapic_ok:
    .asciz "guest-apic: xAPIC one-shot, periodic and masked timers ok\n"
msg_page:
    .asciz "the xAPIC page does not read all ones"
msg_no_deadline:
    .asciz "CPUID does not offer TSC-deadline mode"
msg_deadline_late:
    .asciz "no TSC-deadline interrupt in 2 s"
msg_deadline_early:
    .asciz "the TSC-deadline interrupt came before its deadline"
msg_deadline_twice:
    .asciz "the TSC-deadline interrupt came more than once"
msg_deadline_kept:
    .asciz "IA32_TSC_DEADLINE is not 0 after it fired"
msg_deadline_passed:
    .asciz "a deadline already passed did not fire"
msg_reserved_mode:
    .asciz "the reserved timer mode was taken"
msg_no_register:
    .asciz "rdmsr of APIC MSR 0x8ff was answered"
msg_gp_count:
    .asciz "not three #GPs"
msg_x2apic_ok:
    .asciz "guest-apic: x2APIC one-shot, periodic and TSC-deadline timers ok\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 8
ticks:
    .skip 8
tick_tsc:
    .skip 8
stamp_tsc:
    .skip 8
deadline:
    .skip 8
apic_khz:
    .skip 4
x2:
    .skip 1
"#,
    options(att_syntax)
);
