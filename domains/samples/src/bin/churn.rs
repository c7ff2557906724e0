//! `churn`: creates and destroys 1000 domains, each running a thread (`jmp
//! $` on one page of its own), and checks with `Stats` that the kernel got
//! every frame and object back. Exits with 0 if it did, 1 if not. (A first
//! round before the count sets up what churn itself keeps.)

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::{CapSlot, Rights};
use samples::{Failure, OrFail};
use user::sys::{self, Stats};
use user::{layout, Caps, StartInfo};

user::entry!(main, heap_kib = 0);

const ROUNDS: u32 = 1000;
/// Each child's quota: page tables and its one page.
const CHILD_PAGES: u64 = 16;
/// Where the child's code goes, in it, and where churn fills it, here.
const CHILD_CODE: u64 = layout::IMAGE_BASE;
const SCRATCH: u64 = layout::FREE_BASE;
/// The child's stack pointer: never used (its code pushes nothing).
const CHILD_STACK: u64 = 0x80_0000;
/// `jmp $`.
const SPIN: [u8; 2] = [0xeb, 0xfe];

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(why) => {
            log::error!("churn: FAIL {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<bool, Failure> {
    let this = start.self_domain().or_fail("no `self` capability")?;
    // One round first: it makes the page tables of churn's own scratch
    // window, which stay (and would count as frames lost).
    round(this).inspect_err(|_| log::error!("churn: the warm-up round failed"))?;
    let before = sys::stats().or_fail("stats before")?;
    for i in 0..ROUNDS {
        round(this).inspect_err(|_| log::error!("churn: round {} of {ROUNDS} failed", i + 1))?;
    }
    let after = sys::stats().or_fail("stats after")?;
    let Stats { free_frames: a, objects: c, .. } = before;
    let Stats { free_frames: b, objects: d, .. } = after;
    log::info!("churn: {ROUNDS} domains created and destroyed; free frames {a} -> {b}, objects {c} -> {d}");
    Ok(a == b && c == d)
}

/// Creates a domain running `jmp $`, destroys it, and drops every
/// capability that named its objects.
fn round(this: CapSlot) -> Result<(), Failure> {
    let (child, _) = sys::domain_create(CHILD_PAGES).or_fail("creating a domain")?;
    let mut held = [None; 2];
    let r = spin_in(this, child, &mut held);
    let destroyed = sys::domain_destroy(child);
    // Destroying the child may have emptied these slots already.
    for slot in held.into_iter().flatten().chain([child]) {
        let _ = sys::cap_delete(slot);
    }
    r.and(destroyed.or_fail("destroying the domain"))
}

/// Gives `child` one page holding `jmp $` and a thread running it; `held`
/// gets the memory's and the thread's slots.
fn spin_in(this: CapSlot, child: CapSlot, held: &mut [Option<CapSlot>; 2]) -> Result<(), Failure> {
    let page = sys::memory_create(child, 1).or_fail("making the child's page")?;
    held[0] = Some(page);
    sys::memory_map(page, this, SCRATCH, Rights::READ | Rights::WRITE).or_fail("mapping the page here")?;
    // SAFETY: the page was just mapped read-write at SCRATCH, and is ours
    // alone until it is mapped into the child below.
    unsafe { core::ptr::copy_nonoverlapping(SPIN.as_ptr(), SCRATCH as *mut u8, SPIN.len()) };
    // SAFETY: nothing refers to the scratch mapping any more.
    unsafe { sys::memory_unmap(page, this, SCRATCH) }.or_fail("unmapping the page here")?;
    sys::memory_map(page, child, CHILD_CODE, Rights::READ | Rights::EXEC)
        .or_fail("mapping the child's code")?;
    // SAFETY: the thread runs in the child, not here.
    let thread = unsafe { sys::thread_create(child, CHILD_CODE, CHILD_STACK, 0, None) }
        .or_fail("starting the child")?;
    held[1] = Some(thread);
    Ok(())
}
