//! The AMD-V numbers, from the AMD64 Architecture Programmer's Manual,
//! Vol. 2 (chapter 15, Secure Virtual Machine, and appendices B, the VMCB
//! layout, and C, the exit codes). The `x86` crate names none of them.
//!
//! The VMCB is a `#[repr(C)]` struct with each field at the offset of
//! Appendix B, which `const` assertions check, so a field is named once
//! and its type and offset come with the name. `run` reaches it through
//! `offset_of!` and volatile accesses, not references (the CPU writes it
//! behind the compiler's back): the same instructions as bare offsets.

use core::mem::{offset_of, size_of};

/// A segment in the VMCB's save area (Appendix B, Table B-2): attributes
/// are the descriptor's bits 47:40 and 55:52, packed.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Segment {
    pub selector: u16,
    pub attrib: u16,
    pub limit: u32,
    pub base: u64,
}

/// The control area (Appendix B, Table B-1), as far as the kernel uses it.
#[repr(C)]
pub struct Control {
    /// Intercepts of CR reads (15:0) and writes (31:16).
    pub intercept_cr: u32,
    /// Intercepts of DR reads (15:0) and writes (31:16).
    pub intercept_dr: u32,
    /// One bit per exception vector.
    pub intercept_exceptions: u32,
    /// The intercepts of vector 3 ([`misc1`]).
    pub intercept_misc1: u32,
    /// The intercepts of vector 4 ([`misc2`]).
    pub intercept_misc2: u32,
    _reserved0: [u8; 0x2A],
    /// PAUSEs the guest may run before one exits (§15.14.4), from each VMRUN.
    pub pause_filter_count: u16,
    pub iopm_base: u64,
    pub msrpm_base: u64,
    pub tsc_offset: u64,
    pub guest_asid: u32,
    /// [`TLB_FLUSH_ALL`] or 0.
    pub tlb_control: u8,
    _reserved1: [u8; 3],
    /// Virtual interrupt control ([`vintr`]).
    pub vintr: u64,
    /// Bit 0 ([`INTERRUPT_SHADOW`]): the guest is in an interrupt shadow.
    pub interrupt_shadow: u64,
    pub exit_code: u64,
    pub exit_info1: u64,
    pub exit_info2: u64,
    /// EXITINTINFO: an event being delivered at the exit ([`event`]'s format).
    pub exit_int_info: u64,
    /// Bit 0 ([`NP_ENABLE`]): nested paging.
    pub np_enable: u64,
    _reserved2: [u8; 0x10],
    /// EVENTINJ ([`event`]'s format).
    pub event_inject: u64,
    pub n_cr3: u64,
    pub lbr_virtualization: u64,
    pub vmcb_clean: u32,
    _reserved3: u32,
    /// The rip after the intercepted instruction (with next-RIP saving).
    pub next_rip: u64,
}

/// The state-save area (Appendix B, Table B-2), as far as the kernel uses it.
#[repr(C)]
pub struct Save {
    pub es: Segment,
    pub cs: Segment,
    pub ss: Segment,
    pub ds: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub gdtr: Segment,
    pub ldtr: Segment,
    pub idtr: Segment,
    pub tr: Segment,
    _reserved0: [u8; 0x2B],
    pub cpl: u8,
    _reserved1: u32,
    pub efer: u64,
    _reserved2: [u8; 0x70],
    pub cr4: u64,
    pub cr3: u64,
    pub cr0: u64,
    pub dr7: u64,
    pub dr6: u64,
    pub rflags: u64,
    pub rip: u64,
    _reserved3: [u8; 0x58],
    pub rsp: u64,
    _reserved4: [u8; 0x18],
    pub rax: u64,
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub sfmask: u64,
    pub kernel_gs_base: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub cr2: u64,
    _reserved6: [u8; 0x20],
    pub g_pat: u64,
}

/// A VMCB: the control area, then the save area at 0x400 (one 4 KiB page
/// in all; the rest is not used).
#[repr(C)]
pub struct Vmcb {
    pub control: Control,
    _reserved: [u8; 0x400 - size_of::<Control>()],
    pub save: Save,
}

// Appendix B's offsets, each checked: a field misplaced does not compile.
const _: () = {
    assert!(offset_of!(Vmcb, control.intercept_cr) == 0x000);
    assert!(offset_of!(Vmcb, control.intercept_dr) == 0x004);
    assert!(offset_of!(Vmcb, control.intercept_exceptions) == 0x008);
    assert!(offset_of!(Vmcb, control.intercept_misc1) == 0x00C);
    assert!(offset_of!(Vmcb, control.intercept_misc2) == 0x010);
    assert!(offset_of!(Vmcb, control.iopm_base) == 0x040);
    assert!(offset_of!(Vmcb, control.msrpm_base) == 0x048);
    assert!(offset_of!(Vmcb, control.guest_asid) == 0x058);
    assert!(offset_of!(Vmcb, control.tlb_control) == 0x05C);
    assert!(offset_of!(Vmcb, control.vintr) == 0x060);
    assert!(offset_of!(Vmcb, control.interrupt_shadow) == 0x068);
    assert!(offset_of!(Vmcb, control.exit_code) == 0x070);
    assert!(offset_of!(Vmcb, control.exit_info1) == 0x078);
    assert!(offset_of!(Vmcb, control.exit_info2) == 0x080);
    assert!(offset_of!(Vmcb, control.exit_int_info) == 0x088);
    assert!(offset_of!(Vmcb, control.np_enable) == 0x090);
    assert!(offset_of!(Vmcb, control.event_inject) == 0x0A8);
    assert!(offset_of!(Vmcb, control.n_cr3) == 0x0B0);
    assert!(offset_of!(Vmcb, control.next_rip) == 0x0C8);
    assert!(offset_of!(Vmcb, save.es) == 0x400);
    assert!(offset_of!(Vmcb, save.cs) == 0x410);
    assert!(offset_of!(Vmcb, save.gs) == 0x450);
    assert!(offset_of!(Vmcb, save.gdtr) == 0x460);
    assert!(offset_of!(Vmcb, save.ldtr) == 0x470);
    assert!(offset_of!(Vmcb, save.idtr) == 0x480);
    assert!(offset_of!(Vmcb, save.tr) == 0x490);
    assert!(offset_of!(Vmcb, save.cpl) == 0x4CB);
    assert!(offset_of!(Vmcb, save.efer) == 0x4D0);
    assert!(offset_of!(Vmcb, save.cr4) == 0x548);
    assert!(offset_of!(Vmcb, save.cr3) == 0x550);
    assert!(offset_of!(Vmcb, save.cr0) == 0x558);
    assert!(offset_of!(Vmcb, save.dr7) == 0x560);
    assert!(offset_of!(Vmcb, save.dr6) == 0x568);
    assert!(offset_of!(Vmcb, save.rflags) == 0x570);
    assert!(offset_of!(Vmcb, save.rip) == 0x578);
    assert!(offset_of!(Vmcb, save.rsp) == 0x5D8);
    assert!(offset_of!(Vmcb, save.rax) == 0x5F8);
    assert!(offset_of!(Vmcb, save.star) == 0x600);
    assert!(offset_of!(Vmcb, save.kernel_gs_base) == 0x620);
    assert!(offset_of!(Vmcb, save.sysenter_eip) == 0x638);
    assert!(offset_of!(Vmcb, control.pause_filter_count) == 0x03E);
    assert!(offset_of!(Vmcb, save.cr2) == 0x640);
    assert!(offset_of!(Vmcb, save.g_pat) == 0x668);
    assert!(size_of::<Vmcb>() <= 4096);
};

/// The intercepts of the control area's vector 3 (Table B-1, offset 0Ch).
pub mod misc1 {
    pub const INTR: u32 = 1 << 0;
    pub const NMI: u32 = 1 << 1;
    pub const VINTR: u32 = 1 << 4;
    pub const CPUID: u32 = 1 << 18;
    pub const INVD: u32 = 1 << 22;
    pub const PAUSE: u32 = 1 << 23;
    pub const HLT: u32 = 1 << 24;
    pub const INVLPGA: u32 = 1 << 26;
    pub const IOIO_PROT: u32 = 1 << 27;
    pub const MSR_PROT: u32 = 1 << 28;
    pub const SHUTDOWN: u32 = 1 << 31;
}

/// The intercepts of the control area's vector 4 (Table B-1, offset 10h).
pub mod misc2 {
    /// VMRUN (bit 0, which must be set), VMMCALL, VMLOAD, VMSAVE, STGI,
    /// CLGI, SKINIT (bits 1-6).
    pub const SVM_INSTRUCTIONS: u32 = 0x7F;
    /// WBINVD, MONITOR, MWAIT, MWAIT when armed, XSETBV (bits 9-13).
    pub const WBINVD_MONITOR_MWAIT_XSETBV: u32 = 0x1F << 9;
}

/// The DR intercepts word's bit for a write of DR`n` (Table B-1, offset 04h).
pub const fn intercept_dr_write(n: u32) -> u32 {
    1 << (16 + n)
}

/// TLB_CONTROL: flush every ASID's entries at VMRUN (§15.16.1).
pub const TLB_FLUSH_ALL: u8 = 1;

/// The interrupt-shadow field's bit 0 (§15.21.5, Table B-1 offset 68h):
/// the guest is in the shadow of an STI or MOV SS.
pub const INTERRUPT_SHADOW: u64 = 1 << 0;

/// NP_ENABLE (§15.25.3, Table B-1 offset 90h bit 0): nested paging on.
pub const NP_ENABLE: u64 = 1 << 0;

/// The VINTR field (§15.21.1, Table B-1 offset 60h).
pub mod vintr {
    /// V_IRQ: a virtual interrupt is pending.
    pub const V_IRQ: u64 = 1 << 8;
    /// V_INTR_PRIO (bits 19:16), here the highest.
    pub const V_INTR_PRIO_HIGHEST: u64 = 0xF << 16;
    /// V_IGN_TPR: the pending interrupt ignores the virtual TPR.
    pub const V_IGN_TPR: u64 = 1 << 20;
    /// V_INTR_MASKING: the guest's IF masks only its virtual interrupts.
    pub const V_INTR_MASKING: u64 = 1 << 24;
}

/// EVENTINJ and EXITINTINFO (§15.20, §15.7.2): vector 7:0, type 10:8, an
/// error code (bit 11, the code in 63:32), valid (bit 31).
pub mod event {
    pub const VECTOR: u64 = 0xFF;
    pub const TYPE_SHIFT: u32 = 8;
    pub const TYPE_MASK: u64 = 0b111;
    pub const EXTERNAL_INTERRUPT: u64 = 0;
    pub const EXCEPTION: u64 = 3;
    pub const ERROR_CODE: u64 = 1 << 11;
    pub const VALID: u64 = 1 << 31;
    pub const ERROR_CODE_SHIFT: u32 = 32;
}

/// Exit codes (Appendix C).
pub mod exit {
    /// VMEXIT_DR0_WRITE: writes of DR0..DR15 are 0x30 + n.
    pub const DR0_WRITE: u64 = 0x30;
    pub const DR15_WRITE: u64 = 0x3F;
    /// VMEXIT_EXCP0 + vector: #DB, #AC.
    pub const EXCP_DB: u64 = 0x41;
    pub const EXCP_AC: u64 = 0x51;
    pub const INTR: u64 = 0x60;
    pub const NMI: u64 = 0x61;
    pub const VINTR: u64 = 0x64;
    pub const CPUID: u64 = 0x72;
    pub const INVD: u64 = 0x76;
    pub const PAUSE: u64 = 0x77;
    pub const HLT: u64 = 0x78;
    pub const INVLPGA: u64 = 0x7A;
    /// I/O; EXITINFO1 is [`super::io`]'s, EXITINFO2 the next rip.
    pub const IOIO: u64 = 0x7B;
    /// RDMSR or WRMSR: EXITINFO1 is [`MSR_WRITE`] for a write, 0 for a read
    /// (§15.11).
    pub const MSR: u64 = 0x7C;
    pub const MSR_WRITE: u64 = 1;
    pub const SHUTDOWN: u64 = 0x7F;
    pub const VMRUN: u64 = 0x80;
    pub const VMMCALL: u64 = 0x81;
    /// VMLOAD, VMSAVE, STGI, CLGI, SKINIT: 0x82-0x86.
    pub const VMLOAD: u64 = 0x82;
    pub const SKINIT: u64 = 0x86;
    pub const WBINVD: u64 = 0x89;
    /// MONITOR, MWAIT, MWAIT when armed: 0x8A-0x8C.
    pub const MONITOR: u64 = 0x8A;
    pub const MWAIT_CONDITIONAL: u64 = 0x8C;
    pub const XSETBV: u64 = 0x8D;
    /// A nested page fault: EXITINFO1 a page-fault error code
    /// ([`super::npf`]), EXITINFO2 the guest-physical address.
    pub const NPF: u64 = 0x400;
    /// VMEXIT_INVALID (-1): the guest state was refused; no guest ran. A
    /// `u32`: only EXITCODE's low half is compared, for QEMU writes a
    /// 32-bit -1 into the 64-bit field (`run::enter`).
    pub const INVALID: u32 = u32::MAX;
}

/// An I/O intercept's EXITINFO1 (§15.10.2, Figure 15-2).
pub mod io {
    /// Bit 0: IN rather than OUT.
    pub const IN: u64 = 1 << 0;
    /// Bit 2: a string instruction.
    pub const STRING: u64 = 1 << 2;
    /// Bit 3: with a REP prefix.
    pub const REP: u64 = 1 << 3;
    /// Bits 6:4: SZ8, SZ16, SZ32, one-hot: read as the size in bytes.
    pub const SIZE_SHIFT: u32 = 4;
    pub const SIZE_MASK: u64 = 0b111;
    /// Bits 31:16: the port.
    pub const PORT_SHIFT: u32 = 16;
}

/// A nested page fault's error code (§15.25.6): as a page fault's.
pub mod npf {
    /// Bit 1: a write.
    pub const WRITE: u64 = 1 << 1;
    /// Bit 4: an instruction fetch.
    pub const FETCH: u64 = 1 << 4;
}

/// A MOV-to-DR intercept's EXITINFO1 with decode assists (§15.33.1): bit
/// 63 valid, bits 3:0 the source register.
pub const DR_INFO_VALID: u64 = 1 << 63;
pub const DR_INFO_GPR: u64 = 0xF;

/// VM_CR (§15.30.1) and its SVMDIS bit: the firmware has disabled SVM.
pub const VM_CR: u32 = 0xC001_0114;
pub const VM_CR_SVMDIS: u64 = 1 << 4;
/// VM_HSAVE_PA (§15.30.4): where VMRUN saves the host's state.
pub const VM_HSAVE_PA: u32 = 0xC001_0117;

/// DR6 and DR7 at reset (Vol. 2 §14.1.3, Table 14-1): no status bit set,
/// no breakpoint armed; the PAT's default memory types (§7.8.2).
pub const DR6_INIT: u64 = 0xFFFF_0FF0;
pub const DR7_INIT: u64 = 0x400;
pub const PAT_INIT: u64 = 0x0007_0406_0007_0406;

/// Segment attributes as the VMCB packs them (Table B-2): a flat 32-bit
/// code and data segment, real-mode ones, an LDT, a busy 32-bit TSS.
pub mod attrib {
    pub const CODE32: u16 = 0x0C9B;
    pub const DATA32: u16 = 0x0C93;
    pub const CODE16: u16 = 0x009B;
    pub const DATA16: u16 = 0x0093;
    pub const LDT: u16 = 0x0082;
    pub const TSS_BUSY: u16 = 0x008B;
}
