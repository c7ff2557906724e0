//! `handoff-a`: signals `handoff-b`, which waits on the same CPU, 100
//! times; after each signal it records that it went on (word `WENT_ON`).
//! Before each round it yields until `handoff-b` has finished the last one
//! (word `DONE`), so that `handoff-b` is waiting when it is signalled.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::proto::handoff::{DONE, ROUND, ROUNDS, WENT_ON};
use samples::words::Words;
use samples::{Failure, OrFail};
use user::{sys, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => {
            log::info!("handoff-a: {ROUNDS} signals sent");
            0
        }
        Err(why) => {
            log::error!("handoff-a: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let region = start.shared("flags").or_fail("no `shared:flags` region")?;
    // SAFETY: mgmt maps the region read-write for our life; only `Words` touches it.
    let words = unsafe { Words::new(region, 3) }.or_fail("the `flags` region is too small")?;
    let go = start.slot("notification:go").or_fail("no `notification:go`")?;
    for round in 1..=ROUNDS {
        while words.get(DONE) != round - 1 {
            sys::yield_now();
        }
        words.set(ROUND, round);
        sys::signal(go, 1).or_fail("signalling")?;
        words.set(WENT_ON, round);
    }
    while words.get(DONE) != ROUNDS {
        sys::yield_now();
    }
    Ok(())
}
