//! `shm-a`: shares memory with `shm-b`, then takes it back. It makes 4
//! pages X, fills them with a pattern, maps X read-only into `shm-b` (with
//! its `domain:shm-b` capability) and says so in the shared `mailbox`; once
//! `shm-b` has verified the pattern, it revokes X, which must unmap it from
//! `shm-b`. See `samples::mailbox` for the protocol.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::Rights;
use samples::mailbox::{self, Mailbox, MAPPED, REVOKED, VERIFIED, X_PAGES, X_VA};
use samples::{Failure, OrFail};
use user::{layout, sys, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

/// How long to wait for the peer.
const PATIENCE_MS: u64 = 10_000;
/// Where X is mapped here.
const X_HERE: u64 = layout::FREE_BASE;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::error!("shm-a: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let this = start.self_domain().or_fail("no `self` capability")?;
    let peer = start.slot("domain:shm-b").or_fail("no `domain:shm-b` capability")?;
    let region = start.shared("mailbox").filter(|r| r.len >= 16).or_fail("no `shared:mailbox` region")?;
    // SAFETY: mgmt maps the region read-write at `region.va` for our life.
    let mailbox = unsafe { Mailbox::new(region.va) };

    let x = sys::memory_create(this, X_PAGES).or_fail("making X")?;
    sys::memory_map(x, this, X_HERE, Rights::READ | Rights::WRITE).or_fail("mapping X here")?;
    let len = (X_PAGES * layout::PAGE) as usize;
    // SAFETY: X was just mapped read-write here; shm-b will only read it.
    let bytes = unsafe { core::slice::from_raw_parts_mut(X_HERE as *mut u8, len) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = mailbox::pattern(i);
    }
    let sum = mailbox::checksum(bytes.iter().copied());
    sys::memory_map(x, peer, X_VA, Rights::READ).or_fail("mapping X into shm-b")?;
    mailbox.set_checksum(sum);
    mailbox.set_state(MAPPED);
    log::info!("shm-a: X mapped into shm-b at {X_VA:#x} (checksum {sum:#x})");

    if !mailbox.wait_for(VERIFIED, PATIENCE_MS) {
        return Err(Failure::new("shm-b did not answer in time"));
    }
    sys::cap_revoke(x).or_fail("revoking X")?;
    log::info!("shm-a: revoked");
    mailbox.set_state(REVOKED);
    Ok(())
}
