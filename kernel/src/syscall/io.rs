//! Device verbs: the debug console, I/O ports, interrupt lines; and stats.

use ipc::syscall::{UserBuf, Width, CONSOLE_MAX};
use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::cap::Cap;
use crate::hw;
use crate::obj::ioports::IoPorts;
use crate::obj::thread::ThreadState;
use crate::state::Kernel;

pub fn console_write(k: &mut Kernel, c: Caller, console: CapSlot, buf: UserBuf) -> Result<Next, Error> {
    k.cap(c.domain, console, ObjectType::Console, Rights::WRITE)?;
    let mut bytes = [0u8; CONSOLE_MAX as usize];
    let out = &mut bytes[..buf.len as usize];
    k.copy_from_user(c.domain, buf.addr.get(), out)?;
    hw::console::write(out);
    Ok(Next::Return([0; 4]))
}

fn ports(k: &Kernel, c: Caller, slot: CapSlot, right: Rights, port: u16, width: Width) -> Result<(), Error> {
    let cap = k.cap(c.domain, slot, ObjectType::IoPorts, right)?;
    let range = k.ioports.get(cap.obj.at).ok_or(Error::StaleCapability)?;
    range.covers(port, width as u16).then_some(()).ok_or(Error::InsufficientRights)
}

pub fn port_read(k: &mut Kernel, c: Caller, slot: CapSlot, port: u16, width: Width) -> Result<Next, Error> {
    ports(k, c, slot, Rights::READ, port, width)?;
    let v = hw::io::read(port, width);
    Ok(Next::Return([u64::from(v), 0, 0, 0]))
}

pub fn port_write(
    k: &mut Kernel,
    c: Caller,
    slot: CapSlot,
    port: u16,
    width: Width,
    value: u32,
) -> Result<Next, Error> {
    ports(k, c, slot, Rights::WRITE, port, width)?;
    hw::io::write(port, width, value);
    Ok(Next::Return([0; 4]))
}

pub fn ports_create(k: &mut Kernel, c: Caller, slot: CapSlot, base: u16, count: u16) -> Result<Next, Error> {
    let cap = k.cap(c.domain, slot, ObjectType::IoPorts, Rights::empty())?;
    let parent = k.ioports.get(cap.obj.at).ok_or(Error::StaleCapability)?;
    let wanted = IoPorts { base, count, owner: c.domain };
    let end = u32::from(base) + u32::from(count);
    if base < parent.base || end > u32::from(parent.base) + u32::from(parent.count) {
        return Err(Error::InsufficientRights);
    }
    let p = k.add_ioports(wanted)?;
    let rights = (cap.rights & (Rights::READ | Rights::WRITE | Rights::GRANT)) | Rights::REVOKE;
    let s = k.give_or(c.domain, Cap::new(ObjectType::IoPorts, p, rights), |k| k.destroy_ioports(p))?;
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

/// Acknowledges the line's last interrupt (unmasks it) and waits for the
/// next — or returns at once if it fired meanwhile. For a line bound to a
/// notification (`IrqBind`) it only acknowledges: the notification waits.
pub fn irq_wait(k: &mut Kernel, c: Caller, irq: CapSlot) -> Result<Next, Error> {
    let at = k.cap(c.domain, irq, ObjectType::Irq, Rights::CONTROL)?.obj.at;
    let obj = k.irqs.get_mut(at).ok_or(Error::StaleCapability)?;
    if obj.pending || obj.bound.is_some() {
        obj.pending = false;
        hw::irq::set_masked(u32::from(obj.line), false);
        return Ok(Next::Return([0; 4]));
    }
    if obj.waiter.is_some() {
        return Err(Error::Busy);
    }
    obj.waiter = Some(c.thread);
    hw::irq::set_masked(u32::from(obj.line), false);
    super::msg::block(k, c, ThreadState::WaitingForIrq(at));
    Ok(Next::Block)
}

pub fn stats(k: &mut Kernel, c: Caller) -> Result<Next, Error> {
    let s = k.stats();
    let q = k.domain(c.domain)?.quota;
    Ok(Next::Return([s.free_frames, s.objects, q.limit, q.used]))
}
