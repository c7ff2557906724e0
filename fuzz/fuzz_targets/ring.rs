//! Fuzzes `ipc::ring`: the input is a ring shape, a start index and a list of
//! operations (honest pushes, pops and sleeps, and a hostile peer's writes to
//! the shared region), run by the same driver as the property tests in
//! `ipc/tests/common`, which asserts no panic, no access outside the region,
//! and that every popped message is what the honest producer wrote unless
//! the peer wrote over it (in which case it is merely in bounds), or the call
//! said `PeerMisbehaved`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../ipc/tests/common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (layout, start, ops) = common::decode(data);
    common::run(layout, start, &ops);
});
