//! `guest-echo`: answers what is typed at its console, by interrupt. It
//! routes the UART's interrupt (ISA IRQ 4, I/O APIC pin 4) to vector 0x44
//! on its local APIC (x2APIC mode), turns the UART's receive interrupt on
//! (IER bit 0), says `guest-echo: ready`, and halts with interrupts on. Its
//! handler reads every byte the line status says is there and collects a
//! line (at most 64 bytes; the rest of a longer one is dropped), which
//! `\r` or `\n` ends: each non-empty line is answered `echo: <line>`.
//! The line `quit` ends it: `guest-echo: <n> lines in <m> interrupts`,
//! then success. With `deaf` on its command line it never reads: it says
//! `guest-echo: deaf, never reading` and halts for good with interrupts on
//! (none come), so what is typed at it stays in its console's input ring
//! (a system test's hostile twin).

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-echo")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set VECTOR, 0x44
    .set LINE_MAX, 64
    .set IOREGSEL, 0xFEC00000
    .set IOWIN, 0xFEC00010

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $opt_deaf, %esi
    call cmdline_has
    testl %eax, %eax
    jnz deaf

    movl $rx, %eax
    movl $VECTOR, %ecx
    movl $idt, %edi
    call gate_set
    lidt idt_ptr
    call x2apic_on

    /* I/O APIC pin 4: VECTOR, fixed, physical, edge, unmasked, to APIC 0. */
    movl $0x19, IOREGSEL
    movl $0, IOWIN
    movl $0x18, IOREGSEL
    movl $VECTOR, IOWIN

    /* The UART: DTR, RTS, OUT2; the receive interrupt on. */
    movw $0x3fc, %dx
    movb $0x0b, %al
    outb %al, %dx
    movw $0x3f9, %dx
    movb $0x01, %al
    outb %al, %dx

    movl $msg_ready, %esi
    call puts
1:  sti
    hlt
    cli
    cmpl $0, quit
    je 1b

    movl $msg_lines, %esi
    call puts
    movl lines, %eax
    call put_dec
    movl $msg_in, %esi
    call puts
    movl irqs, %eax
    call put_dec
    movl $msg_irqs, %esi
    call puts
    ret

deaf:
    movl $msg_deaf, %esi
    call puts
    sti
2:  hlt
    jmp 2b

/* The UART's interrupt: every byte there is, then EOI. */
rx:
    pushal
    incl irqs
1:  movw $0x3fd, %dx
    inb %dx, %al
    testb $1, %al
    jz 3f
    movw $0x3f8, %dx
    inb %dx, %al
    cmpb $0x0d, %al
    je 2f
    cmpb $0x0a, %al
    je 2f
    movl len, %ecx
    cmpl $LINE_MAX, %ecx
    jae 1b
    movb %al, line(%ecx)
    incl len
    jmp 1b
2:  call line_done
    jmp 1b
3:  call apic_eoi
    popal
    iret

/* A line ended: answered if not empty; `quit` ends the guest. */
line_done:
    movl len, %ecx
    testl %ecx, %ecx
    jz 9f
    movb $0, line(%ecx)
    movl $msg_echo, %esi
    call puts
    movl $line, %esi
    call puts
    movb $0x0a, %al
    call putc
    incl lines
    cmpl $4, len
    jne 8f
    cmpl $0x74697571, line          /* "quit" */
    jne 8f
    movl $1, quit
8:  movl $0, len
9:  ret

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-echo"
opt_deaf:
    .asciz "deaf"
msg_ready:
    .asciz "guest-echo: ready\n"
msg_deaf:
    .asciz "guest-echo: deaf, never reading\n"
msg_echo:
    .asciz "echo: "
msg_lines:
    .asciz "guest-echo: "
msg_in:
    .asciz " lines in "
msg_irqs:
    .asciz " interrupts\n"
    .balign 4
idt_ptr:
    .word VECTOR * 8 + 7
    .long idt

    .section .bss.guest_main, "aw", @nobits
    .balign 8
idt:
    .skip VECTOR * 8 + 8
irqs:
    .skip 4
lines:
    .skip 4
quit:
    .skip 4
len:
    .skip 4
line:
    .skip LINE_MAX + 4
"#,
    options(att_syntax)
);
