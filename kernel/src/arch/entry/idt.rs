//! The interrupt descriptor table: one gate for every one of the 256 vectors,
//! each leading through a small stub to [`super::trap::dispatch`], so that no
//! vector can arrive unreported.

use core::arch::global_asm;

use spin::Once;
use x86_64::instructions::tables::lidt;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;

use crate::arch::gdt;

// 256 stubs, 16 bytes apart. Each pushes a zero where the CPU pushes no error
// code (SDM Vol. 3A 6.13), then the vector, and joins the common path, which
// saves the registers as a `TrapFrame` and calls `dispatch`.
global_asm!(
    r#"
    .section .text.trap_stubs, "ax"
    .balign 16
    .globl trap_stubs
trap_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push 0
    .endif
    push vec
    jmp trap_common
    .set vec, vec + 1
    .endr

trap_common:
    test qword ptr [rsp + 24], 3     /* from user mode? (saved CS) */
    jz 1f
    swapgs
1:
    .globl trap_saved
trap_saved:                          /* the syscall stub joins here */
    .irp r, rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15
    push \r
    .endr
    mov rdi, rsp
    cld
    call {dispatch}
    .globl trap_return
trap_return:                         /* rsp: a TrapFrame */
    .irp r, r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax
    pop \r
    .endr
    test qword ptr [rsp + 24], 3     /* back to user mode? */
    jz 2f
    swapgs
2:
    add rsp, 16
    iretq
"#,
    dispatch = sym super::trap::dispatch,
);

unsafe extern "C" {
    static trap_stubs: u8;
}

/// One 16-byte interrupt gate (SDM Vol. 3A 6.14.1).
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: Once<Idt> = Once::new();

/// Builds the IDT (once) and loads it on this CPU.
pub fn load() {
    let idt = IDT.call_once(|| {
        let base = core::ptr::addr_of!(trap_stubs) as u64;
        let mut gates = [Gate::default(); 256];
        for (vec, gate) in gates.iter_mut().enumerate() {
            let handler = base + 16 * vec as u64;
            gate.offset_low = handler as u16;
            gate.offset_mid = (handler >> 16) as u16;
            gate.offset_high = (handler >> 32) as u32;
            gate.selector = gdt::KERNEL_CODE.0;
            gate.attributes = 0x8E; // present, DPL 0, 64-bit interrupt gate
            gate.ist = match vec {
                2 => gdt::IST_NMI,
                8 => gdt::IST_DOUBLE_FAULT,
                18 => gdt::IST_MACHINE_CHECK,
                _ => 0,
            };
        }
        Idt(gates)
    });
    let ptr = DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: VirtAddr::from_ptr(idt),
    };
    // SAFETY: the IDT is static and every gate points at a stub above.
    unsafe { lidt(&ptr) };
}
