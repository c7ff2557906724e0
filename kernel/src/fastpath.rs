//! The IPC fast path: a call to a server already waiting on the same CPU,
//! and a server's reply-and-receive back to its caller there, done on the
//! trap frame directly — no copy of the message, no run queue, no
//! scheduler. Anything unusual (a capability to transfer, a partner on
//! another CPU or not waiting, a pending reschedule) takes the full path,
//! which does the same with every check spelled out. A signal takes it
//! too: the word set, a waiter on the same CPU switched to in the
//! signaller's place (`Kernel::wake_by`), any other woken as usual.

use ipc::msg::{nr, NO_CAP};
use ipc::{CapSlot, Rights};

use crate::hw::trap::{vector, TrapFrame, USER_CS, USER_SS};
use crate::obj::pool::Ref;
use crate::obj::thread::{Context, ThreadState};
use crate::state::Kernel;

/// RFLAGS bits user code may hold (see `sched`).
const USER_FLAGS: u64 = 0x0025_4DD5;

/// What a fast path that was taken leaves to its caller (`None`: not taken).
pub enum Fast {
    /// Nothing: the frame holds the context of the thread now current, and
    /// its address space is loaded.
    Done,
    /// The thread now current is for the caller to look at: a vCPU, which
    /// the scheduler's loop enters, or a signal's (either of the two).
    Look,
}

type Done = Option<Fast>;

/// Tries the fast path for the syscall in `frame` on CPU `c`; if taken,
/// what is left to do ([`Fast`]; a thread's address space loaded here,
/// where its domain is at hand, saves the caller looking it up).
///
/// A `Signal` is told from the messages by its capability argument (rdx,
/// which it does not use, is 0 from `ipc::syscall::Call::encode`, never
/// `NO_CAP`): the messages' checks stay what they were, and a signal costs
/// them nothing. One with rdx = `NO_CAP` takes the full path.
pub fn try_fast(k: &mut Kernel, c: usize, frame: &mut TrapFrame) -> Done {
    if frame.vector != vector::SYSCALL || k.resched[c] {
        return None;
    }
    if frame.rdx != NO_CAP {
        return (frame.rax == SIGNAL && try_signal(k, c, frame)).then_some(Fast::Look);
    }
    let (me, d) = running(k, c)?;
    let ep_slot = u32::try_from(frame.rdi).ok().map(CapSlot)?;
    match frame.rax {
        nr::CALL => fast_call(k, c, me, d, ep_slot, frame),
        nr::REPLY_RECV => fast_reply_recv(k, c, me, ep_slot, frame),
        _ => None,
    }
}

/// The thread running on CPU `c`, if it still is (not stopped by another
/// CPU meanwhile), with its domain.
#[inline(always)]
fn running(k: &Kernel, c: usize) -> Option<(Ref, Ref)> {
    let me = k.current[c]?;
    let th = k.threads.get(me).filter(|t| t.state == ThreadState::Running(c))?;
    Some((me, th.domain))
}

/// [`try_fast`] for a `Signal`, out of line: the messages' path stays as
/// short as it was.
#[inline(never)]
fn try_signal(k: &mut Kernel, c: usize, frame: &mut TrapFrame) -> bool {
    let Some((me, d)) = running(k, c) else { return false };
    let Some(slot) = u32::try_from(frame.rdi).ok().map(CapSlot) else { return false };
    fast_signal(k, c, me, d, slot, frame)
}

/// `Signal`'s number (`ipc::syscall::Nr::Signal`).
const SIGNAL: u64 = ipc::syscall::Nr::Signal as u64;

/// `Signal` with the notification in `slot`, the bits in rsi. A woken
/// thread may change who runs (and pays): the time until now is charged
/// first. A pending reschedule (the woken one has more credit) is left to
/// the scheduler's loop (`sched::from_user`).
#[inline(always)]
fn fast_signal(k: &mut Kernel, c: usize, me: Ref, d: Ref, slot: CapSlot, frame: &mut TrapFrame) -> bool {
    // A failure takes the full path, which names the error.
    let Some(n) = k.notification_cap(d, slot, Rights::WRITE) else { return false };
    [frame.rax, frame.rdi, frame.rsi, frame.rdx, frame.r10] = [0, 0, frame.rsi, 0, 0];
    let Some(t) = k.deliver(n, frame.rsi) else {
        frame.rsi = 0;
        return true;
    };
    frame.rsi = 0;
    crate::state::sched::charge(k, c);
    k.wake_by(t, me, c);
    if k.current[c] != Some(me) {
        // Handed over: the signaller's registers (its results set) are
        // saved whole, as the full path's scheduler loop would.
        if let Some(th) = k.threads.get_mut(me) {
            th.ctx = crate::state::sched::save(frame);
        }
        let Some(th) = k.threads.get(t) else { return true };
        crate::state::sched::restore(frame, &th.ctx);
    }
    true
}

fn fast_call(k: &mut Kernel, c: usize, me: Ref, d: Ref, ep_slot: CapSlot, frame: &mut TrapFrame) -> Done {
    let (ep, badge) = k.endpoint_cap(d, ep_slot, Rights::WRITE)?;
    let &server = k.endpoints.get(ep).and_then(|e| e.receivers.front())?;
    k.threads
        .get(server)
        .filter(|s| matches!(s.state, ThreadState::Receiving(e) if e == ep) && s.cpu == c)?;
    if let Some(e) = k.endpoints.get_mut(ep) {
        e.receivers.pop_front();
    }
    if let Some(t) = k.threads.get_mut(me) {
        save(&mut t.ctx, frame);
        t.state = ThreadState::AwaitingReply(server);
    }
    let s = k.threads.get_mut(server)?;
    s.reply_to = Some(me);
    s.state = ThreadState::Running(c);
    enter(frame, &s.ctx, badge);
    let to = s.domain;
    k.current[c] = Some(server);
    switch_to(k, to);
    Some(Fast::Done)
}

fn fast_reply_recv(k: &mut Kernel, c: usize, me: Ref, ep_slot: CapSlot, frame: &mut TrapFrame) -> Done {
    let (d, caller, bound) = k.threads.get(me).map(|t| (t.domain, t.reply_to, t.bound))?;
    if bound.is_some_and(|n| k.notifications.get(n).is_some_and(|x| x.word != 0)) {
        return None; // its notification is signalled: the full path delivers it
    }
    let caller = caller?;
    let waiting = |t: &crate::obj::thread::Thread| {
        matches!(t.state, ThreadState::AwaitingReply(s) if s == me) && t.cpu == c
    };
    let is_vcpu = k.threads.get(caller).filter(|t| waiting(t)).map(|t| t.vcpu.is_some())?;
    // A vCPU's reply is checked now; a refused or stopping one takes the
    // full path, which answers the VMM with the error.
    let vcpu_reply = if is_vcpu {
        let words = [frame.r10, frame.r8, frame.r9, frame.r12, frame.r13, frame.r14, frame.r15, frame.rbx];
        let msg = ipc::msg::Message { label: frame.rsi, words, cap: None };
        match ipc::vcpu::Reply::decode(&msg) {
            Ok(r) if !r.actions.contains(ipc::vcpu::Action::STOP) => Some(r),
            _ => return None,
        }
    } else {
        None
    };
    let (ep, _) = k.endpoint_cap(d, ep_slot, Rights::READ)?;
    let e = k.endpoints.get_mut(ep)?;
    if e.dead || !e.senders.is_empty() || e.receivers.push_back(me).is_err() {
        return None;
    }
    if let Some(t) = k.threads.get_mut(me) {
        save(&mut t.ctx, frame);
        t.reply_to = None;
        t.state = ThreadState::Receiving(ep);
    }
    let t = k.threads.get_mut(caller)?;
    t.state = ThreadState::Running(c);
    k.current[c] = Some(caller);
    if let (Some(r), Some(v)) = (vcpu_reply, t.vcpu.as_mut()) {
        // The frame is the VMM's until the scheduler's loop enters the guest.
        v.reply = Some(r);
        return Some(Fast::Look);
    }
    enter(frame, &t.ctx, 0);
    let to = t.domain;
    switch_to(k, to);
    Some(Fast::Done)
}

/// Loads the address space of domain `d` (the current thread's) if it is
/// not loaded (or is loaded from before a shootdown).
#[inline(always)]
pub(crate) fn switch_to(k: &Kernel, d: Ref) {
    if let Some(dom) = k.domains.get(d) {
        crate::hw::space::switch(dom.root.as_u64(), dom.tlb_epoch);
    }
}

/// Saves what of a blocking thread's context outlives its wait: whatever
/// ends the wait (a message, a reply, an error) sets rax and every message
/// register, and `syscall` already destroyed rcx and r11.
fn save(ctx: &mut Context, f: &TrapFrame) {
    ctx.rbp = f.rbp;
    ctx.rip = f.rip;
    ctx.rsp = f.rsp;
    ctx.rflags = f.rflags;
}

/// Turns the frame into the receiver's: its own rip, rsp, rflags and rbp,
/// the sender's message registers (with `badge` in rdi), rax = 0.
fn enter(f: &mut TrapFrame, to: &Context, badge: u64) {
    f.rax = 0;
    f.rdi = badge;
    f.rbp = to.rbp;
    f.rcx = 0;
    f.r11 = 0;
    f.rip = to.rip;
    f.rsp = to.rsp;
    f.rflags = (to.rflags & USER_FLAGS) | 0x202;
    f.cs = USER_CS;
    f.ss = USER_SS;
}
