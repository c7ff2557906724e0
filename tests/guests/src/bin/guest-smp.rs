//! `guest-smp`: starts its second vCPU the way an operating system starts
//! an application processor, and shows both running. vCPU 0 checks that
//! CPUID offers x2APIC, turns x2APIC mode on (IA32_APIC_BASE), reads its
//! APIC ID (`guest-smp: vCPU 0 up, x2APIC ID 0`), copies a real-mode
//! trampoline to 0x8000 and sends vCPU 1 INIT and a start-up IPI with
//! vector 8 (ICR, MSR 0x830). vCPU 1 starts in real mode at 0x8000, loads a
//! GDT, enters 32-bit protected mode, turns its x2APIC on, says `guest-smp:
//! vCPU 1 up, x2APIC ID 1` and counts for ever. vCPU 0 waits for it, then
//! counts itself until vCPU 1's count has moved on by 1,000,000 (`guest-smp:
//! vCPU 1 counted 1000000 while vCPU 0 counted <n>`: both ran, in parallel
//! or by turns). Last vCPU 0 sends vCPU 1 a fixed IPI, vector 0x40, which
//! vCPU 1 (interrupts on, its IDT one gate) takes and acknowledges (EOI)
//! (`guest-smp: vCPU 1 took interrupt 0x40 from vCPU 0`). vCPU 1 then
//! halts with interrupts on (idle, in the kernel), and a second IPI wakes it
//! (`guest-smp: vCPU 1 halted, and woke for interrupt 0x40`); then vCPU 0
//! reports success, which ends both.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-smp")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set TRAMPOLINE, 0x8000
    .set VECTOR, TRAMPOLINE >> 12
    .set COUNT, 1000000
    .set IPI_VECTOR, 0x40
    .set LIMIT, 0x40000000

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $1, %eax
    xorl %ecx, %ecx
    cpuid
    testl $(1 << 21), %ecx
    jz no_x2apic
    call x2apic_on
    movl $msg_up0, %esi
    call puts
    call put_dec
    movb $0x0a, %al
    call putc

    /* vCPU 1's IDT: one interrupt gate, for IPI_VECTOR. */
    movl $ap_ipi, %eax
    movl $IPI_VECTOR, %ecx
    movl $ap_idt, %edi
    call gate_set

    movl $ap_tramp, %esi
    movl $TRAMPOLINE, %edi
    movl $(ap_tramp_end - ap_tramp), %ecx
    rep movsb
    movl $0x830, %ecx
    movl $1, %edx
    movl $0x4500, %eax              /* INIT, level assert, to APIC 1 */
    wrmsr
    movl $(0x4600 | VECTOR), %eax   /* start-up */
    wrmsr

    movl $400000000, %ebx
1:  cmpl $0, ap_up
    jne 2f
    pause
    decl %ebx
    jnz 1b
    movl $msg_no_ap, %esi
    jmp fail

2:  movl ap_count, %edi
    xorl %ecx, %ecx
3:  incl %ecx
    cmpl $LIMIT, %ecx
    je ap_still
    movl ap_count, %eax
    subl %edi, %eax
    cmpl $COUNT, %eax
    jb 3b
    movl %ecx, bsp_count
    movl $msg_counted, %esi
    call puts
    movl $COUNT, %eax
    call put_dec
    movl $msg_while, %esi
    call puts
    movl bsp_count, %eax
    call put_dec
    movb $0x0a, %al
    call putc

    movl $0x830, %ecx
    movl $1, %edx
    movl $IPI_VECTOR, %eax          /* fixed, physical, to APIC 1 */
    wrmsr
    movl $1, %eax
    call await_ipis
    movl $msg_ipi, %esi
    call puts

    /* vCPU 1 now halts (interrupts on); wake it with a second IPI. */
    movl $400000000, %ebx
6:  cmpl $0, ap_halting
    jne 7f
    pause
    decl %ebx
    jnz 6b
    movl $msg_no_halt, %esi
    jmp fail
7:  movl $1000000, %ecx
8:  pause
    decl %ecx
    jnz 8b
    movl $0x830, %ecx
    movl $1, %edx
    movl $IPI_VECTOR, %eax
    wrmsr
    movl $2, %eax
    call await_ipis
    movl $msg_woken, %esi
    call puts
    ret

    /* Waits (boundedly) until vCPU 1 has taken %eax IPIs. */
await_ipis:
    movl $400000000, %ebx
4:  cmpl %eax, ap_ipis
    jae 5f
    pause
    decl %ebx
    jnz 4b
    movl $msg_no_ipi, %esi
    jmp fail
5:  ret

ap_still:
    movl $msg_ap_still, %esi
    jmp fail
no_x2apic:
    movl $msg_no_x2apic, %esi
fail:
    call puts
    jmp guest_fail

    /* vCPU 1, from the trampoline: 32-bit protected mode, flat. */
ap_pm:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl $ap_stack_top, %esp
    lidt ap_idt_ptr
    call x2apic_on
    movl $msg_up1, %esi
    call puts
    call put_dec
    movb $0x0a, %al
    call putc
    movl $1, ap_up
    sti
1:  incl ap_count
    cmpl $0, ap_ipis
    je 1b
    /* After the first IPI: idle, interrupts on, until the next. */
    movl $1, ap_halting
2:  hlt
    jmp 2b

    /* vCPU 1's handler of IPI_VECTOR: notes it, EOI, back. */
ap_ipi:
    lock incl ap_ipis
    call apic_eoi
    iret

    /* Copied to TRAMPOLINE; runs in real mode there (CS = VECTOR << 8,
       IP = 0), so it is written out in bytes, 16-bit encodings. */
ap_tramp:
    .byte 0xFA                      /* cli */
    .byte 0x31, 0xC0                /* xor ax, ax */
    .byte 0x8E, 0xD8                /* mov ds, ax */
    .byte 0x66, 0x0F, 0x01, 0x16    /* lgdt (32-bit base) [disp16] */
    .word tramp_gdtr - ap_tramp + TRAMPOLINE
    .byte 0x0F, 0x20, 0xC0          /* mov eax, cr0 */
    .byte 0x66, 0x83, 0xC8, 0x01    /* or eax, 1: PE */
    .byte 0x0F, 0x22, 0xC0          /* mov cr0, eax */
    .byte 0x66, 0xEA                /* jmp far 0x08:ap_pm (32-bit offset) */
    .long ap_pm
    .word 0x08
    .balign 8
tramp_gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF
    .quad 0x00CF92000000FFFF
tramp_gdtr:
    .word 23
    .long tramp_gdt - ap_tramp + TRAMPOLINE
ap_tramp_end:

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-smp"
msg_up0:
    .asciz "guest-smp: vCPU 0 up, x2APIC ID "
msg_up1:
    .asciz "guest-smp: vCPU 1 up, x2APIC ID "
msg_counted:
    .asciz "guest-smp: vCPU 1 counted "
msg_while:
    .asciz " while vCPU 0 counted "
msg_no_x2apic:
    .asciz "guest-smp: FAIL no x2APIC in CPUID\n"
msg_no_ap:
    .asciz "guest-smp: FAIL vCPU 1 did not come up\n"
msg_ipi:
    .asciz "guest-smp: vCPU 1 took interrupt 0x40 from vCPU 0\n"
msg_no_ipi:
    .asciz "guest-smp: FAIL vCPU 1 did not take interrupt 0x40\n"
msg_no_halt:
    .asciz "guest-smp: FAIL vCPU 1 did not go idle\n"
msg_woken:
    .asciz "guest-smp: vCPU 1 halted, and woke for interrupt 0x40\n"
    .balign 4
ap_idt_ptr:
    .word IPI_VECTOR * 8 + 7
    .long ap_idt
msg_ap_still:
    .asciz "guest-smp: FAIL vCPU 1 did not count while vCPU 0 counted to 2^30\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 4
ap_up:
    .skip 4
ap_count:
    .skip 4
bsp_count:
    .skip 4
ap_ipis:
    .skip 4
ap_halting:
    .skip 4
    .balign 8
ap_idt:
    .skip IPI_VECTOR * 8 + 8
    .balign 16
    .skip 4096
ap_stack_top:
"#,
    options(att_syntax)
);
