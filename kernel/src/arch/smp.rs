//! Starting the application processors: real-mode start-up code copied below
//! 1 MiB, then INIT-SIPI-SIPI to each CPU the MADT lists (SDM Vol. 3A 8.4.4).
//! Each CPU climbs to long mode on the kernel's page tables and enters
//! [`crate::boot::ap_entry`] on its own stack.

use core::arch::global_asm;
use core::sync::atomic::Ordering;

use x86_64::PhysAddr;

use super::{apic, cpu};
use crate::mem::kspace;

/// Physical page of the start-up code (SIPI vector 0x08). The first MiB is
/// never handed out by the frame allocator.
pub const TRAMPOLINE: u64 = 0x8000;
/// Offsets of the parameters in the start-up page.
const P_CR3: u64 = 0xF00;
const P_STACK: u64 = 0xF08;
const P_ENTRY: u64 = 0xF10;
const P_INDEX: u64 = 0xF18;

global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .set TRAMP, 0x8000
    .globl ap_trampoline_start, ap_trampoline_end
    .code16
ap_trampoline_start:
    jmp ap16
    .balign 8
ap_gdt:
    .quad 0
    /* Accessed bits preset: the page is mapped read-only by then, and a
       CPU that sets the bit on a descriptor load would fault (Bochs does). */
    .quad 0x00CF9B000000FFFF         /* 0x08: 32-bit code */
    .quad 0x00CF93000000FFFF         /* 0x10: data */
    .quad 0x00AF9B000000FFFF         /* 0x18: 64-bit code */
ap_gdtr:
    .short 31
    .long TRAMP + (ap_gdt - ap_trampoline_start)
    .set AP_GDTR, TRAMP + (ap_gdtr - ap_trampoline_start)
ap16:
    cli
    cld
    xor ax, ax
    mov ds, ax
    lgdt [AP_GDTR]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    .byte 0x66, 0xEA                 /* ljmp 0x08:ap32 (32-bit offset) */
    .long TRAMP + (ap32 - ap_trampoline_start)
    .short 0x08
    .code32
ap32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4                     /* PAE */
    or eax, 1 << 5
    mov cr4, eax
    mov eax, dword ptr [TRAMP + 0xF00]
    mov cr3, eax
    mov ecx, 0xC0000080              /* EFER: LME | NXE */
    rdmsr
    or eax, (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0                     /* PG | WP | NE | PE */
    or eax, (1 << 31) | (1 << 16) | (1 << 5) | 1
    mov cr0, eax
    .byte 0xEA                       /* ljmp 0x18:ap64 */
    .long TRAMP + (ap64 - ap_trampoline_start)
    .short 0x18
    .code64
ap64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, qword ptr [TRAMP + 0xF08]
    mov rdi, qword ptr [TRAMP + 0xF18]
    mov rax, qword ptr [TRAMP + 0xF10]
    xor ebp, ebp
    jmp rax
ap_trampoline_end:
    .text
"#
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
}

/// Busy-waits `us` microseconds on the calibrated TSC.
pub fn delay_us(us: u64, tsc_per_ms: u64) {
    let end = cpu::rdtsc() + us * tsc_per_ms / 1000;
    while cpu::rdtsc() < end {
        core::hint::spin_loop();
    }
}

fn put(off: u64, val: u64) {
    let va = kspace::phys_to_virt(PhysAddr::new(TRAMPOLINE + off));
    // SAFETY: the trampoline page is below 1 MiB, reserved for this use and
    // covered by the direct map; no AP is reading it while the BSP writes.
    unsafe { core::ptr::write_volatile(va.as_mut_ptr::<u64>(), val) }
}

/// Copies the start-up code into its page and maps it for the APs.
pub fn install() -> Result<(), kspace::SetupError> {
    let start = &raw const ap_trampoline_start;
    let len = &raw const ap_trampoline_end as usize - start as usize;
    // SAFETY: the symbols delimit the start-up code in .rodata.
    let code = unsafe { core::slice::from_raw_parts(start, len) };
    let dst = kspace::phys_to_virt(PhysAddr::new(TRAMPOLINE)).as_mut_ptr::<u8>();
    // SAFETY: as in `put`; the code is shorter than the parameter offset.
    unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), dst, code.len().min(P_CR3 as usize)) };
    kspace::map_identity_exec(TRAMPOLINE)
}

/// Starts CPU `index` (local APIC id `apic_id`) on stack `stack_top`, into
/// `entry(index)`; waits up to a second for it to come online.
pub fn start(index: usize, apic_id: u32, stack_top: u64, cr3: u64, entry: u64, tsc_per_ms: u64) -> bool {
    put(P_CR3, cr3);
    put(P_STACK, stack_top);
    put(P_ENTRY, entry);
    put(P_INDEX, index as u64);
    let Some(percpu) = cpu::cpu(index) else { return false };
    apic::send_init(apic_id);
    delay_us(10_000, tsc_per_ms);
    for _ in 0..2 {
        apic::send_startup(apic_id, (TRAMPOLINE >> 12) as u8);
        delay_us(200, tsc_per_ms);
        if percpu.online.load(Ordering::Acquire) {
            return true;
        }
    }
    for _ in 0..1000 {
        if percpu.online.load(Ordering::Acquire) {
            return true;
        }
        delay_us(1000, tsc_per_ms);
    }
    false
}
