//! `caller`: calls a server that dies before answering (`victim-server`).
//! The call must fail with `PeerDead`: it logs `caller: call failed with
//! PeerDead` and exits with 0; any other outcome is a FAIL and exit 1.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::Error;
use samples::proto::{self, PING};
use samples::words::first_cap;
use user::{sys, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    let Some(ep) = first_cap(start, "endpoint:") else {
        log::error!("caller: FAIL no `endpoint:` capability");
        return 1;
    };
    match sys::ipc_call(ep, &proto::msg(PING, 42)) {
        Err(Error::PeerDead) => {
            log::info!("caller: call failed with PeerDead");
            0
        }
        Err(e) => {
            log::error!("caller: FAIL the call failed with {e:?}, not PeerDead");
            1
        }
        Ok((_, answer)) => {
            log::error!("caller: FAIL the dead server answered (label {})", answer.label);
            1
        }
    }
}
