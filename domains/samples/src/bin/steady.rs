//! `steady`: 20 ticks about 5 ms apart, then exits with 0; it shows that a
//! domain runs on undisturbed while others fault next to it.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use user::{time, StartInfo};

user::entry!(main, heap_kib = 0);

const TICKS: u32 = 20;

fn main(_: &'static StartInfo) -> u64 {
    for i in 1..=TICKS {
        if i > 1 {
            time::delay_ms(5);
        }
        log::info!("steady: tick {i}");
    }
    log::info!("steady: done after {TICKS} ticks");
    0
}
