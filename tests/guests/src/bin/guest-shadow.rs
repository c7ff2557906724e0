//! `guest-shadow`: halts with `sti; hlt; cli`, as an operating system's
//! idle loop does, and checks that the interrupt that ends each halt is
//! taken before the `cli`. STI's interrupt shadow covers only the HLT
//! after it (SDM Vol. 2B, STI; APM Vol. 2 15.21.5): once the halt is over,
//! the interrupt must come in at once. A hypervisor that completes the
//! halt but keeps the shadow standing lets the `cli` run first, and the
//! interrupt is never taken there. It reads the APIC timer's rate from
//! CPUID 0x4000_0010, points vector 0x51 at a handler (which counts and
//! EOIs), programs a periodic 1 ms timer and halts so 20 times; a halt
//! after which the count did not move fails (`guest-shadow: FAIL halt
//! <n>: the interrupt that ended it was not taken before cli`). Then it
//! stops the timer and says `guest-shadow: 20 halts, each interrupt taken
//! before cli`, and reports success.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-shadow")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set VECTOR, 0x51
    .set HALTS, 20

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
    movl %ebx, apic_khz

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
    movl $0x838, %ecx               /* initial count: 1 ms */
    movl apic_khz, %eax
    xorl %edx, %edx
    wrmsr

    xorl %edi, %edi                 /* halts done */
1:  movl ticks, %ebx
    sti
    hlt
    cli
    incl %edi
    cmpl ticks, %ebx
    je kept
    cmpl $HALTS, %edi
    jb 1b

    movl $0x838, %ecx               /* stop the timer */
    xorl %eax, %eax
    xorl %edx, %edx
    wrmsr
    movl $msg_done, %esi
    call puts
    ret

tick:
    incl ticks
    call apic_eoi
    iret

kept:
    movl $msg_kept, %esi
    call puts
    movl %edi, %eax
    call put_dec
    movl $msg_kept_end, %esi
    jmp fail
no_leaf:
    movl $msg_no_leaf, %esi
fail:
    call puts
    jmp guest_fail

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-shadow"
msg_done:
    .asciz "guest-shadow: 20 halts, each interrupt taken before cli\n"
msg_kept:
    .asciz "guest-shadow: FAIL halt "
msg_kept_end:
    .asciz ": the interrupt that ended it was not taken before cli\n"
msg_no_leaf:
    .asciz "guest-shadow: FAIL no timing leaf 0x40000010 in CPUID\n"
    .balign 4
idt_ptr:
    .word VECTOR * 8 + 7
    .long idt

    .section .bss.guest_main, "aw", @nobits
    .balign 8
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
