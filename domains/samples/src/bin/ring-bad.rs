//! `ring-bad`: a hostile producer. It sends 100 good messages to
//! `ring-victim` through the ring in the shared region `ring-bad`, waits
//! until they are taken, then moves the producer index 1000 ahead (far
//! beyond the ring's capacity) and rings the victim's doorbell. The victim
//! must notice and carry on; this domain exits with 0.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use ipc::ring::Producer;
use samples::link::{self, Bells, SMALL};
use samples::{Failure, OrFail};
use user::{sys, time, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

/// Good messages before the corruption.
const GOOD: u32 = 100;
/// How far the producer index jumps.
const JUMP: u32 = 1000;
/// Byte offsets of the indices in the ring header (see `ipc::ring`).
const PRODUCER_INDEX: u64 = 0;
const CONSUMER_INDEX: u64 = 64;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::error!("ring-bad: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let shared = start.shared("ring-bad").or_fail("no `shared:ring-bad` region")?;
    // SAFETY: mgmt maps the region read-write for our life; besides the
    // ring, only the atomic header accesses below touch it.
    let region = unsafe { link::region(shared) }.or_fail("the ring region")?;
    let bells = Bells {
        mine: start.slot("notification:bad-space").or_fail("no `notification:bad-space`")?,
        peer: start.slot("notification:bad-data").or_fail("no `notification:bad-data`")?,
    };
    let header = |offset: u64| {
        // SAFETY: the header's first 128 bytes are mapped read-write (the
        // ring checked the region's size), 4-byte aligned, and only ever
        // accessed atomically.
        unsafe { AtomicU32::from_ptr((shared.va + offset) as *mut u32) }
    };
    let mut tx = Producer::new(region, SMALL).or_fail("attaching to the ring")?;
    for i in 0..GOOD {
        link::send(&mut tx, bells, &[i as u8; 64]).or_fail("sending")?;
    }
    let deadline = time::deadline_ms(10_000);
    while header(CONSUMER_INDEX).load(Ordering::Acquire) != GOOD {
        if time::passed(deadline) {
            return Err(Failure::new("the victim did not take the good messages"));
        }
        sys::yield_now();
    }
    header(PRODUCER_INDEX).store(GOOD + JUMP, Ordering::Release);
    sys::signal(bells.peer, 1).or_fail("ringing the victim")?;
    log::info!(
        "ring-bad: sent {GOOD} messages, then moved the producer index from {GOOD} to {}",
        GOOD + JUMP
    );
    Ok(())
}
