//! `judge`: measures how the scheduler shares CPU 1, by the CPU time the
//! kernel reports (`DomainInfo`), not by wall-clock progress, which means
//! little in an emulator. With `domain:hog-a` and `domain:hog-b` it checks
//! that their weights split the CPU in their ratio (±10 %); with
//! `domain:capped` that a capped domain alone on its CPU gets its cap (at
//! most 2 points more, and more than 60 % of it). It then stops the hogs
//! through word 0 of the shared region `stop`, and exits with 0 if the
//! share was right, else 1.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::CapSlot;
use samples::sched::{cpu_use, wait_started};
use samples::words::{fixed, Words};
use samples::{Failure, OrFail};
use user::{arch, time, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

/// How long the measured domains may take to start.
const PATIENCE_MS: u64 = 10_000;
/// Running time before the window, so that start-up does not count.
const WARMUP_MS: u64 = 200;
/// The windows: many credit resets (10 ms) for weights, whole cap periods
/// (100 ms) for the cap.
const WEIGHTS_WINDOW_MS: u64 = 1500;
const CAP_WINDOW_MS: u64 = 2000;

fn main(start: &'static StartInfo) -> u64 {
    let Some(stop) = start.shared("stop").and_then(|r| {
        // SAFETY: mgmt maps the region read-write for our life; only `Words` touches it.
        unsafe { Words::new(r, 1) }
    }) else {
        log::error!("judge: FAIL no `shared:stop` region");
        return 1;
    };
    let hogs = (start.slot("domain:hog-a"), start.slot("domain:hog-b"));
    let verdict = match (hogs, start.slot("domain:capped")) {
        ((Some(a), Some(b)), _) => weights(a, b),
        (_, Some(c)) => cap(c),
        _ => Err(Failure::new("neither `domain:hog-a` and `domain:hog-b` nor `domain:capped`")),
    };
    stop.set(0, 1);
    match verdict {
        Ok(()) => 0,
        Err(why) => {
            log::error!("judge: FAIL {why}");
            1
        }
    }
}

fn started(domain: CapSlot) -> Result<(), Failure> {
    if !wait_started(domain, PATIENCE_MS).or_fail("reading a domain's CPU time")? {
        return Err(Failure::new("a measured domain never ran"));
    }
    Ok(())
}

fn weights(a: CapSlot, b: CapSlot) -> Result<(), Failure> {
    started(a)?;
    started(b)?;
    time::delay_ms(WARMUP_MS);
    let (a0, b0) = (cpu_use(a).or_fail("reading hog-a")?, cpu_use(b).or_fail("reading hog-b")?);
    time::delay_ms(WEIGHTS_WINDOW_MS);
    let (a1, b1) = (cpu_use(a).or_fail("reading hog-a")?, cpu_use(b).or_fail("reading hog-b")?);
    let (da, db) = (a1.cpu_us - a0.cpu_us, b1.cpu_us - b0.cpu_us);
    log::info!("judge: hog-a ran {da} us, hog-b {db} us in a {WEIGHTS_WINDOW_MS} ms window");
    if da == 0 || db == 0 {
        return Err(Failure::new("a hog got no CPU time at all"));
    }
    let (whole, hundredths) = fixed(da, db, 2);
    log::info!("judge: weights {}:{} gave cpu time ratio {whole}.{hundredths:02}", a1.weight, b1.weight);
    let (got, want) = (whole * 100 + hundredths, a1.weight * 100 / b1.weight.max(1));
    if got.abs_diff(want) > want / 10 {
        return Err(Failure::new("the CPU time ratio is more than 10 % off the weights' ratio"));
    }
    Ok(())
}

fn cap(c: CapSlot) -> Result<(), Failure> {
    started(c)?;
    time::delay_ms(WARMUP_MS);
    let (c0, t0) = (cpu_use(c).or_fail("reading capped")?, arch::rdtsc());
    time::delay_ms(CAP_WINDOW_MS);
    let (c1, t1) = (cpu_use(c).or_fail("reading capped")?, arch::rdtsc());
    let wall_us = t1.wrapping_sub(t0).saturating_mul(1000) / time::tsc_per_ms();
    let used = c1.cpu_us - c0.cpu_us;
    let (whole, tenths) = fixed(used * 100, wall_us, 1);
    log::info!("judge: capped domain used {whole}.{tenths}% of a cpu");
    log::info!("judge: cap {}%: {used} us of CPU time in {wall_us} us", c1.cap_percent);
    let permille = whole * 10 + tenths;
    if c1.cap_percent == 0 {
        return Err(Failure::new("the domain has no cap"));
    }
    if permille > (c1.cap_percent + 2) * 10 {
        return Err(Failure::new("the capped domain got more than its cap"));
    }
    if permille * 10 <= c1.cap_percent * 60 {
        return Err(Failure::new("the capped domain got less than 60 % of its cap"));
    }
    Ok(())
}
