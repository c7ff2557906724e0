//! `handoff-b`: waits `ROUNDS` times on `notification:go`, which `handoff-a` on the same
//! CPU signals, and counts the wake-ups that ran before `handoff-a` went on
//! past its signal (the hand-over), and those that met the timer's tick
//! (`handoff-a` times its signals so after the `QUIET` first, the tick
//! raised in the hand-over: the wake-up comes `MET_TICK_NS` later than
//! those of the quiet rounds).
//! After each it works 2.5 ms, so that its credit falls below the
//! signaller's: it runs before the signaller all the same.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::proto::handoff::{DONE, MET_TICK_NS, QUIET, ROUND, ROUNDS, SENT, WENT_ON};
use samples::words::Words;
use samples::{Failure, OrFail};
use user::{arch, sys, time, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok((first, met)) => {
            let timed = ROUNDS - QUIET;
            log::info!(
                "handoff-b: {first} of {ROUNDS} wake-ups ran before the signaller went on, \
                 {met} of {timed} timed onto the tick met it"
            );
            0
        }
        Err(why) => {
            log::error!("handoff-b: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(u64, u64), Failure> {
    let region = start.shared("flags").or_fail("no `shared:flags` region")?;
    // SAFETY: mgmt maps the region read-write for our life; only `Words` touches it.
    let words = unsafe { Words::new(region, 4) }.or_fail("the `flags` region is too small")?;
    let go = start.slot("notification:go").or_fail("no `notification:go`")?;
    let extra = time::tsc_per_ms() * MET_TICK_NS / 1_000_000;
    let (mut first, mut met, mut quiet) = (0, 0, 0);
    for round in 1..=ROUNDS {
        sys::wait(go).or_fail("waiting")?;
        let woke = arch::rdtsc();
        if words.get(ROUND) != round {
            return Err(Failure::new("woken out of turn"));
        }
        if words.get(WENT_ON) < round {
            first += 1;
        }
        let latency = woke.saturating_sub(words.get(SENT));
        if round <= QUIET {
            quiet = quiet.max(latency);
        } else if latency > quiet + extra {
            met += 1;
        }
        let until = arch::rdtsc() + time::tsc_per_ms() * 5 / 2;
        let mut x = round;
        while arch::rdtsc() < until {
            // The TSC read seldom and plain arithmetic, not `spin_loop`:
            // under instruction counting QEMU ends its turn at each read
            // and each PAUSE, and a loop of them runs slowly.
            for _ in 0..1000 {
                x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        words.set(DONE, round);
    }
    Ok((first, met))
}
