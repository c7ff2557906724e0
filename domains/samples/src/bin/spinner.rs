//! `spinner`: spins forever, never yielding, and says nothing: a CPU-bound
//! load that lasts as long as the system (the control tests measure its CPU
//! time while they pause it, resume it and change its weight).

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use user::StartInfo;

user::entry!(main, heap_kib = 0);

fn main(_: &'static StartInfo) -> u64 {
    let mut x = 1u64;
    loop {
        // Plain arithmetic, not `spin_loop` (see `hog`).
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        core::hint::black_box(x);
    }
}
