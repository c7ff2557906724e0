//! `crowd`: 100 small guests at once (issue #10, item 4). It makes 100
//! guests, each with one page of RAM holding a count and then
//! `mov al, 0; out 0xf4, al` (the exit port: exit code 0) and one vCPU,
//! all paused; resumes them all,
//! so that 100 guests and their vCPUs live and run together; and takes
//! each one's exit from their shared exit endpoint (badged by guest),
//! exactly once, an `OUT` of 0 to port 0xf4 from its code. Then it
//! destroys them all. Exits with 0 if every guest finished so, 1 if not.
//!
//! It serves their exits itself (no VMM per guest): what is tested is
//! that the kernel holds 100 guests, their vCPUs, VMCSs or VMCBs and
//! nested page tables at once, each paid for by its own quota.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::vcpu::{Exit, ExitReason};
use ipc::{CapSlot, Rights};
use samples::{Failure, OrFail};
use user::{layout, sys, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

const GUESTS: usize = 100;
/// Each guest's quota: its nested page tables, its page, its vCPU.
const GUEST_PAGES: u64 = 32;
/// Where each guest's code is, in it (a Multiboot entry: protected mode,
/// paging off), and where `crowd` fills it, here.
const CODE_GPA: u64 = 0x10_0000;
const SCRATCH: u64 = layout::FREE_BASE;
/// `mov ecx, 2000000; loop $; mov al, 0; out 0xf4, al; hlt; jmp $-1`: a
/// count long enough that the guests are preempted by the tick and run
/// side by side, then the exit.
const CODE: [u8; 14] = [0xb9, 0x80, 0x84, 0x1e, 0x00, 0xe2, 0xfe, 0xb0, 0x00, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd];
/// Where the `out` is in `CODE`.
const OUT_AT: u64 = 9;
const EXIT_PORT: u64 = 0xf4;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::error!("crowd: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let this = start.self_domain().or_fail("no `self` capability")?;
    let exits = sys::endpoint_create(this).or_fail("making the exit endpoint")?;
    let mut guests = [CapSlot(0); GUESTS];
    for (i, g) in guests.iter_mut().enumerate() {
        *g = guest(this, exits, i as u64 + 1).inspect_err(|_| log::error!("crowd: guest {i} failed"))?;
    }
    for g in guests {
        sys::domain_pause(g, false).or_fail("resuming a guest")?;
    }
    let mut done = [false; GUESTS];
    for _ in 0..GUESTS {
        let (badge, m) = user::msg::recv(exits).or_fail("receiving an exit")?;
        let exit = Exit::from_message(&m).or_fail("an exit message")?;
        let i = usize::try_from(badge).ok().and_then(|b| b.checked_sub(1)).filter(|&i| i < GUESTS);
        let Some(i) = i.filter(|&i| !done[i]) else {
            log::error!("crowd: an exit with badge {badge}: no guest's, or its second");
            return Err(Failure::new("an exit of no guest, or a guest's second"));
        };
        let port = exit.qualification & 0xffff;
        let code = exit.regs[0] & 0xff;
        if exit.reason != ExitReason::PortOut
            || port != EXIT_PORT
            || code != 0
            || exit.rip != CODE_GPA + OUT_AT
        {
            log::error!("crowd: guest {i}: {:?} port {port:#x} value {code} at {:#x}", exit.reason, exit.rip);
            return Err(Failure::new("a guest's exit is not its OUT of 0 to the exit port"));
        }
        done[i] = true;
    }
    log::info!("crowd: {GUESTS} guests at once, each finished with exit code 0");
    for g in guests {
        sys::domain_destroy(g).or_fail("destroying a guest")?;
    }
    log::info!("crowd: all {GUESTS} destroyed");
    Ok(())
}

/// A paused guest with its code page and a vCPU whose exits come to
/// `exits` with `badge`.
fn guest(this: CapSlot, exits: CapSlot, badge: u64) -> Result<CapSlot, Failure> {
    let (g, _) = sys::guest_create(GUEST_PAGES).or_fail("creating a guest")?;
    sys::domain_pause(g, true).or_fail("pausing it")?;
    let page = sys::memory_create(g, 1).or_fail("making its page")?;
    sys::memory_map(page, this, SCRATCH, Rights::READ | Rights::WRITE).or_fail("mapping the page here")?;
    // SAFETY: the page was just mapped read-write at SCRATCH, and is ours
    // alone until it is mapped into the guest below.
    unsafe { core::ptr::copy_nonoverlapping(CODE.as_ptr(), SCRATCH as *mut u8, CODE.len()) };
    // SAFETY: nothing refers to the scratch mapping any more.
    unsafe { sys::memory_unmap(page, this, SCRATCH) }.or_fail("unmapping the page here")?;
    sys::memory_map(page, g, CODE_GPA, Rights::READ | Rights::WRITE).or_fail("mapping its RAM")?;
    sys::cap_delete(page).or_fail("dropping the page's capability")?;
    let badged = sys::cap_mint(exits, Rights::WRITE, badge).or_fail("minting its exit capability")?;
    let vcpu = sys::vcpu_create(g, badged, CODE_GPA, 0).or_fail("making its vCPU")?;
    sys::cap_delete(vcpu).or_fail("dropping the vCPU's capability")?;
    sys::cap_delete(badged).or_fail("dropping its exit capability")?;
    Ok(g)
}
