//! A vCPU's state for its VMM (`VcpuStateRead`, `VcpuStateWrite`): read
//! while the vCPU is in an exit, written (checked, staged) then or before
//! its first entry; see `ipc::syscall` and `ipc::vstate`.

use ipc::syscall::UserBuf;
use ipc::vstate::{Write, WRITE_BYTES};
use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::hw;
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;
use crate::state::Kernel;

/// Whether a vCPU thread in `state` is in an exit: its call to the VMM
/// queued, or waiting for the reply. Its hardware state is then still,
/// and stays so while the kernel lock is held.
fn in_exit(state: ThreadState) -> bool {
    matches!(state, ThreadState::Sending(_) | ThreadState::AwaitingReply(_))
}

/// The vCPU thread `vcpu` names (CONTROL).
fn vcpu_thread(k: &Kernel, c: Caller, vcpu: CapSlot) -> Result<Ref, Error> {
    let t = k.cap(c.domain, vcpu, ObjectType::Thread, Rights::CONTROL)?.obj.at;
    let th = k.threads.get(t).ok_or(Error::StaleCapability)?;
    th.vcpu.as_ref().ok_or(Error::WrongType)?;
    Ok(t)
}

pub fn vcpu_state_read(k: &mut Kernel, c: Caller, vcpu: CapSlot, buf: UserBuf) -> Result<Next, Error> {
    let t = vcpu_thread(k, c, vcpu)?;
    let th = k.threads.get(t).ok_or(Error::StaleCapability)?;
    let v = th.vcpu.as_ref().ok_or(Error::WrongType)?;
    // A failed entry may leave the host's state in a VMCB: never read.
    if !in_exit(th.state) || !v.launched || v.stopped {
        return Err(Error::Busy);
    }
    let mut state = hw::vm::state_read(v, th.cpu).ok_or(Error::Busy)?;
    if let Some(w) = &v.staged {
        w.apply(&mut state);
    }
    k.copy_to_user(c.domain, buf.addr.get(), &state.to_bytes())?;
    Ok(Next::Return([0; 4]))
}

pub fn vcpu_state_write(k: &mut Kernel, c: Caller, vcpu: CapSlot, buf: UserBuf) -> Result<Next, Error> {
    let t = vcpu_thread(k, c, vcpu)?;
    let mut bytes = [0u8; WRITE_BYTES as usize];
    k.copy_from_user(c.domain, buf.addr.get(), &mut bytes)?;
    let write = Write::decode(&bytes)?;
    let th = k.threads.get_mut(t).ok_or(Error::StaleCapability)?;
    let state = th.state;
    let v = th.vcpu.as_mut().ok_or(Error::WrongType)?;
    // Not yet entered: nothing of it is in the hardware yet, and its
    // first entry (under the lock this call holds) applies what is staged.
    let fresh = !v.launched && state != ThreadState::Dead;
    if !(fresh || in_exit(state) && !v.stopped) {
        return Err(Error::Busy);
    }
    v.staged = Some(v.staged.map_or(write, |old| old.then(&write)));
    Ok(Next::Return([0; 4]))
}
