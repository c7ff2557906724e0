//! Running a guest on VT-x: the VMCS of a vCPU (set up on first launch, on
//! the CPU it stays on), entering the guest, and reading why it left.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU32, Ordering};

use x86_64::registers::control::{Cr0, Cr3, Cr4};
use x86_64::registers::model_specific::{Efer, Msr};

use super::vmcs::{self, *};
use crate::arch::{cpu, gdt};
pub use crate::obj::vcpu::GuestRegs;

// Enter with the VMCS current; returns 0 after a VM exit, 1 if the entry
// itself failed (SDM Vol. 3C 26, 30.4). HOST_RSP is where the regs pointer
// sits, so the exit stub finds it.
global_asm!(
    r#"
    .section .text.vmx_enter, "ax"
    .globl vmx_enter
vmx_enter:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi
    mov rax, {host_rsp}
    vmwrite rax, rsp
    mov rax, [rdi + 120]
    mov cr2, rax
    test rsi, rsi
    mov rax, [rdi]
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
    jnz 1f
    vmlaunch
    jmp 2f
1:  vmresume
2:  pop rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    mov eax, 1
    ret

    .globl vmx_exit
vmx_exit:
    push rdi
    mov rdi, [rsp + 8]
    mov [rdi], rax
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
    mov rax, cr2
    mov [rdi + 120], rax
    pop rdi
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    xor eax, eax
    ret
"#,
    host_rsp = const 0x6C14u64,
);

unsafe extern "C" {
    fn vmx_enter(regs: *mut GuestRegs, launched: u64) -> u64;
    fn vmx_exit();
}

/// Why the guest left, as VT-x tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmxExit {
    ExternalInterrupt,
    Nmi,
    TripleFault,
    Cpuid,
    Hlt,
    Io {
        port: u16,
        size: u8,
        input: bool,
        string: bool,
        rep: bool,
    },
    Rdmsr,
    Wrmsr,
    EptViolation {
        gpa: u64,
        access: u64,
    },
    Vmcall,
    /// A VMX instruction, MONITOR or MWAIT: the guest gets #UD.
    VmxInstruction,
    /// #DB (with the DR6 bits it would have set) or #AC, intercepted.
    Exception {
        vector: u8,
        error: Option<u32>,
        dr6: u64,
        software: bool,
        /// It arose in the delivery of the same exception.
        in_delivery: bool,
    },
    /// WBINVD or INVD: without devices of its own a guest's caches need no
    /// flush, and its memory stays coherent.
    CacheFlush,
    Xsetbv,
    EntryFailed(u64),
    /// The guest can take an interrupt now (we asked to be told).
    InterruptWindow,
    /// The VMX-preemption timer ran out: the guest's time slice is over.
    PreemptionTimer,
    Other(u64),
}

/// The pin-based control that activates the VMX-preemption timer.
const PIN_PREEMPTION_TIMER: u32 = 1 << 6;

/// The VMX-preemption timer's value for one time slice
/// (`crate::policy::SLICE_US`; the timer counts down once every 2^n TSC
/// ticks, n = IA32_VMX_MISC[4:0], SDM 25.5.1), worked out by `setup`; 0
/// until then or if the CPU lacks the timer. Kept here whole so that the
/// entry path reads neither an MSR nor the VMCS for it, nor works it out
/// again on every entry (6 instructions an exit).
static SLICE_TIMER: AtomicU32 = AtomicU32::new(0);

/// Arms the VMX-preemption timer of the current VMCS to end the guest's
/// time slice one slice from now, if the CPU has the timer. Without it
/// the local APIC tick ends slices (its interrupt exits the guest), as on
/// AMD-V; with it a slice ends on time even where an emulator is slow to
/// deliver that interrupt to a spinning guest (Bochs).
#[inline]
pub fn slice_start() {
    let value = SLICE_TIMER.load(Ordering::Relaxed);
    if value != 0 {
        vmcs::write(PREEMPTION_TIMER, u64::from(value));
    }
}

fn rdmsr(msr: u32) -> u64 {
    // SAFETY: the VMX capability MSRs exist (VMX was enabled at boot).
    unsafe { Msr::new(msr).read() }
}

/// A control value: what we want, plus what the CPU forces, minus what it
/// forbids (SDM Vol. 3C A.3; the "true" MSRs when VMX_BASIC bit 55 says so).
fn adjust(want: u32, msr: u32, true_msr: u32) -> u32 {
    let m = if rdmsr(0x480) & (1 << 55) != 0 { rdmsr(true_msr) } else { rdmsr(msr) };
    (want | m as u32) & (m >> 32) as u32
}

/// Sets up the current VMCS for a guest starting in 32-bit protected mode
/// without paging (the Multiboot hand-off): `rip`, flat segments; or, with
/// `sipi` = Some(v), in real mode at v:0000 (an application processor
/// after INIT and a start-up IPI); EPT `eptp`, VPID `vpid`. Returns false
/// if a field was refused.
pub fn setup(rip: u64, eptp: u64, vpid: u16, sipi: Option<u8>) -> bool {
    // External interrupts and NMIs exit; the VMX-preemption timer if the
    // CPU has it (`slice_start` arms it).
    let pin = adjust(1 | (1 << 3) | PIN_PREEMPTION_TIMER, 0x481, 0x48D);
    if pin & PIN_PREEMPTION_TIMER != 0 {
        let slice = crate::arch::cpu::tsc_per_us() * crate::policy::SLICE_US;
        let value = (slice >> (rdmsr(0x485) & 0x1F)).clamp(1, u64::from(u32::MAX));
        SLICE_TIMER.store(value as u32, Ordering::Relaxed);
    }
    // HLT, MWAIT, all I/O, MONITOR, secondary.
    let proc = adjust((1 << 7) | (1 << 10) | (1 << 24) | (1 << 29) | (1 << 31), 0x482, 0x48E);
    // EPT, VPID, WBINVD, unrestricted.
    let proc2 = adjust((1 << 1) | (1 << 5) | (1 << 6) | (1 << 7), 0x48B, 0x48B);
    // Save debug controls (the guest's DR7 is its own), 64-bit host,
    // save/load EFER.
    let exit = adjust((1 << 2) | (1 << 9) | (1 << 20) | (1 << 21), 0x483, 0x48F);
    // Load debug controls, load EFER (the guest starts with EFER = 0).
    let entry = adjust((1 << 2) | (1 << 15), 0x484, 0x490);
    let me = cpu::current();
    let tss = me.tss.get().map_or(0, |t| t as *const _ as u64);
    let gdt = me.gdt.get().map_or(0, |g| g as *const _ as u64);
    let idt = x86_64::instructions::tables::sidt().base.as_u64();
    let mut ok = true;
    let mut w = |f, v| ok &= vmcs::write(f, v);
    w(VPID, u64::from(vpid));
    w(EPTP, eptp | (3 << 3) | 6);
    w(PIN_CONTROLS, u64::from(pin));
    w(PROC_CONTROLS, u64::from(proc));
    w(PROC2_CONTROLS, u64::from(proc2));
    w(EXIT_CONTROLS, u64::from(exit));
    w(ENTRY_CONTROLS, u64::from(entry));
    // #DB and #AC: a guest could otherwise hold the CPU forever in their
    // delivery (CVE-2015-8104, CVE-2015-5307); the kernel reflects them.
    w(EXCEPTION_BITMAP, (1 << 1) | (1 << 17));
    w(CR3_TARGET_COUNT, 0);
    w(VMCS_LINK, u64::MAX);
    // Host: this CPU as the kernel runs it.
    w(HOST_CR0, Cr0::read_raw());
    w(HOST_CR3, Cr3::read().0.start_address().as_u64());
    w(HOST_CR4, Cr4::read_raw());
    // ES, CS, SS, DS, FS, GS (FS and GS null: their bases are the MSRs').
    let (code, data) = (gdt::KERNEL_CODE.0, gdt::KERNEL_DATA.0);
    for (i, sel) in [data, code, data, data, 0, 0].into_iter().enumerate() {
        w(HOST_ES_SELECTOR + 2 * i as u64, u64::from(sel));
    }
    w(HOST_TR_SELECTOR, u64::from(gdt::TSS.0));
    w(HOST_FS_BASE, 0);
    w(HOST_GS_BASE, me as *const _ as u64);
    w(HOST_TR_BASE, tss);
    w(HOST_GDTR_BASE, gdt);
    w(HOST_IDTR_BASE, idt);
    w(HOST_SYSENTER_CS, 0);
    w(HOST_SYSENTER_ESP, 0);
    w(HOST_SYSENTER_EIP, 0);
    w(HOST_EFER, Efer::read_raw());
    w(HOST_RIP, vmx_exit as *const () as u64);
    // Guest: 32-bit protected mode, flat, paging off, or real mode
    // (unrestricted guest). NE and VMXE are forced on by VMX and hidden
    // from the guest.
    let pe = u64::from(sipi.is_none());
    w(GUEST_CR0, 0x30 | pe);
    w(CR0_MASK, 0x20);
    w(CR0_SHADOW, 0x10 | pe);
    w(GUEST_CR4, 0x2000);
    w(CR4_MASK, 0x2000);
    w(CR4_SHADOW, 0);
    w(GUEST_CR3, 0);
    for i in 0..6u64 {
        let code = i == 1;
        // (selector, limit, access rights, base)
        let (sel, limit, access, base) = match sipi {
            None if code => (0x08, 0xFFFF_FFFF, 0xC09B, 0),
            None => (0x10, 0xFFFF_FFFF, 0xC093, 0),
            Some(v) if code => (u64::from(v) << 8, 0xFFFF, 0x9B, u64::from(v) << 12),
            Some(_) => (0, 0xFFFF, 0x93, 0),
        };
        w(GUEST_ES_SELECTOR + 2 * i, sel);
        w(GUEST_ES_LIMIT + 2 * i, limit);
        w(GUEST_ES_ACCESS + 2 * i, access);
        w(GUEST_ES_BASE + 2 * i, base);
    }
    w(GUEST_LDTR_SELECTOR, 0);
    w(GUEST_LDTR_LIMIT, 0);
    w(GUEST_LDTR_ACCESS, 0x1_0000);
    w(GUEST_LDTR_BASE, 0);
    w(GUEST_TR_SELECTOR, 0);
    w(GUEST_TR_LIMIT, 0xFFFF);
    w(GUEST_TR_ACCESS, 0x8B);
    w(GUEST_TR_BASE, 0);
    w(GUEST_GDTR_LIMIT, 0xFFFF);
    w(GUEST_GDTR_BASE, 0);
    w(GUEST_IDTR_LIMIT, 0xFFFF);
    w(GUEST_IDTR_BASE, 0);
    w(GUEST_DR7, 0x400);
    w(GUEST_RSP, 0);
    w(GUEST_RIP, rip);
    w(GUEST_RFLAGS, 0x2);
    w(GUEST_EFER, 0);
    w(GUEST_DEBUGCTL, 0);
    w(GUEST_SYSENTER_CS, 0);
    w(GUEST_SYSENTER_ESP, 0);
    w(GUEST_SYSENTER_EIP, 0);
    w(GUEST_INTERRUPTIBILITY, 0);
    w(GUEST_ACTIVITY, 0);
    w(GUEST_PENDING_DEBUG, 0);
    w(ENTRY_INTERRUPTION, 0);
    ok
}

/// Enters the guest of the current VMCS with `regs` until it exits.
pub fn enter(regs: &mut GuestRegs, launched: bool) -> VmxExit {
    // SAFETY: the current VMCS is set up (see `setup`) with this CPU's host
    // state; the stubs save and restore every register the guest can see
    // and every callee-saved host register; interrupts are off.
    let failed = unsafe { vmx_enter(regs, u64::from(launched)) };
    if failed != 0 {
        return VmxExit::EntryFailed(vmcs::read(INSTRUCTION_ERROR));
    }
    let reason = vmcs::read(EXIT_REASON);
    if reason & (1 << 31) != 0 {
        return VmxExit::EntryFailed(reason & 0xFFFF);
    }
    // The qualification is read only for the exits that have one.
    let q = || vmcs::read(QUALIFICATION);
    match reason & 0xFFFF {
        0 => exception(q()),
        1 => VmxExit::ExternalInterrupt,
        2 => VmxExit::TripleFault,
        10 => VmxExit::Cpuid,
        7 => VmxExit::InterruptWindow,
        12 => VmxExit::Hlt,
        13 | 54 => VmxExit::CacheFlush,
        18 => VmxExit::Vmcall,
        19..=27 | 36 | 39 | 50 | 53 => VmxExit::VmxInstruction,
        55 => VmxExit::Xsetbv,
        30 => {
            let q = q();
            VmxExit::Io {
                port: (q >> 16) as u16,
                size: (q & 7) as u8 + 1,
                input: q & (1 << 3) != 0,
                string: q & (1 << 4) != 0,
                rep: q & (1 << 5) != 0,
            }
        }
        31 => VmxExit::Rdmsr,
        32 => VmxExit::Wrmsr,
        52 => VmxExit::PreemptionTimer,
        48 => VmxExit::EptViolation { gpa: vmcs::read(GUEST_PHYSICAL), access: q() & 7 },
        r => VmxExit::Other(r),
    }
}

/// Exit reason 0: an NMI, or an exception the bitmap intercepts (SDM Vol.
/// 3C 27.2.2: interruption information; for #DB the qualification holds
/// the DR6 bits B0-B3, BD and BS, which the CPU left unset).
fn exception(q: u64) -> VmxExit {
    let info = vmcs::read(EXIT_INTERRUPTION);
    let (vector, kind) = ((info & 0xFF) as u8, (info >> 8) & 7);
    if kind == 2 {
        return VmxExit::Nmi;
    }
    let error = (info & (1 << 11) != 0).then(|| vmcs::read(EXIT_ERROR_CODE) as u32);
    // It arose while the CPU delivered the same exception (SDM Vol. 3C
    // 27.2.4: IDT-vectoring information, valid, a hardware exception).
    let during = vmcs::read(IDT_VECTORING);
    let in_delivery = during & (1 << 31) != 0 && (during >> 8) & 7 == 3 && during & 0xFF == u64::from(vector);
    VmxExit::Exception { vector, error, dr6: q & 0x600F, software: kind == 5, in_delivery }
}

/// Sets the bits a #DB the kernel intercepted would have set in the
/// guest's DR6 (VT-x keeps the guest's DR6 in the CPU).
pub fn debug_status(bits: u64) {
    let dr6: u64;
    // SAFETY: DR6 holds the guest's status bits; setting B0-B3, BD and BS
    // (bits the CPU itself sets on a #DB) has no other effect.
    unsafe {
        core::arch::asm!("mov {}, dr6", out(reg) dr6, options(nomem, nostack, preserves_flags));
        core::arch::asm!("mov dr6, {}", in(reg) (dr6 & !0xF) | bits, options(nomem, nostack, preserves_flags));
    }
}

/// Whether the guest runs in ring 0 (SS.DPL, SDM Vol. 3C 24.4.1).
pub fn ring0() -> bool {
    vmcs::read(GUEST_ES_ACCESS + 4) & (3 << 5) == 0
}

/// The guest's rip and the exiting instruction's length.
pub fn rip_and_len() -> (u64, u64) {
    (rip(), vmcs::read(EXIT_INSTRUCTION_LEN))
}

/// The guest's rip.
pub fn rip() -> u64 {
    vmcs::read(GUEST_RIP)
}

/// Sets the guest's rip.
pub fn set_rip(rip: u64) {
    vmcs::write(GUEST_RIP, rip);
}

/// Queues a hardware exception for the next entry. In real mode without
/// its error code: no exception pushes one there, and VT-x refuses to
/// deliver one (SDM Vol. 3C 26.2.1.3, an invalid control field), so a
/// VMM's #GP(0) would stop a real-mode guest on VT-x only (KVM drops it
/// likewise).
pub fn inject(vector: u8, error: Option<u32>) {
    let mut info = u64::from(vector) | (3 << 8) | (1 << 31);
    if let Some(e) = error.filter(|_| vmcs::read(GUEST_CR0) & 1 != 0) {
        info |= 1 << 11;
        vmcs::write(ENTRY_ERROR_CODE, u64::from(e));
    }
    vmcs::write(ENTRY_INTERRUPTION, info);
}

/// Whether the guest can take an external interrupt now: IF set, no
/// interrupt shadow, no event already queued.
pub fn interruptible() -> bool {
    vmcs::read(GUEST_RFLAGS) & (1 << 9) != 0
        && vmcs::read(GUEST_INTERRUPTIBILITY) & 3 == 0
        && vmcs::read(ENTRY_INTERRUPTION) & (1 << 31) == 0
}

/// The guest's RFLAGS.IF.
pub fn interrupts_on() -> bool {
    vmcs::read(GUEST_RFLAGS) & (1 << 9) != 0
}

/// Queues external interrupt `vector` for the next entry.
pub fn inject_interrupt(vector: u8) {
    vmcs::write(ENTRY_INTERRUPTION, u64::from(vector) | (1 << 31));
}

/// Asks (or stops asking) for an exit as soon as the guest can take an
/// interrupt (SDM Vol. 3C 25.6.2: interrupt-window exiting).
pub fn want_window(on: bool) {
    let proc = vmcs::read(PROC_CONTROLS);
    vmcs::write(PROC_CONTROLS, if on { proc | (1 << 2) } else { proc & !(1 << 2) });
}
