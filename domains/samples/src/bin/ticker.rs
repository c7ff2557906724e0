//! `ticker`: logs `tick 1` to `tick 5`, about 10 ms apart, then exits with 0.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use user::{time, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(_: &'static StartInfo) -> u64 {
    for i in 1..=5 {
        if i > 1 {
            time::delay_ms(10);
        }
        log::info!("tick {i}");
    }
    0
}
