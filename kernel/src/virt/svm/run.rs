//! Running a guest on AMD-V: the VMCB of a vCPU (AMD APM Vol. 2 15.5 and
//! appendix B), VMRUN with the hidden state switched by VMLOAD/VMSAVE, and
//! reading why the guest left.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::mem::kspace;
use crate::obj::vcpu::GuestRegs;

// Control area.
const INTERCEPT_CR: usize = 0x000;
const INTERCEPT_DR: usize = 0x004;
const INTERCEPT_EXCEPTIONS: usize = 0x008;
const INTERCEPT_MISC1: usize = 0x00C;
const INTERCEPT_MISC2: usize = 0x010;
const IOPM_BASE: usize = 0x040;
const MSRPM_BASE: usize = 0x048;
const GUEST_ASID: usize = 0x058;
const TLB_CONTROL: usize = 0x05C;
const EXIT_CODE: usize = 0x070;
const EXIT_INFO1: usize = 0x078;
const EXIT_INFO2: usize = 0x080;
const EXIT_INT_INFO: usize = 0x088;
const NP_ENABLE: usize = 0x090;
const EVENT_INJECT: usize = 0x0A8;
const N_CR3: usize = 0x0B0;
const NEXT_RIP: usize = 0x0C8;
// Save area.
const ES: usize = 0x400;
const GDTR: usize = 0x460;
const LDTR: usize = 0x470;
const IDTR: usize = 0x480;
const TR: usize = 0x490;
const CPL: usize = 0x4CB;
const EFER: usize = 0x4D0;
const CR4: usize = 0x548;
const CR3: usize = 0x550;
const CR0: usize = 0x558;
const DR7: usize = 0x560;
const DR6: usize = 0x568;
const RFLAGS: usize = 0x570;
const RIP: usize = 0x578;
const RSP: usize = 0x5D8;
const RAX: usize = 0x5F8;
const CR2: usize = 0x640;
const G_PAT: usize = 0x668;

/// The I/O and MSR permission maps, all ones: every port and MSR access
/// exits. Shared by every vCPU, never written after they are made.
static IOPM: AtomicU64 = AtomicU64::new(0);
static MSRPM: AtomicU64 = AtomicU64::new(0);

/// A VMCB, reached through the direct map.
pub struct Vmcb(*mut u8);

impl Vmcb {
    /// The VMCB in the frame at `pa`.
    pub fn at(pa: u64) -> Self {
        Self(kspace::phys_to_virt(x86_64::PhysAddr::new(pa)).as_mut_ptr())
    }

    fn w<T>(&self, off: usize, v: T) {
        // SAFETY: the frame is a VMCB the kernel owns, covered by the direct
        // map; `off` is a field offset inside the 4 KiB frame.
        unsafe { core::ptr::write_volatile(self.0.add(off).cast::<T>(), v) }
    }

    fn r<T: Copy>(&self, off: usize) -> T {
        // SAFETY: as in `w`.
        unsafe { core::ptr::read_volatile(self.0.add(off).cast::<T>()) }
    }

    fn segment(&self, at: usize, selector: u16, attrib: u16, limit: u32, base: u64) {
        self.w(at, selector);
        self.w(at + 2, attrib);
        self.w(at + 4, limit);
        self.w(at + 8, base);
    }
}

/// Makes the shared permission maps (once); false if memory ran out.
fn permission_maps() -> bool {
    for (map, pages) in [(&IOPM, 3u64), (&MSRPM, 2)] {
        if map.load(Ordering::Acquire) == 0 {
            let Some(pa) = kspace::alloc_contiguous(pages) else { return false };
            let va = kspace::phys_to_virt(pa).as_mut_ptr::<u8>();
            // SAFETY: fresh frames of our own, `pages` long.
            unsafe { core::ptr::write_bytes(va, 0xFF, pages as usize * 4096) };
            if map.compare_exchange(0, pa.as_u64(), Ordering::AcqRel, Ordering::Acquire).is_err() {
                kspace::free_contiguous(pa, pages);
            }
        }
    }
    true
}

/// Sets up a fresh VMCB for a guest starting in 32-bit protected mode
/// without paging at `rip` (the Multiboot hand-off), or with `sipi` =
/// Some(v) in real mode at v:0000 (an application processor after INIT and
/// a start-up IPI); nested paging from `npt`, address-space id `asid`.
pub fn setup(vmcb: &Vmcb, rip: u64, rax: u64, npt: u64, asid: u32, sipi: Option<u8>) -> bool {
    if !permission_maps() {
        return false;
    }
    vmcb.w(INTERCEPT_CR, 0u32);
    vmcb.w(INTERCEPT_DR, super::debugreg::INTERCEPT_WRITES);
    // #DB and #AC: a guest could otherwise hold the CPU forever in their
    // delivery (CVE-2015-8104, CVE-2015-5307); the kernel reflects them.
    vmcb.w(INTERCEPT_EXCEPTIONS, (1u32 << 1) | (1 << 17));
    // INTR, NMI, CPUID, INVD, HLT, INVLPGA, I/O, MSR, shutdown.
    let misc1: u32 =
        1 | (1 << 1) | (1 << 18) | (1 << 22) | (1 << 24) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 31);
    vmcb.w(INTERCEPT_MISC1, misc1);
    // VMRUN, VMMCALL, VMLOAD, VMSAVE, STGI, CLGI, SKINIT; WBINVD, MONITOR,
    // MWAIT (and armed), XSETBV (APM Vol. 2 B.1): none runs natively.
    vmcb.w(INTERCEPT_MISC2, 0x7Fu32 | (0x1F << 9));
    vmcb.w(IOPM_BASE, IOPM.load(Ordering::Acquire));
    vmcb.w(MSRPM_BASE, MSRPM.load(Ordering::Acquire));
    vmcb.w(GUEST_ASID, asid);
    vmcb.w(TLB_CONTROL, 1u8);
    vmcb.w(NP_ENABLE, 1u64);
    vmcb.w(N_CR3, npt);
    vmcb.w(EVENT_INJECT, 0u64);
    // V_INTR_MASKING: the guest's IF masks only its virtual interrupts; the
    // host's (set across VMRUN in `svm_enter`) governs physical ones, which
    // exit. Without it a guest that spins with IF clear holds off the timer
    // and keeps its CPU for as long as it likes.
    vmcb.w(VINTR, V_INTR_MASKING);
    for i in 0..6 {
        // ES, CS, SS, DS, FS, GS: flat 32-bit, or real mode.
        let code = i == 1;
        let (sel, attrib, limit, base) = match sipi {
            None if code => (0x08, 0x0C9B, u32::MAX, 0),
            None => (0x10, 0x0C93, u32::MAX, 0),
            Some(v) if code => (u16::from(v) << 8, 0x009B, 0xFFFF, u64::from(v) << 12),
            Some(_) => (0, 0x0093, 0xFFFF, 0),
        };
        vmcb.segment(ES + 16 * i, sel, attrib, limit, base);
    }
    vmcb.segment(GDTR, 0, 0, 0xFFFF, 0);
    vmcb.segment(LDTR, 0, 0x0082, 0, 0);
    vmcb.segment(IDTR, 0, 0, 0xFFFF, 0);
    vmcb.segment(TR, 0, 0x008B, 0xFFFF, 0);
    vmcb.w(CPL, 0u8);
    vmcb.w(EFER, 1u64 << 12); // SVME: required in guest state (APM 15.5.1)
    vmcb.w(CR4, 0u64);
    vmcb.w(CR3, 0u64);
    vmcb.w(CR0, if sipi.is_some() { 0x10u64 } else { 0x11 }); // (PE,) ET
    vmcb.w(DR7, 0x400u64);
    vmcb.w(DR6, 0xFFFF_0FF0u64);
    vmcb.w(RFLAGS, 2u64);
    vmcb.w(RIP, rip);
    vmcb.w(RSP, 0u64);
    vmcb.w(RAX, rax);
    vmcb.w(CR2, 0u64);
    vmcb.w(G_PAT, 0x0007_0406_0007_0406u64);
    true
}

// rdi = regs, rsi = VMCB pa, rdx = host save area pa. Guest rax lives in
// the VMCB; the other registers are switched here (APM 15.5).
global_asm!(
    r#"
    .section .text.svm_enter, "ax"
    .globl svm_enter
svm_enter:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi
    push rsi
    push rdx
    clgi
    mov rax, rdx
    vmsave rax                       /* host FS, GS, TR, LDTR, KernelGsBase, STAR... */
    mov rax, rsi
    vmload rax                       /* the guest's */
    mov rbx, [rdi + 8]
    mov rcx, [rdi + 16]
    mov rdx, [rdi + 24]
    mov rsi, [rdi + 32]
    mov rbp, [rdi + 48]
    mov r8, [rdi + 56]
    mov r9, [rdi + 64]
    mov r10, [rdi + 72]
    mov r11, [rdi + 80]
    mov r12, [rdi + 88]
    mov r13, [rdi + 96]
    mov r14, [rdi + 104]
    mov r15, [rdi + 112]
    mov rdi, [rdi + 40]
    sti                              /* GIF is clear: nothing is taken yet, */
    vmrun rax                        /* but a host interrupt now exits the guest */
    cli                              /* and waits, pending, for the caller */
    vmsave rax
    push rdi
    mov rdi, [rsp + 24]
    mov [rdi + 8], rbx
    mov [rdi + 16], rcx
    mov [rdi + 24], rdx
    mov [rdi + 32], rsi
    mov [rdi + 48], rbp
    mov [rdi + 56], r8
    mov [rdi + 64], r9
    mov [rdi + 72], r10
    mov [rdi + 80], r11
    mov [rdi + 88], r12
    mov [rdi + 96], r13
    mov [rdi + 104], r14
    mov [rdi + 112], r15
    pop rax
    mov [rdi + 40], rax
    pop rax
    vmload rax                       /* the host's back (GS base first of all) */
    pop rsi
    pop rdi
    stgi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
"#
);

unsafe extern "C" {
    fn svm_enter(regs: *mut GuestRegs, vmcb: u64, host_area: u64);
}

/// Why the guest left, as AMD-V tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SvmExit {
    Interrupt,
    Nmi,
    Shutdown,
    Cpuid,
    Hlt,
    Io {
        port: u16,
        size: u8,
        input: bool,
        string: bool,
        rep: bool,
        next_rip: u64,
    },
    Msr {
        write: bool,
    },
    NestedPageFault {
        gpa: u64,
        access: u64,
    },
    Vmmcall,
    /// VMRUN, VMLOAD, VMSAVE, STGI, CLGI, SKINIT, INVLPGA, MONITOR, MWAIT:
    /// the guest gets #UD.
    SvmInstruction,
    /// An intercepted exception (#DB: the VMCB's DR6 has its bits), and
    /// whether it arose in the delivery of the same exception.
    Exception {
        vector: u8,
        error: Option<u32>,
        in_delivery: bool,
    },
    /// A write of DR`dr` (see `super::debugreg`).
    DrWrite {
        dr: u8,
        info1: u64,
        next_rip: u64,
    },
    /// WBINVD or INVD.
    CacheFlush,
    /// XSETBV, with the guest's CPL.
    Xsetbv {
        cpl: u8,
    },
    Invalid,
    /// The guest can take the virtual interrupt we asked about.
    InterruptWindow,
    Other(u64),
}

/// Enters the guest of `vmcb` (at `vmcb_pa`) until it exits.
pub fn enter(vmcb: &Vmcb, vmcb_pa: u64, regs: &mut GuestRegs, host_area: u64) -> SvmExit {
    vmcb.w(RAX, regs.rax);
    vmcb.w(CR2, regs.cr2);
    // SAFETY: the VMCB is set up (see `setup`), the host save area is this
    // CPU's and VM_HSAVE_PA is set; the stub saves and restores every host
    // register and switches the guest's; interrupts are off (GIF cleared
    // around VMRUN).
    unsafe { svm_enter(regs, vmcb_pa, host_area) };
    let code: u64 = vmcb.r(EXIT_CODE);
    if code == u64::MAX {
        // No guest ran; the VMCB's save area holds what the CPU ran, the
        // host (QEMU writes its own rax and rip there): none of it is read,
        // and the other registers are as the stub loaded them.
        return SvmExit::Invalid;
    }
    if vmcb.r::<u64>(DR7) & 0xFF != 0 {
        crate::virt::state::disarm();
    }
    regs.rax = vmcb.r(RAX);
    regs.cr2 = vmcb.r(CR2);
    vmcb.w(TLB_CONTROL, 0u8);
    vmcb.w(EVENT_INJECT, 0u64);
    let info1: u64 = vmcb.r(EXIT_INFO1);
    let info2: u64 = vmcb.r(EXIT_INFO2);
    match code {
        0x60 => SvmExit::Interrupt,
        0x61 => SvmExit::Nmi,
        0x72 => SvmExit::Cpuid,
        0x78 => SvmExit::Hlt,
        0x7B => SvmExit::Io {
            port: (info1 >> 16) as u16,
            size: ((info1 >> 4) & 7) as u8,
            input: info1 & 1 != 0,
            string: info1 & (1 << 2) != 0,
            rep: info1 & (1 << 3) != 0,
            next_rip: info2,
        },
        0x7C => SvmExit::Msr { write: info1 & 1 != 0 },
        0x64 => SvmExit::InterruptWindow,
        0x7F => SvmExit::Shutdown,
        0x80 | 0x82..=0x86 | 0x7A | 0x8A..=0x8C => SvmExit::SvmInstruction,
        0x41 => SvmExit::Exception { vector: 1, error: None, in_delivery: delivering(vmcb, 1) },
        0x51 => {
            SvmExit::Exception { vector: 17, error: Some(info1 as u32), in_delivery: delivering(vmcb, 17) }
        }
        code @ 0x30..=0x3F => SvmExit::DrWrite { dr: (code - 0x30) as u8, info1, next_rip: vmcb.r(NEXT_RIP) },
        0x76 | 0x89 => SvmExit::CacheFlush,
        0x8D => SvmExit::Xsetbv { cpl: vmcb.r(CPL) },
        0x81 => SvmExit::Vmmcall,
        0x400 => SvmExit::NestedPageFault { gpa: info2, access: nested_access(info1) },
        code => SvmExit::Other(code),
    }
}

/// Whether the exit came in the delivery of exception `vector` (APM Vol.
/// 2 15.7.2: EXITINTINFO, valid, an exception).
fn delivering(vmcb: &Vmcb, vector: u8) -> bool {
    let info: u64 = vmcb.r(EXIT_INT_INFO);
    info & (1 << 31) != 0 && (info >> 8) & 7 == 3 && info & 0xFF == u64::from(vector)
}

/// A nested page fault's error code as read/write/execute bits (1, 2, 4).
fn nested_access(code: u64) -> u64 {
    if code & (1 << 4) != 0 {
        4
    } else if code & (1 << 1) != 0 {
        2
    } else {
        1
    }
}

/// What a debug-register write needs of the guest's state.
pub struct DebugState {
    pub cpl: u8,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    pub rip: u64,
    pub rsp: u64,
    pub cs_base: u64,
}

impl Vmcb {
    pub fn debug_state(&self) -> DebugState {
        DebugState {
            cpl: self.r(CPL),
            cr0: self.r(CR0),
            cr3: self.r(CR3),
            cr4: self.r(CR4),
            efer: self.r(EFER),
            rip: self.r(RIP),
            rsp: self.r(RSP),
            cs_base: self.r(ES + 16 + 8),
        }
    }

    /// The guest's DR7, which VMRUN loads.
    pub fn set_dr7(&self, value: u64) {
        self.w(DR7, value);
    }
}

/// The guest's rip and the next rip the CPU saved (0 without next-RIP save,
/// as under QEMU TCG).
pub fn rip(vmcb: &Vmcb) -> (u64, u64) {
    (vmcb.r(RIP), vmcb.r(NEXT_RIP))
}

pub fn set_rip(vmcb: &Vmcb, rip: u64) {
    vmcb.w(RIP, rip);
}

/// Queues a hardware exception for the next VMRUN.
pub fn inject(vmcb: &Vmcb, vector: u8, error: Option<u32>) {
    let mut e = u64::from(vector) | (3 << 8) | (1 << 31);
    if let Some(code) = error {
        e |= (1 << 11) | u64::from(code) << 32;
    }
    vmcb.w(EVENT_INJECT, e);
}

/// Asks for a full TLB flush of the guest's ASID at the next VMRUN.
pub fn flush_tlb(vmcb: &Vmcb) {
    vmcb.w(TLB_CONTROL, 1u8);
}

const VINTR: usize = 0x060;
/// VINTR's V_INTR_MASKING bit (APM 15.21.1).
const V_INTR_MASKING: u64 = 1 << 24;
const INTERRUPT_SHADOW: usize = 0x068;

/// Whether the guest can take an external interrupt now.
pub fn interruptible(vmcb: &Vmcb) -> bool {
    vmcb.r::<u64>(RFLAGS) & (1 << 9) != 0
        && vmcb.r::<u64>(INTERRUPT_SHADOW) & 1 == 0
        && vmcb.r::<u64>(EVENT_INJECT) & (1 << 31) == 0
}

/// The guest's RFLAGS.IF.
pub fn interrupts_on(vmcb: &Vmcb) -> bool {
    vmcb.r::<u64>(RFLAGS) & (1 << 9) != 0
}

/// Queues external interrupt `vector` for the next VMRUN.
pub fn inject_interrupt(vmcb: &Vmcb, vector: u8) {
    vmcb.w(EVENT_INJECT, u64::from(vector) | (1 << 31));
}

/// Asks (or stops asking) for an exit once the guest can take an interrupt:
/// a virtual interrupt pending (V_IRQ, ignoring the TPR) with VINTR
/// intercepted (APM 15.21.4).
pub fn want_window(vmcb: &Vmcb, on: bool) {
    let misc1: u32 = vmcb.r(INTERCEPT_MISC1);
    vmcb.w(INTERCEPT_MISC1, if on { misc1 | (1 << 4) } else { misc1 & !(1 << 4) });
    let ask = if on { (1u64 << 8) | (0xF << 16) | (1 << 20) } else { 0 };
    vmcb.w(VINTR, V_INTR_MASKING | ask);
}
