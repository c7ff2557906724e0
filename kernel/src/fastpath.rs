//! The IPC fast path: a call to a server already waiting on the same CPU,
//! and a server's reply-and-receive back to its caller there, done on the
//! trap frame directly — no copy of the message, no run queue, no
//! scheduler. Anything unusual (a capability to transfer, a partner on
//! another CPU or not waiting, a pending reschedule) takes the full path,
//! which does the same with every check spelled out.

use ipc::msg::{nr, NO_CAP};
use ipc::{CapSlot, Rights};

use crate::hw::trap::{vector, TrapFrame, USER_CS, USER_SS};
use crate::obj::pool::Ref;
use crate::obj::thread::{Context, ThreadState};
use crate::state::Kernel;

/// RFLAGS bits user code may hold (see `sched`).
const USER_FLAGS: u64 = 0x0025_4DD5;

/// Tries the fast path for the syscall in `frame` on CPU `c`; true if done
/// (the frame then holds the partner's context, ready to return to).
pub fn try_fast(k: &mut Kernel, c: usize, frame: &mut TrapFrame) -> bool {
    if frame.vector != vector::SYSCALL || frame.rdx != NO_CAP || k.resched[c] {
        return false;
    }
    let Some(me) = k.current[c] else { return false };
    if !k.threads.get(me).is_some_and(|t| t.state == ThreadState::Running(c)) {
        return false; // stopped by another CPU meanwhile
    }
    let Some(ep_slot) = u32::try_from(frame.rdi).ok().map(CapSlot) else { return false };
    match frame.rax {
        nr::CALL => fast_call(k, c, me, ep_slot, frame),
        nr::REPLY_RECV => fast_reply_recv(k, c, me, ep_slot, frame),
        _ => false,
    }
}

fn fast_call(k: &mut Kernel, c: usize, me: Ref, ep_slot: CapSlot, frame: &mut TrapFrame) -> bool {
    let Some(d) = k.threads.get(me).map(|t| t.domain) else { return false };
    let Some((ep, badge)) = k.endpoint_cap(d, ep_slot, Rights::WRITE) else { return false };
    let Some(&server) = k.endpoints.get(ep).and_then(|e| e.receivers.front()) else { return false };
    if !k.threads.get(server).is_some_and(|s| s.state == ThreadState::Receiving(ep) && s.cpu == c) {
        return false;
    }
    if let Some(e) = k.endpoints.get_mut(ep) {
        e.receivers.pop_front();
    }
    if let Some(t) = k.threads.get_mut(me) {
        save(&mut t.ctx, frame);
        t.state = ThreadState::AwaitingReply(server);
    }
    let Some(s) = k.threads.get_mut(server) else { return false };
    s.reply_to = Some(me);
    s.state = ThreadState::Running(c);
    enter(frame, &s.ctx, badge);
    k.current[c] = Some(server);
    true
}

fn fast_reply_recv(k: &mut Kernel, c: usize, me: Ref, ep_slot: CapSlot, frame: &mut TrapFrame) -> bool {
    let Some((d, caller, bound)) = k.threads.get(me).map(|t| (t.domain, t.reply_to, t.bound)) else {
        return false;
    };
    if bound.is_some_and(|n| k.notifications.get(n).is_some_and(|x| x.word != 0)) {
        return false; // its notification is signalled: the full path delivers it
    }
    let Some(caller) = caller else { return false };
    let waiting = |t: &crate::obj::thread::Thread| t.state == ThreadState::AwaitingReply(me) && t.cpu == c;
    let Some(is_vcpu) = k.threads.get(caller).filter(|t| waiting(t)).map(|t| t.vcpu.is_some()) else {
        return false;
    };
    // A vCPU's reply is checked now; a refused or stopping one takes the
    // full path, which answers the VMM with the error.
    let vcpu_reply = if is_vcpu {
        let words = [frame.r10, frame.r8, frame.r9, frame.r12, frame.r13, frame.r14, frame.r15, frame.rbx];
        let msg = ipc::msg::Message { label: frame.rsi, words, cap: None };
        match ipc::vcpu::Reply::decode(&msg) {
            Ok(r) if !r.actions.contains(ipc::vcpu::Action::STOP) => Some(r),
            _ => return false,
        }
    } else {
        None
    };
    let Some((ep, _)) = k.endpoint_cap(d, ep_slot, Rights::READ) else { return false };
    let Some(e) = k.endpoints.get_mut(ep) else { return false };
    if e.dead || !e.senders.is_empty() || e.receivers.push_back(me).is_err() {
        return false;
    }
    if let Some(t) = k.threads.get_mut(me) {
        save(&mut t.ctx, frame);
        t.reply_to = None;
        t.state = ThreadState::Receiving(ep);
    }
    let Some(t) = k.threads.get_mut(caller) else { return false };
    t.state = ThreadState::Running(c);
    k.current[c] = Some(caller);
    if let (Some(r), Some(v)) = (vcpu_reply, t.vcpu.as_mut()) {
        // The frame is the VMM's until the scheduler's loop enters the guest.
        v.reply = Some(r);
        return true;
    }
    enter(frame, &t.ctx, 0);
    true
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
