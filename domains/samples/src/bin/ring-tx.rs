//! `ring-tx`: streams 16 MiB to `ring-rx` through an `ipc::ring` in the
//! shared region `ring`, 1 KiB per message, then an empty message as the
//! end. It sleeps on the doorbell `ring-space` when the ring is full and
//! rings `ring-data` when the receiver may be asleep. It logs the FNV-1a
//! checksum of what it sent: `ring: 16777216 bytes, checksum 0x…`.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::ring::Producer;
use samples::link::{self, Bells, Fnv, CHUNK, STREAM};
use samples::{Failure, OrFail};
use user::{arch, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

/// Bytes to send.
const TOTAL: usize = 16 << 20;
/// The stream's seed.
const SEED: u64 = 0x5259_4f4b_414e_0001;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::error!("ring-tx: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let shared = start.shared("ring").or_fail("no `shared:ring` region")?;
    // SAFETY: mgmt maps the region read-write for our life; only this ring uses it.
    let region = unsafe { link::region(shared) }.or_fail("the ring region")?;
    let bells = Bells {
        mine: start.slot("notification:ring-space").or_fail("no `notification:ring-space`")?,
        peer: start.slot("notification:ring-data").or_fail("no `notification:ring-data`")?,
    };
    let mut tx = Producer::new(region, STREAM).or_fail("attaching to the ring")?;
    let (mut state, mut sum, mut buf) = (SEED, Fnv::default(), [0u8; CHUNK]);
    let t0 = arch::rdtsc();
    for _ in 0..TOTAL / CHUNK {
        link::fill(&mut state, &mut buf);
        sum.update(&buf);
        link::send(&mut tx, bells, &buf).or_fail("sending")?;
    }
    link::send(&mut tx, bells, &[]).or_fail("sending the end")?;
    let ticks = arch::rdtsc().wrapping_sub(t0);
    log::info!("ring: {TOTAL} bytes, checksum {:#018x}", sum.0);
    log::info!("ring-tx: {} TSC ticks per KiB message", ticks / (TOTAL / CHUNK) as u64);
    Ok(())
}
