//! `ping`: an IPC client. It calls its endpoint (the one `endpoint:`
//! capability it holds) 100,000 times with a changing word, checks that
//! each answer is that word plus one, then sends `DONE` and logs
//! `ping: 100000 round trips ok`; on a wrong answer it logs a FAIL line and
//! exits with 1.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::proto::{self, DONE, PING, PONG};
use samples::words::first_cap;
use samples::{Failure, OrFail};
use user::{arch, sys, time, StartInfo};

user::entry!(main, heap_kib = 0);

const ROUNDS: u64 = 100_000;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(ticks) => {
            log::info!("ping: {ROUNDS} round trips ok");
            let ns = u128::from(ticks) * 1_000_000 / u128::from(time::tsc_per_ms()) / u128::from(ROUNDS);
            log::info!("ping: {} TSC ticks (about {ns} ns) per round trip", ticks / ROUNDS);
            0
        }
        Err(why) => {
            log::error!("ping: FAIL {why}");
            1
        }
    }
}

/// The round trips; returns the TSC ticks they took.
fn run(start: &StartInfo) -> Result<u64, Failure> {
    let ep = first_cap(start, "endpoint:").or_fail("no `endpoint:` capability")?;
    let t0 = arch::rdtsc();
    for i in 0..ROUNDS {
        let word = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ t0;
        let (_, answer) = sys::ipc_call(ep, &proto::msg(PING, word)).or_fail("calling")?;
        if answer.label != PONG || answer.words[0] != word.wrapping_add(1) {
            log::error!(
                "ping: round trip {i}: sent {word:#x}, got label {} word {:#x}",
                answer.label,
                answer.words[0]
            );
            return Err(Failure::new("a wrong answer"));
        }
    }
    let ticks = arch::rdtsc().wrapping_sub(t0);
    let (_, bye) = sys::ipc_call(ep, &proto::msg(DONE, 0)).or_fail("calling DONE")?;
    if bye.label != DONE || bye.words[0] != ROUNDS {
        log::error!("ping: DONE answered with label {} word {}", bye.label, bye.words[0]);
        return Err(Failure::new("the server counted differently"));
    }
    Ok(ticks)
}
