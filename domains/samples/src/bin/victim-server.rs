//! `victim-server`: a server that dies mid-call. It receives one call on
//! its endpoint, then executes `ud2` without answering; the kernel must
//! end its caller's wait with `PeerDead`.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::fault;
use samples::words::first_cap;
use user::{sys, StartInfo};

user::entry!(main, heap_kib = 0);

fn main(start: &'static StartInfo) -> u64 {
    let Some(ep) = first_cap(start, "endpoint:") else {
        log::error!("victim-server: FAIL no `endpoint:` capability");
        return 1;
    };
    match sys::recv(ep) {
        Ok((badge, msg)) => {
            log::info!(
                "victim-server: got a call (label {}, badge {badge}); faulting before answering",
                msg.label
            );
            fault::invalid_opcode()
        }
        Err(e) => {
            log::error!("victim-server: FAIL receiving: {e:?}");
            1
        }
    }
}
