//! `pong`: an IPC server. It answers every `PING` call on its endpoint (the
//! one `endpoint:` capability it holds) with the first word plus one; a
//! `DONE` call is answered too, and then it exits with 0.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::proto::{self, DONE, PING, PONG};
use samples::words::first_cap;
use samples::{Failure, OrFail};
use user::{sys, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    match serve(start) {
        Ok(served) => {
            log::info!("pong: served {served} calls");
            0
        }
        Err(why) => {
            log::error!("pong: FAIL {why}");
            1
        }
    }
}

fn serve(start: &StartInfo) -> Result<u64, Failure> {
    let ep = first_cap(start, "endpoint:").or_fail("no `endpoint:` capability")?;
    let mut served = 0u64;
    let (mut badge, mut msg) = sys::recv(ep).or_fail("receiving")?;
    loop {
        match msg.label {
            PING => {
                served += 1;
                let answer = proto::msg(PONG, msg.words[0].wrapping_add(1));
                (badge, msg) = sys::reply_recv(ep, &answer).or_fail("answering")?;
            }
            DONE => {
                sys::reply(&proto::msg(DONE, served)).or_fail("answering DONE")?;
                log::info!("pong: told to stop by the caller with badge {badge}");
                return Ok(served);
            }
            other => {
                log::error!("pong: label {other} from badge {badge}");
                return Err(Failure::new("a call with an unknown label"));
            }
        }
    }
}
