//! Shares of the kernel's pools. `hostile` and the guests it makes are one
//! account, which may hold a quarter of each pool: it takes all its share
//! of VirqLines (16 of 64) and timers (16 of 64), and of notifications (64
//! of 256, with those it holds already), each refused past that with
//! `QuotaExceeded`; a second guest of its own gets none either (making
//! children is no way around the limit); meanwhile `witness`, another
//! account, makes one of each; and destroying the first guest gives its
//! places back, exactly.

use ipc::msg::Message;
use ipc::syscall::Call;
use ipc::{CapSlot, Error};
use samples::proto;
use user::sys;

use crate::targeted::{expect, made, result, Failure, Got};

/// The kernel's pools (`kernel/src/state/mod.rs`), and the part of each one
/// account may hold.
const VIRQS: u64 = 64;
const TIMERS: u64 = 64;
const SHARE: u64 = 4;

fn virq(guest: CapSlot) -> Got {
    // SAFETY: makes a capability; nothing runs.
    unsafe { sys::syscall(&Call::VirqCreate { guest, vector: 0x20 }) }.into()
}

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

    let (lines, past) = fill(VIRQS + 1, |_| virq(g));
    expect("a VirqLine past the share", past, Got::Err(QuotaExceeded))?;
    expect("VirqLines an account holds (64 / 4)", Got::Value(lines), Got::Value(VIRQS / SHARE))?;
    expect("a VirqLine in the account's second guest", virq(g2), Got::Err(QuotaExceeded))?;

    // Timers are the caller's, whichever notification they signal.
    let tick = made("a notification for timers", sys::notification_create(g2))?;
    let (timers, past) = fill(TIMERS + 1, |i| result(sys::timer_set(tick, 1 << i, 10_000_000, 0)));
    expect("a timer past the share", past, Got::Err(QuotaExceeded))?;
    expect("timers an account holds (64 / 4)", Got::Value(timers), Got::Value(TIMERS / SHARE))?;

    let (ntfns, past) = fill(257, |_| result(sys::notification_create(g)));
    expect("a notification past the share", past, Got::Err(QuotaExceeded))?;
    let second = result(sys::notification_create(g2));
    expect("a notification in the account's second guest", second, Got::Err(QuotaExceeded))?;
    let own = result(sys::notification_create(this));
    expect("a notification of the account's first domain", own, Got::Err(QuotaExceeded))?;

    // Another account still has room for each.
    let Some(witness) = witness else {
        return expect("a witness", Got::Err(Error::InvalidCapability), Got::Ok);
    };
    let ask = Message { label: proto::MAKE, ..Message::default() };
    let (_, answer) = made("asking the witness to make objects", sys::ipc_call(witness, &ask))?;
    let names = ["witness's guest", "witness's VirqLine", "witness's notification", "witness's timer"];
    for (what, code) in names.into_iter().zip(answer.words) {
        expect(what, result(Error::from_code(code)), Got::Ok)?;
    }

    // What is destroyed gives its place back: the first guest's lines and
    // notifications become the second's, as many as there were.
    made("destroying the first guest", sys::domain_destroy(g))?;
    let (lines2, _) = fill(VIRQS + 1, |_| virq(g2));
    expect("VirqLines the second guest makes then", Got::Value(lines2), Got::Value(lines))?;
    let (ntfns2, _) = fill(257, |_| result(sys::notification_create(g2)));
    expect("notifications the second guest makes then", Got::Value(ntfns2), Got::Value(ntfns))?;
    for i in 0..timers {
        made("cancelling a timer", sys::timer_set(tick, 1 << i, 0, 0))?;
    }
    let again = result(sys::timer_set(tick, 1, 10_000_000, 0));
    expect("a timer once the others are cancelled", again, Got::Ok)?;
    made("cancelling it", sys::timer_set(tick, 1, 0, 0))?;
    made("destroying the second guest", sys::domain_destroy(g2))
}
