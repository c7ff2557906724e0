//! `bench-srv`: the far side of `bench`'s measurements, one instance per
//! CPU. On its endpoint it answers `PING` (word plus one) and `DONE`
//! (then exits); `BELLS n`: answers, then n times waits on its doorbell
//! `notification:up…` and rings `notification:down…`, summing the TSC at
//! each wake-up minus the stamp `bench` wrote just before signalling;
//! `REPORT` answers with that sum; `RING n`: attaches as consumer of the
//! ring in `shared:bring`, answers, and takes n messages.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::ring::Consumer;
use samples::link::{self, Bells, SMALL};
use samples::proto::{
    self, BELLS, BENCH_STAMP_OFFSET as STAMP_OFFSET, DONE, PING, PONG, REFUSED, REPORT, RING,
};
use samples::words::{first_cap, Words};
use samples::{Failure, OrFail};
use user::{arch, sys, Caps, SharedRegion, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    match serve(start) {
        Ok(()) => 0,
        Err(why) => {
            log::error!("bench-srv: FAIL {why}");
            1
        }
    }
}

fn serve(start: &StartInfo) -> Result<(), Failure> {
    let ep = first_cap(start, "endpoint:").or_fail("no `endpoint:` capability")?;
    let bells = Bells {
        mine: first_cap(start, "notification:up").or_fail("no `notification:up…`")?,
        peer: first_cap(start, "notification:down").or_fail("no `notification:down…`")?,
    };
    let bring = start.shared("bring").or_fail("no `shared:bring` region")?;
    let stamp =
        SharedRegion { va: bring.va + STAMP_OFFSET, len: bring.len.saturating_sub(STAMP_OFFSET), ..bring };
    // SAFETY: mgmt maps the region read-write for our life; the word at
    // STAMP_OFFSET is touched only through `Words`, the ring below it only
    // through the ring.
    let stamp = unsafe { Words::new(stamp, 1) }.or_fail("the `bring` region is too small")?;
    // SAFETY: as above.
    let region = unsafe { link::region(SharedRegion { len: STAMP_OFFSET, ..bring }) }.or_fail("the ring")?;
    let mut latency_sum = 0u64;
    let mut next = sys::recv(ep);
    loop {
        let (_, m) = next.or_fail("receiving")?;
        next = match m.label {
            PING => sys::reply_recv(ep, &proto::msg(PONG, m.words[0].wrapping_add(1))),
            REPORT => sys::reply_recv(ep, &proto::msg(REPORT, latency_sum)),
            BELLS => {
                sys::poll(bells.mine).or_fail("clearing the doorbell")?;
                sys::reply(&proto::msg(BELLS, 0)).or_fail("answering")?;
                latency_sum = 0;
                for _ in 0..m.words[0] {
                    sys::wait(bells.mine).or_fail("waiting")?;
                    latency_sum += arch::rdtsc().wrapping_sub(stamp.get(0));
                    sys::signal(bells.peer, 1).or_fail("signalling")?;
                }
                sys::recv(ep)
            }
            RING => {
                let mut rx = Consumer::new(region, SMALL).or_fail("attaching to the ring")?;
                sys::reply(&proto::msg(RING, 0)).or_fail("answering")?;
                let mut buf = [0u8; SMALL.max_payload()];
                for _ in 0..m.words[0] {
                    link::recv(&mut rx, bells, &mut buf).or_fail("taking from the ring")?;
                }
                sys::recv(ep)
            }
            DONE => {
                sys::reply(&proto::msg(DONE, 0)).or_fail("answering")?;
                return Ok(());
            }
            _ => sys::reply_recv(ep, &proto::msg(REFUSED, 0)),
        };
    }
}
