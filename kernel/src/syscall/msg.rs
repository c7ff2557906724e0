//! Message verbs on endpoints: call, receive, reply (see `ipc::msg`).
//! When the partner of a call or reply already waits on the same CPU, the
//! CPU switches straight to it: no run queue, no scheduler (the fast path).

use ipc::msg::{Message, NO_CAP, REGS};
use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;
use crate::state::Kernel;

/// Copies `from`'s message registers to `to`, with `badge`, transferring the
/// capability the sender names (if it still may): the receiver gets a copy
/// without REVOKE, or `NO_CAP` if the transfer is refused.
fn transfer(k: &mut Kernel, from: Ref, to: Ref, badge: u64) {
    let (Some(src), Some(dst)) = (k.threads.get(from), k.threads.get(to)) else { return };
    let (from_dom, to_dom) = (src.domain, dst.domain);
    let mut regs: [u64; REGS] = src.ctx.msg_regs();
    regs[0] = badge;
    if regs[2] != NO_CAP {
        let granted = u32::try_from(regs[2])
            .ok()
            .and_then(|s| k.resolve(from_dom, CapSlot(s)).ok())
            .filter(|cap| cap.rights.contains(Rights::GRANT))
            .and_then(|cap| k.copy(cap, cap.rights - Rights::REVOKE, None).ok())
            .and_then(|copy| k.give(to_dom, copy).ok());
        regs[2] = granted.map_or(NO_CAP, |s| u64::from(s.0));
    }
    if let Some(dst) = k.threads.get_mut(to) {
        dst.ctx.set_msg_regs(&regs);
    }
}

/// Runs `t` next on CPU `cpu` if that is its CPU (the direct switch), else
/// wakes it on its own; `with` first changes it (on the same lookup).
#[inline(always)]
fn switch_to(k: &mut Kernel, cpu: usize, t: Ref, with: impl FnOnce(&mut crate::obj::thread::Thread)) {
    let Some(th) = k.threads.get_mut(t) else { return };
    with(th);
    if th.cpu == cpu && k.current[cpu].is_none() {
        th.state = ThreadState::Running(cpu);
        k.current[cpu] = Some(t);
    } else {
        k.wake(t);
    }
}

/// The first thread queued on `ep` in `want` state (stale entries dropped).
fn pop_waiting(k: &mut Kernel, ep: Ref, senders: bool) -> Option<Ref> {
    loop {
        let e = k.endpoints.get_mut(ep)?;
        let t = if senders { e.senders.pop_front()? } else { e.receivers.pop_front()? };
        let want = if senders { ThreadState::Sending(ep) } else { ThreadState::Receiving(ep) };
        if k.threads.get(t).is_some_and(|th| th.state == want) {
            return Some(t);
        }
    }
}

/// Queues `t` on endpoint `e` (a sender, or a receiver) to wait in state
/// `want`. A full queue first drops the threads that no longer wait there
/// (they died or were released, and are otherwise dropped only when they
/// reach its front): only threads really waiting can fill it.
///
/// An endpoint dies with its owner: the waits on it end with `PeerDead` at
/// the death (`Kernel::kill`), and so does every wait begun after it (else
/// it would last until the owner's supervisor destroys the owner).
fn enqueue(k: &mut Kernel, e: Ref, t: Ref, want: ThreadState) -> Result<(), Error> {
    let threads = &k.threads;
    let ep = k.endpoints.get_mut(e).ok_or(Error::StaleCapability)?;
    if ep.dead {
        return Err(Error::PeerDead);
    }
    let queue = if matches!(want, ThreadState::Sending(_)) { &mut ep.senders } else { &mut ep.receivers };
    if queue.is_full() {
        for _ in 0..queue.len() {
            let Some(x) = queue.pop_front() else { break };
            if threads.get(x).is_some_and(|th| th.state == want) {
                let _ = queue.push_back(x); // one was just taken out
            }
        }
    }
    queue.push_back(t).map_err(|_| Error::Busy)
}

fn check_cap(k: &Kernel, c: Caller, msg: &Message) -> Result<(), Error> {
    if let Some(s) = msg.cap {
        let cap = k.resolve(c.domain, s)?;
        if !cap.rights.contains(Rights::GRANT) {
            return Err(Error::InsufficientRights);
        }
    }
    Ok(())
}

/// The endpoint the caller's capability `slot` names, if it has `rights`,
/// with its badge: the fast paths' lookup (`Kernel::endpoint_cap`), and
/// only if that fails the full one, which names the error.
fn endpoint(k: &Kernel, c: Caller, slot: CapSlot, rights: Rights) -> Result<(Ref, u64), Error> {
    let full = || k.cap(c.domain, slot, ObjectType::Endpoint, rights).map(|cap| (cap.obj.at, cap.badge));
    k.endpoint_cap(c.domain, slot, rights).map_or_else(full, Ok)
}

pub fn call(k: &mut Kernel, c: Caller, ep: CapSlot, msg: Message) -> Result<Next, Error> {
    let (e, badge) = endpoint(k, c, ep, Rights::WRITE)?;
    check_cap(k, c, &msg)?;
    call_on(k, c, e, badge)?;
    Ok(Next::Block)
}

/// Thread `c.thread` (its message already in its registers) calls endpoint
/// `e` with `badge`: handed to a waiting server, or queued. The caller
/// blocks either way. Also how a vCPU sends its exits.
pub fn call_on(k: &mut Kernel, c: Caller, e: Ref, badge: u64) -> Result<(), Error> {
    match pop_waiting(k, e, false) {
        Some(server) => {
            transfer(k, c.thread, server, badge);
            block(k, c, ThreadState::AwaitingReply(server));
            switch_to(k, c.cpu, server, |s| s.reply_to = Some(c.thread));
        }
        None => {
            enqueue(k, e, c.thread, ThreadState::Sending(e))?;
            if let Some(me) = k.threads.get_mut(c.thread) {
                me.badge = badge;
            }
            block(k, c, ThreadState::Sending(e));
        }
    }
    Ok(())
}

/// A call whose message is `regs` (a vCPU's exit, which carries no
/// capability): written straight into a waiting server's registers, else
/// into the caller's, which is queued. The caller blocks either way.
pub fn call_with(k: &mut Kernel, c: Caller, e: Ref, badge: u64, regs: &[u64; REGS]) -> Result<(), Error> {
    match pop_waiting(k, e, false) {
        Some(server) => {
            block(k, c, ThreadState::AwaitingReply(server));
            switch_to(k, c.cpu, server, |s| {
                s.ctx.set_msg_regs(regs);
                s.ctx.rdi = badge;
                s.reply_to = Some(c.thread);
            });
            Ok(())
        }
        None => {
            if let Some(me) = k.threads.get_mut(c.thread) {
                me.ctx.set_msg_regs(regs);
            }
            call_on(k, c, e, badge)
        }
    }
}

/// Blocks the caller in `state`: its CPU runs it no longer.
pub(super) fn block(k: &mut Kernel, c: Caller, state: ThreadState) {
    if let Some(me) = k.threads.get_mut(c.thread) {
        me.state = state;
    }
    k.current[c.cpu] = None;
}

pub fn recv(k: &mut Kernel, c: Caller, ep: CapSlot) -> Result<Next, Error> {
    let (e, _) = endpoint(k, c, ep, Rights::READ)?;
    recv_on(k, c, e)
}

/// A receive on endpoint `e`, the capability checked.
fn recv_on(k: &mut Kernel, c: Caller, e: Ref) -> Result<Next, Error> {
    // A bound notification already signalled comes first.
    let bound = k.threads.get(c.thread).and_then(|t| t.bound);
    if let Some(n) = bound.and_then(|n| k.notifications.get_mut(n)) {
        if n.word != 0 {
            let word = core::mem::take(&mut n.word);
            if let Some(me) = k.threads.get_mut(c.thread) {
                me.ctx.set_msg_regs(&ipc::msg::notified_regs(word));
            }
            return Ok(Next::Done);
        }
    }
    match pop_waiting(k, e, true) {
        Some(caller) => {
            let badge = k.threads.get(caller).map_or(0, |t| t.badge);
            transfer(k, caller, c.thread, badge);
            if let Some(t) = k.threads.get_mut(caller) {
                t.state = ThreadState::AwaitingReply(c.thread);
            }
            if let Some(me) = k.threads.get_mut(c.thread) {
                me.reply_to = Some(caller);
            }
            Ok(Next::Done)
        }
        None => {
            enqueue(k, e, c.thread, ThreadState::Receiving(e))?;
            block(k, c, ThreadState::Receiving(e));
            Ok(Next::Block)
        }
    }
}

/// Delivers the caller's reply; returns the caller if it was still waiting
/// (and should run). A vCPU's reply is checked first: one that asks for
/// state a VMM may not set is refused, and the vCPU keeps waiting.
fn deliver_reply(k: &mut Kernel, c: Caller, msg: &Message) -> Result<Option<Ref>, Error> {
    let Some(caller) = k.threads.get_mut(c.thread).and_then(|t| t.reply_to.take()) else { return Ok(None) };
    if !k
        .threads
        .get(caller)
        .is_some_and(|t| matches!(t.state, ThreadState::AwaitingReply(s) if s == c.thread))
    {
        return Ok(None); // it died or was released meanwhile
    }
    if let Some(v) = k.threads.get_mut(caller).and_then(|t| t.vcpu.as_mut()) {
        let reply = match ipc::vcpu::Reply::decode(msg) {
            Ok(r) => r,
            Err(e) => {
                if let Some(me) = k.threads.get_mut(c.thread) {
                    me.reply_to = Some(caller);
                }
                return Err(e);
            }
        };
        let stop = reply.actions.contains(ipc::vcpu::Action::STOP);
        v.reply = Some(reply);
        if stop {
            v.stopped = true;
            if let Some(t) = k.threads.get_mut(caller) {
                t.state = ThreadState::Dead;
            }
            return Ok(None);
        }
        return Ok(Some(caller));
    }
    transfer(k, c.thread, caller, 0);
    Ok(Some(caller))
}

pub fn reply(k: &mut Kernel, c: Caller, msg: Message) -> Result<Next, Error> {
    check_cap(k, c, &msg)?;
    if let Some(caller) = deliver_reply(k, c, &msg)? {
        k.wake(caller);
    }
    Ok(Next::Return([0; 4]))
}

pub fn reply_recv(k: &mut Kernel, c: Caller, ep: CapSlot, msg: Message) -> Result<Next, Error> {
    check_cap(k, c, &msg)?;
    let (e, _) = endpoint(k, c, ep, Rights::READ)?;
    let caller = deliver_reply(k, c, &msg)?;
    let next = recv_on(k, c, e);
    if let Some(t) = caller {
        if next == Ok(Next::Block) {
            switch_to(k, c.cpu, t, |_| {});
        } else {
            k.wake(t);
        }
    }
    next
}
