//! `guest-timer`: idles between the ticks of its local APIC timer, as an
//! operating system's idle loop does. It reads the TSC's and the APIC
//! timer's rates from CPUID 0x4000_0010 (`guest-timer: TSC <n> kHz, APIC
//! timer <n> kHz`), turns x2APIC mode on, points vector 0x50 at a handler
//! (which counts and EOIs), programs a periodic 1 ms timer, and halts with
//! interrupts on until 50 ticks have come; then stops the timer and says
//! how long that took by the TSC (`guest-timer: 50 ticks in <n> ms,
//! halted between them`). Fewer than 45 ms would be a timer running fast;
//! that fails. It writes the mark port 0xf5 as it starts halting and as it
//! stops, so that its VMM says its CPU time over just those ticks. Then it reads the ACPI PM timer (port 0x608) across 10 ms
//! of the TSC (`guest-timer: PM timer <n> ticks in 10 ms`), which must
//! have advanced by half to twice 35,795 ticks, and reports success.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-timer")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set VECTOR, 0x50
    .set TICKS, 50
    .set MARK_PORT, 0xf5

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $0x40000000, %eax
    cpuid
    cmpl $0x40000010, %eax
    jb no_leaf
    movl $0x40000010, %eax
    cpuid
    movl %eax, tsc_khz
    movl %ebx, apic_khz
    movl $msg_rates, %esi
    call puts
    movl tsc_khz, %eax
    call put_dec
    movl $msg_apic, %esi
    call puts
    movl apic_khz, %eax
    call put_dec
    movl $msg_khz, %esi
    call puts

    /* The IDT: one interrupt gate, for VECTOR. */
    movl $tick, %eax
    movl $VECTOR, %ecx
    movl $idt, %edi
    call gate_set
    lidt idt_ptr

    call x2apic_on
    xorl %edx, %edx
    movl $0x832, %ecx               /* LVT timer: periodic, VECTOR */
    movl $(VECTOR | (1 << 17)), %eax
    wrmsr
    movl $0x83E, %ecx               /* divide by 1 */
    movl $0xB, %eax
    wrmsr
    rdtsc
    movl %eax, start
    movl %edx, start + 4
    movl $0x838, %ecx               /* initial count: 1 ms */
    movl apic_khz, %eax
    xorl %edx, %edx
    wrmsr

    outb %al, $MARK_PORT            /* mark 1: the VMM notes our CPU time */
    sti
1:  hlt
    cmpl $TICKS, ticks
    jb 1b
    cli
    outb %al, $MARK_PORT            /* mark 2: and says it since mark 1 */
    rdtsc
    subl start, %eax
    sbbl start + 4, %edx
    divl tsc_khz                    /* ms */
    movl %eax, %edi
    movl $0x838, %ecx               /* stop the timer */
    xorl %eax, %eax
    xorl %edx, %edx
    wrmsr

    movl $msg_ticks, %esi
    call puts
    movl %edi, %eax
    call put_dec
    movl $msg_ms, %esi
    call puts
    cmpl $45, %edi
    jb too_fast

    /* The ACPI PM timer (port 0x608, 3.579545 MHz) over 10 ms of the
       TSC: 35,795 ticks, taken from half to twice that. */
    movw $0x608, %dx
    inl %dx, %eax
    movl %eax, %ebx
    movl tsc_khz, %eax
    movl $10, %ecx
    mull %ecx                       /* edx:eax = the TSC's ticks in 10 ms */
    movl %eax, %esi
    movl %edx, %ebp
    rdtsc
    addl %eax, %esi
    adcl %edx, %ebp
1:  rdtsc
    cmpl %ebp, %edx
    jb 1b
    ja 2f
    cmpl %esi, %eax
    jb 1b
2:  movw $0x608, %dx
    inl %dx, %eax
    subl %ebx, %eax
    movl %eax, %edi
    movl $msg_pm, %esi
    call puts
    movl %edi, %eax
    call put_dec
    movl $msg_pm_end, %esi
    call puts
    cmpl $17897, %edi
    jb pm_off
    cmpl $71590, %edi
    ja pm_off
    ret
pm_off:
    movl $msg_pm_off, %esi
    jmp fail

tick:
    incl ticks
    call apic_eoi
    iret

no_leaf:
    movl $msg_no_leaf, %esi
    jmp fail
too_fast:
    movl $msg_too_fast, %esi
fail:
    call puts
    jmp guest_fail

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-timer"
msg_rates:
    .asciz "guest-timer: TSC "
msg_apic:
    .asciz " kHz, APIC timer "
msg_khz:
    .asciz " kHz\n"
msg_ticks:
    .asciz "guest-timer: 50 ticks in "
msg_ms:
    .asciz " ms, halted between them\n"
msg_no_leaf:
    .asciz "guest-timer: FAIL no timing leaf 0x40000010 in CPUID\n"
msg_too_fast:
    .asciz "guest-timer: FAIL the timer ran fast\n"
msg_pm:
    .asciz "guest-timer: PM timer "
msg_pm_end:
    .asciz " ticks in 10 ms\n"
msg_pm_off:
    .asciz "guest-timer: FAIL the PM timer is not at 3.579545 MHz\n"
    .balign 4
idt_ptr:
    .word VECTOR * 8 + 7
    .long idt

    .section .bss.guest_main, "aw", @nobits
    .balign 8
start:
    .skip 8
tsc_khz:
    .skip 4
apic_khz:
    .skip 4
ticks:
    .skip 4
    .balign 8
idt:
    .skip VECTOR * 8 + 8
"#,
    options(att_syntax)
);
