//! `shm-b`: the other side of `shm-a`. It waits until X is mapped, checks
//! its pattern, waits for the revocation, then reads X again: that read must
//! fault (its supervisor logs the page fault). See `samples::mailbox`.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use samples::mailbox::{self, Mailbox, MAPPED, REVOKED, VERIFIED, X_PAGES, X_VA};
use samples::{fault, Failure, OrFail};
use user::{layout, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

/// How long to wait for the peer.
const PATIENCE_MS: u64 = 10_000;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::error!("shm-b: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let region = start.shared("mailbox").filter(|r| r.len >= 16).or_fail("no `shared:mailbox` region")?;
    // SAFETY: mgmt maps the region read-write at `region.va` for our life.
    let mailbox = unsafe { Mailbox::new(region.va) };

    if !mailbox.wait_for(MAPPED, PATIENCE_MS) {
        return Err(Failure::new("shm-a did not map X in time"));
    }
    let len = (X_PAGES * layout::PAGE) as usize;
    // shm-a maps X here before it says MAPPED, and may unmap it at any time
    // after: read it as memory a peer controls, byte by byte, volatile.
    let byte = |i: usize| {
        // SAFETY: X_VA..X_VA+len is mapped (readable) by now; a read has no
        // effect, and were X gone, it would fault, not return garbage.
        unsafe { core::ptr::read_volatile((X_VA as *const u8).add(i)) }
    };
    if let Some(i) = (0..len).find(|&i| byte(i) != mailbox::pattern(i)) {
        log::error!("shm-b: byte {i} of X is {:#x}, want {:#x}", byte(i), mailbox::pattern(i));
        return Err(Failure::new("the pattern differs"));
    }
    let sum = mailbox::checksum((0..len).map(byte));
    if sum != mailbox.checksum() {
        log::error!("shm-b: checksum {sum:#x}, shm-a says {:#x}", mailbox.checksum());
        return Err(Failure::new("the checksums differ"));
    }
    log::info!("shm-b: pattern verified (checksum {sum:#x})");
    mailbox.set_state(VERIFIED);

    if !mailbox.wait_for(REVOKED, PATIENCE_MS) {
        return Err(Failure::new("shm-a did not revoke X in time"));
    }
    log::info!("shm-b: reading after revocation");
    let v = fault::read(X_VA);
    log::error!("shm-b: read {v:#x} at {X_VA:#x} after the revocation");
    Err(Failure::new("X is still mapped after the revocation"))
}
