//! `ring-victim`: the consumer facing `ring-bad`. It takes good messages
//! from the ring in the shared region `ring-bad` until the ring reports
//! `PeerMisbehaved`, logs `ring-victim: peer misbehaved: …`, checks that the
//! ring still refuses the bad index (and did not crash or lose its place),
//! and exits with 0.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::ring::Consumer;
use ipc::Error;
use samples::link::{self, Bells, SMALL};
use samples::{Failure, OrFail};
use user::{Caps, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::error!("ring-victim: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let shared = start.shared("ring-bad").or_fail("no `shared:ring-bad` region")?;
    // SAFETY: mgmt maps the region read-write for our life; only this ring uses it.
    let region = unsafe { link::region(shared) }.or_fail("the ring region")?;
    let bells = Bells {
        mine: start.slot("notification:bad-data").or_fail("no `notification:bad-data`")?,
        peer: start.slot("notification:bad-space").or_fail("no `notification:bad-space`")?,
    };
    let mut rx = Consumer::new(region, SMALL).or_fail("attaching to the ring")?;
    let mut buf = [0u8; SMALL.max_payload()];
    let mut good = 0u64;
    loop {
        match link::recv(&mut rx, bells, &mut buf) {
            Ok(n) => {
                if buf[..n] != [good as u8; 64] {
                    return Err(Failure::new("a good message with the wrong content"));
                }
                good += 1;
            }
            Err(Error::PeerMisbehaved) => break,
            Err(e) => return Err(Failure { what: "receiving", error: Some(e) }),
        }
    }
    log::info!("ring-victim: peer misbehaved: PeerMisbehaved after {good} good messages");
    match rx.pop(&mut buf) {
        Err(Error::PeerMisbehaved) => {}
        other => {
            log::error!("ring-victim: popping again gave {other:?}");
            return Err(Failure::new("the ring accepted the bad index"));
        }
    }
    log::info!("ring-victim: still running; the ring keeps refusing the bad index");
    Ok(())
}
