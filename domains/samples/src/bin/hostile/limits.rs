//! Limits on what a domain makes. Timers are paid for by the domain that
//! sets them (`obj::window` in the kernel): `hostile` sets more than the
//! kernel's whole fixed pool of them once held (64), shared by no account.
//! VirqLines and notifications are paid for by their owner's own quota
//! (`obj::window` in the kernel; a VirqLine's owner is its guest), not
//! shared out: a guest with a page free makes VirqLines (each slot deleted
//! as made: the line lives on until its guest dies), then notifications,
//! until its quota is gone (`QuotaExceeded`), and its siblings and `hostile`
//! itself still make theirs; so with endpoints, doorbells and memory
//! objects, each in a guest of its own, and threads, in a native domain
//! of its own (paused). Meanwhile `witness`, another account, makes
//! one of each, while `hostile`, its own quota given to children, gets
//! `QuotaExceeded` for one more timer or domain; and destroying the first
//! guests gives their places back, exactly.

use ipc::msg::Message;
use ipc::syscall::Call;
use ipc::{CapSlot, Error};
use samples::proto;
use user::sys;

use crate::targeted::{expect, made, result, Failure, Got};

/// Timers `hostile` sets at once: more than the kernel's fixed pool of
/// them once held (64, a quarter of it for each account).
const TIMERS: u64 = 100;
/// A guest's quota for the VirqLine and notification tests: its NPT or EPT
/// root and a page for them (VirqLines: a page's worth, far from the
/// kernel's 4,096; notifications (about a hundred, which
/// `hostile`'s capability table holds).
const NTFN_QUOTA: u64 = 2;
/// A native domain's quota for the thread test: its page tables and a few
/// pages of threads.
const THREAD_QUOTA: u64 = 4;

/// A thread in (paused) domain `d`, at an address nothing is mapped at.
fn thread_in(d: CapSlot) -> Result<CapSlot, Error> {
    // SAFETY: the thread is in `d`, paused, and never runs here.
    unsafe { sys::thread_create(d, user::layout::IMAGE_BASE, 0x80_0000, 0, None) }
}

/// The most notifications the test keeps slots for.
const MOST: usize = 240;

/// Makes notifications in guest `g` until that fails: their slots (in
/// `slots`), how many, and the failure.
fn fill_ntfns(g: CapSlot, slots: &mut [CapSlot; MOST]) -> (u64, Got) {
    for (i, slot) in slots.iter_mut().enumerate() {
        match sys::notification_create(g) {
            Ok(s) => *slot = s,
            Err(e) => return (i as u64, Got::Err(e)),
        }
    }
    (MOST as u64, Got::Ok)
}

fn virq(guest: CapSlot) -> Got {
    // SAFETY: makes a capability; nothing runs.
    unsafe { sys::syscall(&Call::VirqCreate { guest, vector: 0x20 }) }.into()
}

/// Makes VirqLines in guest `g`, deleting each one's slot, until that
/// fails (at most the kernel's 4,096 and one): how many, and the failure.
fn fill_virqs(g: CapSlot) -> Result<(u64, Got), Failure> {
    for i in 0..4097 {
        // SAFETY: makes a capability; nothing runs.
        let got = unsafe { sys::syscall(&Call::VirqCreate { guest: g, vector: 0x20 }) };
        match got {
            Ok(r) => made("deleting a VirqLine's slot", sys::cap_delete(CapSlot(r[0] as u32))).map(|_| ())?,
            Err((e, _)) => return Ok((i, Got::Err(e))),
        }
    }
    Ok((4097, Got::Ok))
}

/// Makes objects in guest `g` with `make`, deleting each one's slot (the
/// object lives until its guest dies), until that fails (at most the
/// kernel's 8,192 and one): how many, and the failure.
fn fill_deleting(
    g: CapSlot,
    make: impl Fn(CapSlot, u64) -> Result<CapSlot, Error>,
) -> Result<(u64, Got), Failure> {
    for i in 0..8193 {
        match make(g, i) {
            Ok(s) => made("deleting an object's slot", sys::cap_delete(s))?,
            Err(e) => return Ok((i, Got::Err(e))),
        }
    }
    Ok((8193, Got::Ok))
}

/// What a guest makes until its quota is gone: what it is, the guest's
/// quota, and how one is made in a guest (the `n`th).
type Kind = (&'static str, &'static str, u64, fn(CapSlot, u64, CapSlot) -> Result<CapSlot, Error>);

/// Endpoints, doorbells and memory objects, each paid for by the guest
/// named at its making.
const KINDS: [Kind; 3] = [
    ("endpoints past their owner's quota", "an endpoint of another guest", NTFN_QUOTA, |g, _, _| {
        sys::endpoint_create(g)
    }),
    ("doorbells past their guest's quota", "a doorbell of another guest", NTFN_QUOTA, |g, i, n| {
        sys::doorbell_create(g, i as u16, n, 1)
    }),
    ("memory objects past their owner's quota", "a memory object of another guest", 8, |g, _, _| {
        sys::memory_create(g, 1)
    }),
];

/// Calls `make` until it fails (at most `most` times): how many it made,
/// and the failure.
fn fill(most: u64, mut make: impl FnMut(u64) -> Got) -> (u64, Got) {
    for i in 0..most {
        let got = make(i);
        if got != Got::Ok {
            return (i, got);
        }
    }
    (most, Got::Ok)
}

pub fn run(this: CapSlot, witness: Option<CapSlot>) -> Result<(), Failure> {
    use Error::QuotaExceeded;
    let (g, _) = made("a guest", sys::guest_create(16))?;
    let (g2, _) = made("a second guest", sys::guest_create(16))?;

    let (g5, _) = made("a guest with a small quota for VirqLines", sys::guest_create(NTFN_QUOTA))?;
    let (lines, past) = fill_virqs(g5)?;
    expect("a VirqLine past its guest's quota", past, Got::Err(QuotaExceeded))?;
    expect("VirqLines made in a free page", Got::Value(u64::from(lines >= 100)), Got::Value(1))?;
    expect("a VirqLine in the account's second guest (its own quota)", virq(g2), Got::Ok)?;
    expect("a VirqLine in the account's first guest (its own quota)", virq(g), Got::Ok)?;

    // Timers are the caller's, whichever notification they signal.
    let tick = made("a notification for timers", sys::notification_create(g2))?;
    let (timers, past) = fill(TIMERS, |i| result(sys::timer_set(tick, i + 1, 10_000_000, 0)));
    expect("timers past the old fixed pool's share (16 of 64)", past, Got::Ok)?;

    let mut slots = [CapSlot(0); MOST];
    let (g3, _) = made("a guest with a small quota", sys::guest_create(NTFN_QUOTA))?;
    let (ntfns, past) = fill_ntfns(g3, &mut slots);
    expect("a notification past its owner's quota", past, Got::Err(QuotaExceeded))?;
    expect("notifications made in a free page", Got::Value(u64::from(ntfns >= 50)), Got::Value(1))?;
    let second = result(sys::notification_create(g2));
    expect("a notification in the account's second guest (its own quota)", second, Got::Ok)?;
    let own = result(sys::notification_create(this));
    expect("a notification of the account's first domain (its own quota)", own, Got::Ok)?;

    // Endpoints, doorbells and memory objects the same way: a guest makes
    // them until its quota is gone, and another guest still makes one.
    for (past_what, other, quota, make) in KINDS {
        let (gk, _) = made("a guest with a small quota", sys::guest_create(quota))?;
        let (n, past) = fill_deleting(gk, |g, i| make(g, i, tick))?;
        expect(past_what, past, Got::Err(QuotaExceeded))?;
        expect("objects made before the quota was gone", Got::Value(u64::from(n >= 1)), Got::Value(1))?;
        let slot = made(other, make(g2, 0x500, tick))?;
        made("deleting its slot", sys::cap_delete(slot))?;
        made("destroying the guest", sys::domain_destroy(gk))?;
    }

    // Threads the same way, paid for by the domain they run in (paused:
    // none of them runs); a sibling still makes one.
    let (d, _) = made("a domain with a small quota", sys::domain_create(THREAD_QUOTA))?;
    made("pausing it", sys::domain_pause(d, true))?;
    let (d2, _) = made("a second such domain", sys::domain_create(THREAD_QUOTA))?;
    made("pausing it", sys::domain_pause(d2, true))?;
    let (n, past) = fill_deleting(d, |d, _| thread_in(d))?;
    expect("threads past their domain's quota", past, Got::Err(QuotaExceeded))?;
    expect("threads made before the quota was gone", Got::Value(u64::from(n >= 4)), Got::Value(1))?;
    let slot = made("a thread of the sibling domain", thread_in(d2))?;
    made("deleting its slot", sys::cap_delete(slot))?;
    made("destroying the domain", sys::domain_destroy(d))?;
    let (d3, _) = made("a domain in its place", sys::domain_create(THREAD_QUOTA))?;
    made("pausing it", sys::domain_pause(d3, true))?;
    let (again, _) = fill_deleting(d3, |d, _| thread_in(d))?;
    expect("threads the domain in its place makes", Got::Value(again), Got::Value(n))?;
    made("destroying it", sys::domain_destroy(d3))?;
    made("destroying the sibling", sys::domain_destroy(d2))?;

    // Its own quota given away to children (a child's quota is its
    // supervisor's), `hostile` can set no more timers and make no more
    // domains; another account still has room for each (and for guests,
    // VirqLines and notifications).
    let Some(witness) = witness else {
        return expect("a witness", Got::Err(Error::InvalidCapability), Got::Ok);
    };
    let mut hogs = [CapSlot(0); 24];
    let mut held = 0;
    for k in (0..24).rev() {
        if let Ok((h, _)) = sys::domain_create(1 << k) {
            hogs[held] = h;
            held += 1;
        }
    }
    let far = 60_000_000; // µs: none fires meanwhile
    let (set, past) = fill(4096, |i| result(sys::timer_set(tick, (TIMERS + 1 + i) << 8, far, 0)));
    expect("a timer past its setter's quota", past, Got::Err(QuotaExceeded))?;
    let child = result(sys::domain_create(1));
    expect("a domain past its supervisor's quota", child, Got::Err(QuotaExceeded))?;
    let ask = Message { label: proto::MAKE, ..Message::default() };
    let (_, answer) = made("asking the witness to make objects", sys::ipc_call(witness, &ask))?;
    let names = ["witness's guest", "witness's VirqLine", "witness's notification", "witness's timer"];
    for (what, code) in names.into_iter().zip(answer.words) {
        expect(what, result(Error::from_code(code)), Got::Ok)?;
    }
    for i in 0..set {
        made("cancelling a far timer", sys::timer_set(tick, (TIMERS + 1 + i) << 8, 0, 0))?;
    }
    for &h in hogs.iter().take(held) {
        made("destroying a quota hog", sys::domain_destroy(h))?;
    }
    let (d, _) = made("a domain once the hogs are gone", sys::domain_create(1))?;
    made("destroying it", sys::domain_destroy(d))?;

    // What is destroyed gives its place back: the first guest's lines and
    // notifications become the second's, as many as there were.
    made("destroying the first guest", sys::domain_destroy(g))?;
    made("destroying the VirqLines' guest", sys::domain_destroy(g5))?;
    let (g6, _) = made("another guest with its quota", sys::guest_create(NTFN_QUOTA))?;
    let (lines2, _) = fill_virqs(g6)?;
    expect("VirqLines the other guest makes then", Got::Value(lines2), Got::Value(lines))?;
    made("destroying it", sys::domain_destroy(g6))?;
    for &slot in slots.iter().take(ntfns as usize) {
        made("deleting a notification's slot", sys::cap_delete(slot))?;
    }
    made("destroying the small guest", sys::domain_destroy(g3))?;
    let (g4, _) = made("another guest with that quota", sys::guest_create(NTFN_QUOTA))?;
    let (ntfns2, _) = fill_ntfns(g4, &mut slots);
    expect("notifications the other guest makes then", Got::Value(ntfns2), Got::Value(ntfns))?;
    made("destroying it", sys::domain_destroy(g4))?;
    for i in 0..timers {
        made("cancelling a timer", sys::timer_set(tick, i + 1, 0, 0))?;
    }
    let again = result(sys::timer_set(tick, 1, 10_000_000, 0));
    expect("a timer once the others are cancelled", again, Got::Ok)?;
    made("cancelling it", sys::timer_set(tick, 1, 0, 0))?;
    made("destroying the second guest", sys::domain_destroy(g2))
}
