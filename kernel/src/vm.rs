//! Running virtual CPUs. A vCPU is a thread whose "user mode" is a guest:
//! the scheduler picks it like any thread, and this loop enters the guest
//! without the kernel lock, takes the exits the kernel keeps (host
//! interrupts, VMX instructions, which get #UD as on a CPU without VT-x),
//! and turns every other exit into a call on the vCPU's exit endpoint,
//! blocking until the VMM's checked reply.

use core::sync::atomic::Ordering;

use ipc::msg::NO_CAP;
use ipc::vcpu::{Action, Exit, ExitReason};
use spin::MutexGuard;

use crate::arch::cpu;
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;
use crate::state::Kernel;
use crate::syscall::Caller;
use crate::virt::vmx::run::{self, VmxExit};
use crate::virt::vmx::vmcs;

/// Runs vCPU thread `t` on CPU `c` until it blocks, stops or loses the CPU;
/// returns with the lock held.
pub fn run(mut k: MutexGuard<'static, Kernel>, c: usize, t: Ref) -> MutexGuard<'static, Kernel> {
    let me = cpu::current();
    reap();
    loop {
        let Some(th) = k.threads.get_mut(t).filter(|th| th.state == ThreadState::Running(c)) else {
            return k;
        };
        let d = th.domain;
        if th.ctx.rax != 0 {
            // Its VMM died while it waited (PeerDead): it stops.
            return stop(k, c, t);
        }
        let Some(v) = th.vcpu.as_mut() else { return k };
        let vmcs_pa = v.vmcs.as_u64();
        if !v.launched {
            let (Some(dom), true) = (k.domains.get(d), vmcs::clear(vmcs_pa) && vmcs::load(vmcs_pa)) else {
                return stop(k, c, t);
            };
            me.current_vmcs.store(vmcs_pa, Ordering::Relaxed);
            let (eptp, vpid) = (dom.root.as_u64(), t.index + 1);
            let Some(v) = k.threads.get_mut(t).and_then(|th| th.vcpu.as_mut()) else { return k };
            if !run::setup(v.entry, eptp, vpid) {
                log::warn!("vcpu: the CPU refused a VMCS field");
            }
        } else if me.current_vmcs.load(Ordering::Relaxed) != vmcs_pa {
            vmcs::load(vmcs_pa);
            me.current_vmcs.store(vmcs_pa, Ordering::Relaxed);
        }
        let (root, epoch) = k.domains.get(d).map_or((0, 0), |x| (x.root.as_u64(), x.tlb_epoch));
        let Some(v) = k.threads.get_mut(t).and_then(|th| th.vcpu.as_mut()) else { return k };
        if let Some(r) = v.reply.take() {
            apply(v, &r);
        }
        if v.ept_epoch != epoch {
            vmcs::invept_all();
            v.ept_epoch = epoch;
        }
        let (mut regs, launched) = (v.regs, v.launched);
        let ticks = me.ticks.load(Ordering::Relaxed);
        me.running_guest.store(root, Ordering::SeqCst);
        me.in_kernel.store(false, Ordering::SeqCst);
        drop(k);
        let exit = run::enter(&mut regs, launched);
        me.in_kernel.store(true, Ordering::SeqCst);
        me.running_guest.store(0, Ordering::SeqCst);
        if exit == VmxExit::Nmi {
            crate::arch::trap::nmi_in_guest();
        }
        if matches!(exit, VmxExit::ExternalInterrupt | VmxExit::Nmi) {
            // The interrupt is still pending at the local APIC: take it now.
            x86_64::instructions::interrupts::enable();
            x86_64::instructions::nop();
            x86_64::instructions::interrupts::disable();
        }
        k = crate::sched::lock();
        crate::sched::charge(&mut k, c);
        let Some(v) = k.threads.get_mut(t).and_then(|th| th.vcpu.as_mut()) else { return k };
        v.regs = regs;
        v.launched |= !matches!(exit, VmxExit::EntryFailed(_));
        match exit {
            VmxExit::ExternalInterrupt | VmxExit::Nmi => {
                if me.ticks.load(Ordering::Relaxed) != ticks || k.resched[c] {
                    crate::sched::preempt(&mut k, c);
                    return k;
                }
            }
            VmxExit::VmxInstruction => {
                v.reply = Some(ipc::vcpu::Reply {
                    actions: Action::INJECT,
                    rip: 0,
                    inject: Some((6, None)),
                    regs: [0; 4],
                });
            }
            other => {
                let exit = describe(other, &regs);
                let (ep, badge) = (v.exit_ep, v.badge);
                v.exit_len = exit.len;
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

/// Applies a VMM's checked reply to the vCPU before it runs again.
fn apply(v: &mut crate::obj::vcpu::Vcpu, r: &ipc::vcpu::Reply) {
    let (rip, len) = run::rip_and_len();
    if r.actions.contains(Action::ADVANCE) {
        run::set_rip(rip + v.exit_len.min(15));
        let _ = len;
    }
    if r.actions.contains(Action::SET_RIP) {
        run::set_rip(r.rip);
    }
    let regs = [&mut v.regs.rax, &mut v.regs.rbx, &mut v.regs.rcx, &mut v.regs.rdx];
    let flags = [Action::SET_RAX, Action::SET_RBX, Action::SET_RCX, Action::SET_RDX];
    for ((reg, flag), value) in regs.into_iter().zip(flags).zip(r.regs) {
        if r.actions.contains(flag) {
            *reg = value;
        }
    }
    if let Some((vector, error)) = r.inject {
        run::inject(vector, error);
    }
}

/// The vendor-neutral exit the VMM receives.
fn describe(exit: VmxExit, regs: &run::GuestRegs) -> Exit {
    let (rip, len) = run::rip_and_len();
    let (reason, qualification, gpa) = match exit {
        VmxExit::Cpuid => (ExitReason::Cpuid, 0, 0),
        VmxExit::Hlt => (ExitReason::Hlt, 0, 0),
        VmxExit::Io { port, size, input, .. } => {
            let q = u64::from(port) | u64::from(size) << 16;
            (if input { ExitReason::PortIn } else { ExitReason::PortOut }, q, 0)
        }
        VmxExit::Rdmsr => (ExitReason::MsrRead, 0, 0),
        VmxExit::Wrmsr => (ExitReason::MsrWrite, 0, 0),
        VmxExit::EptViolation { gpa, access } => (ExitReason::MemoryFault, access, gpa),
        VmxExit::TripleFault => (ExitReason::TripleFault, 0, 0),
        VmxExit::Vmcall => (ExitReason::Hypercall, 0, 0),
        VmxExit::EntryFailed(code) => (ExitReason::EntryFailed, code, 0),
        VmxExit::Other(raw) => (ExitReason::Other, raw, 0),
        VmxExit::ExternalInterrupt | VmxExit::Nmi | VmxExit::VmxInstruction => (ExitReason::Other, 0, 0),
    };
    Exit { reason, rip, len, qualification, gpa, regs: [regs.rax, regs.rbx, regs.rcx, regs.rdx] }
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
    if !vcpu.launched || cpu_of == cpu::current_index() {
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
    vmcs::clear(pa);
    let me = cpu::current();
    if me.current_vmcs.load(Ordering::Relaxed) == pa {
        me.current_vmcs.store(0, Ordering::Relaxed);
    }
    crate::mem::kspace::free_contiguous(x86_64::PhysAddr::new(pa), 1);
}
