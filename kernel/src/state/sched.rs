//! Which thread a CPU runs next, and who pays for its time. Each CPU has
//! its own run queue; time is charged on every entry from user mode and the
//! choice made by `crate::policy` (credit by weight, caps per period) at
//! every tick and wake-up.
//!
//! Time donation, in the manner of seL4 MCS's scheduling-context donation:
//! while a thread serves a call (holds the one-shot reply of a caller still
//! blocked on it), its time is the caller's — it burns the caller's credit
//! and its domain's cap budget and CPU time, and the scheduler picks it by
//! the caller's credit and the caller's domain's cap ([`payer`]). Without
//! it, a caller and the servers it keeps busy each get a share of their
//! own: an exit-storming guest (every exit a call to its VMM's thread) and
//! its VMM took two shares of a CPU against an equal-weight neighbour's one.
//! - Every call donates, not only a vCPU's exits: a server's work is its
//!   client's, so a busy client cannot slow others through a shared server
//!   (nor a capped domain escape its cap through one), and a server's own
//!   share is only for what it does for itself.
//! - It ends with the reply: once a server has replied (or its caller has
//!   died, been stopped or been released with `PeerDead`), the caller is no
//!   longer `AwaitingReply` on it and the server pays for itself again.
//!   The state is checked at every charge, so a server cannot make a caller
//!   pay afterwards, and a stale reply (a caller that died) donates nothing.
//! - Nested calls pass the time up the chain: a server that calls another
//!   while serving is itself awaiting a reply, so the second server's time
//!   is charged to the first caller of the chain, followed for at most
//!   [`policy::DONATION_DEPTH`] links (a deeper chain pays at its
//!   last caller walked: a bounded walk, never a loop).
//! - A caller trusts the server it calls with its time, as under seL4 MCS:
//!   a server that never replies spends the caller's credit (its debt is
//!   bounded at each reset, `policy::reset`) and cap budget (a donee runs
//!   only while the caller's domain is under its cap, so that debt stays
//!   within a slice too). While a capped caller's budget is out, the server
//!   waits with it, and so do its other callers (at most one cap period).
//!
//! Hand-over: a `Signal` that wakes a waiter on the signaller's own CPU
//! switches to it at once, the signaller going to the run queue with its
//! credit (`Kernel::wake_by`; on the fast path, `fastpath`), unless the
//! waiter's payer's domain is over its cap. Any other wake-up preempts by
//! credit (`Kernel::wake`). Decided by credit too, a same-CPU signal's
//! outcome hung on microseconds of accounting noise: the two threads of a
//! ping-pong, charged alike, took turns having the more credit, so half the
//! time the signaller was preempted through the full scheduler and the
//! other half the waiter was not woken but found its word later (the
//! bench's same-CPU wake-up 993 -> 1,503 instructions once charging was
//! exact; handed over on the fast path, 714). Handing over is the latency
//! a waiter wants, as a call's direct switch is; it is fair because only
//! the running thread (chosen by credit) can hand its turn on, and each
//! pays for its own time from then (charged at the switch). The cost: a
//! producer that signals a consumer for every message no longer fills a
//! ring before the consumer runs.
//! - A tick raised while the kernel hands the CPU over (interrupts are
//!   off in the kernel) is taken only once the waiter is back in user
//!   mode, before its first instruction: it ended the signaller's turn,
//!   not the waiter's. That tick's choice passes over the signaller, as
//!   after a yield ([`Kernel::handed`]): chosen by credit, it took the CPU
//!   straight back from a waiter with less credit, and 1 signal in 100
//!   (26 in 30 timed onto the tick, `sched_handoff`) ran on before its
//!   waiter had run at all. Whether the waiter ran is judged by where the
//!   tick interrupts it, at the very place it was resumed: a thread that
//!   loops back there before a tick makes the signaller give way once more
//!   (it still competes by credit with every other thread); a tick that
//!   comes later preempts by credit as any tick does.

use ipc::event::Event;
use spin::MutexGuard;

use super::Kernel;
use crate::hw::trap::{TrapFrame, USER_CS, USER_SS};
use crate::hw::{self, cpu};
use crate::obj::pool::Ref;
use crate::obj::thread::{Context, Thread, ThreadState};
use crate::policy;

/// RFLAGS bits user code may hold: CF PF AF ZF SF TF DF OF AC ID (not IOPL,
/// NT, RF, VM, VIF, VIP); IF is always set.
const USER_FLAGS: u64 = 0x0025_4DD5;

/// Takes the big kernel lock, meanwhile obeying a request to leave the
/// current address space (another CPU is about to free it). The free lock
/// is taken in line (one `cmpxchg`: every syscall and exit takes it, and a
/// call cost a CPUID round trip 24 instructions); waiting is out of line.
#[inline(always)]
pub(crate) fn lock() -> MutexGuard<'static, Kernel> {
    match crate::state::kernel().try_lock() {
        Some(k) => k,
        None => lock_contended(),
    }
}

/// [`lock`] when another CPU holds it: obeys what a holder may wait for
/// while it waits (every request is looked at before each new try).
#[cold]
#[inline(never)]
fn lock_contended() -> MutexGuard<'static, Kernel> {
    loop {
        hw::space::obey_leave();
        hw::window::obey_flush(); // as must an object window's unmapping
        hw::vm::reap(); // as must a VMCS another CPU retires
        core::hint::spin_loop();
        if let Some(k) = crate::state::kernel().try_lock() {
            return k;
        }
    }
}

pub(crate) fn save(f: &TrapFrame) -> Context {
    Context {
        rax: f.rax,
        rbx: f.rbx,
        rcx: f.rcx,
        rdx: f.rdx,
        rsi: f.rsi,
        rdi: f.rdi,
        rbp: f.rbp,
        r8: f.r8,
        r9: f.r9,
        r10: f.r10,
        r11: f.r11,
        r12: f.r12,
        r13: f.r13,
        r14: f.r14,
        r15: f.r15,
        rip: f.rip,
        rsp: f.rsp,
        rflags: f.rflags,
    }
}

pub(crate) fn restore(f: &mut TrapFrame, c: &Context) {
    *f = TrapFrame {
        r15: c.r15,
        r14: c.r14,
        r13: c.r13,
        r12: c.r12,
        r11: c.r11,
        r10: c.r10,
        r9: c.r9,
        r8: c.r8,
        rbp: c.rbp,
        rdi: c.rdi,
        rsi: c.rsi,
        rdx: c.rdx,
        rcx: c.rcx,
        rbx: c.rbx,
        rax: c.rax,
        vector: 0,
        error: 0,
        rip: c.rip,
        cs: USER_CS,
        rflags: (c.rflags & USER_FLAGS) | 0x202,
        rsp: c.rsp,
        ss: USER_SS,
    };
}

/// The thread whose credit and domain pay for thread `t`'s time (see the
/// module's docs on donation): `t`, or, while it holds the reply of a
/// caller still waiting for it, that caller's payer, up to
/// [`policy::DONATION_DEPTH`] links up.
#[inline]
pub(crate) fn payer(k: &Kernel, t: Ref) -> Ref {
    policy::payer(t, |x| {
        let caller = k.threads.get(x)?.reply_to?;
        let serving =
            k.threads.get(caller).is_some_and(|c| matches!(c.state, ThreadState::AwaitingReply(s) if s == x));
        serving.then_some(caller)
    })
}

/// Thread `t`'s payer ([`payer`]), looked up once if `t` serves no call.
#[inline(always)]
pub(crate) fn payer_of<'k>(k: &'k Kernel, t: Ref, th: &'k Thread) -> Option<&'k Thread> {
    if th.reply_to.is_none() {
        return Some(th);
    }
    k.threads.get(payer(k, t))
}

/// The credit thread `t` is scheduled by: its payer's.
pub(crate) fn credit_of(k: &Kernel, t: Ref) -> Option<i64> {
    payer_of(k, t, k.threads.get(t)?).map(|th| th.credit)
}

/// Charges the time since the last charge on CPU `c` to what ran there
/// (to its payer).
///
/// Only whole microseconds are charged; the rest waits for the next charge.
/// Dropped, it let a thread that enters the kernel more often than once a
/// microsecond run for free: an exit storm under QEMU's instruction
/// counting (1.4 µs a round trip, charged in two pieces) was charged
/// nothing in 5 s and kept its CPU. Carried, a charge may include up to a
/// microsecond of the thread that ran before.
pub(crate) fn charge(k: &mut Kernel, c: usize) {
    charge_for(k, c, |k| k.current[c]);
}

/// [`charge`], to thread `who(k)` (its payer) as what ran on CPU `c`,
/// asked only if there is time to charge. Inlined: out of line, with the
/// thread looked at first, a syscall cost 4 instructions more.
#[inline(always)]
pub(crate) fn charge_for(k: &mut Kernel, c: usize, who: impl FnOnce(&Kernel) -> Option<Ref>) {
    let now = cpu::now();
    let rate = cpu::tsc_per_us();
    let last = k.charged[c];
    let whole = now.saturating_sub(last) / rate;
    if whole == 0 {
        return;
    }
    k.charged[c] = last + whole * rate;
    let us = whole as i64;
    let Some(t) = who(k) else { return };
    // A thread serving no call pays for itself: looked up once.
    let Some(mut th) = k.threads.get_mut(t) else { return };
    if th.reply_to.is_some() {
        let p = payer(k, t);
        let Some(x) = k.threads.get_mut(p) else { return };
        th = x;
    }
    let d = th.domain;
    let Some(dom) = k.domains.get_mut(d) else { return };
    th.credit = crate::policy::burn(th.credit, us, dom.weight);
    dom.runtime_us += us as u64;
    if dom.cap_percent > 0 {
        dom.budget -= us;
    }
}

/// The tick: the running thread goes back to the queue, and the CPU chooses
/// again.
pub(crate) fn preempt(k: &mut Kernel, c: usize) {
    if let Some(t) = k.current[c].take() {
        if let Some(home) = k.threads.get(t).filter(|th| th.state == ThreadState::Running(c)).map(|th| th.cpu)
        {
            k.enqueue(home, t);
            if home != c {
                crate::state::kick(home);
            }
        }
    }
}

/// Whether a thread of domain `own` paid for by domain `d` may run now:
/// `own` is not paused, and `d` is not over its cap (its budget
/// replenished at the start of each cap period).
///
/// A pause stops a domain's own threads only. A server serving a call
/// runs on its caller's credit and cap, but not under its pause: a VMM
/// that pauses the guest whose exit it is serving runs on (it would
/// otherwise never run again, its payer being paused; found by
/// domains_hostile's random calls), and so does any server of a paused
/// client, which then finishes that call.
pub(crate) fn eligible(k: &mut Kernel, own: Ref, d: Ref) -> bool {
    // Usually one domain, looked up once.
    if own != d && k.domains.get(own).is_none_or(|dom| dom.paused) {
        return false;
    }
    let Some(dom) = k.domains.get_mut(d) else { return false };
    if own == d && dom.paused {
        return false;
    }
    if dom.cap_percent == 0 {
        return true;
    }
    // The time read only for a capped domain: every signal handed over and
    // every choice asks.
    let now = cpu::now();
    if now >= dom.period_end {
        let period = crate::policy::CAP_PERIOD_US as u64 * cpu::tsc_per_us();
        let budget = crate::policy::cap_budget(dom.cap_percent);
        // Overspending carries into the next period; savings do not.
        dom.budget = budget.min(dom.budget + budget);
        dom.period_end = now + period;
    }
    dom.budget > 0
}

/// The runnable thread of CPU `c` with the most credit whose domain is under
/// its cap, taken off the queue and marked running; resets credit when even
/// the best has none.
pub(crate) fn pick(k: &mut Kernel, c: usize) -> Option<Ref> {
    let yielded = k.yielded[c].take();
    for round in 0..2 {
        let mut best: Option<(Ref, i64)> = None;
        let mut fallback: Option<Ref> = None;
        let mut at = k.runqs[c].head;
        while let Some(th) = k.threads.get(at) {
            let (t, own, runnable) = (at, th.domain, th.state == ThreadState::Runnable);
            at = th.link.next;
            // A server serving a call runs on its caller's credit and cap.
            let payer = payer_of(k, t, th).map(|th| (th.domain, th.credit));
            let Some((d, credit)) = payer.filter(|_| runnable) else {
                k.dequeue(t);
                continue;
            };
            if eligible(k, own, d) {
                if Some(t) == yielded {
                    fallback = Some(t);
                } else if best.is_none_or(|(_, b)| credit > b) {
                    best = Some((t, credit));
                }
            }
        }
        let (t, credit) = best.or_else(|| fallback.map(|f| (f, i64::MAX)))?;
        if credit > 0 || round == 1 {
            k.unlink(t, Some(ThreadState::Running(c)));
            return Some(t);
        }
        // Every thread of this CPU, blocked ones too (credit2): a thread that
        // sleeps often but works when it wakes must not fall behind for good.
        for (_, th) in k.threads.iter_mut().filter(|(_, th)| th.cpu == c) {
            th.credit = crate::policy::reset(th.credit);
        }
        // And the callers of another CPU whose credit a server queued here
        // runs on: that credit competes here, and their own CPU, idle while
        // they wait for the reply, would never top it up (a VMM serving a
        // vCPU of an idle CPU waited for good beside a busy thread; found
        // by guest_smp). Only one in debt, so that one paying for several
        // servers here is topped up once.
        let mut at = k.runqs[c].head;
        while let Some(next) = k.threads.get(at).map(|th| th.link.next) {
            let p = payer(k, at);
            if let Some(th) = k.threads.get_mut(p).filter(|th| th.cpu != c && th.credit < 0) {
                th.credit = crate::policy::reset(th.credit);
            }
            at = next;
        }
    }
    None
}

/// The root domain ended: so does the system.
pub fn root_died(why: Event) -> ! {
    let success = match why {
        Event::Exited { code: 0, .. } => {
            log::info!("root domain finished: shutting down");
            true
        }
        Event::Exited { code, .. } => {
            log::error!("root domain exited with code {code}: shutting down");
            false
        }
        Event::Faulted { fault, .. } => {
            log::error!("root domain faulted ({} at {:#x}): shutting down", fault.name(), fault.ip);
            false
        }
    };
    hw::power::off(success)
}
