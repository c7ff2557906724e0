//! Capability verbs: derive, grant, delete, revoke, inspect.

use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::obj::domain::DomainState;
use crate::state::Kernel;

pub fn derive(k: &mut Kernel, c: Caller, slot: CapSlot, rights: Rights) -> Result<Next, Error> {
    let cap = k.resolve(c.domain, slot)?;
    let new = k.copy(cap, rights, None)?;
    let s = k.give(c.domain, new)?;
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

pub fn grant(
    k: &mut Kernel,
    c: Caller,
    domain: CapSlot,
    slot: CapSlot,
    rights: Rights,
) -> Result<Next, Error> {
    let target = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    let cap = k.resolve(c.domain, slot).and_then(|cap| cap.check(cap.obj.kind, Rights::GRANT))?;
    let new = k.copy(cap, rights, None)?;
    if k.domain(target)?.state == DomainState::Dead {
        return Err(Error::PeerDead);
    }
    let s = k.give(target, new)?;
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

/// A badged copy of an unbadged endpoint or notification capability with
/// CONTROL (see `crate::cap::Cap::copy`).
pub fn mint(k: &mut Kernel, c: Caller, slot: CapSlot, rights: Rights, badge: u64) -> Result<Next, Error> {
    let cap = k.resolve(c.domain, slot)?;
    let new = k.copy(cap, rights, Some(badge))?;
    let s = k.give(c.domain, new)?;
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

pub fn delete(k: &mut Kernel, c: Caller, slot: CapSlot) -> Result<Next, Error> {
    k.domain_mut(c.domain)?.caps.remove(slot)?;
    Ok(Next::Return([0; 4]))
}

/// Revokes every copy of a memory object granted or derived so far, and
/// removes its mappings outside the revoker's own domain.
pub fn revoke(k: &mut Kernel, c: Caller, slot: CapSlot) -> Result<Next, Error> {
    let cap = k.cap(c.domain, slot, ObjectType::Memory, Rights::REVOKE)?;
    let m = cap.obj.at;
    let mem = k.memory.get_mut(m).ok_or(Error::StaleCapability)?;
    mem.epoch = mem.epoch.wrapping_add(1);
    while let Some(x) = k.maps.find(|x| x.memory == m && x.domain != c.domain) {
        k.unmap(x);
    }
    let mut from = 0;
    while let Some(r) = k.domains.next_live(from) {
        from = usize::from(r.index) + 1;
        if let Some(d) = k.domains.get_mut(r) {
            d.caps.remove_where(|x| x.obj == cap.obj && !x.original);
        }
    }
    Ok(Next::Return([0; 4]))
}

pub fn info(k: &mut Kernel, c: Caller, slot: CapSlot) -> Result<Next, Error> {
    let cap = k.resolve(c.domain, slot)?;
    let size = match cap.obj.kind {
        ObjectType::Memory => k.memory.get(cap.obj.at).map_or(0, |m| m.bytes),
        ObjectType::IoPorts => k.ioports.get(cap.obj.at).map_or(0, |p| u64::from(p.count)),
        _ => 0,
    };
    Ok(Next::Return([cap.obj.kind as u64, u64::from(cap.rights.bits()), size, 0]))
}
