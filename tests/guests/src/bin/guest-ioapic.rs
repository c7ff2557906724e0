//! `guest-ioapic`: routes interrupts through its I/O APIC (MMIO at
//! 0xFEC0_0000, IOREGSEL and IOWIN) in 64-bit mode, its local APIC in
//! x2APIC mode.
//!
//! - The version register says 0x11 and entries 0–23; entry 2 starts
//!   masked.
//! - The PIT's channel 0 (rate generator, 1 kHz) on pin 2, routed to
//!   vector 0x60 for APIC ID 0: 10 interrupts there in no less than 9 ms
//!   (by the TSC), none at 0x61; masked: none in 20 ms; routed to 0x61
//!   instead: they come there, none at 0x60.
//! - The UART's transmitter interrupt (IER bit 1) on pin 4: to vector 0x62
//!   it comes once (the handler reads IIR, which ends it); to APIC ID 5,
//!   which no vCPU has, it does not come; level-triggered to vector 0x63 it
//!   comes once with the entry's remote IRR set, which the EOI clears.
//!
//! Each part says `guest-ioapic: <what> ok`; a check that fails is a
//! `guest-ioapic: FAIL <what>` line and exit code 1.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-ioapic")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set IOAPIC, 0xFEC00000

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    jmp long_mode

    .code64
    .global guest_main64
guest_main64:
    call tsc_rates64
    movq $irq_a, %rax
    movl $0x60, %ecx
    call gate64_set
    movq $irq_b, %rax
    movl $0x61, %ecx
    call gate64_set
    movq $irq_uart, %rax
    movl $0x62, %ecx
    call gate64_set
    movq $irq_level, %rax
    movl $0x63, %ecx
    call gate64_set
    call x2apic_on64

    /* Version, and entry 2 masked at reset. */
    movb $0x01, %al
    call ioapic_read64
    movq $msg_version, %rsi
    cmpl $0x00170011, %eax
    jne fail_line64
    movb $0x14, %al
    call ioapic_read64
    movq $msg_reset_mask, %rsi
    btl $16, %eax
    jnc fail_line64

    /* Pin 2 -> 0x60, APIC ID 0, edge, fixed; read back. */
    movb $0x15, %al
    xorl %edx, %edx
    call ioapic_write64
    movb $0x14, %al
    movl $0x60, %edx
    call ioapic_write64
    call ioapic_read64
    movq $msg_readback, %rsi
    cmpl $0x60, %eax
    jne fail_line64
    /* The PIT: channel 0, lobyte/hibyte, mode 2, 1193 (1 kHz). */
    movb $0x34, %al
    outb %al, $0x43
    movb $0xA9, %al
    outb %al, $0x40
    movb $0x04, %al
    outb %al, $0x40
    call stamp
    movq $count_a, %rdi
    movq $10, %rax
    movq $msg_pit_none, %rsi
    call wait_count
    movq last_tsc, %rax
    subq stamp_tsc, %rax
    movl long_tsc_khz, %ecx
    imulq $9, %rcx
    movq $msg_pit_fast, %rsi
    cmpq %rcx, %rax
    jb fail_line64
    movq $msg_wrong_vector, %rsi
    cmpq $0, count_b
    jne fail_line64

    /* Masked: nothing in 20 ms (after 10 ms to settle: an interrupt
       raised before the mask may still be on its way). */
    movb $0x14, %al
    movl $(0x60 | 1 << 16), %edx
    call ioapic_write64
    movq $10000, %rax
    call spin_sti64
    movq count_a, %r12
    movq $20000, %rax
    call spin_sti64
    movq $msg_masked, %rsi
    cmpq count_a, %r12
    jne fail_line64

    /* Routed to 0x61: there, not at 0x60. */
    movb $0x14, %al
    movl $0x61, %edx
    call ioapic_write64
    movq $count_b, %rdi
    movq $5, %rax
    movq $msg_rerouted, %rsi
    call wait_count
    movq $msg_old_vector, %rsi
    cmpq count_a, %r12
    jne fail_line64
    /* Masked again, and the PIT stopped (mode 0, no count). */
    movb $0x14, %al
    movl $(0x61 | 1 << 16), %edx
    call ioapic_write64
    movb $0x30, %al
    outb %al, $0x43
    movq $msg_pit_ok, %rsi
    call puts64

    /* The UART's transmitter interrupt on pin 4 -> 0x62. */
    movb $0x19, %al
    xorl %edx, %edx
    call ioapic_write64
    movb $0x18, %al
    movl $0x62, %edx
    call ioapic_write64
    call uart_irq_on
    movq $count_u, %rdi
    movq $1, %rax
    movq $msg_uart_none, %rsi
    call wait_count
    movq $5000, %rax
    call spin_sti64
    call uart_irq_off
    movq $msg_uart_twice, %rsi
    cmpq $1, count_u
    jne fail_line64

    /* To APIC ID 5, which nobody has: not here. */
    movb $0x19, %al
    movl $(5 << 24), %edx
    call ioapic_write64
    call uart_irq_on
    movq $10000, %rax
    call spin_sti64
    call uart_irq_off
    movq $msg_uart_elsewhere, %rsi
    cmpq $1, count_u
    jne fail_line64

    /* Level-triggered, to 0x63 at APIC ID 0: remote IRR set until EOI. */
    movb $0x19, %al
    xorl %edx, %edx
    call ioapic_write64
    movb $0x18, %al
    movl $(0x63 | 1 << 15), %edx
    call ioapic_write64
    call uart_irq_on
    movq $count_l, %rdi
    movq $1, %rax
    movq $msg_level_none, %rsi
    call wait_count
    movq $5000, %rax
    call spin_sti64
    call uart_irq_off
    movq $msg_level_twice, %rsi
    cmpq $1, count_l
    jne fail_line64
    movq $msg_level_irr, %rsi
    btl $14, level_entry
    jnc fail_line64
    movb $0x18, %al
    call ioapic_read64
    movq $msg_level_eoi, %rsi
    btl $14, %eax
    jc fail_line64
    movq $msg_uart_ok, %rsi
    call puts64
    ret

uart_irq_on:
    pushq %rax
    movb $0x02, %al                 /* IER: transmitter empty */
    movw $0x3F9, %dx
    outb %al, %dx
    popq %rax
    ret

uart_irq_off:
    pushq %rax
    xorl %eax, %eax
    movw $0x3F9, %dx
    outb %al, %dx
    popq %rax
    ret

stamp:
    pushq %rax
    pushq %rdx
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    movq %rax, stamp_tsc
    popq %rdx
    popq %rax
    ret

/* Waits, interrupts on, until the count at %rdi reaches %rax; fails with
   the line at %rsi if it does not within 2 s. */
wait_count:
    call wait_count64
    jc fail_line64
    ret

/* The handlers: count (and the TSC), then EOI. */
    .macro counted name, counter
\name:
    pushq %rax
    pushq %rcx
    pushq %rdx
    rdtsc
    shlq $32, %rdx
    orq %rdx, %rax
    movq %rax, last_tsc
    incq \counter
    .endm

eoi:
    movl $0x80B, %ecx
    xorl %eax, %eax
    xorl %edx, %edx
    wrmsr
    popq %rdx
    popq %rcx
    popq %rax
    iretq

    counted irq_a, count_a
    jmp eoi
    counted irq_b, count_b
    jmp eoi
    counted irq_uart, count_u
    movw $0x3FA, %dx                /* IIR: ends the transmitter's interrupt */
    inb %dx, %al
    jmp eoi
    counted irq_level, count_l
    movb $0x18, %al
    call ioapic_read64
    movl %eax, level_entry
    movw $0x3FA, %dx
    inb %dx, %al
    jmp eoi


    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-ioapic"
msg_version:
    .asciz "the version register is not 0x00170011"
msg_reset_mask:
    .asciz "entry 2 is not masked at reset"
msg_readback:
    .asciz "entry 2 does not read back as written"
msg_pit_none:
    .asciz "no 10 PIT interrupts at vector 0x60 in 2 s"
msg_pit_fast:
    .asciz "10 PIT interrupts of 1 ms in less than 9 ms"
msg_wrong_vector:
    .asciz "a PIT interrupt came at vector 0x61"
msg_masked:
    .asciz "a PIT interrupt came with its entry masked"
msg_rerouted:
    .asciz "no 5 PIT interrupts at vector 0x61 in 2 s once routed there"
msg_old_vector:
    .asciz "a PIT interrupt came at 0x60 once routed to 0x61"
msg_pit_ok:
    .asciz "guest-ioapic: PIT on pin 2 routed, masked and rerouted ok\n"
msg_uart_none:
    .asciz "no UART interrupt at vector 0x62"
msg_uart_twice:
    .asciz "the UART's interrupt came more than once"
msg_uart_elsewhere:
    .asciz "an interrupt for APIC ID 5 came to APIC ID 0"
msg_level_none:
    .asciz "no level-triggered UART interrupt at vector 0x63"
msg_level_twice:
    .asciz "the level-triggered interrupt came more than once"
msg_level_irr:
    .asciz "remote IRR was not set while the level interrupt was in service"
msg_level_eoi:
    .asciz "remote IRR was not cleared by the EOI"
msg_uart_ok:
    .asciz "guest-ioapic: UART on pin 4 edge, level and destinations ok\n"

    .section .bss.guest_main, "aw", @nobits
    .balign 8
count_a:
    .skip 8
count_b:
    .skip 8
count_u:
    .skip 8
count_l:
    .skip 8
last_tsc:
    .skip 8
stamp_tsc:
    .skip 8
level_entry:
    .skip 4
"#,
    options(att_syntax)
);
