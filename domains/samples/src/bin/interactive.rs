//! `interactive`: a latency-sensitive domain sharing its CPU with a hog.
//! It waits on the notification `bell` 50 times; each time, the TSC at
//! wake-up minus the one `pinger` wrote into the shared region `stamp`
//! just before signalling is its wake-up latency; it acknowledges each
//! wake-up by word and on the notification `ack`. It logs
//! `interactive: max wake latency N us over 50 wake-ups` and exits with 0
//! if the maximum is below one time slice (1 ms, the 1 kHz tick), else 1.
//! Run as `interactive-busy`, it also works about 0.3 ms after each
//! wake-up (`tests/systems/sched-latency-busy.toml`; some 7 % of the CPU,
//! far below its weight's share), which makes it burn credit: a scheduler
//! that tops up only queued threads' credit lets such a thread fall behind
//! the hog, and its wake-ups wait for ticks.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::proto::wakeup::{ACK, READY, ROUND, STAMP, WAKEUPS};
use samples::words::Words;
use samples::{Failure, OrFail};
use user::{arch, sys, time, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

/// One time slice.
const SLICE_US: u64 = 1000;
/// Rounds of arithmetic after each wake-up as `interactive-busy` (about
/// 330,000 instructions).
const BUSY_ROUNDS: u64 = 100_000;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::error!("interactive: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let region = start.shared("stamp").or_fail("no `shared:stamp` region")?;
    // SAFETY: mgmt maps the region read-write for our life; only `Words` touches it.
    let words = unsafe { Words::new(region, 4) }.or_fail("the `stamp` region is too small")?;
    let bell = start.slot("notification:bell").or_fail("no `notification:bell`")?;
    let ack = start.slot("notification:ack").or_fail("no `notification:ack`")?;
    let busy = if start.name() == "interactive-busy" { BUSY_ROUNDS } else { 0 };
    let (mut max, mut sum, mut x) = (0u64, 0u64, 1u64);
    words.set(READY, 1);
    for round in 1..=WAKEUPS {
        sys::wait(bell).or_fail("waiting")?;
        let now = arch::rdtsc();
        if words.get(ROUND) != round {
            return Err(Failure::new("woken out of turn"));
        }
        let latency = now.saturating_sub(words.get(STAMP));
        max = max.max(latency);
        sum += latency;
        for _ in 0..busy {
            x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        words.set(ACK, round);
        sys::signal(ack, 1).or_fail("acknowledging")?;
    }
    let us = |ticks: u64| ticks.saturating_mul(1000) / time::tsc_per_ms();
    log::info!("interactive: max wake latency {} us over {WAKEUPS} wake-ups", us(max));
    log::info!("interactive: mean wake latency {} us", us(sum / WAKEUPS));
    if us(max) >= SLICE_US {
        return Err(Failure::new("a wake-up took a time slice or more"));
    }
    Ok(())
}
