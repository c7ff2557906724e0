//! A native thread in a guest, a vCPU in a native domain: each refused with
//! `WrongType`. A guest's root is its second-level table (EPT or NPT): a
//! thread run there would load it as CR3 and triple-fault the host, as
//! `ThreadCreate` on a guest did before it was refused. The guest is this
//! domain's own (it holds CONTROL on it, as a VMM does on its guest).

use ipc::syscall::{Call, UserAddr};
use ipc::{CapSlot, Error, Rights};
use user::sys;

use crate::random::park_entry;

/// The check that failed, and what came back.
pub struct Failure(pub &'static str, pub Result<(), Error>);

fn refused(what: &'static str, got: Result<[u64; 4], (Error, u64)>) -> Result<(), Failure> {
    match got {
        Err((Error::WrongType, _)) => Ok(()),
        other => Err(Failure(what, other.map(drop).map_err(|(e, _)| e))),
    }
}

fn made<T>(what: &'static str, r: Result<T, Error>) -> Result<T, Failure> {
    r.map_err(|e| Failure(what, Err(e)))
}

pub fn run(this: CapSlot) -> Result<(), Failure> {
    let (guest, _) = made("creating a guest", sys::guest_create(16))?;
    let entry = UserAddr::new(park_entry());
    let stack = UserAddr::new(0x10_0000);
    let (Some(entry), Some(stack)) = (entry, stack) else { return Err(Failure("an address", Ok(()))) };
    for cpu in [None, Some(0)] {
        let thread = Call::ThreadCreate { domain: guest, entry, stack, arg: 0, cpu };
        // SAFETY: were it made, the thread would run in the guest, not here.
        refused("a thread in a guest", unsafe { sys::syscall(&thread) })?;
    }
    // Even with its memory mapped where the thread would start.
    let mem = made("guest memory", sys::memory_create(this, 1))?;
    made("mapping it into the guest", sys::memory_map(mem, guest, entry.get() & !0xfff, Rights::READ))?;
    let thread = Call::ThreadCreate { domain: guest, entry, stack, arg: 0, cpu: None };
    // SAFETY: as above.
    refused("a thread in a guest with memory", unsafe { sys::syscall(&thread) })?;
    let ep = made("an exit endpoint", sys::endpoint_create(this))?;
    let vcpu = Call::VcpuCreate { guest: this, exit: ep, entry: 0x10_0000, arg: 0, sipi: None, cpu: None };
    // SAFETY: refused, or a vCPU: it runs no code of this domain.
    refused("a vCPU in a native domain", unsafe { sys::syscall(&vcpu) })?;
    made("destroying the guest", sys::domain_destroy(guest))?;
    made("deleting the endpoint", sys::cap_delete(ep))?;
    made("deleting the memory", sys::cap_delete(mem))?;
    Ok(())
}
