//! Entries from user mode: what happens on every entry (a syscall, an
//! exception, an interrupt, the tick), and running what a CPU runs next,
//! a vCPU through `vm`. The top of the core: the entry stubs
//! (`arch::entry`) call it; the choices are `state::sched`'s.

use ipc::event::{Event, Fault};
use spin::MutexGuard;
use x86_64::VirtAddr;

use crate::fastpath::{switch_to, Fast};
use crate::hw::trap::{vector, TrapFrame};
use crate::hw::{self, cpu};
use crate::obj::domain;
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;
use crate::state::sched::{charge, lock, pick, preempt, restore, save};
use crate::state::Kernel;

/// Every entry from user mode lands here, with the user state in `frame`.
pub fn from_user(frame: &mut TrapFrame) {
    let me = cpu::this();
    me.set_in_kernel(true);
    let c = cpu::current();
    let mut k = lock();
    // The fast path is not charged for: it never changes who pays for the
    // CPU (a call's server runs on its caller's time, a reply goes back to
    // the thread whose time it was), so the next charge, on whatever entry,
    // charges the same thread (see the module's docs on donation).
    if let Some(left) = crate::fastpath::try_fast(&mut k, c, frame) {
        if matches!(left, Fast::Done) && !k.resched[c] {
            drop(k); // its address space loaded: the thread in the frame runs
            me.set_in_kernel(false);
            return;
        }
        // The thread now current, looked up once for both questions.
        let now = k.current[c].and_then(|t| k.threads.get(t)).map(|t| (t.vcpu.is_some(), t.domain));
        match now {
            // A VMM's reply: the vCPU runs until it exits again.
            Some((true, _)) => run_next(k, c, frame, None),
            // A signal woke a thread with more credit than the one in the
            // frame (the signaller's, or the waiter's it handed over to).
            _ if k.resched[c] => {
                let live = k.current[c];
                run_next(k, c, frame, live);
            }
            Some((false, d)) => {
                switch_to(&k, d);
                drop(k);
            }
            None => drop(k),
        }
        me.set_in_kernel(false);
        return;
    }
    charge(&mut k, c);
    let entering = k.current[c];
    let mut live = None;
    if frame.vector == vector::SYSCALL {
        if crate::syscall::handle(&mut k, c, frame) {
            live = entering;
        }
        run_next(k, c, frame, live);
        me.set_in_kernel(false);
        return;
    }
    if let Some(t) = entering {
        if let Some(th) = k.threads.get_mut(t).filter(|th| th.state == ThreadState::Running(c)) {
            th.ctx = save(frame);
        }
    }
    match frame.vector {
        v if v == u64::from(vector::TIMER) => {
            let tick = cpu::timer_tick();
            hw::irq::eoi();
            k.fire_timers(cpu::now());
            cpu::timer_rearm();
            // Only the tick ends a turn: a kernel timer's interrupt signals
            // and goes on (its wake-up preempts by credit, as any does).
            if tick {
                me.tick();
                // A tick raised during a hand-over (see the module's docs).
                if let Some(h) = k.handed[c].take() {
                    if k.current[c] == Some(h.to) && (frame.rip, frame.rsp) == (h.rip, h.rsp) {
                        k.yielded[c] = Some(h.by);
                    }
                }
                preempt(&mut k, c);
            }
        }
        v if v < 32 => user_fault(&mut k, c, frame),
        v if (u64::from(vector::IRQ_BASE)..u64::from(vector::IRQ_BASE) + 24).contains(&v) => {
            k.irq_fired((v - u64::from(vector::IRQ_BASE)) as u32)
        }
        v if (u64::from(vector::MSI_BASE)..u64::from(vector::MSI_BASE) + u64::from(vector::MSI_COUNT))
            .contains(&v) =>
        {
            k.msi_fired(v as u8)
        }
        v if v == u64::from(vector::SPURIOUS) => {}
        v if v >= u64::from(vector::PIC_BASE) => hw::irq::eoi(), // the PICs' spurious, KICK
        v => {
            log::warn!("trap: unexpected interrupt vector {v:#x}");
            hw::irq::eoi()
        }
    }
    run_next(k, c, frame, live);
    me.set_in_kernel(false);
}

/// A CPU exception in user mode stops the domain; its supervisor is told.
fn user_fault(k: &mut Kernel, c: usize, frame: &TrapFrame) {
    if frame.vector == 1 {
        // A domain single-stepped: the CPU set DR6 bits that belong to the
        // guest whose state it holds (VT-x keeps a guest's DR6 in the CPU).
        hw::vm::restore_dr6();
    }
    let Some(t) = k.current[c].take() else { return };
    let Some(d) = k.threads.get(t).map(|th| th.domain) else { return };
    let address = if frame.vector == 14 { cpu::fault_address() } else { 0 };
    let fault = Fault { vector: frame.vector as u8, error: frame.error as u32, ip: frame.rip, address };
    k.kill(d, Event::Faulted { domain: domain::id(d), fault });
}

/// Puts the next thread's context into `frame` (idling until there is one),
/// with its address space loaded and current.
/// `live`: the thread whose current registers are still only in `frame`
/// (a syscall that went on); it is saved before anything else runs.
fn run_next(mut k: MutexGuard<'static, Kernel>, c: usize, frame: &mut TrapFrame, mut live: Option<Ref>) {
    loop {
        if k.resched[c] {
            if let Some(t) = live.take() {
                if let Some(th) = k.threads.get_mut(t) {
                    th.ctx = save(frame);
                }
            }
            k.resched[c] = false;
            preempt(&mut k, c);
        }
        let running = k.current[c].and_then(|t| {
            let th = k.threads.get(t).filter(|th| th.state == ThreadState::Running(c))?;
            Some((t, th.domain, th.vcpu.is_some()))
        });
        if let Some((_, d, _)) = running.filter(|&(t, ..)| live == Some(t)) {
            // The caller goes on: its registers are in the frame already.
            switch_to(&k, d);
            return;
        }
        // A vCPU that still runs is known for one by the lookup above.
        let next = running.map(|(t, _, vcpu)| (t, vcpu)).or_else(|| Some((pick(&mut k, c)?, false)));
        if let Some((t, vcpu)) = next {
            k.current[c] = Some(t);
            if let Some(l) = live.take() {
                if let Some(th) = k.threads.get_mut(l) {
                    th.ctx = save(frame);
                }
            }
            let th = if vcpu { None } else { k.threads.get(t) };
            if vcpu || th.is_some_and(|th| th.vcpu.is_some()) {
                // A guest runs until it exits to its VMM or loses the CPU.
                // The address space loaded stays (its VMM's, usually, which
                // its exit then returns to without a switch): a CPU in a
                // guest still answers a request to leave it (`lock`).
                k = crate::vm::run(k, c, t);
                if k.current[c] == Some(t)
                    && !k.threads.get(t).is_some_and(|x| x.state == ThreadState::Running(c))
                {
                    k.current[c] = None;
                }
                continue;
            }
            let Some(th) = th else { continue };
            let (ctx, d) = (&th.ctx, th.domain);
            let Some(dom) = k.domains.get(d) else { continue };
            let (root, epoch) = (dom.root.as_u64(), dom.tlb_epoch);
            if VirtAddr::try_new(ctx.rip).is_err() || VirtAddr::try_new(ctx.rsp).is_err() {
                // Only a kernel bug could produce this; stop the domain
                // rather than fault in ring 0 on the way out.
                let fault = Fault { vector: 13, error: 0, ip: ctx.rip, address: 0 };
                k.current[c] = None;
                k.kill(d, Event::Faulted { domain: domain::id(d), fault });
                continue;
            }
            hw::space::switch(root, epoch);
            restore(frame, ctx);
            return;
        }
        k.current[c] = None;
        hw::space::load_kernel();
        hw::vm::reap();
        drop(k);
        if !cpu::idle() {
            return; // the host's fake: idle until the test resumes it (`schedule`)
        }
        k = woken(c);
    }
}

/// The lock, for CPU `c` that idled and now looks for work: its idle time
/// is no one's, and timers may be due.
#[inline(always)]
fn woken(c: usize) -> MutexGuard<'static, Kernel> {
    let (mut k, now) = (lock(), cpu::now());
    k.charged[c] = now;
    k.fire_timers(now);
    k
}

/// Puts the thread CPU `c` runs next into `frame`, idling until there is
/// one: how a CPU starts running threads (`arch::entry::run_cpu`), and on
/// the host how a test resumes a CPU that idled.
pub fn schedule(c: usize, frame: &mut TrapFrame) {
    let k = woken(c);
    run_next(k, c, frame, None);
}

/// An interrupt line fired while this CPU idled (interrupts are on in the
/// kernel only there, never with the lock held).
pub fn irq_in_idle(gsi: u32) {
    lock().irq_fired(gsi);
}

/// A device's MSI-X vector taken in the kernel (idle, or ending a guest's entry).
pub fn msi_in_idle(vector: u8) {
    lock().msi_fired(vector);
}
