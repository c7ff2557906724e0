//! Running virtual CPUs. A vCPU is a thread whose "user mode" is a guest:
//! the scheduler picks it like any thread, and this loop enters the guest
//! without the kernel lock, takes the exits the kernel keeps (host
//! interrupts, VMX instructions, which get #UD as on a CPU without VT-x),
//! and turns every other exit into a call on the vCPU's exit endpoint,
//! blocking until the VMM's checked reply.
//!
//! Time slices: every host interrupt makes the guest exit (VT-x
//! external-interrupt exiting, AMD-V's INTR intercept), so the kernel's
//! 1 kHz tick ends a guest's slice exactly as it ends a thread's, on both
//! vendors, with one accounting path. The VMX-preemption timer would only
//! duplicate that on Intel (a decision where the issue suggested it).

use core::sync::atomic::Ordering;

use ipc::msg::NO_CAP;
use ipc::vcpu::{Action, Exit, ExitReason};
use spin::MutexGuard;

use crate::arch::cpu;
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;
use crate::state::Kernel;
use crate::syscall::Caller;
use crate::virt::svm::run::{self as svm, SvmExit};
use crate::virt::vmx::run::{self, VmxExit};
use crate::virt::vmx::vmcs;

/// A guest exit, with the vendor taken out.
enum HwExit {
    /// A host interrupt or NMI: the kernel's.
    Interrupt { nmi: bool },
    /// A virtualization instruction: #UD, as on a CPU without VT-x or AMD-V.
    Undefined,
    /// The guest can take an interrupt now.
    Window,
    /// For the VMM.
    Vmm(Exit),
}

/// What entering needs, read under the lock.
struct Entry {
    hw: u64,
    regs: run::GuestRegs,
    launched: bool,
    root: u64,
}

/// Runs vCPU thread `t` on CPU `c` until it blocks, stops or loses the CPU;
/// returns with the lock held.
pub fn run(mut k: MutexGuard<'static, Kernel>, c: usize, t: Ref) -> MutexGuard<'static, Kernel> {
    let me = cpu::current();
    let svm = crate::virt::available() == crate::virt::Virt::Svm;
    reap();
    loop {
        let Some(th) = k.threads.get(t).filter(|th| th.state == ThreadState::Running(c)) else { return k };
        let d = th.domain;
        if th.ctx.rax != 0 {
            // Its VMM died while it waited (PeerDead): it stops.
            return stop(k, c, t);
        }
        let Some((root, epoch)) = k.domains.get(d).map(|x| (x.root.as_u64(), x.tlb_epoch)) else { return k };
        let Some(v) = k.threads.get_mut(t).and_then(|th| th.vcpu.as_mut()) else { return k };
        let prepared = if svm { prepare_svm(v, root, epoch, t) } else { prepare_vmx(v, root, epoch, t) };
        let Some(mut entry) = prepared else { return stop(k, c, t) };
        entry.root = root;
        deliver_interrupt(&mut k, d, t, svm, entry.hw);
        let ticks = me.ticks.load(Ordering::Relaxed);
        me.running_guest.store(root, Ordering::SeqCst);
        me.in_kernel.store(false, Ordering::SeqCst);
        drop(k);
        let exit = if svm { enter_svm(&mut entry) } else { enter_vmx(&mut entry) };
        me.in_kernel.store(true, Ordering::SeqCst);
        me.running_guest.store(0, Ordering::SeqCst);
        if let HwExit::Interrupt { nmi } = exit {
            if nmi {
                crate::arch::trap::nmi_in_guest();
            }
            // The interrupt is still pending at the local APIC: take it now.
            x86_64::instructions::interrupts::enable();
            x86_64::instructions::nop();
            x86_64::instructions::interrupts::disable();
        }
        k = crate::sched::lock();
        crate::sched::charge(&mut k, c);
        let Some(v) = k.threads.get_mut(t).and_then(|th| th.vcpu.as_mut()) else { return k };
        v.regs = entry.regs;
        match exit {
            HwExit::Interrupt { .. } => {
                if me.ticks.load(Ordering::Relaxed) != ticks || k.resched[c] {
                    crate::sched::preempt(&mut k, c);
                    return k;
                }
            }
            HwExit::Undefined => {
                v.reply = Some(ipc::vcpu::Reply {
                    actions: Action::INJECT,
                    rip: 0,
                    inject: Some((6, None)),
                    regs: [0; 4],
                });
            }
            HwExit::Window => {}
            HwExit::Vmm(exit) => {
                let (ep, badge) = (v.exit_ep, v.badge);
                v.exit_len = exit.len;
                if doorbell(&mut k, d, &exit) {
                    if let Some(v) = k.threads.get_mut(t).and_then(|th| th.vcpu.as_mut()) {
                        let advance = Action::ADVANCE;
                        v.reply =
                            Some(ipc::vcpu::Reply { actions: advance, rip: 0, inject: None, regs: [0; 4] });
                    }
                    continue;
                }
                let Some(th) = k.threads.get_mut(t) else { return k };
                let mut r = [0u64; ipc::msg::REGS];
                exit.to_message().to_regs(&mut r);
                r[2] = NO_CAP;
                th.ctx.set_msg_regs(&r);
                let caller = Caller { thread: t, domain: d, cpu: c };
                if crate::syscall::msg::call_on(&mut k, caller, ep, badge).is_err() {
                    log::warn!("vcpu: its exit endpoint is gone or full: stopped");
                    return stop(k, c, t);
                }
                return k;
            }
        }
    }
}

/// An `OUT` to a doorbell port of guest `d`: signal its notification
/// right here; true if it was one.
fn doorbell(k: &mut Kernel, d: Ref, exit: &Exit) -> bool {
    if exit.reason != ExitReason::PortOut {
        return false;
    }
    if k.doorbells.used() == 0 {
        return false;
    }
    let port = (exit.qualification & 0xFFFF) as u16;
    let bell =
        k.doorbells.iter().find(|(_, b)| b.guest == d && b.port == port).map(|(_, b)| (b.ntfn, b.bits));
    let Some((n, bits)) = bell else { return false };
    k.signal(n, bits);
    true
}

/// Injects the highest raised interrupt of guest `d` into vCPU `t` (its
/// first vCPU) if it can take one now, else asks to be told when it can.
fn deliver_interrupt(k: &mut Kernel, d: Ref, t: Ref, svm: bool, hw: u64) {
    let Some(dom) = k.domains.get(d) else { return };
    let pending = dom.pending_irqs;
    let highest = (0..4usize)
        .rev()
        .find(|&w| pending[w] != 0)
        .map(|w| (w * 64 + 63 - pending[w].leading_zeros() as usize) as u8);
    let window = |on: bool| {
        if svm {
            svm::want_window(&svm::Vmcb::at(hw), on);
        } else {
            run::want_window(on);
        }
    };
    let Some(vector) = highest else {
        window(false);
        return;
    };
    // Interrupts go to the guest's first vCPU (no APIC routing yet).
    let first = k.threads.iter().find(|(_, th)| th.domain == d && th.vcpu.is_some()).map(|(r, _)| r);
    if first != Some(t) {
        window(false);
        return;
    }
    let ready = if svm { svm::interruptible(&svm::Vmcb::at(hw)) } else { run::interruptible() };
    if !ready {
        window(true);
        return;
    }
    if let Some(dom) = k.domains.get_mut(d) {
        dom.pending_irqs[usize::from(vector / 64)] &= !(1 << (vector % 64));
    }
    window(false);
    if svm {
        svm::inject_interrupt(&svm::Vmcb::at(hw), vector);
    } else {
        run::inject_interrupt(vector);
    }
}

/// The regs-affecting part of a VMM's reply (the vendor part is applied by
/// the caller).
fn apply_regs(v: &mut crate::obj::vcpu::Vcpu, r: &ipc::vcpu::Reply) {
    let regs = [&mut v.regs.rax, &mut v.regs.rbx, &mut v.regs.rcx, &mut v.regs.rdx];
    let flags = [Action::SET_RAX, Action::SET_RBX, Action::SET_RCX, Action::SET_RDX];
    for ((reg, flag), value) in regs.into_iter().zip(flags).zip(r.regs) {
        if r.actions.contains(flag) {
            *reg = value;
        }
    }
}

fn prepare_vmx(v: &mut crate::obj::vcpu::Vcpu, root: u64, epoch: u64, t: Ref) -> Option<Entry> {
    let me = cpu::current();
    let pa = v.vmcs.as_u64();
    if !v.launched {
        if !(vmcs::clear(pa) && vmcs::load(pa)) {
            return None;
        }
        me.current_vmcs.store(pa, Ordering::Relaxed);
        if !run::setup(v.entry, root, t.index + 1) {
            log::warn!("vcpu: the CPU refused a VMCS field");
        }
    } else if me.current_vmcs.load(Ordering::Relaxed) != pa {
        vmcs::load(pa);
        me.current_vmcs.store(pa, Ordering::Relaxed);
    }
    if let Some(r) = v.reply.take() {
        let (rip, _) = run::rip_and_len();
        if r.actions.contains(Action::ADVANCE) {
            run::set_rip(rip + v.exit_len.min(15));
        }
        if r.actions.contains(Action::SET_RIP) {
            run::set_rip(r.rip);
        }
        apply_regs(v, &r);
        if let Some((vector, error)) = r.inject {
            run::inject(vector, error);
        }
    }
    if v.ept_epoch != epoch {
        vmcs::invept_all();
        v.ept_epoch = epoch;
    }
    let launched = v.launched;
    v.launched = true;
    Some(Entry { hw: pa, regs: v.regs, launched, root })
}

fn enter_vmx(e: &mut Entry) -> HwExit {
    let exit = run::enter(&mut e.regs, e.launched);
    let (rip, len) = run::rip_and_len();
    let regs = [e.regs.rax, e.regs.rbx, e.regs.rcx, e.regs.rdx];
    let vmm = |reason, qualification, gpa| HwExit::Vmm(Exit { reason, rip, len, qualification, gpa, regs });
    match exit {
        VmxExit::ExternalInterrupt => HwExit::Interrupt { nmi: false },
        VmxExit::InterruptWindow => HwExit::Window,
        VmxExit::Nmi => HwExit::Interrupt { nmi: true },
        VmxExit::VmxInstruction => HwExit::Undefined,
        VmxExit::Cpuid => vmm(ExitReason::Cpuid, 0, 0),
        VmxExit::Hlt => vmm(ExitReason::Hlt, 0, 0),
        VmxExit::Io { port, size, input, .. } => {
            let q = u64::from(port) | u64::from(size) << 16;
            vmm(if input { ExitReason::PortIn } else { ExitReason::PortOut }, q, 0)
        }
        VmxExit::Rdmsr => vmm(ExitReason::MsrRead, 0, 0),
        VmxExit::Wrmsr => vmm(ExitReason::MsrWrite, 0, 0),
        VmxExit::EptViolation { gpa, access } => vmm(ExitReason::MemoryFault, access, gpa),
        VmxExit::TripleFault => vmm(ExitReason::TripleFault, 0, 0),
        VmxExit::Vmcall => vmm(ExitReason::Hypercall, 0, 0),
        VmxExit::EntryFailed(code) => vmm(ExitReason::EntryFailed, code, 0),
        VmxExit::Other(raw) => vmm(ExitReason::Other, raw, 0),
    }
}

fn prepare_svm(v: &mut crate::obj::vcpu::Vcpu, root: u64, epoch: u64, t: Ref) -> Option<Entry> {
    let pa = v.vmcs.as_u64();
    let vmcb = svm::Vmcb::at(pa);
    if !v.launched {
        if !svm::setup(&vmcb, v.entry, v.regs.rax, root, u32::from(t.index) + 1) {
            return None;
        }
        v.launched = true;
        v.ept_epoch = epoch;
    }
    if let Some(r) = v.reply.take() {
        let (rip, _) = svm::rip(&vmcb);
        if r.actions.contains(Action::ADVANCE) {
            svm::set_rip(&vmcb, rip + v.exit_len.min(15));
        }
        if r.actions.contains(Action::SET_RIP) {
            svm::set_rip(&vmcb, r.rip);
        }
        apply_regs(v, &r);
        if let Some((vector, error)) = r.inject {
            svm::inject(&vmcb, vector, error);
        }
    }
    if v.ept_epoch != epoch {
        svm::flush_tlb(&vmcb);
        v.ept_epoch = epoch;
    }
    Some(Entry { hw: pa, regs: v.regs, launched: true, root })
}

fn enter_svm(e: &mut Entry) -> HwExit {
    let vmcb = svm::Vmcb::at(e.hw);
    let host = cpu::current().svm_host.load(Ordering::Relaxed);
    let exit = svm::enter(&vmcb, e.hw, &mut e.regs, host);
    let (rip, next) = svm::rip(&vmcb);
    let regs = [e.regs.rax, e.regs.rbx, e.regs.rcx, e.regs.rdx];
    // Without next-RIP saving (QEMU TCG) the length comes from the
    // instruction each exit implies (EMULATORS.md).
    let len = |fixed: u64| if next > rip && next - rip <= 15 { next - rip } else { fixed };
    let vmm =
        |reason, len, qualification, gpa| HwExit::Vmm(Exit { reason, rip, len, qualification, gpa, regs });
    match exit {
        SvmExit::Interrupt => HwExit::Interrupt { nmi: false },
        SvmExit::InterruptWindow => HwExit::Window,
        SvmExit::Nmi => HwExit::Interrupt { nmi: true },
        SvmExit::SvmInstruction => HwExit::Undefined,
        SvmExit::Cpuid => vmm(ExitReason::Cpuid, len(2), 0, 0),
        SvmExit::Hlt => vmm(ExitReason::Hlt, len(1), 0, 0),
        SvmExit::Io { port, size, input, next_rip } => {
            let q = u64::from(port) | u64::from(size) << 16;
            let l = next_rip.wrapping_sub(rip).min(15);
            vmm(if input { ExitReason::PortIn } else { ExitReason::PortOut }, l, q, 0)
        }
        SvmExit::Msr { write } => {
            vmm(if write { ExitReason::MsrWrite } else { ExitReason::MsrRead }, len(2), 0, 0)
        }
        SvmExit::NestedPageFault { gpa, access } => vmm(ExitReason::MemoryFault, 0, access, gpa),
        SvmExit::Shutdown => vmm(ExitReason::TripleFault, 0, 0, 0),
        SvmExit::Vmmcall => vmm(ExitReason::Hypercall, len(3), 0, 0),
        SvmExit::Invalid => vmm(ExitReason::EntryFailed, 0, u64::MAX, 0),
        SvmExit::Other(raw) => vmm(ExitReason::Other, 0, raw, 0),
    }
}

/// The vCPU never runs again.
fn stop(mut k: MutexGuard<'static, Kernel>, c: usize, t: Ref) -> MutexGuard<'static, Kernel> {
    if let Some(th) = k.threads.get_mut(t) {
        th.state = ThreadState::Dead;
        if let Some(v) = th.vcpu.as_mut() {
            v.stopped = true;
        }
    }
    if k.current[c] == Some(t) {
        k.current[c] = None;
    }
    k
}

/// VMCS frames of destroyed vCPUs, with the CPU that may still cache them:
/// only that CPU may clear them (VMCLEAR writes back its cached copy), and
/// only then may they be freed.
static GRAVE: spin::Mutex<heapless::Vec<(usize, u64), 64>> = spin::Mutex::new(heapless::Vec::new());

/// Disposes of a destroyed vCPU's VMCS: now if this CPU is the one that ran
/// it (or none did), else at that CPU's next pass through the scheduler.
pub fn retire(vcpu: &crate::obj::vcpu::Vcpu, cpu_of: usize) {
    let pa = vcpu.vmcs.as_u64();
    let vmx = crate::virt::available() == crate::virt::Virt::Vmx;
    // A VMCB (AMD-V) is plain memory: nothing caches it between VMRUNs.
    if !vmx || !vcpu.launched || cpu_of == cpu::current_index() {
        free_vmcs(pa);
    } else if GRAVE.lock().push((cpu_of, pa)).is_ok() {
        crate::state::kick(cpu_of);
    } else {
        log::warn!("vcpu: too many VMCS frames awaiting their CPU: one leaked");
    }
}

/// Clears and frees the VMCS frames left for this CPU.
pub fn reap() {
    let me = cpu::current_index();
    let mut grave = GRAVE.lock();
    grave.retain(|&(c, pa)| {
        if c == me {
            free_vmcs(pa);
            false
        } else {
            true
        }
    });
}

fn free_vmcs(pa: u64) {
    if crate::virt::available() == crate::virt::Virt::Vmx {
        vmcs::clear(pa);
    }
    let me = cpu::current();
    if me.current_vmcs.load(Ordering::Relaxed) == pa {
        me.current_vmcs.store(0, Ordering::Relaxed);
    }
    crate::mem::kspace::free_contiguous(x86_64::PhysAddr::new(pa), 1);
}
