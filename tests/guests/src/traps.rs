//! The guests' exception handling: an IDT of 32 interrupt gates, each to a
//! 16-byte stub that pushes the vector (and an error code of 0 where the
//! CPU pushes none) and goes to `trap_common`, which asks `trap_hook` and
//! else reports the exception and fails (see the crate's documentation).

core::arch::global_asm!(
    r#"
    .section .text.guest_start, "ax"
    .code32
    .global idt_install
idt_install:
    pushal
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $4, %eax
    addl $trap_stubs, %eax
    movw %ax, idt(,%ecx,8)
    movw $0x08, idt+2(,%ecx,8)
    /* Present, DPL 0, 32-bit interrupt gate. */
    movw $0x8E00, idt+4(,%ecx,8)
    shrl $16, %eax
    movw %ax, idt+6(,%ecx,8)
    incl %ecx
    cmpl $32, %ecx
    jne 1b
    lidt idt_ptr
    popal
    ret

    /* One 16-byte stub per vector: an error code (0 where the CPU pushes
       none), the vector, then the common handler. */
    .macro trap_stub vec, err
    .balign 16
    .if \err == 0
    pushl $0
    .endif
    pushl $\vec
    jmp trap_common
    .endm

    .balign 16
trap_stubs:
    trap_stub 0, 0
    trap_stub 1, 0
    trap_stub 2, 0
    trap_stub 3, 0
    trap_stub 4, 0
    trap_stub 5, 0
    trap_stub 6, 0
    trap_stub 7, 0
    trap_stub 8, 1
    trap_stub 9, 0
    trap_stub 10, 1
    trap_stub 11, 1
    trap_stub 12, 1
    trap_stub 13, 1
    trap_stub 14, 1
    trap_stub 15, 0
    trap_stub 16, 0
    trap_stub 17, 1
    trap_stub 18, 0
    trap_stub 19, 0
    trap_stub 20, 0
    trap_stub 21, 1
    trap_stub 22, 0
    trap_stub 23, 0
    trap_stub 24, 0
    trap_stub 25, 0
    trap_stub 26, 0
    trap_stub 27, 0
    trap_stub 28, 0
    trap_stub 29, 1
    trap_stub 30, 1
    trap_stub 31, 0

    /* Stack: pushal (32 bytes), vector, error code, eip, cs, eflags. */
trap_common:
    pushal
    movl 32(%esp), %eax
    movl 36(%esp), %ecx
    leal 40(%esp), %ebx
    movl trap_hook, %edx
    testl %edx, %edx
    jz 1f
    call *%edx
    testl %eax, %eax
    jz 1f
    popal
    addl $8, %esp
    iret
1:  movl $guest_name, %esi
    call puts
    movl $msg_unexpected, %esi
    call puts
    movl 32(%esp), %eax
    call put_dec
    movl $msg_error, %esi
    call puts
    movl 36(%esp), %eax
    call put_hex
    movl $msg_at, %esi
    call puts
    movl 40(%esp), %eax
    call put_hex
    movb $0x0a, %al
    call putc
    jmp guest_fail


    .section .rodata.guest_traps, "a"
msg_unexpected:
    .asciz ": unexpected exception: vector "
msg_error:
    .asciz " error "
msg_at:
    .asciz " at eip "

    .section .data.guest_traps, "aw"
    .balign 4
idt_ptr:
    .word 32 * 8 - 1
    .long idt
    .global trap_hook
trap_hook:
    .long 0

    .section .bss.guest_traps, "aw", @nobits
    .balign 16
idt:
    .skip 32 * 8
"#,
    options(att_syntax)
);
