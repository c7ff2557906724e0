//! `ring-rx`: receives `ring-tx`'s stream from the ring in the shared
//! region `ring` until the empty message that ends it, sleeping on the
//! doorbell `ring-data` when the ring is empty and ringing `ring-space`
//! when the sender may be asleep. It logs the FNV-1a checksum of what it
//! received: `ring: 16777216 bytes, checksum 0x…`.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::ring::Consumer;
use samples::link::{self, Bells, Fnv, STREAM};
use samples::{Failure, OrFail};
use user::{Caps, StartInfo};

user::entry!(main, heap_kib = 0);

/// Bytes the sender sends.
const TOTAL: usize = 16 << 20;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::error!("ring-rx: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let shared = start.shared("ring").or_fail("no `shared:ring` region")?;
    // SAFETY: mgmt maps the region read-write for our life; only this ring uses it.
    let region = unsafe { link::region(shared) }.or_fail("the ring region")?;
    let bells = Bells {
        mine: start.slot("notification:ring-data").or_fail("no `notification:ring-data`")?,
        peer: start.slot("notification:ring-space").or_fail("no `notification:ring-space`")?,
    };
    let mut rx = Consumer::new(region, STREAM).or_fail("attaching to the ring")?;
    let (mut sum, mut total, mut buf) = (Fnv::default(), 0usize, [0u8; STREAM.max_payload()]);
    loop {
        let n = link::recv(&mut rx, bells, &mut buf).or_fail("receiving")?;
        if n == 0 {
            break;
        }
        sum.update(&buf[..n]);
        total += n;
    }
    log::info!("ring: {total} bytes, checksum {:#018x}", sum.0);
    if total != TOTAL {
        log::error!("ring-rx: got {total} bytes, the sender sends {TOTAL}");
        return Err(Failure::new("a short stream"));
    }
    Ok(())
}
