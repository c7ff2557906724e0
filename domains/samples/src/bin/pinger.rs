//! `pinger`: wakes `interactive` 50 times. Each time it waits a few
//! milliseconds (so that the hog beside `interactive` runs meanwhile, at a
//! different point of its credit each time), writes the TSC into the
//! shared region `stamp` and signals the notification `bell`, then sleeps
//! on the notification `ack` until `interactive` acknowledges (so that,
//! under instruction counting, nothing but the wake-up runs meanwhile). At
//! the end it stops the hog through word 0 of the shared region `stop`.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::proto::wakeup::{ACK, READY, ROUND, STAMP, WAKEUPS};
use samples::words::Words;
use samples::{Failure, OrFail};
use user::{arch, sys, time, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

const PATIENCE_MS: u64 = 10_000;

fn main(start: &'static StartInfo) -> u64 {
    let Some(stop) = start.shared("stop").and_then(|r| {
        // SAFETY: mgmt maps the region read-write for our life; only `Words` touches it.
        unsafe { Words::new(r, 1) }
    }) else {
        log::error!("pinger: FAIL no `shared:stop` region");
        return 1;
    };
    let result = run(start);
    stop.set(0, 1);
    match result {
        Ok(()) => {
            log::info!("pinger: {WAKEUPS} wake-ups sent");
            0
        }
        Err(why) => {
            log::error!("pinger: FAIL {why}");
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
    words.wait_until(READY, PATIENCE_MS, |r| r != 0).or_fail("interactive did not start")?;
    for round in 1..=WAKEUPS {
        // 2 to 8 ms: the hog's credit is at a different point each time.
        time::delay_ms(2 + round * 5 % 7);
        words.set(ROUND, round);
        words.set(STAMP, arch::rdtsc());
        sys::signal(bell, 1).or_fail("signalling")?;
        sys::wait(ack).or_fail("waiting for the acknowledgement")?;
        if words.get(ACK) != round {
            return Err(Failure::new("acknowledged out of turn"));
        }
    }
    Ok(())
}
