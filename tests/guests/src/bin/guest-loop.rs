//! `guest-loop`: the two exception loops that held a CPU forever on
//! hypervisors that let their guests' #DB and #AC run natively.
//!
//! - `db` (CVE-2015-8104): an instruction breakpoint on the first
//!   instruction of its own #DB handler (an interrupt gate, so interrupts
//!   stay off): each #DB is delivered straight into the next. Its frames
//!   walk down its stack from the top of its RAM until they crush its IDT,
//!   and the guest triple-faults (or leaves its RAM): a loop of some
//!   250,000 #DBs, each of which the kernel takes and gives back. Where
//!   the CPU fires no breakpoint of a guest's (QEMU's AMD-V, see
//!   `kernel/src/virt/svm/debugreg.rs`) the handler runs, says so, and
//!   the guest passes.
//! - `ac` (CVE-2015-5307): ring 3 with alignment checking on, a
//!   misaligned stack and an #AC handler in ring 3: the delivery of #AC
//!   itself raises #AC, forever. The kernel sees the #AC fault in its own
//!   delivery and its VMM stops the guest. On a CPU that raises no #AC
//!   (QEMU's TCG) the guest says so from ring 3 and passes.
//!
//! It says `guest-loop: entering the #DB loop` (or `#AC`) first; an #AC
//! handler that runs is a failure (`guest-loop: FAIL …`).

#![cfg_attr(target_os = "none", no_std, no_main)]

use guests as _;

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    guests::host_stub("guest-loop")
}

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .set TOP, 0x3FFFF0          /* the loops' stack: the top of 4 MiB of RAM */

    .section .text.guest_main, "ax"
    .code32
    .global guest_main
guest_main:
    call idt_install
    sidt idtr
    movl idtr + 2, %edi
    movl $opt_ac, %esi
    call cmdline_has
    testl %eax, %eax
    jnz ac_loop

    /* #DB: a gate to db_handler, an instruction breakpoint on it. */
    movl $db_handler, %eax
    movl $1, %ecx
    call gate_set
    movl $msg_db, %esi
    call puts
    movl $TOP, %esp
    movl $db_handler, %eax
    movl %eax, %db0
    movl $0x401, %eax
    movl %eax, %db7
    jmp db_handler
db_handler:
    movl $msg_no_bp, %esi
    call puts
    jmp guest_pass

    /* #AC: ring-3 segments, an #AC gate into ring 3, CR0.AM. */
ac_loop:
    lgdt gdt3_ptr
    movl $ac_handler, %eax
    movl $17, %ecx
    call gate_set
    movw $0x1B, 2(%edi,%ecx,8)
    movl %cr0, %eax
    orl $(1 << 18), %eax
    movl %eax, %cr0
    movl $msg_ac, %esi
    call puts
    movw $0x23, %ax
    movw %ax, %ds
    movw %ax, %es
    pushl $0x23
    pushl $(TOP + 1)
    pushl $0x43002              /* AC, IOPL 3 (its UART and exit port) */
    pushl $0x1B
    pushl $ring3
    iret
ring3:
    movl 0x200001, %eax         /* misaligned, at CPL 3 with AC: #AC */
    movl $msg_no_ac, %esi
    call puts
    jmp guest_pass
ac_handler:
    movl $msg_ac_ran, %esi
    call puts
    jmp guest_fail

    .section .rodata.guest_main, "a"
    .global guest_name
guest_name:
    .asciz "guest-loop"
opt_ac:
    .asciz "ac"
msg_db:
    .asciz "guest-loop: entering the #DB loop\n"
msg_no_bp:
    .asciz "guest-loop: the #DB handler ran: no instruction breakpoint fired\n"
msg_ac:
    .asciz "guest-loop: entering the #AC loop\n"
msg_no_ac:
    .asciz "guest-loop: this CPU raises no #AC\n"
msg_ac_ran:
    .asciz "guest-loop: FAIL the #AC handler ran: #AC was delivered\n"

    .section .data.guest_main, "aw"
    .balign 8
gdt3:
    .quad 0
    .quad 0x00CF9A000000FFFF    /* 0x08: ring-0 code */
    .quad 0x00CF92000000FFFF    /* 0x10: ring-0 data */
    .quad 0x00CFFA000000FFFF    /* 0x18: ring-3 code */
    .quad 0x00CFF2000000FFFF    /* 0x20: ring-3 data */
gdt3_end:
gdt3_ptr:
    .word gdt3_end - gdt3 - 1
    .long gdt3
idtr:
    .word 0
    .long 0
"#,
    options(att_syntax)
);
