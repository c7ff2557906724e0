//! `hello`: the smallest domain. Logs one line and exits with 0.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use user::StartInfo;

user::entry!(main, heap_kib = 0);

fn main(_: &'static StartInfo) -> u64 {
    log::info!("hello from a native domain");
    0
}
