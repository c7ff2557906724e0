//! `handoff-b`: waits on `notification:go`, which `handoff-a` on the same
//! CPU signals, and counts the wake-ups that ran before `handoff-a` went on
//! past its signal (the hand-over). After each it works 200 us, so that
//! its credit falls below the signaller's: it runs at once all the same.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::proto::handoff::{DONE, ROUND, ROUNDS, WENT_ON};
use samples::words::Words;
use samples::{Failure, OrFail};
use user::{arch, sys, time, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(first) => {
            log::info!("handoff-b: {first} of {ROUNDS} wake-ups ran before the signaller went on");
            0
        }
        Err(why) => {
            log::error!("handoff-b: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<u64, Failure> {
    let region = start.shared("flags").or_fail("no `shared:flags` region")?;
    // SAFETY: mgmt maps the region read-write for our life; only `Words` touches it.
    let words = unsafe { Words::new(region, 3) }.or_fail("the `flags` region is too small")?;
    let go = start.slot("notification:go").or_fail("no `notification:go`")?;
    let mut first = 0;
    for round in 1..=ROUNDS {
        sys::wait(go).or_fail("waiting")?;
        if words.get(ROUND) != round {
            return Err(Failure::new("woken out of turn"));
        }
        if words.get(WENT_ON) < round {
            first += 1;
        }
        let until = arch::rdtsc() + time::tsc_per_ms() / 5;
        while arch::rdtsc() < until {
            core::hint::spin_loop();
        }
        words.set(DONE, round);
    }
    Ok(first)
}
