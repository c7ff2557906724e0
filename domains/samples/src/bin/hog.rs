//! `hog`: a CPU-bound domain for the scheduling tests. It spins, never
//! yielding, until word 0 of the shared region `stop` is set (by a `judge`
//! or `pinger`), then exits with 0; after 60 s unstopped it gives up with 1.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::words::Words;
use user::{time, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

const PATIENCE_MS: u64 = 60_000;

fn main(start: &'static StartInfo) -> u64 {
    let Some(region) = start.shared("stop") else {
        log::error!("hog: FAIL no `shared:stop` region");
        return 1;
    };
    // SAFETY: mgmt maps the region read-write for our life; only `Words` touches it.
    let Some(stop) = (unsafe { Words::new(region, 1) }) else {
        log::error!("hog: FAIL the `stop` region is too small");
        return 1;
    };
    let deadline = time::deadline_ms(PATIENCE_MS);
    let (mut rounds, mut x) = (0u64, 1u64);
    while stop.get(0) == 0 {
        // Plain arithmetic, not `spin_loop`: QEMU ends a CPU's turn at every
        // PAUSE under instruction counting, and the hog would hardly run.
        for _ in 0..1000 {
            x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        rounds += 1;
        if rounds % 1024 == 0 && time::passed(deadline) {
            log::error!("hog: FAIL nobody stopped me");
            return 1;
        }
    }
    log::info!("hog: stopped after {rounds} rounds");
    0
}
