//! `guest-steady`: CPU-bound for a fixed wall-clock time, and a witness
//! that nobody touches its memory. It fills 1 MiB of its RAM (2 MiB to
//! 3 MiB) with a pseudo-random pattern and prints its checksum
//! (`guest-steady: checksum before 0x…`); then spins on `rdtsc` for
//! `warm_ms` (default 0), writes the mark port 0xf5 (its VMM notes the
//! guest's CPU time), spins `spin_ms` (default 1000), marks again, spins
//! `warm_ms` more; then checksums the region again (`checksum after 0x…`)
//! and reports success if the two agree, failure otherwise.
//!
//! The VMM appends `tsc_khz=<TSC ticks per ms>` to a command line that has
//! `spin_ms=`; without `tsc_khz` the guest cannot tell time and fails.
//! The warm-up and cool-down let guests started a little apart all be
//! running while each one's marked window lasts.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-steady")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set REGION, 0x200000
    .set REGION_END, 0x300000
    .set MARK_PORT, 0xf5

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    /* Fill the region: xorshift32 from a fixed seed. */
    movl $0x12345678, %eax
    movl $REGION, %edi
1:  call xorshift
    movl %eax, (%edi)
    addl $4, %edi
    cmpl $REGION_END, %edi
    jne 1b
    call checksum
    movl %eax, before
    movl $msg_before, %esi
    call puts
    call put_hex
    call newline

    movl $opt_khz, %esi
    call cmdline_number
    testl %eax, %eax
    jz no_khz
    movl %eax, tsc_khz
    movl $opt_spin, %esi
    call cmdline_number
    testl %eax, %eax
    jnz 2f
    movl $1000, %eax
2:  movl %eax, spin_ms
    movl $opt_warm, %esi
    call cmdline_number
    movl %eax, warm_ms
    movl $msg_spin, %esi
    call puts
    call put_dec
    movl $msg_plus, %esi
    call puts
    movl spin_ms, %eax
    call put_dec
    movl $msg_plus, %esi
    call puts
    movl warm_ms, %eax
    call put_dec
    movl $msg_khz, %esi
    call puts
    movl tsc_khz, %eax
    call put_dec
    movb $0x29, %al
    call putc
    call newline

    movl warm_ms, %eax
    call delay_ms
    call mark
    movl spin_ms, %eax
    call delay_ms
    call mark
    movl warm_ms, %eax
    call delay_ms

    call checksum
    movl %eax, %ebx
    movl $msg_after, %esi
    call puts
    call put_hex
    call newline
    cmpl before, %ebx
    jne changed
    movl $msg_same, %esi
    call puts
    ret

changed:
    movl $msg_changed, %esi
    jmp fail
no_khz:
    movl $msg_no_khz, %esi
fail:
    call puts
    jmp guest_fail

    /* %eax = the checksum of the region. */
checksum:
    pushl %edi
    xorl %eax, %eax
    movl $REGION, %edi
1:  roll $5, %eax
    xorl (%edi), %eax
    addl $4, %edi
    cmpl $REGION_END, %edi
    jne 1b
    popl %edi
    ret

mark:
    pushl %eax
    pushl %edx
    movw $MARK_PORT, %dx
    movb $1, %al
    outb %al, %dx
    popl %edx
    popl %eax
    ret

newline:
    pushl %eax
    movb $0x0a, %al
    call putc
    popl %eax
    ret

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-steady"
opt_khz:
    .asciz "tsc_khz="
opt_spin:
    .asciz "spin_ms="
opt_warm:
    .asciz "warm_ms="
msg_before:
    .asciz "guest-steady: checksum before "
msg_after:
    .asciz "guest-steady: checksum after "
msg_spin:
    .asciz "guest-steady: spinning "
msg_plus:
    .asciz " + "
msg_khz:
    .asciz " ms (tsc_khz "
msg_same:
    .asciz "guest-steady: memory unchanged\n"
msg_changed:
    .asciz "guest-steady: FAIL its memory changed\n"
msg_no_khz:
    .asciz "guest-steady: FAIL no tsc_khz= on the command line\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 4
before:
    .skip 4
tsc_khz:
    .skip 4
spin_ms:
    .skip 4
warm_ms:
    .skip 4
"#,
    options(att_syntax)
);
