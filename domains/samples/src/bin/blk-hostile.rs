//! `blk-hostile`: a hostile client of the block service. It sends what
//! no client should: an unknown op, a write whose data is short, a read
//! of no sectors, a message too short for a header, a write past the
//! disk's end (each answered with an error, nothing written), then moves
//! its request ring's producer index backwards: `blk` must stop serving
//! it and go on serving `blk-client`. Exits 0 if every answer is owed.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use ipc::block::{Op, Request, SECTOR};
use ipc::Error;
use samples::block::Conn;
use user::StartInfo;

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    let Ok(mut c) = Conn::attach(start, "blk-hostile", "blk-hostile-ans") else {
        log::info!("blk-hostile: FAIL: no block service");
        return 1;
    };
    let mut ok = true;
    let mut check = |what: &str, good: bool| {
        log::info!("blk-hostile: {what}: {}", if good { "as owed" } else { "FAIL" });
        ok &= good;
    };
    let mut raw = [0u8; 24 + SECTOR];
    let header = |b: &mut [u8], op: u32, tag: u32, sector: u64, count: u32| {
        b[0..4].copy_from_slice(&op.to_le_bytes());
        b[4..8].copy_from_slice(&tag.to_le_bytes());
        b[8..16].copy_from_slice(&sector.to_le_bytes());
        b[16..20].copy_from_slice(&count.to_le_bytes());
    };
    let ask = |c: &mut Conn, bytes: &[u8]| c.send(bytes).and_then(|()| c.answer());
    header(&mut raw, 99, 1, 0, 0);
    check("an unknown op refused", ask(&mut c, &raw[..24]).is_ok_and(|g| g == (1, Err(Error::Malformed), 0)));
    header(&mut raw, Op::Write as u32, 2, 500, 3);
    check(
        "a write with short data refused",
        ask(&mut c, &raw).is_ok_and(|g| g == (2, Err(Error::Malformed), 0)),
    );
    header(&mut raw, Op::Read as u32, 3, 0, 0);
    check(
        "a read of no sectors refused",
        ask(&mut c, &raw[..24]).is_ok_and(|g| g == (3, Err(Error::Malformed), 0)),
    );
    check("a message too short refused", ask(&mut c, &raw[..5]).is_ok_and(|g| g.1 == Err(Error::Malformed)));
    let data = [0xee; SECTOR];
    let past = Request { op: Op::Write, tag: 5, sector: 2048, count: 1, data: &data };
    check("a write past the end refused", c.call(&past).is_ok_and(|g| g == (5, Err(Error::BadAddress), 0)));
    // Its request ring's producer index (the region's first word), moved
    // back: the server must see it and drop this client.
    // SAFETY: the region is ours, mapped read-write, 4-aligned at its
    // start; the ring's words are only touched atomically.
    let index = unsafe { &*(c.base as *const AtomicU32) };
    index.store(index.load(Ordering::Relaxed).wrapping_sub(3), Ordering::SeqCst);
    let _ = c.ring();
    log::info!("blk-hostile: moved its producer index back");
    u64::from(!ok)
}
