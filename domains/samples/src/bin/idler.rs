//! `idler`: says it started, then waits for good on a notification nobody
//! signals: a domain that lasts as long as the system and costs no CPU (the
//! control tests kill, restart and destroy it).

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use user::{sys, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    let Some(this) = start.self_domain() else { return 1 };
    log::info!("idler: up (generation {})", start.generation);
    let Ok(n) = sys::notification_create(this) else { return 1 };
    loop {
        if sys::wait(n).is_err() {
            return 1;
        }
    }
}
