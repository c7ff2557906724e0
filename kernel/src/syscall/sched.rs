//! Scheduling verbs: a domain's weight and cap, a thread's CPU.

use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::obj::thread::ThreadState;
use crate::state::Kernel;

/// Only a domain's supervisor, or one above it (`mgmt` for a guest its VMM
/// made), sets its share: a domain cannot raise its own.
pub fn sched_set(
    k: &mut Kernel,
    c: Caller,
    domain: CapSlot,
    weight: u16,
    cap_percent: u8,
) -> Result<Next, Error> {
    let d = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    if !super::pause::above(k, c.domain, d) {
        return Err(Error::InsufficientRights);
    }
    let dom = k.domain_mut(d)?;
    dom.weight = weight;
    dom.cap_percent = cap_percent;
    dom.budget = crate::policy::cap_budget(cap_percent);
    dom.period_end = 0;
    Ok(Next::Return([0; 4]))
}

pub fn thread_set_cpu(k: &mut Kernel, c: Caller, thread: CapSlot, target: u16) -> Result<Next, Error> {
    let t = k.cap(c.domain, thread, ObjectType::Thread, Rights::CONTROL)?.obj.at;
    let target = super::online(target)?;
    let th = k.threads.get_mut(t).ok_or(Error::StaleCapability)?;
    if th.vcpu.as_ref().is_some_and(|v| v.launched) {
        // Its VMCS is cached by the CPU it ran on: it stays there.
        return Err(Error::Busy);
    }
    let state = th.state;
    th.cpu = target;
    match state {
        ThreadState::Runnable => {
            k.dequeue(t);
            th_requeue(k, t);
        }
        ThreadState::Running(now) if now != target => {
            // It moves at its next tick; hurry that up.
            k.resched[now] = true;
            crate::state::kick(now);
        }
        _ => {}
    }
    Ok(Next::Return([0; 4]))
}

fn th_requeue(k: &mut Kernel, t: crate::obj::pool::Ref) {
    if let Some(th) = k.threads.get_mut(t) {
        th.state = ThreadState::Created;
    }
    k.wake(t);
}
