//! `handoff-a`: signals `handoff-b`, which waits on the same CPU,
//! `ROUNDS` times, each signal timed onto the timer's tick (`lead_ns` before it,
//! swept over the kernel's signal path: the tick is raised while the CPU
//! is handed over, and delivered to `handoff-b` before its first
//! instruction). After each signal it records that it went on (word
//! `WENT_ON`). Before each round it yields until `handoff-b` has finished
//! the last one (word `DONE`), so that `handoff-b` is waiting when it is
//! signalled.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::proto::handoff::{lead_ns, DONE, ROUND, ROUNDS, SENT, WENT_ON};
use samples::words::Words;
use samples::{Failure, OrFail};
use user::{arch, sys, time, Caps, StartInfo};

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
    let words = unsafe { Words::new(region, 4) }.or_fail("the `flags` region is too small")?;
    let go = start.slot("notification:go").or_fail("no `notification:go`")?;
    let per_us = (time::tsc_per_ms() / 1000).max(1);
    // The tick's period: the median of five intervals between ticks in a
    // row (the CPU is ours: `handoff-b` waits). Not one interval: a tick
    // due while the kernel is busy on this CPU (an IPI's work at the
    // system's start: mgmt's TLB shootdowns) is taken late, so one
    // interval is long and the next short by as much, and a period off by
    // a few hundred ns puts every timed signal after its tick, not before.
    let gap = per_us / 2;
    let mut ticks = [0u64; 6];
    for t in ticks.iter_mut() {
        *t = next_tick(gap);
    }
    let mut periods = [0u64; 5];
    for (p, w) in periods.iter_mut().zip(ticks.windows(2)) {
        *p = w[1] - w[0];
    }
    periods.sort_unstable();
    let period = periods[2];
    for round in 1..=ROUNDS {
        while words.get(DONE) != round - 1 {
            sys::yield_now();
        }
        let at = next_tick(gap) + period - lead_ns(round) * per_us / 1000;
        while arch::rdtsc() < at {
            core::hint::spin_loop();
        }
        words.set(ROUND, round);
        words.set(SENT, arch::rdtsc());
        sys::signal(go, 1).or_fail("signalling")?;
        words.set(WENT_ON, round);
    }
    while words.get(DONE) != ROUNDS {
        sys::yield_now();
    }
    Ok(())
}

/// Spins until the CPU is taken away for longer than `gap` TSC ticks (the
/// timer's interrupt, nothing else running here); the TSC just before.
fn next_tick(gap: u64) -> u64 {
    let mut last = arch::rdtsc();
    loop {
        let now = arch::rdtsc();
        if now - last > gap {
            return last;
        }
        last = now;
    }
}
