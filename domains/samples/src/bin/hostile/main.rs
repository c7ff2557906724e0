//! `hostile`: a domain that attacks the kernel through its syscalls. First
//! targeted checks that each misuse gets exactly its error; then 20,000
//! random syscalls with forged arguments, every one of which must come back
//! with success or a known error. It exits with 0 if all went as it should,
//! with 1 after logging `hostile: FAIL …` otherwise.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

mod copies;
mod random;
mod targeted;

use user::{Caps, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    let (Some(this), Some(console)) = (start.self_domain(), start.console()) else {
        log::error!("hostile: FAIL no `self` or `console` capability");
        return 1;
    };
    if let Err(failure) = targeted::run(start, this, console) {
        log::error!("hostile: FAIL {failure}");
        return 1;
    }
    log::info!("hostile: all targeted checks passed");
    match random::run(this, console) {
        Ok(errors) => {
            log::info!("hostile: {} random calls, {errors} errors, kernel alive", random::CALLS);
            0
        }
        Err(failure) => {
            log::error!("hostile: FAIL {failure}");
            1
        }
    }
}
