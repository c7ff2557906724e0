//! What an entry from user mode leaves for the core: the saved registers,
//! the vector that brought the CPU in, and the selectors of user mode.
//! Pure data, the same on the machine (where `arch::entry` and
//! `arch::idt` build it) and on the host (where the tests do).

/// Vectors the kernel uses for device and inter-processor interrupts.
pub mod vector {
    /// The local APIC timer.
    pub const TIMER: u8 = 0x20;
    /// Interrupt lines of the I/O APIC: `IRQ_BASE + line`.
    pub const IRQ_BASE: u8 = 0x30;
    /// Devices' MSI-X vectors (`DeviceIrqBind`): `MSI_BASE..MSI_BASE + MSI_COUNT`.
    pub const MSI_BASE: u8 = 0x50;
    pub const MSI_COUNT: u8 = 0x80;
    /// Another CPU wants this one in the kernel (shootdown, kill, wake-up).
    pub const KICK: u8 = 0xF0;
    /// The `syscall` instruction (not an IDT vector: the entry stub's tag).
    pub const SYSCALL: u64 = 0x100;
    /// The 8259 PICs are remapped here and masked; these are their spurious IRQs.
    pub const PIC_BASE: u8 = 0xE0;
    /// The local APIC's spurious vector (no EOI).
    pub const SPURIOUS: u8 = 0xFF;
}

/// The state saved on every entry, in the order `trap_common` pushes it.
#[derive(Debug)]
#[repr(C)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// The user code and stack selectors a frame returns with (`arch::gdt`'s
/// `USER_CODE` and `USER_DATA`, which assert that they agree).
pub const USER_CS: u64 = 4 << 3 | 3;
pub const USER_SS: u64 = 3 << 3 | 3;
