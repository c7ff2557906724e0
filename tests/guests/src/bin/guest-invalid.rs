//! `guest-invalid`: asks for a guest state the CPU refuses to enter (its
//! VMM is told: `ExitReason::EntryFailed`), or one the kernel must make
//! fit. The command line picks one (after `wait_ms=<n>` ms of spinning):
//!
//! - `cr0-nw`: sets CR0.NW with CR0.CD clear, with eax, ebx, ecx and edx
//!   holding known values, then writes them to port 0x80. A CPU refuses that
//!   CR0 with #GP (VT-x), and the guest says so (`guest-invalid: CR0.NW
//!   without CD refused with #GP`) and passes; QEMU's AMD-V takes it, and
//!   then refuses the VMRUN that follows the port write (VMEXIT_INVALID,
//!   before loading any of the guest's state): the guest must never run on.
//! - `wide-rip`: writes those values to port 0xf7, which its VMM (with
//!   `bad-entry`) answers by setting its rip 4 GiB past the next
//!   instruction: VT-x refuses that outside 64-bit mode (a VM-entry failure,
//!   invalid guest state); AMD-V ignores rip's bits 63:32 there and the
//!   guest goes on (`guest-invalid: ran on past a rip above 4 GiB`).
//! - `real-gp`: drops to real mode (at 0x7000, its stack below) and reads
//!   MSR 0x3A, which its VMM answers with #GP(0). A real-mode exception
//!   pushes no error code, so the #GP must come without one through the
//!   real-mode vector table (VT-x refuses to enter the guest if the kernel
//!   passes the code on); back in protected mode the guest says `guest-
//!   invalid: #GP(0) in real mode delivered without an error code`.
//!
//! Anything else prints a `guest-invalid: FAIL …` line and fails.

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-invalid")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set MAGIC_A, 0x1a2b3c4d
    .set MAGIC_B, 0x5e6f7081
    .set MAGIC_C, 0x92a3b4c5
    .set MAGIC_D, 0xd6e70000
    .set BLOB, 0x7000

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    movl $hook, trap_hook
    call idt_install
    movl $opt_wait, %esi
    call cmdline_number
    call delay_ms
    movl $opt_nw, %esi
    call cmdline_has
    testl %eax, %eax
    jnz nw
    movl $opt_wide, %esi
    call cmdline_has
    testl %eax, %eax
    jnz wide
    movl $opt_real, %esi
    call cmdline_has
    testl %eax, %eax
    jnz real
    movl $msg_no_mode, %esi
    jmp fail

nw:
    movl $msg_nw, %esi
    call puts
    movl %cr0, %edi
    orl $0x20000000, %edi           /* NW */
    andl $0xBFFFFFFF, %edi          /* CD clear */
    movl $MAGIC_A, %eax
    movl $MAGIC_B, %ebx
    movl $MAGIC_C, %ecx
    movl $(MAGIC_D | 0x80), %edx
nw_mov:
    movl %edi, %cr0
    outb %al, %dx
    cmpl $0, nw_refused
    je 1f
    movl $msg_nw_gp, %esi
    call puts
    ret
1:  andl $0x9FFFFFFF, %edi
    movl %edi, %cr0
    movl $msg_nw_ran, %esi
    jmp fail

wide:
    movl $msg_wide, %esi
    call puts
    movl $MAGIC_A, %eax
    movl $MAGIC_B, %ebx
    movl $MAGIC_C, %ecx
    movl $(MAGIC_D | 0xf7), %edx
    outb %al, %dx
    movl $msg_wide_ran, %esi
    call puts
    ret

real:
    movl $msg_real, %esi
    call puts
    movl $blob, %esi
    movl $BLOB, %edi
    movl $(blob_end - blob), %ecx
    rep movsb
    movl %esp, saved_esp
    lgdt gdt16_ptr
    /* jmp far 0x18:BLOB, into 16-bit protected mode */
    .byte 0xEA
    .long BLOB
    .word 0x18
pm_back:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl saved_esp, %esp
    call idt_install
    movzbl BLOB + (rm_flag - blob), %eax
    cmpl $1, %eax
    jne 1f
    movl $msg_real_ok, %esi
    call puts
    ret
1:  movl $msg_real_bad, %esi
    call puts
    call put_hex
    movb $0x0a, %al
    call putc
    jmp guest_fail

    /* #GP at nw_mov: noted, and the 3-byte mov skipped. */
hook:
    xorl %edx, %edx
    cmpl $13, %eax
    jne 1f
    cmpl $nw_mov, (%ebx)
    jne 1f
    addl $3, (%ebx)
    movl $1, nw_refused
    incl %edx
1:  movl %edx, %eax
    ret

fail:
    call puts
    jmp guest_fail

    /* Copied to BLOB and entered there through the 16-bit code segment
       (base 0), so every address in it is BLOB + its offset. */
blob:
    .code16
    movw $0x20, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr0, %eax
    andl $0xFFFFFFFE, %eax
    movl %eax, %cr0
    ljmp $0, $(BLOB + rm_start - blob)
rm_start:
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw $(BLOB - 0x10), %sp
    lidt BLOB + (rm_idtr - blob)
    movw $(BLOB + rm_gp - blob), 13 * 4
    movw $0, 13 * 4 + 2
    movl $0x3A, %ecx
rm_rdmsr:
    rdmsr
rm_back:
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    /* jmp far 0x08:pm_back (32-bit offset) */
    .byte 0x66, 0xEA
    .long pm_back
    .word 0x08
    /* The #GP: it must have pushed no error code (the word on top is the
       ip of the rdmsr); then rdmsr (2 bytes) is skipped. Else it is noted
       and the guest goes back to protected mode (to say so) from here. */
rm_gp:
    pushw %bp
    movw %sp, %bp
    cmpw $(BLOB + rm_rdmsr - blob), 2(%bp)
    jne 1f
    addw $2, 2(%bp)
    movb $1, BLOB + (rm_flag - blob)
    popw %bp
    iret
1:  movb $2, BLOB + (rm_flag - blob)
    jmp rm_back
rm_idtr:
    .word 0x3ff
    .long 0
rm_flag:
    .byte 0
    .code32
blob_end:

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-invalid"
opt_wait:
    .asciz "wait_ms="
opt_nw:
    .asciz "cr0-nw"
opt_wide:
    .asciz "wide-rip"
opt_real:
    .asciz "real-gp"
msg_no_mode:
    .asciz "guest-invalid: FAIL no cr0-nw, wide-rip or real-gp on the command line\n"
msg_nw:
    .asciz "guest-invalid: setting CR0.NW without CD\n"
msg_nw_gp:
    .asciz "guest-invalid: CR0.NW without CD refused with #GP\n"
msg_nw_ran:
    .asciz "guest-invalid: FAIL ran on with CR0.NW set and CD clear\n"
msg_wide:
    .asciz "guest-invalid: asking for a rip above 4 GiB\n"
msg_wide_ran:
    .asciz "guest-invalid: ran on past a rip above 4 GiB\n"
msg_real:
    .asciz "guest-invalid: reading MSR 0x3a in real mode\n"
msg_real_ok:
    .asciz "guest-invalid: #GP(0) in real mode delivered without an error code\n"
msg_real_bad:
    .asciz "guest-invalid: FAIL no #GP in real mode as a CPU delivers it (0 none, 2 with an error code): "

    .section .data.guest_main, "aw"
    .balign 8
gdt16:
    .quad 0
    .quad 0x00CF9A000000FFFF
    .quad 0x00CF92000000FFFF
    .quad 0x00009A000000FFFF        /* 0x18: 16-bit code, base 0 */
    .quad 0x000092000000FFFF        /* 0x20: 16-bit data, base 0 */
gdt16_end:
gdt16_ptr:
    .word gdt16_end - gdt16 - 1
    .long gdt16
    .balign 4
nw_refused:
    .long 0
saved_esp:
    .long 0
"#,
    options(att_syntax)
);
