//! `witness`: ticks every millisecond (a timer on its bound notification)
//! while it waits for one call on `endpoint:witness`; answers with the count
//! of ticks, logs it and exits with 0. It shows that a domain next to
//! `hostile` ran on through all of `hostile`'s calls and still serves.
//! Before that, a call labelled `proto::MAKE` has it make one object of
//! each kind `hostile` took its share of, which must succeed: another
//! account still finds room.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::msg::Message;
use ipc::syscall::Call;
use ipc::{CapSlot, Error};
use samples::proto;
use user::sys::{self, Incoming};
use user::{Caps, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    match serve(start) {
        Ok(_) => 0,
        Err(e) => {
            log::error!("witness: FAIL {e:?}");
            1
        }
    }
}

fn serve(start: &StartInfo) -> Result<(), ipc::Error> {
    let (this, ep) =
        start.self_domain().zip(start.endpoint("witness")).ok_or(ipc::Error::InvalidCapability)?;
    let tick = sys::notification_create(this)?;
    sys::notification_bind(tick)?;
    sys::timer_set(tick, 1, 1_000, 1_000)?;
    let mut ticks = 0u64;
    loop {
        match sys::recv_any(ep)? {
            Incoming::Notified(_) => ticks += 1,
            Incoming::Call { msg, .. } if msg.label == proto::MAKE => {
                let mut m = Message::default();
                m.words[..4].copy_from_slice(&make_one(tick));
                sys::reply(&m)?;
            }
            Incoming::Call { .. } => {
                // Said before the reply: `hostile` exits once it has it.
                log::info!("witness: answered after {ticks} ticks");
                let mut m = Message::default();
                m.words[0] = ticks;
                sys::reply(&m)?;
                return Ok(());
            }
        }
    }
}

/// Makes a guest, a VirqLine and a notification in it and a timer on
/// `tick`, then undoes them: the error codes (0: made) of [guest, VirqLine,
/// notification, timer].
fn make_one(tick: CapSlot) -> [u64; 4] {
    let code = |r: Result<(), Error>| r.err().map_or(0, Error::code);
    // Bit 2, due in 10 s: cancelled at once, it never ticks.
    let timer = code(sys::timer_set(tick, 2, 10_000_000, 0).and_then(|()| sys::timer_set(tick, 2, 0, 0)));
    let (guest, _) = match sys::guest_create(16) {
        Ok(g) => g,
        Err(e) => return [e.code(), e.code(), e.code(), timer],
    };
    // SAFETY: makes a capability; nothing runs.
    let virq = unsafe { sys::syscall(&Call::VirqCreate { guest, vector: 0x20 }) };
    let ntfn = sys::notification_create(guest).map(drop);
    // Its objects go with it.
    let gone = sys::domain_destroy(guest);
    [code(gone), code(virq.map(drop).map_err(|(e, _)| e)), code(ntfn), timer]
}
