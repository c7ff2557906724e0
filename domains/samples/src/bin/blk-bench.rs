//! `blk-bench`: the device bench's client of the block service
//! (`bench-devices.toml`, under `-icount`: the TSC counts instructions).
//! Its first request (the capacity) waits until `blk` serves, after its
//! interrupt-path rounds. Then it reads sectors 0..8 (4 KiB) `N` times and
//! writes 4 KiB at sectors 400..408 `N` times, one request at a time,
//! each timed from its send to its answer; the instructions `blk` spent
//! waiting for its device meanwhile (word `DEVICE_WAIT` of
//! `shared:bench-stamp`, `blk`'s `serve.rs`) are taken off, so a figure
//! is the software path: this domain's request and answer through the
//! rings, the doorbells, `blk`'s decoding, bouncing and queueing, the
//! device's notification and the completion's handling. It logs
//! `bench: blk_read_4k <n>` and `bench: blk_write_4k <n>` and exits 0
//! if every answer was the one owed.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::block::bench::{DEVICE_WAIT, WORDS};
use ipc::block::{pattern, Op, Request, SECTOR};
use samples::block::Conn;
use samples::words::Words;
use samples::{Failure, OrFail};
use user::{arch, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

const N: u64 = 200;
const BYTES: usize = 8 * SECTOR;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::info!("blk-bench: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let region = start.shared("bench-stamp").or_fail("no shared:bench-stamp")?;
    // SAFETY: mgmt maps the region read-write for our life; only `Words` touches it.
    let words = unsafe { Words::new(region, WORDS) }.or_fail("shared:bench-stamp is too small")?;
    let mut c = Conn::attach(start, "blk-client", "blk-client-ans")?;
    let req = |op, tag, sector, data| Request { op, tag, sector, count: 8, data };
    let capacity = Request { op: Op::Capacity, tag: 1, sector: 0, count: 0, data: &[] };
    if c.call(&capacity).ok() != Some((1, Ok(2048), 0)) {
        return Err(Failure::new("the capacity was not the one owed"));
    }
    let mut data = [0u8; BYTES];
    for (i, b) in data.iter_mut().enumerate() {
        *b = pattern::client(i);
    }
    for (name, op, sector) in [("blk_read_4k", Op::Read, 0), ("blk_write_4k", Op::Write, 400)] {
        let payload: &[u8] = if op == Op::Write { &data } else { &[] };
        let (w0, t0) = (words.get(DEVICE_WAIT), arch::rdtsc());
        for i in 0..N {
            let tag = 2 + i as u32;
            let got = c.call(&req(op, tag, sector, payload)).or_fail("calling the block service")?;
            let owed = if op == Op::Read { BYTES } else { 0 };
            if got != (tag, Ok(0), owed) {
                return Err(Failure::new("an answer was not the one owed"));
            }
        }
        let (t, w) = (arch::rdtsc().wrapping_sub(t0), words.get(DEVICE_WAIT).wrapping_sub(w0));
        log::info!("bench: {name} {}", t.saturating_sub(w) / N);
        log::info!("blk-bench: {name}: {} per request with the device's time", t / N);
    }
    let close = Request { op: Op::Close, tag: 9999, sector: 0, count: 0, data: &[] };
    match c.call(&close).or_fail("closing")? {
        (9999, Ok(0), 0) => Ok(()),
        _ => Err(Failure::new("the close was not answered as owed")),
    }
}
