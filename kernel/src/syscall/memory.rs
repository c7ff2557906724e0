//! Memory verbs: create, map, unmap.

use ipc::syscall::UserAddr;
use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::cap::Cap;
use crate::mem::paging::MapFlags;
use crate::state::Kernel;

pub fn create(k: &mut Kernel, c: Caller, domain: CapSlot, pages: u64) -> Result<Next, Error> {
    let owner = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    k.living(owner)?;
    let m = k.create_memory(owner, pages)?;
    let rights = Rights::READ | Rights::WRITE | Rights::EXEC | Rights::GRANT | Rights::REVOKE;
    let s = k.give_or(c.domain, Cap::new(ObjectType::Memory, m, rights), |k| k.destroy_memory(m))?;
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

pub fn map(
    k: &mut Kernel,
    c: Caller,
    memory: CapSlot,
    domain: CapSlot,
    va: UserAddr,
    rights: Rights,
) -> Result<Next, Error> {
    let m = k.cap(c.domain, memory, ObjectType::Memory, rights)?.obj.at;
    let d = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    let mut flags = MapFlags::empty();
    flags.set(MapFlags::WRITE, rights.contains(Rights::WRITE));
    flags.set(MapFlags::EXEC, rights.contains(Rights::EXEC));
    k.map_memory(m, d, va.get(), flags)?;
    Ok(Next::Return([0; 4]))
}

pub fn unmap(
    k: &mut Kernel,
    c: Caller,
    memory: CapSlot,
    domain: CapSlot,
    va: UserAddr,
) -> Result<Next, Error> {
    let m = k.cap(c.domain, memory, ObjectType::Memory, Rights::empty())?.obj.at;
    let d = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    k.unmap_memory(m, d, va.get())?;
    Ok(Next::Return([0; 4]))
}
