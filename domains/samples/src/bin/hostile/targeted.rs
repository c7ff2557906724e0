//! Targeted misuses, each of which must fail with exactly its error.

use core::fmt;

use ipc::syscall::{Call, UserAddr, UserBuf};
use ipc::{CapSlot, Error, Rights};
use user::{layout, sys, StartInfo};

/// What a call returned, as a check compares it: success, or an error with,
/// for `InvalidArgument`, the argument at fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Got {
    Ok,
    Err(Error),
    BadArg(u64),
    /// A value a check reads (a badge, rights).
    Value(u64),
}

impl From<Result<[u64; 4], (Error, u64)>> for Got {
    fn from(r: Result<[u64; 4], (Error, u64)>) -> Self {
        match r {
            Ok(_) => Got::Ok,
            Err((Error::InvalidArgument, arg)) => Got::BadArg(arg),
            Err((e, _)) => Got::Err(e),
        }
    }
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Got::Ok => write!(f, "success"),
            Got::Err(e) => write!(f, "{e:?}"),
            Got::BadArg(i) => write!(f, "InvalidArgument (argument {i})"),
            Got::Value(v) => write!(f, "{v:#x}"),
        }
    }
}

/// A check that did not get what it wanted.
pub struct Failure {
    what: &'static str,
    got: Got,
    want: Got,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: got {}, want {}", self.what, self.got, self.want)
    }
}

pub fn expect(what: &'static str, got: impl Into<Got>, want: Got) -> Result<(), Failure> {
    let got = got.into();
    if got == want {
        Ok(())
    } else {
        Err(Failure { what, got, want })
    }
}

/// Makes a call of the ones below.
fn call(c: Call) -> Got {
    // SAFETY: no check unmaps memory or starts a thread.
    unsafe { sys::syscall(&c) }.into()
}

/// Makes a raw call of the ones below.
fn raw(nr: u64, a: [u64; 6]) -> Got {
    // SAFETY: as in `call`.
    let (rax, r) = unsafe { sys::syscall_raw(nr, a) };
    match Error::from_code(rax) {
        Ok(()) => Got::Ok,
        Err(Error::InvalidArgument) => Got::BadArg(r[0]),
        Err(e) => Got::Err(e),
    }
}

pub fn result<T>(r: Result<T, Error>) -> Got {
    match r {
        Ok(_) => Got::Ok,
        Err(e) => Got::Err(e),
    }
}

/// A step that sets a check up, and must succeed.
pub fn made<T>(what: &'static str, r: Result<T, Error>) -> Result<T, Failure> {
    r.map_err(|e| Failure { what, got: Got::Err(e), want: Got::Ok })
}

fn user_buf(addr: u64, len: u64) -> Result<UserBuf, Failure> {
    let addr = UserAddr::new(addr).ok_or(Error::InvalidArgument);
    Ok(UserBuf { addr: made("a user buffer", addr)?, len })
}

const MSG: &[u8] = b"hostile: this line must never be printed\n";

/// Returns the notification the second thread of `copies` waits on.
pub fn run(start: &StartInfo, this: CapSlot, console: CapSlot) -> Result<CapSlot, Failure> {
    use Error::*;
    let buf = user_buf(MSG.as_ptr() as u64, MSG.len() as u64)?;
    expect("syscall 0", raw(0, [0; 6]), Got::Err(UnknownSyscall))?;
    expect("syscall 79", raw(79, [1; 6]), Got::Err(UnknownSyscall))?;
    expect(
        "slot 200, never issued",
        result(sys::cap_info(CapSlot::new(200, 0))),
        Got::Err(InvalidCapability),
    )?;
    expect("slot 4000", result(sys::cap_info(CapSlot::new(4000, 0))), Got::Err(InvalidCapability))?;

    let copy = made("deriving the console", sys::cap_derive(console, Rights::WRITE))?;
    expect("deleting a copy", result(sys::cap_delete(copy)), Got::Ok)?;
    expect("a deleted slot", result(sys::cap_info(copy)), Got::Err(StaleCapability))?;
    expect(
        "writing to a deleted slot",
        call(Call::ConsoleWrite { console: copy, buf }),
        Got::Err(StaleCapability),
    )?;

    expect("the console as a domain", result(sys::memory_create(console, 1)), Got::Err(WrongType))?;
    let mute = made("deriving a console without WRITE", sys::cap_derive(console, Rights::empty()))?;
    let write = call(Call::ConsoleWrite { console: mute, buf });
    expect("writing to a console without WRITE", write, Got::Err(InsufficientRights))?;
    made("deleting it", sys::cap_delete(mute))?;

    let c = u64::from(console.0);
    let kernel = raw(1, [c, 0xffff_8000_0000_0000, 16, 0, 0, 0]);
    expect("writing from the kernel half", kernel, Got::BadArg(2))?;
    expect("writing 5000 bytes", raw(1, [c, MSG.as_ptr() as u64, 5000, 0, 0, 0]), Got::BadArg(2))?;
    let unmapped = call(Call::ConsoleWrite { console, buf: user_buf(layout::FREE_BASE, 16)? });
    expect("writing from unmapped memory", unmapped, Got::Err(BadAddress))?;

    let too_much = sys::memory_create(this, start.quota_pages + 1);
    expect("memory beyond the quota", result(too_much), Got::Err(QuotaExceeded))?;
    let mem = made("one page of memory", sys::memory_create(this, 1))?;
    let wx = u64::from((Rights::WRITE | Rights::EXEC).bits());
    let map = raw(31, [u64::from(mem.0), u64::from(this.0), layout::FREE_BASE, wx, 0, 0]);
    expect("a writable and executable mapping", map, Got::BadArg(4))?;
    let grant_only = made("a GRANT-only copy of it", sys::cap_derive(mem, Rights::GRANT))?;
    let none = raw(31, [u64::from(grant_only.0), u64::from(this.0), layout::FREE_BASE, 0, 0, 0]);
    expect("a mapping with no rights", none, Got::BadArg(4))?;
    let read = result(sys::memory_map(grant_only, this, layout::FREE_BASE, Rights::READ));
    expect("mapping a GRANT-only capability", read, Got::Err(InsufficientRights))?;
    let write_only = made("a WRITE-only copy of it", sys::cap_derive(mem, Rights::WRITE))?;
    let rw = result(sys::memory_map(write_only, this, layout::FREE_BASE, Rights::READ | Rights::WRITE));
    expect("mapping a capability without READ", rw, Got::Err(InsufficientRights))?;
    made("deleting the memory", sys::cap_delete(mem))?;

    let grant = sys::cap_grant(this, console, Rights::WRITE);
    expect("granting a capability without GRANT", result(grant), Got::Err(InsufficientRights))?;
    expect("destroying itself", result(sys::domain_destroy(this)), Got::Err(InsufficientRights))?;
    expect("pausing itself", result(sys::domain_pause(this, true)), Got::Err(InsufficientRights))?;
    expect("pausing the console", result(sys::domain_pause(console, true)), Got::Err(WrongType))?;
    let t = u64::from(this.0);
    expect("pausing with a flag of 2", raw(102, [t, 2, 0, 0, 0, 0]), Got::BadArg(2))?;
    let share = result(sys::sched_set(this, u16::MAX, 0));
    expect("raising its own CPU share", share, Got::Err(InsufficientRights))?;

    let vcpu_irq = call(Call::VcpuInterrupt { vcpu: console, vector: 0x40 });
    expect("an interrupt on the console as a vCPU", vcpu_irq, Got::Err(WrongType))?;
    expect("an exception vector as an interrupt", raw(45, [c, 31, 0, 0, 0, 0]), Got::BadArg(2))?;
    expect("a start-up IPI with an entry", raw(41, [c, c, 0x1000, 0, 8, u64::MAX]), Got::BadArg(3))?;
    expect("a start-up IPI vector of 256", raw(41, [c, c, 0, 0, 256, u64::MAX]), Got::BadArg(5))?;
    expect("a vCPU on CPU 70000", raw(41, [c, c, 0, 0, 8, 70_000]), Got::BadArg(6))?;
    let vcpu =
        call(Call::VcpuCreate { guest: this, exit: console, entry: 0, arg: 0, sipi: Some(8), cpu: None });
    expect("a vCPU with the console as its exit endpoint", vcpu, Got::Err(WrongType))?;
    expect("binding the console", call(Call::NotificationBind { ntfn: console }), Got::Err(WrongType))?;
    let n = made("a notification", sys::notification_create(this))?;
    let mute = made("deriving it without READ", sys::cap_derive(n, Rights::WRITE))?;
    expect(
        "binding it without READ",
        call(Call::NotificationBind { ntfn: mute }),
        Got::Err(InsufficientRights),
    )?;
    expect("binding it", call(Call::NotificationBind { ntfn: n }), Got::Ok)?;
    crate::copies::run(this)
}
