//! Domain verbs: create, destroy, wait for a supervised domain's event, exit.

use ipc::event::Event;
use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::cap::Cap;
use crate::hw;
use crate::obj::domain::{self, Domain};
use crate::obj::thread::ThreadState;
use crate::state::Kernel;

pub fn create(k: &mut Kernel, c: Caller, quota_pages: u64) -> Result<Next, Error> {
    make(k, c, quota_pages, false)
}

/// A new domain, native or (`guest`) a guest, with `quota_pages` from the
/// caller's quota.
// Never inlined into the syscall dispatch: a new domain (its capability
// table) is built on this frame, which no other syscall should carry.
#[inline(never)]
pub(super) fn make(k: &mut Kernel, c: Caller, quota_pages: u64, guest: bool) -> Result<Next, Error> {
    if quota_pages == 0 {
        return Err(Error::QuotaExceeded);
    }
    k.domain_mut(c.domain)?.quota.charge(quota_pages)?;
    let undo = |k: &mut Kernel| {
        if let Ok(d) = k.domain_mut(c.domain) {
            d.quota.release(quota_pages);
        }
    };
    let Some((root, tables)) = hw::space::create(guest) else {
        undo(k);
        return Err(Error::QuotaExceeded);
    };
    let mut dom = Domain::new(root, quota_pages, Some(c.domain));
    dom.quota.used = tables;
    dom.guest = guest;
    let d = match k.add_domain(dom) {
        Ok(d) => d,
        Err((e, root)) => {
            hw::space::destroy(guest, root);
            undo(k);
            return Err(e);
        }
    };
    let s = k.give_or(c.domain, Cap::new(ObjectType::Domain, d, Rights::CONTROL | Rights::GRANT), |k| {
        k.destroy_domain(d)
    })?;
    Ok(Next::Return([u64::from(s.0), domain::id(d).0, 0, 0]))
}

pub fn destroy(k: &mut Kernel, c: Caller, domain: CapSlot) -> Result<Next, Error> {
    let d = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    if k.domain(d)?.supervisor != Some(c.domain) {
        return Err(Error::InsufficientRights);
    }
    k.destroy_domain(d);
    Ok(Next::Return([0; 4]))
}

pub fn wait(k: &mut Kernel, c: Caller, block: bool) -> Result<Next, Error> {
    let me = Some(c.domain);
    let dead = k.domains.iter_mut().find_map(|(_, x)| (x.supervisor == me).then(|| x.death.take()).flatten());
    if let Some(e) = dead {
        return Ok(Next::Return(e.encode()));
    }
    // Waiting with no domain to wait for would never end.
    let supervises = k.domains.iter().any(|(_, x)| x.supervisor == Some(c.domain));
    if !block || !supervises {
        return Err(Error::WouldBlock);
    }
    let dom = k.domain_mut(c.domain)?;
    if dom.waiter.is_some() {
        return Err(Error::Busy);
    }
    dom.waiter = Some(c.thread);
    super::msg::block(k, c, ThreadState::WaitingForEvent);
    Ok(Next::Block)
}

pub fn exit(k: &mut Kernel, c: Caller, code: u64) -> Result<Next, Error> {
    k.current[c.cpu] = None;
    k.kill(c.domain, Event::Exited { domain: domain::id(c.domain), code });
    Ok(Next::Gone)
}

pub fn info(k: &mut Kernel, c: Caller, domain: CapSlot) -> Result<Next, Error> {
    let d = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    let dom = k.domain(d)?;
    let alive = u64::from(dom.state == crate::obj::domain::DomainState::Running);
    let state = alive | dom.dma_faults.min(u64::MAX >> 1) << 1;
    Ok(Next::Return([dom.runtime_us, u64::from(dom.weight), u64::from(dom.cap_percent), state]))
}
