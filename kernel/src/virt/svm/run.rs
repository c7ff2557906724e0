//! Running a guest on AMD-V: the VMCB of a vCPU (AMD APM Vol. 2 15.5 and
//! appendix B), VMRUN with the hidden state switched by VMLOAD/VMSAVE, and
//! reading why the guest left, decoded straight into the vendor-neutral
//! `HwExit` (no AMD-V exit type between: one match, not two).

use core::arch::global_asm;
use core::mem::offset_of;
use core::sync::atomic::{AtomicU64, Ordering};

use ipc::vcpu::{Exit, ExitReason};
use x86::irq::{ALIGNMENT_CHECK_VECTOR, DEBUG_VECTOR};
use x86_64::registers::control::Cr0Flags;
use x86_64::registers::model_specific::EferFlags;
use x86_64::registers::rflags::RFlags;

use super::apm::{self, attrib, event, exit, io, misc1, misc2, vintr, Vmcb as Layout};
use crate::mem::kspace;
use crate::obj::vcpu::GuestRegs;
use crate::virt::msrs;
use crate::virt::vcpu::{port, Entry, HwExit};

/// Writes VMCB field `$f`, a path into [`apm::Vmcb`]: at its offset and of
/// its type (a value of another type does not compile).
macro_rules! set {
    ($vmcb:expr, $($f:ident).+, $v:expr) => {
        $vmcb.w(core::mem::offset_of!(Layout, $($f).+), |l: &Layout| &l.$($f).+, $v)
    };
}

/// Reads VMCB field `$f`, a path into [`apm::Vmcb`].
macro_rules! get {
    ($vmcb:expr, $($f:ident).+) => {
        $vmcb.r(core::mem::offset_of!(Layout, $($f).+), |l: &Layout| &l.$($f).+)
    };
}

/// RFLAGS bit 1, reserved, always set.
const RFLAGS_RESERVED: u64 = 1 << 1;
/// DR7's L0-G3: some breakpoint is enabled.
const BREAKPOINT_ENABLES: u64 = 0xFF;
/// The save area's ES, CS, SS, DS, FS, GS, LDTR and TR (`ipc::vstate`'s
/// order), each an `apm::Segment`.
const SEGMENTS: [usize; 8] = [
    offset_of!(Layout, save.es),
    offset_of!(Layout, save.cs),
    offset_of!(Layout, save.ss),
    offset_of!(Layout, save.ds),
    offset_of!(Layout, save.fs),
    offset_of!(Layout, save.gs),
    offset_of!(Layout, save.ldtr),
    offset_of!(Layout, save.tr),
];

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

    /// Writes the field at `off` (`set!`), whose type `field` names.
    fn w<T>(&self, off: usize, _field: fn(&Layout) -> &T, v: T) {
        // SAFETY: the frame is a VMCB the kernel owns, covered by the direct
        // map; `off` is the offset of a field of type T in `apm::Vmcb`,
        // which fits the 4 KiB frame.
        unsafe { core::ptr::write_volatile(self.0.add(off).cast::<T>(), v) }
    }

    /// Writes the segment at `at` (an `apm::Segment`), field by field.
    fn segment(&self, at: usize, selector: u16, attrib: u16, limit: u32, base: u64) {
        use apm::Segment as S;
        self.w(at + offset_of!(S, selector), |l| &l.save.es.selector, selector);
        self.w(at + offset_of!(S, attrib), |l| &l.save.es.attrib, attrib);
        self.w(at + offset_of!(S, limit), |l| &l.save.es.limit, limit);
        self.w(at + offset_of!(S, base), |l| &l.save.es.base, base);
    }

    /// Reads the field at `off` (`get!`), whose type `field` names.
    fn r<T: Copy>(&self, off: usize, _field: fn(&Layout) -> &T) -> T {
        // SAFETY: as in `w`.
        unsafe { core::ptr::read_volatile(self.0.add(off).cast::<T>()) }
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
    set!(vmcb, control.intercept_cr, 0);
    set!(vmcb, control.intercept_dr, super::debugreg::INTERCEPT_WRITES);
    // #DB and #AC: a guest could otherwise hold the CPU forever in their
    // delivery (CVE-2015-8104, CVE-2015-5307); the kernel reflects them.
    set!(vmcb, control.intercept_exceptions, (1 << DEBUG_VECTOR) | (1 << ALIGNMENT_CHECK_VECTOR));
    let m = misc1::INTR
        | misc1::NMI
        | misc1::CPUID
        | misc1::INVD
        | misc1::HLT
        | misc1::INVLPGA
        | misc1::IOIO_PROT
        | misc1::MSR_PROT
        | misc1::SHUTDOWN;
    // A spin-wait exits after this many PAUSEs (KVM's count). Not on a CPU
    // without the filter (QEMU's): there every PAUSE would exit, and
    // guest_smp's delay of 10^6 PAUSEs took 60 s, not 1.
    let pause = raw_cpuid::CpuId::new().get_svm_info().is_some_and(|s| s.has_pause_filter());
    set!(vmcb, control.intercept_misc1, if pause { m | misc1::PAUSE } else { m });
    set!(vmcb, control.pause_filter_count, if pause { crate::virt::PAUSE_LOOP } else { 0 });
    // None of these runs natively.
    set!(vmcb, control.intercept_misc2, misc2::SVM_INSTRUCTIONS | misc2::WBINVD_MONITOR_MWAIT_XSETBV);
    set!(vmcb, control.iopm_base, IOPM.load(Ordering::Acquire));
    set!(vmcb, control.msrpm_base, MSRPM.load(Ordering::Acquire));
    set!(vmcb, control.guest_asid, asid);
    set!(vmcb, control.tlb_control, apm::TLB_FLUSH_ALL);
    set!(vmcb, control.np_enable, apm::NP_ENABLE);
    set!(vmcb, control.n_cr3, npt);
    set!(vmcb, control.event_inject, 0);
    // V_INTR_MASKING: the guest's IF masks only its virtual interrupts; the
    // host's (set across VMRUN in `svm_enter`) governs physical ones, which
    // exit. Without it a guest that spins with IF clear holds off the timer
    // and keeps its CPU for as long as it likes.
    set!(vmcb, control.vintr, vintr::V_INTR_MASKING);
    // ES, CS, SS, DS, FS, GS: flat 32-bit, or real mode; LDTR, TR.
    for (i, at) in SEGMENTS.into_iter().enumerate() {
        let (selector, attrib, limit, base) = match (i, sipi) {
            (6, _) => (0, attrib::LDT, 0, 0),
            (7, _) => (0, attrib::TSS_BUSY, 0xFFFF, 0),
            (1, None) => (0x08, attrib::CODE32, u32::MAX, 0),
            (_, None) => (0x10, attrib::DATA32, u32::MAX, 0),
            (1, Some(v)) => (u16::from(v) << 8, attrib::CODE16, 0xFFFF, u64::from(v) << 12),
            (_, Some(_)) => (0, attrib::DATA16, 0xFFFF, 0),
        };
        vmcb.segment(at, selector, attrib, limit, base);
    }
    vmcb.segment(offset_of!(Layout, save.gdtr), 0, 0, 0xFFFF, 0);
    vmcb.segment(offset_of!(Layout, save.idtr), 0, 0, 0xFFFF, 0);
    set!(vmcb, save.cpl, 0);
    // SVME: required in guest state (APM 15.5.1).
    set!(vmcb, save.efer, EferFlags::SECURE_VIRTUAL_MACHINE_ENABLE.bits());
    set!(vmcb, save.cr4, 0);
    set!(vmcb, save.cr3, 0);
    let (pe, et) = (Cr0Flags::PROTECTED_MODE_ENABLE.bits(), Cr0Flags::EXTENSION_TYPE.bits());
    set!(vmcb, save.cr0, if sipi.is_some() { et } else { et | pe });
    set!(vmcb, save.dr7, apm::DR7_INIT);
    set!(vmcb, save.dr6, apm::DR6_INIT);
    set!(vmcb, save.rflags, RFLAGS_RESERVED);
    set!(vmcb, save.rip, rip);
    set!(vmcb, save.rsp, 0);
    set!(vmcb, save.rax, rax);
    set!(vmcb, save.cr2, 0);
    set!(vmcb, save.g_pat, apm::PAT_INIT);
    true
}

// rdi = regs, rsi = VMCB pa, rdx = host save area pa, rcx = the guest's
// TSC_AUX (no VMCB holds it: loaded here if it is not the host's 0, and 0
// again after the exit, before interrupts can be taken). Guest rax lives
// in the VMCB; the other registers are switched here (APM 15.5).
global_asm!(
    r#"
    .section .text.svm_enter, "ax"
    .globl svm_enter
svm_enter:
    .irp r, rbp, rbx, r12, r13, r14, r15, rcx, rdi, rsi, rdx
    push \r
    .endr
    test rcx, rcx
    jz 1f
    mov rax, rcx
    mov rdx, rcx
    shr rdx, 32
    mov ecx, {tsc_aux}
    wrmsr
    mov rdx, [rsp]
1:  clgi
    mov rax, rdx
    vmsave rax                       /* host FS, GS, TR, LDTR, KernelGsBase, STAR... */
    mov rax, rsi
    vmload rax                       /* the guest's */
"#,
    guest_gprs!(r"mov \r, [rdi + gpr]"),
    r#"
    mov rdi, [rdi + 40]
    sti                              /* GIF is clear: nothing is taken yet, */
    vmrun rax                        /* but a host interrupt now exits the guest */
    cli                              /* and waits, pending, for the caller */
    vmsave rax
    push rdi
    mov rdi, [rsp + 24]
"#,
    guest_gprs!(r"mov [rdi + gpr], \r"),
    r#"
    pop rax
    mov [rdi + 40], rax
    pop rax
    vmload rax                       /* the host's back (GS base first of all) */
    pop rsi
    pop rdi
    pop rcx
    test rcx, rcx
    jz 2f
    xor eax, eax
    xor edx, edx
    mov ecx, {tsc_aux}
    wrmsr
2:  stgi
    .irp r, r15, r14, r13, r12, rbx, rbp
    pop \r
    .endr
    ret
"#,
    tsc_aux = const ipc::msr::index::TSC_AUX,
);

unsafe extern "C" {
    fn svm_enter(regs: *mut GuestRegs, vmcb: u64, host_area: u64, tsc_aux: u64);
}

/// Enters the guest of `e` (its VMCB at `e.hw`) until it exits, and says
/// why, with the vendor taken out.
pub fn enter(e: &mut Entry) -> HwExit {
    let vmcb = Vmcb::at(e.hw);
    set!(vmcb, save.rax, e.regs.rax);
    set!(vmcb, save.cr2, e.regs.cr2);
    let host = crate::arch::cpu::current().svm_host.load(Ordering::Relaxed);
    // SAFETY: the VMCB is set up (see `setup`), the host save area is this
    // CPU's and VM_HSAVE_PA is set; the stub saves and restores every host
    // register and switches the guest's; interrupts are off (GIF cleared
    // around VMRUN). The TSC_AUX is not 0 only where the MSR exists.
    unsafe { svm_enter(&mut e.regs, e.hw, host, msrs::tsc_aux(e.hw)) };
    let code = get!(vmcb, control.exit_code);
    // VMEXIT_INVALID is -1, and its low half is what counts: QEMU writes a
    // 32-bit -1 (0xFFFF_FFFF) into the 64-bit field, and KVM reads the low
    // half alone too. Matched as u64::MAX, QEMU's went to the VMM as an
    // unknown exit at the host's rip (issue 9 item 3).
    if code as u32 == exit::INVALID {
        // No guest ran; the VMCB's save area may hold what the CPU ran, the
        // host (QEMU writes its own rax and rip there, when it refuses
        // before loading the guest's): none of it is read (nor its rip: the
        // VMM is told 0), and the other registers are as the stub loaded
        // them. Nor is its DR7: a refusal after the guest's was loaded
        // leaves it to disarm.
        crate::virt::state::disarm();
        let regs = [e.regs.rax, e.regs.rbx, e.regs.rcx, e.regs.rdx];
        let reason = ExitReason::EntryFailed;
        return HwExit::Vmm(Exit { reason, rip: 0, len: 0, qualification: u64::MAX, gpa: 0, regs });
    }
    if get!(vmcb, save.dr7) & BREAKPOINT_ENABLES != 0 {
        crate::virt::state::disarm();
    }
    e.regs.rax = get!(vmcb, save.rax);
    e.regs.cr2 = get!(vmcb, save.cr2);
    set!(vmcb, control.tlb_control, 0);
    set!(vmcb, control.event_inject, 0);
    let (info1, info2) = (get!(vmcb, control.exit_info1), get!(vmcb, control.exit_info2));
    let (rip, next) = (get!(vmcb, save.rip), get!(vmcb, control.next_rip));
    let regs = [e.regs.rax, e.regs.rbx, e.regs.rcx, e.regs.rdx];
    // Without next-RIP saving (QEMU TCG) the length comes from the
    // instruction each exit implies (EMULATORS.md).
    let len = |fixed: u64| if next > rip && next - rip <= 15 { next - rip } else { fixed };
    let vmm =
        |reason, len, qualification, gpa| HwExit::Vmm(Exit { reason, rip, len, qualification, gpa, regs });
    match code {
        exit::INTR => HwExit::Interrupt { nmi: false },
        exit::NMI => HwExit::Interrupt { nmi: true },
        exit::VINTR => HwExit::Window,
        // VMRUN, VMLOAD, VMSAVE, STGI, CLGI, SKINIT, INVLPGA, MONITOR, MWAIT.
        exit::VMRUN
        | exit::VMLOAD..=exit::SKINIT
        | exit::INVLPGA
        | exit::MONITOR..=exit::MWAIT_CONDITIONAL => HwExit::Undefined,
        // An intercepted exception (#DB: the VMCB's DR6 has its bits).
        exit::EXCP_DB | exit::EXCP_AC => {
            let vector = if code == exit::EXCP_DB { DEBUG_VECTOR } else { ALIGNMENT_CHECK_VECTOR };
            if delivering(&vmcb, vector) {
                vmm(ExitReason::ExceptionLoop, 0, u64::from(vector), 0)
            } else {
                let error = (vector == ALIGNMENT_CHECK_VECTOR).then_some(info1 as u32);
                HwExit::Reflect { vector, error, len: 0 }
            }
        }
        exit::DR0_WRITE..=exit::DR15_WRITE => {
            super::debugreg::write(&vmcb, e.root, &e.regs, (code - exit::DR0_WRITE) as u8, info1, next)
        }
        exit::INVD | exit::WBINVD => HwExit::Skip { len: len(2) },
        exit::PAUSE => HwExit::Spin { len: len(2) },
        exit::XSETBV if get!(vmcb, save.cpl) == 0 => HwExit::Xsetbv { len: len(3) },
        exit::XSETBV => HwExit::Reflect { vector: 13, error: Some(0), len: 0 },
        exit::CPUID => vmm(ExitReason::Cpuid, len(2), 0, 0),
        exit::HLT => vmm(ExitReason::Hlt, len(1), 0, 0),
        exit::IOIO => {
            let size = (info1 >> io::SIZE_SHIFT) & io::SIZE_MASK;
            let (reason, q) = port(info1 >> io::PORT_SHIFT, size, info1, [io::IN, io::STRING, io::REP]);
            vmm(reason, info2.wrapping_sub(rip).min(15), q, 0)
        }
        exit::MSR => {
            let write = info1 & exit::MSR_WRITE != 0;
            match msrs::kept(e.regs.rcx) {
                Some(m) => super::msrs::exit(&vmcb, m, write, &mut e.regs, e.hw, len(2)),
                None => vmm(if write { ExitReason::MsrWrite } else { ExitReason::MsrRead }, len(2), 0, 0),
            }
        }
        exit::NPF => vmm(ExitReason::MemoryFault, 0, nested_access(info1), info2),
        exit::SHUTDOWN => vmm(ExitReason::TripleFault, 0, 0, 0),
        exit::VMMCALL => vmm(ExitReason::Hypercall, len(3), 0, 0),
        code => vmm(ExitReason::Other, 0, code, 0),
    }
}

/// Whether the exit came in the delivery of exception `vector` (APM Vol.
/// 2 15.7.2: EXITINTINFO, valid, an exception).
fn delivering(vmcb: &Vmcb, vector: u8) -> bool {
    let info = get!(vmcb, control.exit_int_info);
    info & event::VALID != 0
        && (info >> event::TYPE_SHIFT) & event::TYPE_MASK == event::EXCEPTION
        && info & event::VECTOR == u64::from(vector)
}

/// A nested page fault's error code as read/write/execute bits (1, 2, 4).
fn nested_access(code: u64) -> u64 {
    if code & apm::npf::FETCH != 0 {
        4
    } else if code & apm::npf::WRITE != 0 {
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
            cpl: get!(self, save.cpl),
            cr0: get!(self, save.cr0),
            cr3: get!(self, save.cr3),
            cr4: get!(self, save.cr4),
            efer: get!(self, save.efer),
            rip: get!(self, save.rip),
            rsp: get!(self, save.rsp),
            cs_base: get!(self, save.cs.base),
        }
    }

    /// The guest's DR7, which VMRUN loads.
    pub fn set_dr7(&self, value: u64) {
        set!(self, save.dr7, value);
    }
}

/// The guest's rip and the next rip the CPU saved (0 without next-RIP save,
/// as under QEMU TCG).
pub fn rip(vmcb: &Vmcb) -> (u64, u64) {
    (get!(vmcb, save.rip), get!(vmcb, control.next_rip))
}

pub fn set_rip(vmcb: &Vmcb, rip: u64) {
    set!(vmcb, save.rip, rip);
}

/// Ends the interrupt shadow of an STI or MOV SS, for a guest moved past
/// the instruction it covered (APM Vol. 2 15.21.5: the shadow lasts one
/// instruction), as `vmx::run::end_shadow` does.
pub fn end_shadow(vmcb: &Vmcb) {
    let shadow = get!(vmcb, control.interrupt_shadow);
    if shadow & apm::INTERRUPT_SHADOW != 0 {
        set!(vmcb, control.interrupt_shadow, shadow & !apm::INTERRUPT_SHADOW);
    }
}

/// Queues a hardware exception for the next VMRUN; in real mode without
/// its error code, as on VT-x (`vmx::run::inject`).
pub fn inject(vmcb: &Vmcb, vector: u8, error: Option<u32>) {
    let mut e = u64::from(vector) | (event::EXCEPTION << event::TYPE_SHIFT) | event::VALID;
    if let Some(code) = error.filter(|_| get!(vmcb, save.cr0) & Cr0Flags::PROTECTED_MODE_ENABLE.bits() != 0) {
        e |= event::ERROR_CODE | u64::from(code) << event::ERROR_CODE_SHIFT;
    }
    set!(vmcb, control.event_inject, e);
}

/// Asks for a full TLB flush of the guest's ASID at the next VMRUN.
pub fn flush_tlb(vmcb: &Vmcb) {
    set!(vmcb, control.tlb_control, apm::TLB_FLUSH_ALL);
}

/// Whether the guest can take an external interrupt now.
pub fn interruptible(vmcb: &Vmcb) -> bool {
    interrupts_on(vmcb)
        && get!(vmcb, control.interrupt_shadow) & apm::INTERRUPT_SHADOW == 0
        && get!(vmcb, control.event_inject) & event::VALID == 0
}

/// The guest's RFLAGS.IF.
pub fn interrupts_on(vmcb: &Vmcb) -> bool {
    get!(vmcb, save.rflags) & RFlags::INTERRUPT_FLAG.bits() != 0
}

/// Queues external interrupt `vector` for the next VMRUN.
pub fn inject_interrupt(vmcb: &Vmcb, vector: u8) {
    let e = u64::from(vector) | (event::EXTERNAL_INTERRUPT << event::TYPE_SHIFT) | event::VALID;
    set!(vmcb, control.event_inject, e);
}

/// Asks (or stops asking) for an exit once the guest can take an interrupt:
/// a virtual interrupt pending (V_IRQ, ignoring the TPR) with VINTR
/// intercepted (APM 15.21.4).
pub fn want_window(vmcb: &Vmcb, on: bool) {
    let m = get!(vmcb, control.intercept_misc1);
    set!(vmcb, control.intercept_misc1, if on { m | misc1::VINTR } else { m & !misc1::VINTR });
    let ask = if on { vintr::V_IRQ | vintr::V_INTR_PRIO_HIGHEST | vintr::V_IGN_TPR } else { 0 };
    set!(vmcb, control.vintr, vintr::V_INTR_MASKING | ask);
}

impl Vmcb {
    /// The guest's value of kept MSR `m` where the VMCB holds it (EFER as
    /// the guest sees it: without SVME); 0 for TSC_AUX, which it does not
    /// (`virt::msrs`).
    pub fn msr(&self, m: ipc::msr::Kept) -> u64 {
        use ipc::msr::Kept;
        match m {
            Kept::Efer => get!(self, save.efer) & !EferFlags::SECURE_VIRTUAL_MACHINE_ENABLE.bits(),
            Kept::FsBase => get!(self, save.fs.base),
            Kept::GsBase => get!(self, save.gs.base),
            Kept::KernelGsBase => get!(self, save.kernel_gs_base),
            Kept::Star => get!(self, save.star),
            Kept::Lstar => get!(self, save.lstar),
            Kept::Cstar => get!(self, save.cstar),
            Kept::Sfmask => get!(self, save.sfmask),
            Kept::SysenterCs => get!(self, save.sysenter_cs),
            Kept::SysenterEsp => get!(self, save.sysenter_esp),
            Kept::SysenterEip => get!(self, save.sysenter_eip),
            Kept::Pat => get!(self, save.g_pat),
            Kept::TscAux => 0,
        }
    }

    /// Sets the guest's kept MSR `m` to `v` (a value `ipc::msr::check_write`
    /// allowed), EFER with SVME, which VMRUN demands (APM Vol. 2 15.5.1);
    /// TSC_AUX is not the VMCB's. VMRUN or VMLOAD loads it at the next entry.
    pub fn set_msr(&self, m: ipc::msr::Kept, v: u64) {
        use ipc::msr::Kept;
        match m {
            Kept::Efer => set!(self, save.efer, v | EferFlags::SECURE_VIRTUAL_MACHINE_ENABLE.bits()),
            Kept::FsBase => set!(self, save.fs.base, v),
            Kept::GsBase => set!(self, save.gs.base, v),
            Kept::KernelGsBase => set!(self, save.kernel_gs_base, v),
            Kept::Star => set!(self, save.star, v),
            Kept::Lstar => set!(self, save.lstar, v),
            Kept::Cstar => set!(self, save.cstar, v),
            Kept::Sfmask => set!(self, save.sfmask, v),
            Kept::SysenterCs => set!(self, save.sysenter_cs, v),
            Kept::SysenterEsp => set!(self, save.sysenter_esp, v),
            Kept::SysenterEip => set!(self, save.sysenter_eip, v),
            Kept::Pat => set!(self, save.g_pat, v),
            Kept::TscAux => {}
        }
    }

    /// CR0.PG of the guest.
    pub fn paging(&self) -> bool {
        get!(self, save.cr0) & Cr0Flags::PAGING.bits() != 0
    }
}

impl Vmcb {
    /// The guest state of the VMCB but its general registers (rsp alone,
    /// in `gprs[4]`) and CR2, which the kernel holds; EFER as the guest
    /// sees it (without SVME), the interrupt shadow as blocking by STI.
    /// FS, GS, TR and LDTR are as VMSAVE left them after the exit.
    pub fn read_state(&self) -> ipc::vstate::State {
        use ipc::vstate::{Segment, State};
        let seg = |s: apm::Segment| Segment {
            base: s.base,
            limit: s.limit,
            selector: s.selector,
            attrib: s.attrib,
        };
        let table = |s: apm::Segment| Segment { base: s.base, limit: s.limit, selector: 0, attrib: 0 };
        let mut gprs = [0u64; 16];
        gprs[ipc::vstate::reg::RSP] = get!(self, save.rsp);
        State {
            gprs,
            rip: get!(self, save.rip),
            rflags: get!(self, save.rflags),
            cr0: get!(self, save.cr0),
            cr2: 0,
            cr3: get!(self, save.cr3),
            cr4: get!(self, save.cr4),
            efer: get!(self, save.efer) & !EferFlags::SECURE_VIRTUAL_MACHINE_ENABLE.bits(),
            interruptibility: get!(self, control.interrupt_shadow) & apm::INTERRUPT_SHADOW,
            segments: SEGMENTS.map(|at| seg(self.r(at, |l| &l.save.es))),
            gdtr: table(get!(self, save.gdtr)),
            idtr: table(get!(self, save.idtr)),
        }
    }

    /// Writes a VMM's checked rsp, rip and rflags (`ipc::vstate::Write`).
    pub fn set_state(&self, rsp: Option<u64>, rip: Option<u64>, rflags: Option<u64>) {
        if let Some(v) = rsp {
            set!(self, save.rsp, v);
        }
        if let Some(v) = rip {
            set!(self, save.rip, v);
        }
        if let Some(v) = rflags {
            set!(self, save.rflags, v);
        }
    }
}
