//! `witness`: ticks every millisecond (a timer on its bound notification)
//! while it waits for one call on `endpoint:witness`; answers with the count
//! of ticks, logs it and exits with 0. It shows that a domain next to
//! `hostile` ran on through all of `hostile`'s calls and still serves.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::msg::Message;
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
