//! `reaper`: a supervisor that sees 200 deaths at once, twice (issue #9:
//! "deaths are always seen, even 200 at once"). It makes 200 domains, each
//! running `ud2` on one page of its own, all paused; resumes them all, so
//! that they fault together while it is still busy; then collects their
//! deaths with `DomainWait`, each child's exactly once. It restarts every
//! one (destroys it, makes it anew) for a second round, and at the end
//! reaps them all and checks with `Stats` that the kernel got every frame
//! and object back (counted from after a first, warm-up round, checked
//! the same way). Exits with 0 if all of that held, 1 if not.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::event::{DomainId, Event};
use ipc::{CapSlot, Rights};
use samples::{Failure, OrFail};
use user::sys::{self, Stats};
use user::{layout, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

/// Children at once (its table of 256 slots holds one capability each).
const CHILDREN: usize = 200;
/// Rounds of deaths: the first run and one restart.
const ROUNDS: usize = 2;
/// Each child's quota: page tables, its page, its thread.
const CHILD_PAGES: u64 = 16;
/// Where the child's code goes, in it, and where the reaper fills it, here.
const CHILD_CODE: u64 = layout::IMAGE_BASE;
const SCRATCH: u64 = layout::FREE_BASE;
/// The child's stack pointer: never used.
const CHILD_STACK: u64 = 0x80_0000;
/// `ud2`: invalid opcode, vector 6.
const UD2: [u8; 2] = [0x0f, 0x0b];
const INVALID_OPCODE: u8 = 6;

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(why) => {
            log::error!("reaper: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<bool, Failure> {
    let this = start.self_domain().or_fail("no `self` capability")?;
    // A whole round first, checked as the others: it makes the page
    // tables of the scratch window and of the kernel's object windows as
    // far as 200 children reach, which stay (and would count as frames
    // lost).
    let mut children: [Option<(CapSlot, DomainId)>; CHILDREN] = [None; CHILDREN];
    round(this, &mut children).inspect_err(|_| log::error!("reaper: the warm-up round failed"))?;
    reap(&mut children)?;
    let before = sys::stats().or_fail("stats before")?;
    for r in 1..=ROUNDS {
        round(this, &mut children).inspect_err(|_| log::error!("reaper: round {r} failed"))?;
        log::info!("reaper: round {r}: {CHILDREN} deaths at once, each seen once");
        if r < ROUNDS {
            reap(&mut children)?; // and made anew: restarted
        }
    }
    reap(&mut children)?;
    let after = sys::stats().or_fail("stats after")?;
    let Stats { free_frames: a, objects: c, .. } = before;
    let Stats { free_frames: b, objects: d, .. } = after;
    let deaths = CHILDREN * ROUNDS;
    log::info!("reaper: {deaths} deaths seen and reaped; free frames {a} -> {b}, objects {c} -> {d}");
    Ok(a == b && c == d)
}

/// Makes a paused child in every place of `children`, resumes them all,
/// and collects their deaths: each one's once, a fault at `ud2`.
fn round(this: CapSlot, children: &mut [Option<(CapSlot, DomainId)>]) -> Result<(), Failure> {
    for place in children.iter_mut() {
        let (child, id) = sys::domain_create(CHILD_PAGES).or_fail("creating a domain")?;
        *place = Some((child, id));
        sys::domain_pause(child, true).or_fail("pausing a child")?;
        fault_in(this, child)?;
    }
    for (child, _) in children.iter().flatten() {
        sys::domain_pause(*child, false).or_fail("resuming a child")?;
    }
    let mut seen = [false; CHILDREN];
    for n in 0..children.len() {
        let event = sys::domain_wait(true).or_fail("waiting for a death")?;
        let Event::Faulted { domain, fault } = event else {
            return Err(Failure::new("a child exited instead of faulting"));
        };
        let Some(i) = children.iter().position(|c| c.is_some_and(|(_, id)| id == domain)) else {
            return Err(Failure::new("a death of a domain that is not a child of this round"));
        };
        if seen[i] || fault.vector != INVALID_OPCODE || fault.ip != CHILD_CODE {
            log::error!("reaper: death {n}: child {i} again, or not at its ud2: {fault:?}");
            return Err(Failure::new("a death seen twice or at the wrong place"));
        }
        seen[i] = true;
    }
    // Nothing more: each child died once.
    match sys::domain_wait(false) {
        Err(ipc::Error::WouldBlock) => Ok(()),
        other => {
            log::error!("reaper: a death too many: {other:?}");
            Err(Failure::new("more deaths than children"))
        }
    }
}

/// Destroys every child in `children`.
fn reap(children: &mut [Option<(CapSlot, DomainId)>]) -> Result<(), Failure> {
    for place in children.iter_mut() {
        if let Some((child, _)) = place.take() {
            sys::domain_destroy(child).or_fail("destroying a child")?;
            let _ = sys::cap_delete(child);
        }
    }
    Ok(())
}

/// Gives `child` one page holding `ud2` and a thread running it, keeping
/// no capability to either (the child's death frees them).
fn fault_in(this: CapSlot, child: CapSlot) -> Result<(), Failure> {
    let page = sys::memory_create(child, 1).or_fail("making the child's page")?;
    sys::memory_map(page, this, SCRATCH, Rights::READ | Rights::WRITE).or_fail("mapping the page here")?;
    // SAFETY: the page was just mapped read-write at SCRATCH, and is ours
    // alone until it is mapped into the child below.
    unsafe { core::ptr::copy_nonoverlapping(UD2.as_ptr(), SCRATCH as *mut u8, UD2.len()) };
    // SAFETY: nothing refers to the scratch mapping any more.
    unsafe { sys::memory_unmap(page, this, SCRATCH) }.or_fail("unmapping the page here")?;
    sys::memory_map(page, child, CHILD_CODE, Rights::READ | Rights::EXEC)
        .or_fail("mapping the child's code")?;
    // SAFETY: the thread runs in the child, not here.
    let thread = unsafe { sys::thread_create(child, CHILD_CODE, CHILD_STACK, 0, None) }
        .or_fail("starting the child")?;
    sys::cap_delete(thread).or_fail("dropping the thread's capability")?;
    sys::cap_delete(page).or_fail("dropping the page's capability")
}
