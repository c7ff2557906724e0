//! `blk_restart` (tests/systems/blk-restart.toml; #12, must-show 5): the
//! blk domain killed while its device has DMA in flight, then started
//! again. The harness throttles the disk (256 KiB/s: a request the device
//! has taken stays in flight for tens of milliseconds), waits for
//! `blk-restart`'s first instance to say its load runs (four 12 KiB
//! requests at once, batch after batch), and kills it over the control
//! channel. The checks: `blk-reuse`, started at boot and watching
//! `blk-restart`, took memory only after the kill and found every word of
//! it unchanged 2 s later (a device write that outlived the free would
//! have changed one: `domains/samples/src/bin/blk-reuse.rs`); any IOMMU
//! fault the device's unfinished DMA raised came after the kill and was
//! of 00:04.0 (they are logged by the kernel; none is required: a
//! function whose bus mastering the kernel turned off raises none); the
//! supervisor restarted `blk-restart` once, 4 s after the kill (after
//! `blk-reuse`'s check, which ends in 2 s); the
//! new instance set the same device up again, read the harness's
//! pattern, wrote its own, and served both clients; the image after
//! power-off holds exactly the four patterns (the load's writes among
//! them: a late write that read reused memory would have put
//! `blk-reuse`'s words there).

use std::time::Duration;

use super::expect::{count, in_order, never, says, says_prefix};
use super::{disk, kernel_says, MGMT};
use crate::cases::{Image, SystemTest};
use crate::control::Session;
use crate::emulator::{Emulator, Qemu};
use crate::judge::{Outcome, Verdict};

const BLK: &str = "blk-restart";
const REUSE: &str = "blk-reuse";
/// What the first instance says once its load runs.
const LOADING: &str = "blk: load: 4 requests of 12 KiB at once (2 reads, 2 writes at sectors 1024..1072), batch after batch, until killed";
/// The disk's throttle: the QEMU option (the first disk is `disk0`).
const THROTTLE: [&str; 2] = ["-set", "drive.disk0.throttling.bps-total=262144"];
const IOMMU_FAULT: &str = "iommu: DMA fault: device ";

pub fn case() -> SystemTest {
    let mut q = Qemu::with_control();
    q.extra.extend(THROTTLE.iter().map(|s| s.to_string()));
    SystemTest {
        name: "blk_restart",
        image: Image::System("tests/systems/blk-restart.toml"),
        emulator: Emulator::Qemu(q),
        check,
        drive: Some(drive),
        prepare: Some(disk::prepare),
    }
}

/// Kills `blk-restart` once its load runs; the system then ends by itself.
fn drive(s: &Session) -> Result<(), String> {
    s.wait_for(&format!("[{BLK}] {LOADING}"), Duration::from_secs(120))?;
    let out = s.run(&["kill", BLK])?;
    if !out.ok {
        return Err(format!("`ryokan kill {BLK}` failed: {}", out.stderr));
    }
    Ok(())
}

/// The line numbers of the kernel's IOMMU fault lines, with the lines.
fn iommu_faults(serial: &str) -> Vec<(usize, &str)> {
    serial.lines().enumerate().filter(|(_, l)| l.starts_with("[cpu") && l.contains(IOMMU_FAULT)).collect()
}

pub(super) fn check(o: &Outcome) -> Result<(), String> {
    if let Verdict::Failure { reason } = &o.verdict {
        return Err(reason.clone());
    }
    let s = &o.serial;
    says(s, MGMT, "all domains stopped: shutting down")?;
    kernel_says(s, "iommu: VT-d unit at 0xfed90000: DMA remapping on")?;
    let starts = count(s, MGMT, |m| m.starts_with(&format!("started {BLK} (domain ")));
    let &[first, second] = starts.as_slice() else {
        return Err(format!("`[mgmt] started {BLK} (domain …)` appears {} times, not 2", starts.len()));
    };
    let given =
        count(s, MGMT, |m| m.starts_with(&format!("{BLK}: device 00:04.0 (1af4:1042) given with DMA")));
    if given.len() != 2 {
        return Err(format!("the device was given to {BLK} {} times, not 2 (once each start)", given.len()));
    }
    let loads = count(s, BLK, |m| m == LOADING);
    let &[load] = loads.as_slice() else {
        return Err(format!(
            "`[{BLK}] {LOADING}` appears {} times, not once (the first instance's)",
            loads.len()
        ));
    };
    let killed = says(s, MGMT, &format!("killed {BLK} (exit code 137)"))?;
    let restarting = says(s, MGMT, &format!("restarting {BLK} in 4000 ms (restart 1 of 1)"))?;
    let gone = says_prefix(s, REUSE, &format!("{REUSE}: {BLK} is gone ("))?;
    let unchanged = says(
        s,
        REUSE,
        &format!("{REUSE}: every word of its 16384 KiB unchanged 2000 ms after {BLK}'s death"),
    )?;
    // Its exit may come after the restart on a slow host: the new
    // instance's memory is then other frames (blk-reuse holds the freed ones).
    let reuse_exit = says(s, MGMT, &format!("{REUSE} exited with code 0"))?;
    in_order(&[("blk-reuse's check", unchanged), ("blk-reuse's exit", reuse_exit)], REUSE)?;
    let patterns = |what: &str| count(s, BLK, |m| m == what);
    let reread = patterns("blk: read the harness's pattern at sectors 0..8");
    let rewrote = patterns("blk: wrote its pattern at sectors 100..108, flushed, read it back");
    let (&[r1, r2], &[_, w2]) = (reread.as_slice(), rewrote.as_slice()) else {
        return Err(format!("{BLK} did not check the patterns once in each instance"));
    };
    let served = says(s, BLK, "blk: every client closed or dropped")?;
    let done = says(s, MGMT, &format!("{BLK} exited with code 0"))?;
    in_order(
        &[
            ("its first start", first),
            ("its first check", r1),
            ("the load", load),
            ("the kill", killed),
            ("blk-reuse's taking the freed memory", gone),
            ("blk-reuse's check", unchanged),
            ("its second start", second),
            ("the second instance's read", r2),
            ("its write", w2),
            ("the service's end", served),
            ("its exit", done),
        ],
        BLK,
    )?;
    // mgmt schedules the restart after the kill and before the second
    // start; blk-reuse may take the freed memory before or after mgmt says
    // so (both follow the destruction, on different CPUs).
    in_order(
        &[("the kill", killed), ("the restart's schedule", restarting), ("its second start", second)],
        BLK,
    )?;
    for &(at, line) in &iommu_faults(s) {
        if at < killed || !line.contains("device 00:04.0 ") {
            return Err(format!("an IOMMU fault not of the killed instance's DMA: `{line}`"));
        }
    }
    for what in super::BLK_CLIENT_ANSWERS {
        let at = says(s, "blk-client", &format!("blk-client: {what}: as owed"))?;
        in_order(&[("the second start", second), (what, at)], "blk-client")?;
    }
    for what in super::BLK_HOSTILE_ANSWERS {
        says(s, "blk-hostile", &format!("blk-hostile: {what}: as owed"))?;
    }
    says(s, BLK, "blk: client blk-hostile broke its ring (PeerMisbehaved): no longer served")?;
    for who in [BLK, REUSE, "blk-client", "blk-hostile"] {
        never(s, who, |m| m.contains("FAIL"), "failure")?;
    }
    for who in ["blk-client", "blk-hostile"] {
        says(s, MGMT, &format!("{who} exited with code 0"))?;
    }
    if s.contains("faulted:") {
        return Err("a domain faulted".to_string());
    }
    disk::check_loaded(&o.work_dir)
}
