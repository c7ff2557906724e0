//! Endpoint and notification objects, and the asynchronous verbs: signal,
//! wait, poll; binding interrupt lines and domain deaths to notifications.

use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::cap::Cap;
use crate::obj::thread::ThreadState;
use crate::state::Kernel;

/// The domain an endpoint or notification is made for (and from whose
/// quota).
fn owner(k: &Kernel, c: Caller, domain: CapSlot) -> Result<crate::obj::pool::Ref, Error> {
    let d = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    k.living(d)?;
    Ok(d)
}

fn hand_out(k: &mut Kernel, c: Caller, kind: ObjectType, at: crate::obj::pool::Ref) -> Result<Next, Error> {
    // CONTROL: may mint badged copies (`CapMint`), which clients never get.
    let rights = Rights::READ | Rights::WRITE | Rights::GRANT | Rights::CONTROL;
    let s = k.give_or(c.domain, Cap::new(kind, at, rights), |k| match kind {
        ObjectType::Endpoint => k.destroy_endpoint(at),
        _ => k.destroy_notification(at),
    })?;
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

pub fn endpoint_create(k: &mut Kernel, c: Caller, domain: CapSlot) -> Result<Next, Error> {
    let d = owner(k, c, domain)?;
    let e = k.create_endpoint(d)?;
    hand_out(k, c, ObjectType::Endpoint, e)
}

pub fn notification_create(k: &mut Kernel, c: Caller, domain: CapSlot) -> Result<Next, Error> {
    let d = owner(k, c, domain)?;
    let n = k.create_notification(d)?;
    hand_out(k, c, ObjectType::Notification, n)
}

pub fn signal(k: &mut Kernel, c: Caller, ntfn: CapSlot, bits: u64) -> Result<Next, Error> {
    let n = k.cap(c.domain, ntfn, ObjectType::Notification, Rights::WRITE)?.obj.at;
    if let Some(t) = k.deliver(n, bits) {
        k.wake_by(t, c.thread, c.cpu);
    }
    Ok(Next::Return([0; 4]))
}

pub fn wait(k: &mut Kernel, c: Caller, ntfn: CapSlot, block: bool) -> Result<Next, Error> {
    // The lean lookup first (a Poll cost 50 instructions more through
    // `Kernel::cap`); the same checks again on a failure, to name it.
    let n = match k.notification_cap(c.domain, ntfn, Rights::READ) {
        Some(n) => n,
        None => k.cap(c.domain, ntfn, ObjectType::Notification, Rights::READ)?.obj.at,
    };
    let obj = k.notifications.get_mut(n).ok_or(Error::StaleCapability)?;
    if obj.word != 0 || !block {
        return Ok(Next::Return([core::mem::take(&mut obj.word), 0, 0, 0]));
    }
    // A notification dies with its owner (as an endpoint does, `msg::enqueue`).
    if k.domains.get(obj.owner).is_none_or(|d| d.state == crate::obj::domain::DomainState::Dead) {
        return Err(Error::PeerDead);
    }
    // Bound to another live thread, its signals end that one's receives.
    let threads = &k.threads;
    let bound_elsewhere = obj.bound.is_some_and(|t| t != c.thread && threads.get(t).is_some());
    if obj.waiter.is_some() || bound_elsewhere {
        return Err(Error::Busy);
    }
    obj.waiter = Some(c.thread);
    super::msg::block(k, c, ThreadState::WaitingForSignal(n));
    Ok(Next::Block)
}

/// Binds notification `ntfn` to the calling thread (see
/// `ipc::syscall::Call::NotificationBind`).
pub fn notification_bind(k: &mut Kernel, c: Caller, ntfn: CapSlot) -> Result<Next, Error> {
    let n = k.cap(c.domain, ntfn, ObjectType::Notification, Rights::READ)?.obj.at;
    let obj = k.notifications.get(n).ok_or(Error::StaleCapability)?;
    let taken = obj.bound.is_some_and(|t| t != c.thread && k.threads.get(t).is_some());
    if taken || obj.waiter.is_some() {
        return Err(Error::Busy);
    }
    let old = k.threads.get_mut(c.thread).ok_or(Error::StaleCapability)?.bound.replace(n);
    if let Some(x) = old.filter(|&o| o != n).and_then(|o| k.notifications.get_mut(o)) {
        x.bound = None;
    }
    if let Some(x) = k.notifications.get_mut(n) {
        x.bound = Some(c.thread);
    }
    Ok(Next::Return([0; 4]))
}

pub fn irq_bind(k: &mut Kernel, c: Caller, irq: CapSlot, ntfn: CapSlot, bits: u64) -> Result<Next, Error> {
    let i = k.cap(c.domain, irq, ObjectType::Irq, Rights::CONTROL)?.obj.at;
    let n = k.cap(c.domain, ntfn, ObjectType::Notification, Rights::WRITE)?.obj.at;
    let obj = k.irqs.get_mut(i).ok_or(Error::StaleCapability)?;
    if obj.waiter.is_some() {
        return Err(Error::Busy);
    }
    obj.bound = Some((n, bits));
    obj.pending = false;
    crate::hw::irq::set_masked(u32::from(obj.line), false);
    Ok(Next::Return([0; 4]))
}

pub fn domain_notify(
    k: &mut Kernel,
    c: Caller,
    domain: CapSlot,
    ntfn: CapSlot,
    bits: u64,
) -> Result<Next, Error> {
    let d = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    let n = k.cap(c.domain, ntfn, ObjectType::Notification, Rights::WRITE)?.obj.at;
    let dom = k.domain_mut(d)?;
    if dom.supervisor != Some(c.domain) {
        return Err(Error::InsufficientRights);
    }
    dom.notify = Some((n, bits));
    Ok(Next::Return([0; 4]))
}

pub fn timer_set(
    k: &mut Kernel,
    c: Caller,
    ntfn: CapSlot,
    bits: u64,
    delay_us: u64,
    period_us: u64,
) -> Result<Next, Error> {
    let n = k.cap(c.domain, ntfn, ObjectType::Notification, Rights::WRITE)?.obj.at;
    if delay_us == 0 {
        k.cancel_timers(|t| t.owner == c.domain && t.ntfn == n && t.bits == bits);
        return Ok(Next::Return([0; 4]));
    }
    let per_us = crate::hw::cpu::tsc_per_us();
    let due = crate::hw::cpu::now().saturating_add(delay_us.saturating_mul(per_us));
    k.set_timer(c.domain, n, bits, due, period_us.saturating_mul(per_us))?;
    Ok(Next::Return([0; 4]))
}
