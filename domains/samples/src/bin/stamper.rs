//! `stamper`: the device bench's clock on CPU 0 (`bench-devices.toml`).
//! It writes the TSC into word `STAMP` of `shared:bench-stamp` again and
//! again, so that the last value before an interrupt took the CPU from it
//! says (within one turn of its loop, a few instructions) when the
//! interrupt came; `blk`, woken by the interrupt, reads it. It exits 0
//! once word `STOP` is set.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::block::bench::{STAMP, STOP, WORDS};
use samples::words::Words;
use user::{arch, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    let Some(region) = start.shared("bench-stamp") else {
        log::info!("stamper: FAIL: no shared:bench-stamp");
        return 1;
    };
    // SAFETY: mgmt maps the region read-write for our life; only `Words` touches it.
    let Some(words) = (unsafe { Words::new(region, WORDS) }) else {
        log::info!("stamper: FAIL: shared:bench-stamp is too small");
        return 1;
    };
    while words.get(STOP) == 0 {
        words.set(STAMP, arch::rdtsc());
    }
    0
}
