//! Running virtual CPUs. A vCPU is a thread whose "user mode" is a guest:
//! the scheduler picks it like any thread, and this loop enters the guest
//! without the kernel lock, takes the exits the kernel keeps (host
//! interrupts, the end of a time slice, VMX/SVM instructions, which get #UD
//! as on a CPU without them, doorbell writes, and HLT with interrupts on),
//! and turns every other exit into a call on the vCPU's exit endpoint,
//! blocking until the VMM's checked reply.
//!
//! Time slices: every host interrupt makes the guest exit (VT-x
//! external-interrupt exiting, AMD-V's INTR intercept), so the kernel's
//! 1 kHz tick ends a guest's slice as it ends a thread's; on VT-x the
//! VMX-preemption timer ends it too, on time even where an emulator is slow
//! to deliver the tick to a spinning guest.
//!
//! Idle: a vCPU that halts with interrupts on waits here, off the CPU
//! (`ThreadState::Halted`), until an interrupt is raised on it — as KVM
//! keeps HLT in its kernel: a round trip to the VMM per idle would only add
//! latency. A halt with interrupts off goes to the VMM (nothing can end it).
//!
//! Interrupts: each vCPU's own (`VcpuInterrupt`, the VMM's IPIs and
//! timers) and its guest's VirqLines (to the first vCPU), injected at the
//! next entry when the guest can take them, else at the window exit.

use ipc::msg::NO_CAP;
use ipc::vcpu::{Action, Exit, ExitReason};
use spin::MutexGuard;

use crate::hw::cpu;
use crate::hw::guest::HwExit;
use crate::hw::vm as hw;
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;
use crate::obj::vcpu::Vcpu;
use crate::state::{Domains, Doorbells, Kernel};
use crate::syscall::Caller;

/// Runs vCPU thread `t` on CPU `c` until it blocks, stops or loses the CPU;
/// returns with the lock held.
pub fn run(mut k: MutexGuard<'static, Kernel>, c: usize, t: Ref) -> MutexGuard<'static, Kernel> {
    let me = cpu::this();
    hw::reap();
    // Exits the kernel keeps do not end a slice by themselves: a guest that
    // makes nothing but those (exceptions delivered into exceptions,
    // CVE-2015-8104) still gives up the CPU when one is over. Timed from
    // the first such exit, so that the exits a VMM answers pay nothing.
    let (mut again, mut kept_since, slice) = (false, None, cpu::tsc_per_us() * crate::policy::SLICE_US);
    loop {
        if again {
            let now = cpu::now();
            let since = *kept_since.get_or_insert(now);
            if now.wrapping_sub(since) > slice {
                crate::state::sched::charge(&mut k, c);
                crate::state::sched::preempt(&mut k, c);
                return k;
            }
        }
        again = true;
        // The vCPU and its guest looked up once (the fields apart).
        let kk = &mut *k;
        let Some(th) = kk.threads.get_mut(t).filter(|th| th.state == ThreadState::Running(c)) else {
            return k;
        };
        let d = th.domain;
        if th.ctx.rax != 0 || th.vcpu.as_ref().is_some_and(|v| v.stopped) {
            // Its VMM died while it waited (PeerDead), or its entry failed:
            // it stops.
            return stop(k, c, t);
        }
        let Some((root, epoch, shared)) =
            kk.domains.get(d).map(|x| (x.root.as_u64(), x.tlb_epoch, any_raised(&x.pending_irqs)))
        else {
            return k;
        };
        let Some(v) = th.vcpu.as_mut() else { return k };
        if v.unsent {
            // Its exit found the queue full: sent again, its message still
            // in its registers.
            let (ep, badge) = (v.exit_ep, v.badge);
            return send_exit(k, Caller { thread: t, domain: d, cpu: c }, ep, badge, None);
        }
        let own = any_raised(&v.pending);
        let state = v.state();
        let Some(mut entry) = hw::prepare(v, root, epoch, t) else { return stop(k, c, t) };
        hw::load_state(me, state);
        entry.root = root;
        if own || shared {
            deliver_interrupt(&mut k, d, t, entry.hw);
        } else if v.window {
            v.window = false;
            hw::want_window(entry.hw, false);
        }
        let ticks = me.ticks();
        me.set_running_guest(root);
        me.set_in_kernel(false);
        drop(k);
        let exit = hw::enter(&mut entry);
        me.set_in_kernel(true);
        me.set_running_guest(0);
        if let HwExit::Interrupt { nmi } = exit {
            // The interrupt is still pending at the local APIC: take it now.
            hw::take_interrupt(nmi);
        }
        k = crate::state::sched::lock();
        // Charged only where another thread may run next: an exit the
        // kernel handles and the guest goes on from is the same payer's
        // time as what follows (`sched`'s docs on donation).
        let kk = &mut *k; // the fields apart: a doorbell's lookup beside `v`
        let Some(v) = kk.threads.get_mut(t).and_then(|th| th.vcpu.as_mut()) else {
            crate::state::sched::charge(&mut k, c);
            return k;
        };
        v.regs.set(&entry.regs);
        match exit {
            HwExit::Interrupt { .. } => {
                crate::state::sched::charge(&mut k, c);
                // A timer interrupt, taken here: timers fire as at one
                // from user mode (else a CPU that only runs guests fires
                // none, and with every CPU in a guest none fire); with
                // none due, `fire_timers` looks at no timer. Only the
                // tick ends the vCPU's turn.
                k.fire_timers(cpu::now());
                if me.ticks() != ticks || k.resched[c] {
                    crate::state::sched::preempt(&mut k, c);
                    return k;
                }
            }
            HwExit::Undefined => answer(v, None, Some((6, None))),
            HwExit::Window => {}
            HwExit::Reflect { vector, error, len } => {
                answer(v, (len != 0).then_some(len), Some((vector, error)))
            }
            HwExit::Skip { len } => answer(v, Some(len), None),
            HwExit::Xsetbv { len } => {
                let r = &entry.regs;
                let value = (r.rdx << 32) | (r.rax & 0xFFFF_FFFF);
                if r.rcx as u32 == 0 && hw::set_xcr0(value) {
                    answer(v, Some(len), None);
                } else {
                    answer(v, None, Some((13, Some(0))));
                }
            }
            HwExit::SliceOver => {
                crate::state::sched::charge(&mut k, c);
                crate::state::sched::preempt(&mut k, c);
                return k;
            }
            HwExit::Spin { len } => {
                // A spin-wait: what it waits for may need this CPU, most
                // often its VMM serving a sibling vCPU's exit. The vCPU
                // gives way for one choice, keeping its credit, as at a
                // yield, and goes on after the PAUSE (the exit comes before
                // it runs). Not given way, Linux's second vCPU took each
                // exit only once the spinning first had used its credit: a
                // timer's deletion spun for 56 s (an RCU stall). Only where
                // the CPU counts PAUSEs (`virt::PAUSE_LOOP`).
                answer(v, Some(len), None);
                crate::state::sched::charge(&mut k, c);
                crate::state::sched::preempt(&mut k, c);
                k.yielded[c] = Some(t);
                return k;
            }
            HwExit::Vmm(exit) => {
                if let Some(n) = v.exits.get_mut(exit.reason.index()) {
                    *n = n.wrapping_add(1);
                }
                let (ep, badge) = (v.exit_ep, v.badge);
                v.exit_len = exit.len;
                if exit.reason == ExitReason::EntryFailed {
                    // The VMM is told, but the vCPU never runs again: after a
                    // failed VMRUN the VMCB holds the host's state.
                    v.stopped = true;
                }
                if let Some((n, bits)) = doorbell(&kk.domains, &kk.doorbells, d, &exit) {
                    v.reply = Some(ipc::vcpu::Reply::only(Action::ADVANCE));
                    kk.signal(n, bits);
                    continue;
                }
                if exit.reason == ExitReason::Hlt && hw::interrupts_on(entry.hw) {
                    // Idle until an interrupt (a halt with interrupts off
                    // goes to the VMM: nothing can end it).
                    v.reply = Some(ipc::vcpu::Reply::only(Action::ADVANCE));
                    let (own, shared) = raised(&k, d, t);
                    if own.is_none() && shared.is_none() {
                        crate::state::sched::charge(&mut k, c);
                        if let Some(th) = k.threads.get_mut(t) {
                            th.state = ThreadState::Halted;
                        }
                        k.current[c] = None;
                        return k;
                    }
                    continue;
                }
                let mut r = [0u64; ipc::msg::REGS];
                exit.to_message().to_regs(&mut r);
                r[2] = NO_CAP;
                return send_exit(k, Caller { thread: t, domain: d, cpu: c }, ep, badge, Some(&r));
            }
        }
    }
}

/// The kernel's own answer to vCPU `v`'s exit, taken at its next entry
/// as a VMM's reply is: past the instruction of `len` bytes (if given),
/// with exception `inject` (if given) queued.
fn answer(v: &mut Vcpu, len: Option<u64>, inject: Option<(u8, Option<u32>)>) {
    let mut actions = if inject.is_some() { Action::INJECT } else { Action::empty() };
    if let Some(len) = len {
        v.exit_len = len;
        actions |= Action::ADVANCE;
    }
    v.reply = Some(ipc::vcpu::Reply { inject, ..ipc::vcpu::Reply::only(actions) });
}

/// Sends vCPU `c.thread`'s exit (`regs`, or the message already in its
/// registers) to its VMM on endpoint `ep`. If the endpoint's queue is full
/// the vCPU waits its turn (it yields, and sends again when next chosen):
/// it is stopped only if the endpoint is gone. Inlined: out of line, the
/// guard and message passed by value cost a CPUID round trip 127
/// instructions (1,539 to 1,412 under QEMU).
#[inline(always)]
fn send_exit(
    mut k: MutexGuard<'static, Kernel>,
    c: Caller,
    ep: Ref,
    badge: u64,
    regs: Option<&[u64; ipc::msg::REGS]>,
) -> MutexGuard<'static, Kernel> {
    let sent = match regs {
        Some(r) => crate::syscall::msg::call_with(&mut k, c, ep, badge, r),
        None => crate::syscall::msg::call_on(&mut k, c, ep, badge),
    };
    // Charged unless switched straight to its VMM: that serves on the
    // vCPU's time, so the next charge charges the same payer (as the fast
    // path's reply, `sched::from_user`), and an exit answered costs none.
    if k.current[c.cpu].is_none_or(|s| s == c.thread) {
        crate::state::sched::charge_for(&mut k, c.cpu, |_| Some(c.thread));
    }
    let busy = sent == Err(ipc::Error::Busy);
    if let Some(v) = k.threads.get_mut(c.thread).and_then(|th| th.vcpu.as_mut()) {
        v.unsent = busy;
    }
    match sent {
        Ok(()) => k,
        Err(_) if busy => {
            crate::state::sched::preempt(&mut k, c.cpu);
            k
        }
        Err(_) => {
            log::warn!("vcpu: its exit endpoint is gone: stopped");
            stop(k, c.cpu, c.thread)
        }
    }
}

/// An `OUT` to a doorbell port of guest `d`: its notification and bits,
/// to be signalled right here.
fn doorbell(domains: &Domains, doorbells: &Doorbells, d: Ref, exit: &Exit) -> Option<(Ref, u64)> {
    let port = (exit.qualification & 0xFFFF) as u16;
    (exit.reason == ExitReason::PortOut).then(|| Kernel::doorbell_at(domains, doorbells, d, port)).flatten()
}

/// Whether any vector is set in `pending` (an OR, not an array compare,
/// which would be a call to `memcmp`).
fn any_raised(pending: &[u64; 4]) -> bool {
    pending[0] | pending[1] | pending[2] | pending[3] != 0
}

/// The highest vector set in `pending`.
fn highest(pending: &[u64; 4]) -> Option<u8> {
    (0..4usize)
        .rev()
        .find(|&w| pending[w] != 0)
        .map(|w| (w * 64 + 63 - pending[w].leading_zeros() as usize) as u8)
}

/// The highest interrupt raised on vCPU `t` of guest `d`: its own
/// (`VcpuInterrupt`), and guest `d`'s VirqLines' if `t` is its first vCPU
/// (they have no routing yet).
fn raised(k: &Kernel, d: Ref, t: Ref) -> (Option<u8>, Option<u8>) {
    let own = k.threads.get(t).and_then(|th| th.vcpu.as_ref()).and_then(|v| highest(&v.pending));
    let shared =
        k.domains.get(d).and_then(|dom| highest(&dom.pending_irqs)).filter(|_| k.first_vcpu(d) == Some(t));
    (own, shared)
}

/// Injects the highest interrupt raised on vCPU `t` ([`raised`]) if it can
/// take one now, else asks to be told when it can.
fn deliver_interrupt(k: &mut Kernel, d: Ref, t: Ref, hw_state: u64) {
    // Asked for whenever wanted; cleared only if asked for (`Vcpu::window`).
    let window = |k: &mut Kernel, on: bool| {
        if let Some(v) = k.threads.get_mut(t).and_then(|th| th.vcpu.as_mut()) {
            if on || v.window {
                hw::want_window(hw_state, on);
                v.window = on;
            }
        }
    };
    let (own, shared) = raised(k, d, t);
    let Some(vector) = own.max(shared) else {
        window(k, false);
        return;
    };
    if !hw::interruptible(hw_state) {
        window(k, true);
        return;
    }
    let bit = |p: &mut [u64; 4]| p[usize::from(vector / 64)] &= !(1 << (vector % 64));
    if own == Some(vector) {
        if let Some(v) = k.threads.get_mut(t).and_then(|th| th.vcpu.as_mut()) {
            bit(&mut v.pending);
        }
    } else if let Some(dom) = k.domains.get_mut(d) {
        bit(&mut dom.pending_irqs);
    }
    window(k, false);
    hw::inject_interrupt(hw_state, vector);
}

/// The vCPU never runs again.
fn stop(mut k: MutexGuard<'static, Kernel>, c: usize, t: Ref) -> MutexGuard<'static, Kernel> {
    crate::state::sched::charge(&mut k, c);
    if let Some(th) = k.threads.get_mut(t) {
        th.state = ThreadState::Dead;
        if let Some(v) = th.vcpu.as_mut() {
            v.stopped = true;
        }
    }
    k.current[c] = k.current[c].filter(|&x| x != t);
    k
}
