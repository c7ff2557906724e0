//! `hostile`: a domain that attacks the kernel through its syscalls. First
//! targeted checks that each misuse gets exactly its error; then a million
//! random syscalls with forged arguments, every one of which must come back
//! with success or a known error; then it asks the witness domain whether it
//! ran on meanwhile. It exits with 0 if all went as it should, with 1 after
//! logging `hostile: FAIL …` otherwise.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

mod copies;
mod guests;
mod limits;
mod random;
mod targeted;

use ipc::msg::Message;
use user::{Caps, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    let (Some(this), Some(console)) = (start.self_domain(), start.console()) else {
        log::error!("hostile: FAIL no `self` or `console` capability");
        return 1;
    };
    let parked = match targeted::run(start, this, console) {
        Ok(n) => n,
        Err(failure) => {
            log::error!("hostile: FAIL {failure}");
            return 1;
        }
    };
    if let Err(guests::Failure(what, got)) = guests::run(this) {
        log::error!("hostile: FAIL {what}: got {got:?}, want WrongType");
        return 1;
    }
    let witness = start.endpoint("witness");
    if let Err(failure) = limits::run(this, witness) {
        log::error!("hostile: FAIL {failure}");
        return 1;
    }
    log::info!("hostile: all targeted checks passed");
    let counts = match random::run(this, console, witness, start.slot("ioports"), parked) {
        Ok(c) => c,
        Err(failure) => {
            log::error!("hostile: FAIL {failure}");
            return 1;
        }
    };
    let errors: u32 = counts.by_error[1..].iter().sum();
    log::info!("hostile: by syscall (calls/ok): {}", random::ByNr(&counts.by_nr));
    log::info!("hostile: errors: {}", random::ByError(&counts.by_error));
    log::info!(
        "hostile: children exited {} times through the code page, faulted {} times",
        counts.child_exits,
        counts.child_faults
    );
    log::info!(
        "hostile: {} random calls, {} ok, {errors} errors, kernel alive",
        counts.calls,
        counts.by_error[0]
    );
    let Some(witness) = witness else {
        log::error!("hostile: FAIL no `endpoint:witness` capability");
        return 1;
    };
    match user::sys::ipc_call(witness, &Message::default()) {
        Ok((_, reply)) => {
            log::info!("hostile: the witness answered: {} ticks meanwhile", reply.words[0]);
            0
        }
        Err(e) => {
            log::error!("hostile: FAIL the witness did not answer: {e:?}");
            1
        }
    }
}
