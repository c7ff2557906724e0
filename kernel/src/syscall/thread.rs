//! Thread verbs: create.
//!
//! A native thread runs only in a native domain: the scheduler loads its
//! domain's root as CR3, and a guest's root is a second-level table (EPT or
//! NPT), not a PML4 the CPU can run on (loading it would triple-fault the
//! host). So `ThreadCreate` refuses a guest (`WrongType`), as `VcpuCreate`
//! refuses a native domain; a thread never changes domain after.

use ipc::syscall::UserAddr;
use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::cap::Cap;
use crate::obj::domain::DomainState;
use crate::obj::thread::{Context, Thread};
use crate::state::Kernel;

pub fn create(
    k: &mut Kernel,
    c: Caller,
    domain: CapSlot,
    entry: UserAddr,
    stack: UserAddr,
    arg: u64,
    cpu: Option<u16>,
) -> Result<Next, Error> {
    let d = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    let home = cpu.map(super::online).transpose()?.unwrap_or_else(|| k.least_loaded_cpu());
    let dom = k.domain(d)?;
    if dom.guest {
        return Err(Error::WrongType);
    }
    if dom.state == DomainState::Dead {
        return Err(Error::PeerDead);
    }
    // Paid for from `d`'s quota (given it by its creator).
    let t = k.create_thread(Thread::new(d, Context::start(entry.get(), stack.get(), arg), home))?;
    let s = k.give_or(c.domain, Cap::new(ObjectType::Thread, t, Rights::CONTROL), |k| {
        k.remove_thread(t);
    })?;
    k.wake(t);
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}
