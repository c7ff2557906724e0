//! `blk-reuse`: the witness of `blk_restart` (#12, must-show 5). It holds
//! a capability to `blk-restart` and looks at it every millisecond; once
//! the kernel has destroyed that domain (its capability stale: killed
//! while its device had DMA in flight, `domains/blk/src/load.rs`), it
//! takes 16 MiB of memory at once in objects of 32 pages, the size of
//! `blk`'s DMA memory: the frame allocator gives the lowest free runs
//! first, among them the frames just freed. It fills every word with a
//! value of its own address, waits 2 s (the throttled disk finishes any
//! request it had taken within 0.2 s), and checks every word.
//!
//! How it fails: were the device's DMA to outlive the free, a read the
//! device finished late would write disk data (the harness's pattern, or
//! zeros) into those frames after they were filled, and a word would be
//! found changed: `blk-reuse: FAIL: …` with where and what, exit 1. (A
//! write the device finished late would read this domain's words and put
//! them on the disk, where the harness's image check finds them.) It
//! then gives the memory back by exiting, before `blk-restart`'s restart.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::Rights;
use user::{layout, sys, time, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

const WATCHED: &str = "domain:blk-restart";
const OBJECTS: u64 = 128;
const PAGES: u64 = 32;
const OBJECT_BYTES: u64 = PAGES * 4096;
const VA: u64 = layout::FREE_BASE;
/// How long it waits for the death at most, and after it before checking.
const DEATH_WITHIN_MS: u64 = 300_000;
const SETTLE_MS: u64 = 2000;

/// The value of the word at `va`: its own, and never a disk's (nor 0).
fn word(va: u64) -> u64 {
    va ^ 0x9e37_79b9_7f4a_7c15
}

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::info!("blk-reuse: FAIL: {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), &'static str> {
    let me = start.slot("self").ok_or("no self capability")?;
    let watched = start.slot(WATCHED).ok_or("no domain:blk-restart")?;
    let deadline = time::deadline_ms(DEATH_WITHIN_MS);
    while sys::domain_info(watched).is_ok() {
        if time::passed(deadline) {
            return Err("blk-restart was never killed");
        }
        time::delay_ms(1);
    }
    let free = sys::stats().map_or(0, |s| s.free_frames);
    for k in 0..OBJECTS {
        let m = sys::memory_create(me, PAGES).map_err(|_| "no memory object")?;
        let base = VA + k * OBJECT_BYTES;
        sys::memory_map(m, me, base, Rights::READ | Rights::WRITE).map_err(|_| "mapping its memory")?;
        for va in (base..base + OBJECT_BYTES).step_by(8) {
            // SAFETY: `va` lies in the object just mapped read-write here,
            // 8-aligned; only this loop and the check below touch it.
            unsafe { core::ptr::write_volatile(va as *mut u64, word(va)) };
        }
    }
    log::info!(
        "blk-reuse: blk-restart is gone ({free} frames free): took {} KiB in {OBJECTS} objects of {PAGES} pages, filled",
        OBJECTS * OBJECT_BYTES / 1024
    );
    time::delay_ms(SETTLE_MS);
    for va in (VA..VA + OBJECTS * OBJECT_BYTES).step_by(8) {
        // SAFETY: as above: mapped here, 8-aligned, filled by this domain.
        let got = unsafe { core::ptr::read_volatile(va as *const u64) };
        if got != word(va) {
            log::info!(
                "blk-reuse: FAIL: the word at object {} offset {:#x} holds {got:#018x}, not {:#018x}",
                (va - VA) / OBJECT_BYTES,
                (va - VA) % OBJECT_BYTES,
                word(va)
            );
            return Err("memory freed by blk-restart's death was written after it was reused");
        }
    }
    log::info!(
        "blk-reuse: every word of its {} KiB unchanged {SETTLE_MS} ms after blk-restart's death",
        OBJECTS * OBJECT_BYTES / 1024
    );
    Ok(())
}
