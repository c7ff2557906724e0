//! Misuses of capability copies that need a second thread: a client that
//! tries to take another badge, and a memory capability sent after a
//! revocation. The second thread (the "client") runs in this domain and
//! calls this thread (the "server") with what `SCRIPT` says.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

use ipc::msg::{Message, NO_CAP, WORDS};
use ipc::{CapSlot, Error, ObjectType, Rights};
use user::{layout, sys};

use crate::targeted::{expect, made, result, Failure, Got};

/// What the client calls with next: the endpoint slot (low 32 bits) and
/// the capability to send (high 32 bits; `NO_CAP` as u32 for none). The
/// server sets it before each reply; the client reads it before each call.
static SCRIPT: AtomicU64 = AtomicU64::new(u64::MAX);
/// The client stops calling: it waits on a notification nobody signals.
const PARK: u64 = u64::MAX;

const STACK_BYTES: usize = 16 * 1024;

/// The client thread's stack.
#[repr(C, align(16))]
struct Stack(UnsafeCell<[u8; STACK_BYTES]>);

// SAFETY: only the client thread uses the stack, through its stack pointer.
unsafe impl Sync for Stack {}

static STACK: Stack = Stack(UnsafeCell::new([0; STACK_BYTES]));

fn stack_top() -> u64 {
    STACK.0.get() as u64 + STACK_BYTES as u64
}

/// Where the client starts: the kernel starts a thread with rsp = the
/// (16-byte aligned) stack given, not as a call would leave it, so the
/// client proper is called from here, on the same stack, as the ABI wants.
extern "C" fn client_start(park: u64) -> ! {
    // SAFETY: the top of `STACK`, 16-byte aligned, used by this thread alone.
    unsafe { user::arch::call_on_stack(stack_top(), client, park as *mut u8) }
}

/// The client: calls as `SCRIPT` says, forever. It touches nothing but its
/// stack and `SCRIPT`, and makes no call that logs.
extern "C" fn client(park: *mut u8) -> ! {
    let park = park as u64;
    loop {
        let s = SCRIPT.load(Ordering::Acquire);
        if s == PARK {
            // `park` is a notification no one signals, but the random calls
            // that follow may: they may wait on it too or bind it (this
            // wait is then refused with `Busy`), or signal it.
            let _ = sys::wait(CapSlot(park as u32));
            sys::yield_now();
            continue;
        }
        let cap = Some((s >> 32) as u32).filter(|&c| u64::from(c) != NO_CAP & 0xffff_ffff).map(CapSlot);
        let m = Message { label: 1, words: [0; WORDS], cap };
        if sys::ipc_call(CapSlot(s as u32), &m).is_err() {
            sys::yield_now();
        }
    }
}

fn script(ep: CapSlot, cap: Option<CapSlot>) -> u64 {
    let cap = cap.map_or(NO_CAP & 0xffff_ffff, |c| u64::from(c.0));
    (cap << 32) | u64::from(ep.0)
}

/// Returns the notification the client waits on from now on (the random
/// calls check their rule for `Wait` beside it).
pub fn run(this: CapSlot) -> Result<CapSlot, Failure> {
    use Error::*;
    // The server's endpoint (made here: it holds CONTROL), a client's copy
    // badged 7, and an unbadged client copy without CONTROL.
    let ep = made("an endpoint", sys::endpoint_create(this))?;
    let badged = made("a copy badged 7", sys::cap_mint(ep, Rights::WRITE | Rights::GRANT, 7))?;
    let info = made("its rights", sys::cap_info(badged))?;
    let rights = Got::Value(u64::from(info.rights.bits()));
    expect(
        "a badged copy's rights (no CONTROL)",
        rights,
        Got::Value(u64::from((Rights::WRITE | Rights::GRANT).bits())),
    )?;
    let plain = made("a client's copy", sys::cap_derive(ep, Rights::WRITE | Rights::GRANT))?;
    expect(
        "re-badging a badged copy",
        result(sys::cap_mint(badged, Rights::WRITE, 8)),
        Got::Err(InsufficientRights),
    )?;
    expect(
        "badging without CONTROL",
        result(sys::cap_mint(plain, Rights::WRITE, 8)),
        Got::Err(InsufficientRights),
    )?;
    let derived = made("a copy of the badged copy", sys::cap_derive(badged, Rights::WRITE))?;
    expect(
        "re-badging a copy of it",
        result(sys::cap_mint(derived, Rights::WRITE, 8)),
        Got::Err(InsufficientRights),
    )?;
    expect("badge 0", result(sys::cap_mint(ep, Rights::WRITE, 0)), Got::Err(InvalidArgument))?;

    // A memory object whose grants were revoked: what is sent now must
    // arrive current, not stamped with the epoch of the original.
    let mem = made("one page of memory", sys::memory_create(this, 1))?;
    let old = made("a copy of it", sys::cap_derive(mem, Rights::READ | Rights::GRANT))?;
    made("revoking its copies", sys::cap_revoke(mem))?;
    expect("the revoked copy", result(sys::cap_info(old)), Got::Err(StaleCapability))?;

    let park = made("the client's parking notification", sys::notification_create(this))?;
    SCRIPT.store(script(badged, None), Ordering::Release);
    // SAFETY: `client` runs on its own stack and shares only `SCRIPT`.
    let thread = unsafe {
        sys::thread_create(this, client_start as *const () as u64, stack_top(), u64::from(park.0), None)
    };
    made("the client thread", thread)?;

    // 1. The client calls with its badged copy: the server sees badge 7.
    let (badge, _) = made("receiving the client's call", sys::recv(ep))?;
    expect("the badge the server sees", Got::Value(badge), Got::Value(7))?;

    // 2. The client sends the memory capability after the revocation.
    SCRIPT.store(script(badged, Some(mem)), Ordering::Release);
    let reply = Message { label: 0, words: [0; WORDS], cap: None };
    let (badge, m) = made("receiving the capability", sys::reply_recv(ep, &reply))?;
    expect("the badge the server sees again", Got::Value(badge), Got::Value(7))?;
    let sent = m.cap.ok_or(Error::InvalidCapability);
    let sent = made("the memory capability sent after a revocation", sent)?;
    let info = made("the received capability is current", sys::cap_info(sent))?;
    let rights = Rights::READ | Rights::WRITE | Rights::EXEC | Rights::GRANT;
    expect(
        "what arrived",
        Got::Value(info.kind.map_or(0, |k| k as u64)),
        Got::Value(ObjectType::Memory as u64),
    )?;
    expect("its rights", Got::Value(u64::from(info.rights.bits())), Got::Value(u64::from(rights.bits())))?;
    let va = layout::FREE_BASE + 0x10_0000;
    expect(
        "mapping the received capability",
        result(sys::memory_map(sent, this, va, Rights::READ)),
        Got::Ok,
    )?;
    // SAFETY: nothing of this domain lives at `va`, just mapped.
    expect("unmapping it", result(unsafe { sys::memory_unmap(sent, this, va) }), Got::Ok)?;

    // Done: the client parks (the reply lets it read the new script).
    SCRIPT.store(PARK, Ordering::Release);
    made("the last reply", sys::reply(&reply))?;
    Ok(park)
}
