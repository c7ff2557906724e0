//! `guest-probe`: reads guest-physical memory beyond its RAM, in turn:
//! 0x4000_0000 (past any test guest's RAM), 0xFED0_0000 (where a PC's HPET
//! is, which the VMM does not emulate; its xAPIC page at 0xFEE0_0000 it does,
//! see `guest-mmio`) and 0x1_0000_0000 (above 4 GiB, reached through PAE paging:
//! linear 0x4000_0000 maps it with a 2 MiB page). The first read must stop
//! the guest (its VMM reports the unmapped access); the command line picks
//! the first: `probe=hpet` or `probe=high`, else 0x4000_0000; `wait_ms=<n>`
//! makes it spin n ms before its first read. `scribble` first reads its RAM
//! from 2 MiB to its end, which must be all zero (fresh RAM: where the host
//! keeps its kernel, guest-physical 2 MiB and up is host memory a guest
//! guessing host-physical addresses would aim at), then fills it with a
//! pattern and reads that back (`guest-probe: RAM 0x… to 0x… was zero and
//! is its own`). An IDT is
//! installed first, so that a read that faults in the guest instead is
//! reported (`unexpected exception`) rather than lost in a triple fault. A
//! read that returns prints `guest-probe: FAIL …` and the next is tried;
//! after the last the guest reports failure.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-probe")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set SCRIBBLE_START, 0x200000

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    call idt_install
    movl $opt_wait, %esi
    call cmdline_number
    call delay_ms
    movl $opt_scribble, %esi
    call cmdline_has
    testl %eax, %eax
    jz 1f
    call scribble
1:    movl $opt_hpet, %esi
    call cmdline_has
    testl %eax, %eax
    jnz probe_hpet
    movl $opt_high, %esi
    call cmdline_has
    testl %eax, %eax
    jnz probe_high
    movl $0x40000000, %edi
    call probe
probe_hpet:
    movl $0xFED00000, %edi
    call probe
probe_high:
    call pae_on
    movl $msg_reading, %esi
    call puts
    movl $msg_high, %esi
    call puts
    movl 0x40000000, %eax
    movl $msg_fail, %esi
    call puts
    movl $msg_high_short, %esi
    call puts
    jmp gave

    /* Reads the word at %edi, which must stop the guest. */
probe:
    movl $msg_reading, %esi
    call puts
    movl %edi, %eax
    call put_hex
    movb $0x0a, %al
    call putc
    movl (%edi), %eax
    movl $msg_fail, %esi
    call puts
    pushl %eax
    movl %edi, %eax
    call put_hex
    popl %eax
gave:
    movl $msg_gave, %esi
    call puts
    call put_hex
    movl $msg_not_stopped, %esi
    call puts
    ret

    /* Checks [SCRIBBLE_START, RAM end) reads zero, fills it with an
       xorshift pattern and reads it back; fails the guest otherwise. */
scribble:
    movl mb_info, %ebx
    movl 8(%ebx), %ebp
    shll $10, %ebp
    addl $0x100000, %ebp            /* RAM's end */
    movl $SCRIBBLE_START, %edi
1:  cmpl $0, (%edi)
    jne not_zero
    addl $4, %edi
    cmpl %ebp, %edi
    jb 1b
    movl $0x2545F491, %eax
    movl $SCRIBBLE_START, %edi
2:  call xorshift
    movl %eax, (%edi)
    addl $4, %edi
    cmpl %ebp, %edi
    jb 2b
    movl $0x2545F491, %eax
    movl $SCRIBBLE_START, %edi
3:  call xorshift
    cmpl %eax, (%edi)
    jne not_kept
    addl $4, %edi
    cmpl %ebp, %edi
    jb 3b
    movl $msg_scribbled, %esi
    call puts
    movl $SCRIBBLE_START, %eax
    call put_hex
    movl $msg_to, %esi
    call puts
    movl %ebp, %eax
    call put_hex
    movl $msg_own, %esi
    call puts
    ret
not_zero:
    movl $msg_not_zero, %esi
    jmp 4f
not_kept:
    movl $msg_not_kept, %esi
4:  call puts
    movl %edi, %eax
    call put_hex
    movb $0x0a, %al
    call putc
    jmp guest_fail

    /* PAE paging: linear 0..1 GiB identity-mapped, linear 0x4000_0000
       mapped to physical 0x1_0000_0000, both with 2 MiB pages. */
pae_on:
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax
    movl %eax, pd0(,%ecx,8)
    movl $0, pd0+4(,%ecx,8)
    incl %ecx
    cmpl $512, %ecx
    jne 1b
    movl $0x83, pd1
    movl $1, pd1+4
    movl $pd0, %eax
    orl $1, %eax
    movl %eax, pdpt
    movl $pd1, %eax
    orl $1, %eax
    movl %eax, pdpt+8
    movl %cr4, %eax
    orl $0x20, %eax
    movl %eax, %cr4
    movl $pdpt, %eax
    movl %eax, %cr3
    movl %cr0, %eax
    orl $0x80000000, %eax
    movl %eax, %cr0
    ret

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-probe"
opt_wait:
    .asciz "wait_ms="
opt_scribble:
    .asciz "scribble"
opt_hpet:
    .asciz "probe=hpet"
opt_high:
    .asciz "probe=high"
msg_reading:
    .asciz "guest-probe: reading guest-physical "
msg_high:
    .asciz "0x100000000 (through PAE paging, at linear 0x40000000)\n"
msg_high_short:
    .asciz "0x100000000"
msg_fail:
    .asciz "guest-probe: FAIL reading "
msg_gave:
    .asciz " gave "
msg_scribbled:
    .asciz "guest-probe: RAM "
msg_to:
    .asciz " to "
msg_own:
    .asciz " was zero and is its own\n"
msg_not_zero:
    .asciz "guest-probe: FAIL fresh RAM is not zero at "
msg_not_kept:
    .asciz "guest-probe: FAIL RAM did not keep what was written at "
msg_not_stopped:
    .asciz " and did not stop the guest\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 4096
pd0:
    .skip 4096
pd1:
    .skip 4096
pdpt:
    .skip 32
"#,
    options(att_syntax)
);
