//! Running a guest on VT-x: the VMCS of a vCPU (set up on first launch, on
//! the CPU it stays on), entering the guest, and reading why it left,
//! decoded straight into the vendor-neutral `HwExit` (no VT-x exit type
//! between: one match, not two).

use core::arch::global_asm;
use core::sync::atomic::{AtomicU32, Ordering};

use ipc::vcpu::{Exit, ExitReason};
use x86::irq::{ALIGNMENT_CHECK_VECTOR, DEBUG_VECTOR};
use x86::msr::{
    IA32_VMX_BASIC, IA32_VMX_ENTRY_CTLS, IA32_VMX_EXIT_CTLS, IA32_VMX_MISC, IA32_VMX_PINBASED_CTLS,
    IA32_VMX_PROCBASED_CTLS, IA32_VMX_PROCBASED_CTLS2, IA32_VMX_TRUE_ENTRY_CTLS, IA32_VMX_TRUE_EXIT_CTLS,
    IA32_VMX_TRUE_PINBASED_CTLS, IA32_VMX_TRUE_PROCBASED_CTLS,
};
use x86::vmx::vmcs::control::{
    self, EntryControls, ExitControls, PinbasedControls as Pin, PrimaryControls as Proc, SecondaryControls,
};
use x86::vmx::vmcs::{guest, host, ro};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr3, Cr4, Cr4Flags};
use x86_64::registers::debug::{Dr6, Dr6Flags};
use x86_64::registers::model_specific::{Efer, Msr};
use x86_64::registers::rflags::RFlags;

use super::sdm::{self, access, event, exit, io};
use super::vmcs;
use crate::arch::{cpu, gdt};
pub use crate::obj::vcpu::GuestRegs;
use crate::virt::vcpu::{port, Entry, HwExit};

// Enter with the VMCS current; returns 0 after a VM exit, 1 if the entry
// itself failed (SDM Vol. 3C 26, 30.4). HOST_RSP is where the regs pointer
// sits, so the exit stub finds it.
global_asm!(
    r#"
    .section .text.vmx_enter, "ax"
    .globl vmx_enter
vmx_enter:
    .irp r, rbp, rbx, r12, r13, r14, r15
    push \r
    .endr
    push rdi
    mov rax, {host_rsp}
    vmwrite rax, rsp
    mov rax, [rdi + 120]
    mov cr2, rax
    test rsi, rsi
    mov rax, [rdi]
"#,
    guest_gprs!(r"mov \r, [rdi + gpr]"),
    r#"
    mov rdi, [rdi + 40]
    jnz 1f
    vmlaunch
    jmp 2f
1:  vmresume
2:  pop rdi
    .irp r, r15, r14, r13, r12, rbx, rbp
    pop \r
    .endr
    mov eax, 1
    ret

    .globl vmx_exit
vmx_exit:
    push rdi
    mov rdi, [rsp + 8]
    mov [rdi], rax
"#,
    guest_gprs!(r"mov [rdi + gpr], \r"),
    r#"
    pop rax
    mov [rdi + 40], rax
    mov rax, cr2
    mov [rdi + 120], rax
    pop rdi
    .irp r, r15, r14, r13, r12, rbx, rbp
    pop \r
    .endr
    xor eax, eax
    ret
"#,
    host_rsp = const host::RSP,
);

unsafe extern "C" {
    fn vmx_enter(regs: *mut GuestRegs, launched: u64) -> u64;
    fn vmx_exit();
}

/// The VMX-preemption timer's value for one time slice
/// (`crate::policy::SLICE_US`; the timer counts down once every 2^n TSC
/// ticks, n = IA32_VMX_MISC[4:0], SDM 25.5.1), worked out by `setup`; 0
/// until then or if the CPU lacks the timer. Kept here whole so that the
/// entry path reads neither an MSR nor the VMCS for it, nor works it out
/// again on every entry (6 instructions an exit).
static SLICE_TIMER: AtomicU32 = AtomicU32::new(0);

/// RFLAGS bit 1, reserved, always set (SDM Vol. 1 3.4.3).
const RFLAGS_RESERVED: u64 = 1 << 1;

/// The DR6 bits a #DB's exit qualification reports: B0-B3, BD and BS.
const DR6_DB_BITS: u64 = Dr6Flags::TRAP.bits() | Dr6Flags::ACCESS_DETECTED.bits() | Dr6Flags::STEP.bits();

/// The guest fields of ES, CS, SS, DS, FS, GS, LDTR and TR (`ipc::vstate`'s
/// order): selector, limit, access rights, base.
const SEGMENTS: [[u32; 4]; 8] = [
    [guest::ES_SELECTOR, guest::ES_LIMIT, guest::ES_ACCESS_RIGHTS, guest::ES_BASE],
    [guest::CS_SELECTOR, guest::CS_LIMIT, guest::CS_ACCESS_RIGHTS, guest::CS_BASE],
    [guest::SS_SELECTOR, guest::SS_LIMIT, guest::SS_ACCESS_RIGHTS, guest::SS_BASE],
    [guest::DS_SELECTOR, guest::DS_LIMIT, guest::DS_ACCESS_RIGHTS, guest::DS_BASE],
    [guest::FS_SELECTOR, guest::FS_LIMIT, guest::FS_ACCESS_RIGHTS, guest::FS_BASE],
    [guest::GS_SELECTOR, guest::GS_LIMIT, guest::GS_ACCESS_RIGHTS, guest::GS_BASE],
    [guest::LDTR_SELECTOR, guest::LDTR_LIMIT, guest::LDTR_ACCESS_RIGHTS, guest::LDTR_BASE],
    [guest::TR_SELECTOR, guest::TR_LIMIT, guest::TR_ACCESS_RIGHTS, guest::TR_BASE],
];

/// Arms the VMX-preemption timer of the current VMCS to end the guest's
/// time slice one slice from now, if the CPU has the timer. Without it
/// the local APIC tick ends slices (its interrupt exits the guest), as on
/// AMD-V; with it a slice ends on time even where an emulator is slow to
/// deliver that interrupt to a spinning guest (Bochs).
#[inline]
pub fn slice_start() {
    let value = SLICE_TIMER.load(Ordering::Relaxed);
    if value != 0 {
        vmcs::write(guest::VMX_PREEMPTION_TIMER_VALUE, u64::from(value));
    }
}

fn rdmsr(msr: u32) -> u64 {
    // SAFETY: the VMX capability MSRs exist (VMX was enabled at boot).
    unsafe { Msr::new(msr).read() }
}

/// A control value: what we want, plus what the CPU forces, minus what it
/// forbids (SDM Vol. 3C A.3; the "true" MSRs when VMX_BASIC bit 55 says so).
fn adjust(want: u32, msr: u32, true_msr: u32) -> u32 {
    let m = if rdmsr(IA32_VMX_BASIC) & sdm::BASIC_TRUE_CONTROLS != 0 { rdmsr(true_msr) } else { rdmsr(msr) };
    (want | m as u32) & (m >> 32) as u32
}

/// Sets up the current VMCS for a guest starting in 32-bit protected mode
/// without paging (the Multiboot hand-off): `rip`, flat segments; or, with
/// `sipi` = Some(v), in real mode at v:0000 (an application processor
/// after INIT and a start-up IPI); EPT `eptp`, VPID `vpid`. Returns false
/// if a field was refused.
/// `msrs` is the vCPU's MSR frame, its lists made (`virt::msrs`).
pub fn setup(rip: u64, eptp: u64, vpid: u16, sipi: Option<u8>, msrs: u64) -> bool {
    // External interrupts and NMIs exit; the VMX-preemption timer if the
    // CPU has it (`slice_start` arms it).
    let timer = Pin::VMX_PREEMPTION_TIMER.bits();
    let pin = Pin::EXTERNAL_INTERRUPT_EXITING.bits() | Pin::NMI_EXITING.bits() | timer;
    let pin = adjust(pin, IA32_VMX_PINBASED_CTLS, IA32_VMX_TRUE_PINBASED_CTLS);
    if pin & timer != 0 {
        let slice = crate::arch::cpu::tsc_per_us() * crate::policy::SLICE_US;
        let value =
            (slice >> (rdmsr(IA32_VMX_MISC) & sdm::MISC_PREEMPTION_SHIFT)).clamp(1, u64::from(u32::MAX));
        SLICE_TIMER.store(value as u32, Ordering::Relaxed);
    }
    let proc = Proc::HLT_EXITING.bits()
        | Proc::MWAIT_EXITING.bits()
        | Proc::UNCOND_IO_EXITING.bits()
        | Proc::MONITOR_EXITING.bits()
        | Proc::SECONDARY_CONTROLS.bits();
    let proc = adjust(proc, IA32_VMX_PROCBASED_CTLS, IA32_VMX_TRUE_PROCBASED_CTLS);
    let proc2 = SecondaryControls::ENABLE_EPT.bits()
        | SecondaryControls::ENABLE_VPID.bits()
        | SecondaryControls::WBINVD_EXITING.bits()
        | SecondaryControls::PAUSE_LOOP_EXITING.bits()
        | SecondaryControls::UNRESTRICTED_GUEST.bits()
        // RDTSCP is #UD in the guest without it (SDM Vol. 3C 25.3).
        | SecondaryControls::ENABLE_RDTSCP.bits();
    let proc2 = adjust(proc2, IA32_VMX_PROCBASED_CTLS2, IA32_VMX_PROCBASED_CTLS2);
    // Save debug controls (the guest's DR7 is its own), 64-bit host,
    // save/load EFER.
    let exit = ExitControls::SAVE_DEBUG_CONTROLS.bits()
        | ExitControls::HOST_ADDRESS_SPACE_SIZE.bits()
        | ExitControls::SAVE_IA32_EFER.bits()
        | ExitControls::LOAD_IA32_EFER.bits();
    let exit = adjust(exit, IA32_VMX_EXIT_CTLS, IA32_VMX_TRUE_EXIT_CTLS);
    // Load debug controls, load EFER (the guest starts with EFER = 0).
    let entry = EntryControls::LOAD_DEBUG_CONTROLS.bits() | EntryControls::LOAD_IA32_EFER.bits();
    let entry = adjust(entry, IA32_VMX_ENTRY_CTLS, IA32_VMX_TRUE_ENTRY_CTLS);
    let me = cpu::current();
    let tss = me.tss.get().map_or(0, |t| t as *const _ as u64);
    let gdt = me.gdt.get().map_or(0, |g| g as *const _ as u64);
    let idt = x86_64::instructions::tables::sidt().base.as_u64();
    let mut ok = true;
    let mut w = |f, v| ok &= vmcs::write(f, v);
    w(control::VPID, u64::from(vpid));
    w(control::EPTP_FULL, eptp | sdm::EPTP_WB_WALK4);
    w(control::PINBASED_EXEC_CONTROLS, u64::from(pin));
    w(control::PRIMARY_PROCBASED_EXEC_CONTROLS, u64::from(proc));
    w(control::SECONDARY_PROCBASED_EXEC_CONTROLS, u64::from(proc2));
    if proc2 & SecondaryControls::PAUSE_LOOP_EXITING.bits() != 0 {
        // A loop is PAUSEs at most 128 cycles apart (KVM's gap), and exits
        // once it has run for PAUSE_LOOP cycles.
        w(control::PLE_GAP, 128);
        w(control::PLE_WINDOW, u64::from(crate::virt::PAUSE_LOOP));
    }
    w(control::VMEXIT_CONTROLS, u64::from(exit));
    w(control::VMENTRY_CONTROLS, u64::from(entry));
    // #DB and #AC: a guest could otherwise hold the CPU forever in their
    // delivery (CVE-2015-8104, CVE-2015-5307); the kernel reflects them.
    w(control::EXCEPTION_BITMAP, (1 << DEBUG_VECTOR) | (1 << ALIGNMENT_CHECK_VECTOR));
    w(control::CR3_TARGET_COUNT, 0);
    // The guest MSRs no VMCS field holds: loaded at entry, stored at exit,
    // the host's loaded at exit (`virt::msrs`).
    let listed = crate::virt::msrs::listed() as u64;
    w(control::VMENTRY_MSR_LOAD_ADDR_FULL, msrs);
    w(control::VMENTRY_MSR_LOAD_COUNT, listed);
    w(control::VMEXIT_MSR_STORE_ADDR_FULL, msrs);
    w(control::VMEXIT_MSR_STORE_COUNT, listed);
    w(control::VMEXIT_MSR_LOAD_ADDR_FULL, msrs + crate::virt::msrs::HOST_LIST_AT as u64);
    w(control::VMEXIT_MSR_LOAD_COUNT, listed);
    w(guest::LINK_PTR_FULL, u64::MAX);
    // Host: this CPU as the kernel runs it.
    w(host::CR0, Cr0::read_raw());
    w(host::CR3, Cr3::read().0.start_address().as_u64());
    w(host::CR4, Cr4::read_raw());
    // FS and GS null: their bases are the MSRs'.
    let (code, data) = (gdt::KERNEL_CODE.0, gdt::KERNEL_DATA.0);
    let selectors = [
        (host::ES_SELECTOR, data),
        (host::CS_SELECTOR, code),
        (host::SS_SELECTOR, data),
        (host::DS_SELECTOR, data),
        (host::FS_SELECTOR, 0),
        (host::GS_SELECTOR, 0),
        (host::TR_SELECTOR, gdt::TSS.0),
    ];
    for (field, sel) in selectors {
        w(field, u64::from(sel));
    }
    w(host::FS_BASE, 0);
    w(host::GS_BASE, me as *const _ as u64);
    w(host::TR_BASE, tss);
    w(host::GDTR_BASE, gdt);
    w(host::IDTR_BASE, idt);
    w(host::IA32_SYSENTER_CS, 0);
    w(host::IA32_SYSENTER_ESP, 0);
    w(host::IA32_SYSENTER_EIP, 0);
    w(host::IA32_EFER_FULL, Efer::read_raw());
    w(host::RIP, vmx_exit as *const () as u64);
    // Guest: 32-bit protected mode, flat, paging off, or real mode
    // (unrestricted guest). NE and VMXE are forced on by VMX; VMXE is
    // hidden from the guest, NE is shown set (as firmware leaves it: a
    // guest's write of CR0 exits only when it changes NE, and Linux writes
    // NE set, in its 32-bit entry and in its AP trampoline; every write
    // that keeps what it read back runs on without an exit, as before).
    let (pe, et, ne) = (Cr0Flags::PROTECTED_MODE_ENABLE, Cr0Flags::EXTENSION_TYPE, Cr0Flags::NUMERIC_ERROR);
    let pe = if sipi.is_none() { pe.bits() } else { 0 };
    let vmxe = Cr4Flags::VIRTUAL_MACHINE_EXTENSIONS.bits();
    w(guest::CR0, ne.bits() | et.bits() | pe);
    w(control::CR0_GUEST_HOST_MASK, ne.bits());
    w(control::CR0_READ_SHADOW, ne.bits() | et.bits() | pe);
    w(guest::CR4, vmxe);
    w(control::CR4_GUEST_HOST_MASK, vmxe);
    w(control::CR4_READ_SHADOW, 0);
    w(guest::CR3, 0);
    for (i, fields) in SEGMENTS.into_iter().enumerate() {
        // (selector, limit, access rights, base) of ES, CS, SS, DS, FS, GS,
        // LDTR (unusable) and TR.
        let (sel, limit, rights, base) = match (i, sipi) {
            (6, _) => (0, 0, access::UNUSABLE, 0),
            (7, _) => (0, 0xFFFF, access::TSS_BUSY, 0),
            (1, None) => (0x08, 0xFFFF_FFFF, access::CODE32, 0),
            (_, None) => (0x10, 0xFFFF_FFFF, access::DATA32, 0),
            (1, Some(v)) => (u64::from(v) << 8, 0xFFFF, access::CODE16, u64::from(v) << 12),
            (_, Some(_)) => (0, 0xFFFF, access::DATA16, 0),
        };
        for (field, value) in fields.into_iter().zip([sel, limit, rights, base]) {
            w(field, value);
        }
    }
    w(guest::GDTR_LIMIT, 0xFFFF);
    w(guest::GDTR_BASE, 0);
    w(guest::IDTR_LIMIT, 0xFFFF);
    w(guest::IDTR_BASE, 0);
    w(guest::DR7, sdm::DR7_INIT);
    w(guest::RSP, 0);
    w(guest::RIP, rip);
    w(guest::RFLAGS, RFLAGS_RESERVED);
    w(guest::IA32_EFER_FULL, 0);
    w(guest::IA32_DEBUGCTL_FULL, 0);
    w(guest::IA32_SYSENTER_CS, 0);
    w(guest::IA32_SYSENTER_ESP, 0);
    w(guest::IA32_SYSENTER_EIP, 0);
    w(guest::INTERRUPTIBILITY_STATE, 0);
    w(guest::ACTIVITY_STATE, 0);
    w(guest::PENDING_DBG_EXCEPTIONS, 0);
    w(control::VMENTRY_INTERRUPTION_INFO_FIELD, 0);
    ok
}

/// Enters the guest of the current VMCS (at `e.hw`) until it exits, and
/// says why, with the vendor taken out.
pub fn enter(e: &mut Entry) -> HwExit {
    // SAFETY: the current VMCS is set up (see `setup`) with this CPU's host
    // state; the stubs save and restore every register the guest can see
    // and every callee-saved host register; interrupts are off.
    let failed = unsafe { vmx_enter(&mut e.regs, u64::from(e.launched)) };
    let regs = [e.regs.rax, e.regs.rbx, e.regs.rcx, e.regs.rdx];
    let reason = if failed != 0 { 0 } else { vmcs::read(ro::EXIT_REASON) };
    if failed != 0 || reason & exit::ENTRY_FAILURE != 0 {
        // Nothing of the VMCS is read (its exit fields are an older exit's),
        // as on AMD-V (`ipc::vcpu::ExitReason::EntryFailed`).
        let code = if failed != 0 { vmcs::read(ro::VM_INSTRUCTION_ERROR) } else { reason & exit::BASIC };
        let failed = ExitReason::EntryFailed;
        return HwExit::Vmm(Exit { reason: failed, rip: 0, len: 0, qualification: code, gpa: 0, regs });
    }
    // DR6 stays in the CPU: kept in the state frame for when a domain's
    // single step clobbers it (`state::restore_dr6`).
    crate::virt::state::save_dr6(crate::obj::vcpu::state_frame(e.hw));
    let (rip, len) = (rip(), vmcs::read(ro::VMEXIT_INSTRUCTION_LEN));
    let vmm = |reason, qualification, gpa| HwExit::Vmm(Exit { reason, rip, len, qualification, gpa, regs });
    // The qualification is read only for the exits that have one.
    let q = || vmcs::read(ro::EXIT_QUALIFICATION);
    match reason & exit::BASIC {
        exit::EXCEPTION_OR_NMI => exception(q(), len, vmm),
        exit::EXTERNAL_INTERRUPT => HwExit::Interrupt { nmi: false },
        exit::INTERRUPT_WINDOW => HwExit::Window,
        // The VMX-preemption timer ran out: the guest's time slice is over.
        exit::PREEMPTION_TIMER => HwExit::SliceOver,
        exit::PAUSE => HwExit::Spin { len },
        // A VMX instruction, MONITOR or MWAIT.
        exit::VMCLEAR..=exit::VMXON | exit::MWAIT | exit::MONITOR | exit::INVEPT | exit::INVVPID => {
            HwExit::Undefined
        }
        exit::INVD | exit::WBINVD => HwExit::Skip { len },
        // A fault of CPL > 0 precedes the exit (SDM Vol. 3C 25.1.1); checked
        // anyway.
        exit::XSETBV if ring0() => HwExit::Xsetbv { len },
        exit::XSETBV => HwExit::Reflect { vector: 13, error: Some(0), len: 0 },
        exit::CPUID => vmm(ExitReason::Cpuid, 0, 0),
        exit::HLT => vmm(ExitReason::Hlt, 0, 0),
        exit::IO => {
            let q = q();
            let (reason, q) =
                port(q >> io::PORT_SHIFT, (q & io::SIZE_LESS_ONE) + 1, q, [io::IN, io::STRING, io::REP]);
            vmm(reason, q, 0)
        }
        r @ (exit::RDMSR | exit::WRMSR) => match crate::virt::msrs::kept(e.regs.rcx) {
            Some(m) => super::msrs::exit(m, r == exit::WRMSR, &mut e.regs, e.hw, len),
            None if r == exit::WRMSR => vmm(ExitReason::MsrWrite, 0, 0),
            None => vmm(ExitReason::MsrRead, 0, 0),
        },
        exit::EPT_VIOLATION => {
            vmm(ExitReason::MemoryFault, q() & exit::EPT_ACCESS, vmcs::read(ro::GUEST_PHYSICAL_ADDR_FULL))
        }
        exit::TRIPLE_FAULT => vmm(ExitReason::TripleFault, 0, 0),
        exit::VMCALL => vmm(ExitReason::Hypercall, 0, 0),
        r => vmm(ExitReason::Other, r, 0),
    }
}

/// Exit reason 0: an NMI, or an exception the bitmap intercepts (SDM Vol.
/// 3C 27.2.2: interruption information; for #DB the qualification `q`
/// holds the DR6 bits B0-B3, BD and BS, which the CPU left unset): given
/// back to the guest (after the instruction of `len` bytes, for ICEBP),
/// or to the VMM (`vmm`) if it arose in the delivery of the same one.
fn exception(q: u64, len: u64, vmm: impl Fn(ExitReason, u64, u64) -> HwExit) -> HwExit {
    let info = vmcs::read(ro::VMEXIT_INTERRUPTION_INFO);
    let (vector, kind) = ((info & event::VECTOR) as u8, (info >> event::TYPE_SHIFT) & event::TYPE_MASK);
    if kind == event::NMI {
        return HwExit::Interrupt { nmi: true };
    }
    // It arose while the CPU delivered the same exception (SDM Vol. 3C
    // 27.2.4: IDT-vectoring information, valid, a hardware exception).
    let during = vmcs::read(ro::IDT_VECTORING_INFO);
    if during & event::VALID != 0
        && (during >> event::TYPE_SHIFT) & event::TYPE_MASK == event::HARDWARE_EXCEPTION
        && during & event::VECTOR == u64::from(vector)
    {
        return vmm(ExitReason::ExceptionLoop, u64::from(vector), 0);
    }
    let error = (info & event::ERROR_CODE != 0).then(|| vmcs::read(ro::VMEXIT_INTERRUPTION_ERR_CODE) as u32);
    if vector == DEBUG_VECTOR {
        debug_status(q & DR6_DB_BITS);
    }
    let software = kind == event::PRIVILEGED_SOFTWARE_EXCEPTION;
    HwExit::Reflect { vector, error, len: if software { len } else { 0 } }
}

/// Sets the bits a #DB the kernel intercepted would have set in the
/// guest's DR6 (VT-x keeps the guest's DR6 in the CPU).
fn debug_status(bits: u64) {
    crate::virt::state::write_dr6((Dr6::read_raw() & !Dr6Flags::TRAP.bits()) | bits);
}

/// Whether the guest runs in ring 0 (SS.DPL, SDM Vol. 3C 24.4.1).
fn ring0() -> bool {
    vmcs::read(guest::SS_ACCESS_RIGHTS) & access::DPL == 0
}

/// The guest's rip.
pub fn rip() -> u64 {
    vmcs::read(guest::RIP)
}

/// Sets the guest's rip.
pub fn set_rip(rip: u64) {
    vmcs::write(guest::RIP, rip);
}

/// Ends the interrupt shadow of an STI or MOV SS, for a guest moved past
/// the instruction it covered (a HLT after `sti` that an interrupt ended,
/// a CPUID after `mov ss`): the shadow lasts one instruction (SDM Vol. 2B,
/// STI; the interruptibility state, Vol. 3C §24.4.2; KVM clears it whenever
/// it skips an instruction). Kept standing, it would let the next instruction
/// run first, and `sti; hlt; cli` would never take its interrupt.
pub fn end_shadow() {
    let state = vmcs::read(guest::INTERRUPTIBILITY_STATE);
    if state & sdm::BLOCKING_STI_OR_MOV_SS != 0 {
        vmcs::write(guest::INTERRUPTIBILITY_STATE, state & !sdm::BLOCKING_STI_OR_MOV_SS);
    }
}

/// Queues a hardware exception for the next entry. In real mode without
/// its error code: no exception pushes one there, and VT-x refuses to
/// deliver one (SDM Vol. 3C 26.2.1.3, an invalid control field), so a
/// VMM's #GP(0) would stop a real-mode guest on VT-x only (KVM drops it
/// likewise).
pub fn inject(vector: u8, error: Option<u32>) {
    let mut info = u64::from(vector) | (event::HARDWARE_EXCEPTION << event::TYPE_SHIFT) | event::VALID;
    if let Some(e) = error.filter(|_| vmcs::read(guest::CR0) & Cr0Flags::PROTECTED_MODE_ENABLE.bits() != 0) {
        info |= event::ERROR_CODE;
        vmcs::write(control::VMENTRY_EXCEPTION_ERR_CODE, u64::from(e));
    }
    vmcs::write(control::VMENTRY_INTERRUPTION_INFO_FIELD, info);
}

/// Whether the guest can take an external interrupt now: IF set, no
/// interrupt shadow, no event already queued.
pub fn interruptible() -> bool {
    interrupts_on()
        && vmcs::read(guest::INTERRUPTIBILITY_STATE) & sdm::BLOCKING_STI_OR_MOV_SS == 0
        && vmcs::read(control::VMENTRY_INTERRUPTION_INFO_FIELD) & event::VALID == 0
}

/// The guest's RFLAGS.IF.
pub fn interrupts_on() -> bool {
    vmcs::read(guest::RFLAGS) & RFlags::INTERRUPT_FLAG.bits() != 0
}

/// Queues external interrupt `vector` for the next entry.
pub fn inject_interrupt(vector: u8) {
    let info = u64::from(vector) | (event::EXTERNAL_INTERRUPT << event::TYPE_SHIFT) | event::VALID;
    vmcs::write(control::VMENTRY_INTERRUPTION_INFO_FIELD, info);
}

/// Asks (or stops asking) for an exit as soon as the guest can take an
/// interrupt (SDM Vol. 3C 25.6.2: interrupt-window exiting).
pub fn want_window(on: bool) {
    let proc = vmcs::read(control::PRIMARY_PROCBASED_EXEC_CONTROLS);
    let window = u64::from(Proc::INTERRUPT_WINDOW_EXITING.bits());
    vmcs::write(control::PRIMARY_PROCBASED_EXEC_CONTROLS, if on { proc | window } else { proc & !window });
}

/// The guest state of the current VMCS but its general registers (rsp
/// alone, in `gprs[4]`) and CR2, which the kernel holds: CR0 and CR4 as
/// the guest reads them (its shadows where the host owns bits), segment
/// access rights in the VMCB's 12-bit form (0 for an unusable segment).
pub fn read_state() -> ipc::vstate::State {
    use ipc::vstate::{Segment, State};
    let r = vmcs::read;
    let shadowed = |real, mask, shadow| (r(real) & !r(mask)) | (r(shadow) & r(mask));
    let segment = |[sel, limit, rights, base]: [u32; 4]| {
        let ar = r(rights);
        let attrib = if ar & access::UNUSABLE != 0 { 0 } else { ((ar & 0xFF) | ((ar >> 4) & 0xF00)) as u16 };
        Segment { base: r(base), limit: r(limit) as u32, selector: r(sel) as u16, attrib }
    };
    let table = |limit, base| Segment { base: r(base), limit: r(limit) as u32, selector: 0, attrib: 0 };
    let mut gprs = [0u64; 16];
    gprs[ipc::vstate::reg::RSP] = r(guest::RSP);
    State {
        gprs,
        rip: r(guest::RIP),
        rflags: r(guest::RFLAGS),
        cr0: shadowed(guest::CR0, control::CR0_GUEST_HOST_MASK, control::CR0_READ_SHADOW),
        cr2: 0,
        cr3: r(guest::CR3),
        cr4: shadowed(guest::CR4, control::CR4_GUEST_HOST_MASK, control::CR4_READ_SHADOW),
        efer: r(guest::IA32_EFER_FULL),
        interruptibility: r(guest::INTERRUPTIBILITY_STATE) & sdm::BLOCKING_STI_OR_MOV_SS,
        segments: SEGMENTS.map(segment),
        gdtr: table(guest::GDTR_LIMIT, guest::GDTR_BASE),
        idtr: table(guest::IDTR_LIMIT, guest::IDTR_BASE),
    }
}

/// Writes a VMM's checked rsp, rip and rflags (`ipc::vstate::Write`)
/// into the current VMCS.
pub fn set_state(rsp: Option<u64>, rip: Option<u64>, rflags: Option<u64>) {
    for (field, value) in [(guest::RSP, rsp), (guest::RIP, rip), (guest::RFLAGS, rflags)] {
        if let Some(v) = value {
            vmcs::write(field, v);
        }
    }
}
