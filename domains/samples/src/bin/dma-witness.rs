//! `dma-witness`: fills 256 KiB of its memory with a pattern and keeps its
//! checksum while `blk-dma` aims its device's DMA outside its own mapping;
//! when told the attack is over (`notification:dma-done`), it checks that
//! not a byte changed, says so and exits with 0 (1 if any did).

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use core::sync::atomic::{AtomicU8, Ordering};

use user::{sys, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

const BYTES: usize = 256 * 1024;
/// The witnessed memory (in its image's zero-filled data), read and
/// written only by this domain (atomics: a stray DMA write may change it
/// under it, which is what is watched for).
static MEMORY: [AtomicU8; BYTES] = [const { AtomicU8::new(0) }; BYTES];

/// FNV-1a over the memory.
fn checksum() -> u64 {
    MEMORY.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b.load(Ordering::Relaxed))).wrapping_mul(0x100_0000_01b3)
    })
}

fn main(start: &'static StartInfo) -> u64 {
    let Some(done) = start.slot("notification:dma-done") else {
        log::info!("dma-witness: FAIL: no notification:dma-done");
        return 1;
    };
    for (i, b) in MEMORY.iter().enumerate() {
        b.store((i * 7 + i / 4096) as u8, Ordering::Relaxed);
    }
    let before = checksum();
    log::info!("dma-witness: 256 KiB filled, checksum {before:#018x}");
    if sys::wait(done).is_err() {
        log::info!("dma-witness: FAIL: waiting for the attack's end");
        return 1;
    }
    let after = checksum();
    if after != before {
        log::info!("dma-witness: FAIL: its memory changed (checksum {after:#018x})");
        return 1;
    }
    log::info!("dma-witness: its memory is unchanged after the attack (checksum {after:#018x})");
    0
}
