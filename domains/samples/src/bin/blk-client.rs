//! `blk-client`: a client of the block service (`ipc::block`, served by
//! `blk`). It asks the capacity, reads the harness's pattern at sectors
//! 0..8, writes its own at sectors 300..302, flushes and reads it back,
//! asks for sectors past the disk's end (refused `BadAddress`), and
//! closes. Exits 0 if every answer is the one owed.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::block::{pattern, Op, Request, SECTOR};
use ipc::Error;
use samples::block::Conn;
use user::StartInfo;

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    let Ok(mut c) = Conn::attach(start, "blk-client", "blk-client-ans") else {
        log::info!("blk-client: FAIL: no block service");
        return 1;
    };
    let mut ok = true;
    let mut check = |what: &str, good: bool| {
        log::info!("blk-client: {what}: {}", if good { "as owed" } else { "FAIL" });
        ok &= good;
    };
    let req = |op, tag, sector, count, data| Request { op, tag, sector, count, data };
    let got = c.call(&req(Op::Capacity, 1, 0, 0, &[]));
    check("the capacity, 2048 sectors", got.is_ok_and(|g| g == (1, Ok(2048), 0)));
    let got = c.call(&req(Op::Read, 2, 0, 8, &[]));
    let read = got.is_ok_and(|(t, r, n)| t == 2 && r == Ok(0) && n == 8 * SECTOR);
    check(
        "sectors 0..8 read: the harness's pattern",
        read && c.data(8 * SECTOR).iter().enumerate().all(|(i, &b)| b == pattern::harness(i)),
    );
    let mut data = [0u8; 2 * SECTOR];
    for (i, b) in data.iter_mut().enumerate() {
        *b = pattern::client(i);
    }
    let got = c.call(&req(Op::Write, 3, 300, 2, &data));
    check("sectors 300..302 written", got.is_ok_and(|g| g == (3, Ok(0), 0)));
    check("flushed", c.call(&req(Op::Flush, 4, 0, 0, &[])).is_ok_and(|g| g == (4, Ok(0), 0)));
    let got = c.call(&req(Op::Read, 5, 300, 2, &[]));
    check("sectors 300..302 read back", got.is_ok_and(|g| g.2 == 2 * SECTOR) && c.data(2 * SECTOR) == data);
    let past = c.call(&req(Op::Read, 6, 2047, 2, &[]));
    check("a read past the end refused", past.is_ok_and(|g| g == (6, Err(Error::BadAddress), 0)));
    let wraps = c.call(&req(Op::Write, 7, u64::MAX - 1, 2, &data));
    check("a write that wraps refused", wraps.is_ok_and(|g| g == (7, Err(Error::BadAddress), 0)));
    check("closed", c.call(&req(Op::Close, 8, 0, 0, &[])).is_ok_and(|g| g == (8, Ok(0), 0)));
    u64::from(!ok)
}
