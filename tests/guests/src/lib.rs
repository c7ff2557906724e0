//! What every test guest shares: the Multiboot (v1) header, the entry
//! (`_start`: own GDT, flat segments, a stack, then `guest_main`), the ways
//! out (`guest_pass`: exit code 0, `out 0xf4, 0`; `guest_fail`: exit code
//! 1; `guest_exit`: exit code `%al`; as with QEMU's isa-debug-exit), the serial console (16550 at 0x3f8: `putc`,
//! `puts`, `put_hex`, `put_dec`), the command line (`cmdline_has`) and an
//! IDT of 32 exception gates whose handler asks `trap_hook` first.
//!
//! A guest is a binary of this crate: 32-bit assembly (`global_asm!`,
//! AT&T syntax) that defines `guest_main` and `guest_name`; no Rust code
//! runs in a guest. The calling convention of the shared routines:
//!
//! - `putc`: prints `%al`; `puts`: prints the NUL-terminated string at
//!   `%esi`; `put_hex`: prints `%eax` as `0x` and 8 hex digits; `put_dec`:
//!   prints `%eax` in decimal. All keep every register. `putc64` and
//!   `puts64` are `putc` and `puts` for 64-bit code (`%rsi`).
//! - `cmdline_has`: if the Multiboot command line contains the string at
//!   `%esi`, `%eax` = the address just past it, else 0.
//! - `cmdline_number`: `%eax` = the decimal number just after the string
//!   at `%esi` on the command line (e.g. `"spin_ms="`), or 0 if absent.
//! - `delay_ms`: spins `%eax` milliseconds (none if 0) on the TSC, at the rate the VMM
//!   appends to a command line with a timed option (`tsc_khz=`, see
//!   `domains/vmm`); without it the guest prints `<guest_name>: FAIL no
//!   tsc_khz= on the command line` and fails. Keeps every register.
//! - `idt_install`: loads the IDT. An exception then calls `trap_hook` (if
//!   not 0) with `%eax` = vector, `%ecx` = error code (0 if none), `%ebx` =
//!   the address of the saved EIP (which the hook may change); the hook
//!   returns `%eax` != 0 if it handled the exception. Otherwise the guest
//!   prints `<guest_name>: unexpected exception: vector …` and fails.
//! - `x2apic_on`: turns the local APIC's x2APIC mode on; `%eax` = its
//!   APIC ID (clobbers `%ecx`, `%edx`). `apic_eoi`: ends the interrupt in
//!   service (keeps every register).
//! - `gate_set`: writes a 32-bit interrupt gate to `%eax` for vector `%ecx`
//!   into the IDT at `%edi` (keeps every register).
//! - `xorshift`: `%eax` = the next xorshift32 (13, 17, 5) of `%eax`.
//! - `mb_info`, `mb_magic`: what the loader handed over in ebx and eax.
//! - `long_mode` (jumped to): long mode, then the guest's 64-bit
//!   `guest_main64`, with 64-bit routines of their own (`long.rs`).
//!
//! Built only for `x86_64-unknown-none` with `link.ld` (1 MiB, see there);
//! on the host each binary is a stub.

#![cfg_attr(target_os = "none", no_std)]

#[cfg(target_os = "none")]
mod long;
#[cfg(target_os = "none")]
mod traps;

#[cfg(target_os = "none")]
core::arch::global_asm!(
    r#"
    .section .multiboot, "a"
    .balign 4
    /* Multiboot v1: magic, flags (page-aligned modules, memory info), checksum. */
    .long 0x1BADB002
    .long 0x00000003
    .long -(0x1BADB002 + 0x00000003)

    .section .text.guest_start, "ax"
    .code32
    .global _start
_start:
    cli
    cld
    movl %eax, mb_magic
    movl %ebx, mb_info
    lgdt gdt_ptr
    /* Far jump to reload CS from our own GDT (hand-encoded, EMULATORS.md). */
    .byte 0xEA
    .long 1f
    .word 0x08
1:  movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %fs
    movw %ax, %gs
    movw %ax, %ss
    movl $stack_top, %esp
    call guest_main
    jmp guest_pass

    .global guest_pass
guest_pass:
    movb $0, %al
    jmp guest_exit

    .global guest_fail
guest_fail:
    movb $1, %al

    .global guest_exit
guest_exit:
    movw $0xf4, %dx
    outb %al, %dx
2:  hlt
    jmp 2b

    .global putc
putc:
    pushl %edx
    pushl %eax
    movw $0x3fd, %dx
1:  inb %dx, %al
    testb $0x20, %al
    jz 1b
    popl %eax
    movw $0x3f8, %dx
    outb %al, %dx
    popl %edx
    ret

    .global puts
puts:
    pushl %eax
    pushl %esi
1:  lodsb
    testb %al, %al
    jz 2f
    call putc
    jmp 1b
2:  popl %esi
    popl %eax
    ret

    // The console from 64-bit code (a long-mode guest's): as `putc` and
    // `puts`, with `%rsi`; both keep every register.
    .code64
    .global putc64
putc64:
    pushq %rdx
    pushq %rax
    movw $0x3fd, %dx
1:  inb %dx, %al
    testb $0x20, %al
    jz 1b
    popq %rax
    movw $0x3f8, %dx
    outb %al, %dx
    popq %rdx
    ret

    .global puts64
puts64:
    pushq %rax
    pushq %rsi
1:  lodsb
    testb %al, %al
    jz 2f
    call putc64
    jmp 1b
2:  popq %rsi
    popq %rax
    ret
    .code32

    .global put_hex
put_hex:
    pushal
    movl %eax, %ebx
    movb $0x30, %al
    call putc
    movb $0x78, %al
    call putc
    movl $8, %ecx
1:  roll $4, %ebx
    movl %ebx, %eax
    andl $0xf, %eax
    movb hex_digits(%eax), %al
    call putc
    loop 1b
    popal
    ret

    .global put_dec
put_dec:
    pushal
    movl $10, %ebx
    xorl %ecx, %ecx
1:  xorl %edx, %edx
    divl %ebx
    pushl %edx
    incl %ecx
    testl %eax, %eax
    jnz 1b
2:  popl %eax
    addb $0x30, %al
    call putc
    loop 2b
    popal
    ret

    .global cmdline_has
cmdline_has:
    pushl %ebx
    pushl %ecx
    pushl %edx
    pushl %edi
    xorl %eax, %eax
    movl mb_info, %ebx
    testl $4, (%ebx)
    jz 4f
    movl 16(%ebx), %edi
1:  xorl %ecx, %ecx
2:  movb (%esi,%ecx), %dl
    testb %dl, %dl
    jz 3f
    cmpb (%edi,%ecx), %dl
    jne 5f
    incl %ecx
    jmp 2b
5:  cmpb $0, (%edi)
    je 4f
    incl %edi
    jmp 1b
3:  leal (%edi,%ecx), %eax
4:  popl %edi
    popl %edx
    popl %ecx
    popl %ebx
    ret

    .global cmdline_number
cmdline_number:
    pushl %ecx
    pushl %esi
    call cmdline_has
    testl %eax, %eax
    jz 2f
    movl %eax, %esi
    xorl %eax, %eax
1:  movzbl (%esi), %ecx
    subl $0x30, %ecx
    cmpl $9, %ecx
    ja 2f
    imull $10, %eax
    addl %ecx, %eax
    incl %esi
    jmp 1b
2:  popl %esi
    popl %ecx
    ret

    .global delay_ms
delay_ms:
    pushal
    testl %eax, %eax
    jz 2f
    movl %eax, %edi
    movl $opt_tsc_khz, %esi
    call cmdline_number
    testl %eax, %eax
    jz 3f
    mull %edi
    movl %eax, %ebx
    movl %edx, %ecx
    rdtsc
    addl %eax, %ebx
    adcl %edx, %ecx
1:  rdtsc
    cmpl %ecx, %edx
    jb 1b
    ja 2f
    cmpl %ebx, %eax
    jb 1b
2:  popal
    ret
3:  movl $guest_name, %esi
    call puts
    movl $msg_no_khz, %esi
    call puts
    jmp guest_fail

    .global x2apic_on
x2apic_on:
    movl $0x1B, %ecx
    rdmsr
    orl $0xC00, %eax
    wrmsr
    movl $0x802, %ecx
    rdmsr
    ret

    .global apic_eoi
apic_eoi:
    pushl %eax
    pushl %ecx
    pushl %edx
    movl $0x80B, %ecx
    xorl %eax, %eax
    xorl %edx, %edx
    wrmsr
    popl %edx
    popl %ecx
    popl %eax
    ret

    .global xorshift
xorshift:
    pushl %edx
    movl %eax, %edx
    shll $13, %edx
    xorl %edx, %eax
    movl %eax, %edx
    shrl $17, %edx
    xorl %edx, %eax
    movl %eax, %edx
    shll $5, %edx
    xorl %edx, %eax
    popl %edx
    ret

    .global gate_set
gate_set:
    pushl %eax
    movw %ax, (%edi,%ecx,8)
    movw $0x08, 2(%edi,%ecx,8)
    movw $0x8E00, 4(%edi,%ecx,8)
    shrl $16, %eax
    movw %ax, 6(%edi,%ecx,8)
    popl %eax
    ret

    .section .rodata.guest_common, "a"
opt_tsc_khz:
    .asciz "tsc_khz="
msg_no_khz:
    .asciz ": FAIL no tsc_khz= on the command line\n"
hex_digits:
    .ascii "0123456789abcdef"

    .section .data.guest_common, "aw"
    .balign 8
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF
    .quad 0x00CF92000000FFFF
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
    .balign 4
    .global mb_info
mb_info:
    .long 0
    .global mb_magic
mb_magic:
    .long 0

    .section .bss.guest_common, "aw", @nobits
    .balign 16
    .skip 16384
stack_top:
"#,
    options(att_syntax)
);

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    unsafe extern "C" {
        fn guest_fail() -> !;
    }
    // SAFETY: no Rust code runs in a guest, so this is never reached; were
    // it, `guest_fail` (above) reports failure on the exit port and halts.
    unsafe { guest_fail() }
}

/// What a guest binary does when built for the host: says it is not one.
#[cfg(not(target_os = "none"))]
pub fn host_stub(name: &str) -> std::process::ExitCode {
    eprintln!("{name} is a Ryokan test guest: `cargo xtask build` builds it for x86_64-unknown-none");
    std::process::ExitCode::from(2)
}
