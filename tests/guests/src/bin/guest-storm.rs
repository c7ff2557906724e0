//! `guest-storm`: an exit storm. For `spin_ms` of wall-clock time (default
//! 1000; its VMM appends `tsc_khz=`) it does nothing but exits its VMM
//! answers: CPUID leaf 0x4000_0000, an OUT to the UART's scratch register
//! 0x3ff and an IN from it, round after round. It writes the mark port
//! 0xf5 before and after (its VMM says the guest's CPU time between the
//! two), then prints `guest-storm: <n> rounds of CPUID, OUT and IN` and
//! reports success. The storm must not take more than its share of the
//! CPU: the time its exits cost, in the kernel and in its VMM, is its own.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-storm")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set MARK_PORT, 0xf5
    .set SCRATCH, 0x3ff

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $opt_khz, %esi
    call cmdline_number
    testl %eax, %eax
    jz no_khz
    movl $opt_spin, %esi
    call cmdline_number
    testl %eax, %eax
    jnz 1f
    movl $1000, %eax
1:  movl %eax, %edi
    movl $msg_start, %esi
    call puts
    call put_dec
    movl $msg_ms, %esi
    call puts

    /* The end, in TSC ticks: now + spin_ms × tsc_khz, in end_hi:end_lo. */
    movl $opt_khz, %esi
    call cmdline_number
    mull %edi
    movl %eax, end_lo
    movl %edx, end_hi
    rdtsc
    addl %eax, end_lo
    adcl %edx, end_hi

    movw $MARK_PORT, %dx
    movb $1, %al
    outb %al, %dx
    /* The count is in %edi: CPUID writes %ebx. */
    xorl %edi, %edi
storm:
    movl $0x40000000, %eax
    cpuid
    movw $SCRATCH, %dx
    movb $0x5a, %al
    outb %al, %dx
    inb %dx, %al
    incl %edi
    rdtsc
    cmpl end_hi, %edx
    jb storm
    ja 2f
    cmpl end_lo, %eax
    jb storm
2:  movw $MARK_PORT, %dx
    movb $1, %al
    outb %al, %dx

    movl $msg_done, %esi
    call puts
    movl %edi, %eax
    call put_dec
    movl $msg_rounds, %esi
    call puts
    ret

no_khz:
    movl $msg_no_khz, %esi
    call puts
    jmp guest_fail

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-storm"
opt_khz:
    .asciz "tsc_khz="
opt_spin:
    .asciz "spin_ms="
msg_start:
    .asciz "guest-storm: storming "
msg_ms:
    .asciz " ms\n"
msg_done:
    .asciz "guest-storm: "
msg_rounds:
    .asciz " rounds of CPUID, OUT and IN\n"
msg_no_khz:
    .asciz "guest-storm: FAIL no tsc_khz= on the command line\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 4
end_lo:
    .skip 4
end_hi:
    .skip 4
"#,
    options(att_syntax)
);
