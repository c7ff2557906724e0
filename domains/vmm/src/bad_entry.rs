//! `bad-entry` (a word of the guest's command line): the VMM has the CPU
//! refuse to enter its guest, and checks that the kernel stops the guest
//! for good. A test of the kernel, not a feature: a VMM that wants its
//! guest to run never does this.
//!
//! - The guest's write to [`WIDE_RIP_PORT`] is answered by setting its rip
//!   4 GiB past the next instruction: canonical, so the kernel passes it
//!   on (whether a rip suits the guest's mode is the CPU's to judge), and
//!   VT-x refuses it outside 64-bit mode.
//! - An `EntryFailed` exit is answered with ADVANCE, as by a VMM that
//!   would have the guest go on, and not STOP; then the VMM waits
//!   [`WATCH_MS`] for another exit: none may come (`the vCPU stayed stopped
//!   after its entry failed`).

use ipc::vcpu::{Action, Exit, ExitReason, Reply};
use user::sys::{self, Incoming};
use vmm::status;

use crate::console::{say, Console};
use crate::setup::Guest;

/// The word of the command line that asks for the probe.
pub const FLAG: &str = "bad-entry";
/// A write here asks for a rip above 4 GiB.
pub const WIDE_RIP_PORT: u16 = 0xf7;
/// How long the VMM waits for an exit that must not come.
const WATCH_MS: u64 = 200;
/// The bit of the timer notification that ends the wait (vCPUs' APIC
/// timers use bits 0 to 15).
const WATCH_BIT: u64 = 1 << 63;

/// The reply to `exit` if the probe makes it: the next rip + 4 GiB for a
/// write to [`WIDE_RIP_PORT`].
pub fn answer(exit: &Exit) -> Option<Reply> {
    let port = (exit.qualification & 0xFFFF) as u16;
    if exit.reason != ExitReason::PortOut || port != WIDE_RIP_PORT {
        return None;
    }
    Some(Reply { rip: exit.rip + exit.len + (1 << 32), ..Reply::only(Action::SET_RIP) })
}

/// Answers the `EntryFailed` exit just received with ADVANCE, then waits
/// for another exit: `Err(status)` if one came (or the wait failed).
pub fn watch(guest: &Guest, console: &Console) -> Result<(), u64> {
    if let Err(e) = sys::reply(&Reply::only(Action::ADVANCE).to_message()) {
        say!(console, "FAIL answering the failed entry with ADVANCE failed with {e:?}");
        return Err(status::UNHANDLED);
    }
    if let Err(e) = sys::timer_set(guest.timers, WATCH_BIT, WATCH_MS * 1000, 0) {
        say!(console, "FAIL cannot time the wait after the failed entry: {e:?}");
        return Err(status::UNHANDLED);
    }
    loop {
        match sys::recv_any(guest.exits) {
            Ok(Incoming::Notified(bits)) if bits & WATCH_BIT != 0 => break,
            Ok(Incoming::Notified(_)) => {}
            Ok(Incoming::Call { msg, .. }) => {
                say!(console, "FAIL the vCPU ran again after its entry failed: exit {:#x}", msg.label);
                return Err(status::HOSTILE_ACCEPTED);
            }
            Err(e) => {
                say!(console, "FAIL waiting after the failed entry failed with {e:?}");
                return Err(status::UNHANDLED);
            }
        }
    }
    say!(
        console,
        "the vCPU stayed stopped after its entry failed (answered ADVANCE, no exit in {WATCH_MS} ms)"
    );
    Ok(())
}
