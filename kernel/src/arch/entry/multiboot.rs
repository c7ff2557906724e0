//! The Multiboot2 header and the 32-bit entry: from the boot loader's
//! protected mode to long mode on boot page tables, then into Rust in the
//! upper half.
//!
//! The boot page tables map the first 4 GiB three times with 2 MiB pages:
//! identity (for this code), at `PHYS_OFFSET` (the direct map) and the first
//! GiB at `KERNEL_VMA` (the kernel image). They are writable and executable,
//! and live only until [`crate::mem::kspace`] replaces them.

use core::arch::global_asm;

global_asm!(
    r#"
    .section .multiboot2, "a"
    .balign 8
mb2_header:
    .long 0xE85250D6                 /* magic */
    .long 0                          /* architecture: i386 protected mode */
    .long mb2_header_end - mb2_header
    .long 0x100000000 - (0xE85250D6 + (mb2_header_end - mb2_header))
    .balign 8
    .short 0, 0                      /* end tag */
    .long 8
mb2_header_end:

    .section .boot.bss, "aw", @nobits
    .balign 4096
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096 * 4

    .section .boot.text, "ax"
    .code32
    .globl _start
_start:
    cli
    cld
    mov edi, eax                     /* Multiboot2 magic */
    mov esi, ebx                     /* boot information (physical) */

    mov ebx, offset boot_pml4        /* zero the seven table pages */
    mov ecx, 7 * 1024
    xor eax, eax
1:  mov dword ptr [ebx], eax
    add ebx, 4
    loop 1b

    mov eax, offset boot_pdpt_low    /* PML4[0] and PML4[256] -> low PDPT */
    or eax, 3
    mov dword ptr [boot_pml4], eax
    mov dword ptr [boot_pml4 + 256 * 8], eax
    mov eax, offset boot_pdpt_high   /* PML4[511] -> high PDPT */
    or eax, 3
    mov dword ptr [boot_pml4 + 511 * 8], eax

    mov eax, offset boot_pd          /* low PDPT[0..4] -> the four PDs */
    or eax, 3
    mov dword ptr [boot_pdpt_low], eax
    mov dword ptr [boot_pdpt_high + 510 * 8], eax   /* KERNEL_VMA -> first GiB */
    add eax, 4096
    mov dword ptr [boot_pdpt_low + 8], eax
    add eax, 4096
    mov dword ptr [boot_pdpt_low + 16], eax
    add eax, 4096
    mov dword ptr [boot_pdpt_low + 24], eax

    mov ebx, offset boot_pd          /* 2048 x 2 MiB: P|RW|PS */
    mov eax, 0x83
    xor edx, edx
    mov ecx, 2048
2:  mov dword ptr [ebx], eax
    mov dword ptr [ebx + 4], edx
    add eax, 0x200000
    adc edx, 0
    add ebx, 8
    loop 2b

    mov eax, cr4                     /* PAE */
    or eax, 1 << 5
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080              /* EFER: LME | NXE */
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0                     /* PG | WP | NE | PE */
    or eax, (1 << 31) | (1 << 16) | (1 << 5) | 1
    mov cr0, eax

    lgdt [boot_gdtr]
    .byte 0xEA                       /* ljmp 0x08:boot_long (hand-encoded) */
    .long boot_long
    .short 0x08

    .code64
boot_long:
    mov edi, edi                     /* upper halves are undefined after the switch */
    mov esi, esi
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    movabs rax, offset boot_high
    jmp rax

    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF         /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF         /* 0x10: data */
boot_gdtr:
    .short boot_gdtr - boot_gdt - 1
    .long boot_gdt

    .section .bss.boot_stack, "aw", @nobits
    .balign 4096
    .globl boot_stack_guard
boot_stack_guard:  .skip 4096        /* left unmapped by kspace */
boot_stack_bottom: .skip 64 * 1024
boot_stack_top:

    .section .text.boot_high, "ax"
boot_high:
    lea rsp, [rip + boot_stack_top]
    xor ebp, ebp
    call {kernel_start}              /* (magic: edi, boot info: esi) */
3:  cli
    hlt
    jmp 3b
"#,
    kernel_start = sym super::boot::kernel_start,
);

unsafe extern "C" {
    /// The page below the bootstrap CPU's stack, left unmapped as a guard.
    static boot_stack_guard: u8;
}

/// The virtual address of the bootstrap stack's guard page.
pub fn boot_stack_guard_page() -> u64 {
    core::ptr::addr_of!(boot_stack_guard) as u64
}
