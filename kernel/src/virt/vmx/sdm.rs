//! The VT-x numbers the `x86` crate does not name, from the Intel SDM
//! (Vol. 3C, chapters 24 to 27 and appendices A and C, as numbered in the
//! editions of 2016 to 2022: 24 the VMCS, 25 non-root operation, 26 VM
//! entries, 27 VM exits; later editions number each one higher). The VMCS field
//! encodings, the VM-execution, exit and entry control bits, the MSR
//! numbers and the exception vectors come from `x86` (`x86::vmx::vmcs`,
//! `x86::msr`, `x86::irq`); CR0, CR4 and RFLAGS bits from `x86_64`.
//!
//! Chosen over writing them all here: `x86` is a published, no_std,
//! MIT-licensed table of them that builds on stable for our target (its
//! bitflags and raw-cpuid are older majors than ours, a cost in build time,
//! not in the kernel: only its constants are used, and they compile to the
//! very instructions the literals did). What it lacks, VT-x's exit reasons and the layouts of the fields
//! the kernel reads, is below, each with its section.

/// Basic exit reasons: bits 15:0 of the exit-reason field (Appendix C).
pub mod exit {
    /// An exception (the exception bitmap's) or an NMI.
    pub const EXCEPTION_OR_NMI: u64 = 0;
    pub const EXTERNAL_INTERRUPT: u64 = 1;
    pub const TRIPLE_FAULT: u64 = 2;
    /// Interrupt-window exiting (§25.6.2).
    pub const INTERRUPT_WINDOW: u64 = 7;
    pub const CPUID: u64 = 10;
    pub const HLT: u64 = 12;
    pub const INVD: u64 = 13;
    pub const VMCALL: u64 = 18;
    /// VMCLEAR (19) to VMXON (27): VMLAUNCH, VMPTRLD, VMPTRST, VMREAD,
    /// VMRESUME, VMWRITE, VMXOFF between.
    pub const VMCLEAR: u64 = 19;
    pub const VMXON: u64 = 27;
    /// I/O instruction; the qualification is [`super::io`]'s.
    pub const IO: u64 = 30;
    pub const RDMSR: u64 = 31;
    pub const WRMSR: u64 = 32;
    pub const MWAIT: u64 = 36;
    pub const MONITOR: u64 = 39;
    /// EPT violation; the qualification's bits 2:0 are the access (§27.2.1,
    /// Table 27-7: read, write, instruction fetch).
    pub const EPT_VIOLATION: u64 = 48;
    pub const INVEPT: u64 = 50;
    /// The VMX-preemption timer counted down to zero (§25.5.1).
    pub const PAUSE: u64 = 40;
    pub const PREEMPTION_TIMER: u64 = 52;
    pub const INVVPID: u64 = 53;
    pub const WBINVD: u64 = 54;
    pub const XSETBV: u64 = 55;
    /// Bits 15:0 of the field hold the basic reason.
    pub const BASIC: u64 = 0xFFFF;
    /// Bit 31: VM-entry failure (§26.8); the basic reason says why.
    pub const ENTRY_FAILURE: u64 = 1 << 31;
    /// The EPT access bits of an EPT violation's qualification.
    pub const EPT_ACCESS: u64 = 0b111;
}

/// The exit qualification of an I/O instruction (§27.2.1, Table 27-5).
pub mod io {
    /// Bits 2:0: the access size less one.
    pub const SIZE_LESS_ONE: u64 = 0b111;
    /// Bit 3: IN rather than OUT.
    pub const IN: u64 = 1 << 3;
    /// Bit 4: a string instruction.
    pub const STRING: u64 = 1 << 4;
    /// Bit 5: with a REP prefix.
    pub const REP: u64 = 1 << 5;
    /// Bits 31:16: the port.
    pub const PORT_SHIFT: u32 = 16;
}

/// The interruption-information format of the VM-entry (§24.8.3), VM-exit
/// (§24.9.2) and IDT-vectoring (§24.9.3) fields.
pub mod event {
    /// Bits 7:0: the vector.
    pub const VECTOR: u64 = 0xFF;
    /// Bits 10:8: the type.
    pub const TYPE_SHIFT: u32 = 8;
    pub const TYPE_MASK: u64 = 0b111;
    pub const EXTERNAL_INTERRUPT: u64 = 0;
    pub const NMI: u64 = 2;
    pub const HARDWARE_EXCEPTION: u64 = 3;
    /// INT1 (ICEBP): its #DB comes after the instruction, so the guest's
    /// rip moves past it.
    pub const PRIVILEGED_SOFTWARE_EXCEPTION: u64 = 5;
    /// Bit 11: an error code is delivered (and is in its own field).
    pub const ERROR_CODE: u64 = 1 << 11;
    /// Bit 31: the field is valid.
    pub const VALID: u64 = 1 << 31;
}

/// IA32_VMX_BASIC (Appendix A.1): bits 30:0 the VMCS revision identifier;
/// bit 55, the "true" control MSRs exist (Appendix A.2).
pub const BASIC_REVISION: u64 = 0x7FFF_FFFF;
pub const BASIC_TRUE_CONTROLS: u64 = 1 << 55;
/// IA32_VMX_MISC bits 4:0: the TSC ticks per preemption-timer tick, as a
/// power of two (Appendix A.6).
pub const MISC_PREEMPTION_SHIFT: u64 = 0x1F;
/// IA32_VMX_EPT_VPID_CAP (Appendix A.10): a 4-level page walk, and the
/// write-back type for paging structures.
pub const EPT_CAP_WALK4: u64 = 1 << 6;
pub const EPT_CAP_WB: u64 = 1 << 14;
/// IA32_FEATURE_CONTROL (Vol. 3C §23.7): the lock, and VMXON outside SMX.
pub const FEATURE_CONTROL_LOCKED: u64 = 1 << 0;
pub const FEATURE_CONTROL_VMXON_OUTSIDE_SMX: u64 = 1 << 2;

/// The EPT pointer's low bits (§24.6.11): the write-back memory type (6)
/// and a page walk of four levels (length less one, 3, in bits 5:3).
pub const EPTP_WB_WALK4: u64 = 6 | (3 << 3);

/// Guest interruptibility state (§24.4.2): blocking by STI, by MOV SS.
pub const BLOCKING_STI_OR_MOV_SS: u64 = 0b11;

/// Segment access rights as the VMCS holds them (§24.4.1, Table 24-2): the
/// descriptor's type (3:0), S (4), DPL (6:5), P (7), D/B (14), G (15), and
/// bit 16, "unusable".
pub mod access {
    /// A flat 32-bit code segment: execute/read, accessed; present, 4 KiB
    /// granularity, 32-bit.
    pub const CODE32: u64 = 0xC09B;
    /// A flat 32-bit data segment: read/write, accessed.
    pub const DATA32: u64 = 0xC093;
    /// A real-mode code and data segment (byte granularity, 16-bit).
    pub const CODE16: u64 = 0x9B;
    pub const DATA16: u64 = 0x93;
    /// A busy 32-bit TSS, present.
    pub const TSS_BUSY: u64 = 0x8B;
    pub const UNUSABLE: u64 = 1 << 16;
    /// The DPL bits (a segment's privilege level).
    pub const DPL: u64 = 0b11 << 5;
}

/// INVEPT's type for every EPT context (Vol. 3C §30.3, INVEPT).
pub const INVEPT_ALL_CONTEXTS: u64 = 2;

/// DR7 at reset: bit 10 reads as 1, no breakpoint enabled (Vol. 3B §17.2.4).
pub const DR7_INIT: u64 = 1 << 10;
