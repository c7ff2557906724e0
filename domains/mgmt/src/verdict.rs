//! A run's verdict from its guests (issue #11, "a guest's verdict"): the
//! run fails if any guest's last instance ended badly — it wrote a non-zero
//! exit code, faulted, triple-faulted, was stopped by its VMM, or its VMM
//! itself faulted — whatever the rest of the system did. A guest is its VMM
//! domain here (`mgmt` starts one per `[[guest]]`); the VMM's exit code is
//! its `ipc::guest::status`.
//!
//! Decisions:
//! - The last instance decides: a guest that failed and was restarted to a
//!   success is a success; one stopped for good after failing is a failure.
//! - What the operator does by hand (`ryokan kill`, `restart`, `destroy`)
//!   gives no verdict: it clears the guest's, since the instance that would
//!   have said is gone by the operator's choice.
//! - A guest still running at shutdown (`ryokan shutdown`) has none either.
//! - At the end `mgmt` says how many guests finished (`N of M guests
//!   finished`): those whose last instance passed; one stopped by hand or
//!   still running is not counted (the design is silent; a count of the
//!   successes lets a crowd of guests be judged by one line).
//! - Native domains do not judge the run: their supervision policy is what
//!   handles their failures (the system tests check their exits).

use core::fmt;

use heapless::Vec;
use ipc::event::{Event, Fault};
use ipc::guest::status;

use crate::plan::MAX_PLANNED;

/// How a guest's instance ended, when it ended badly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Its VMM exited with this `ipc::guest::status` (not `PASSED`).
    Status(u64),
    /// Its VMM faulted.
    VmmFaulted(Fault),
    /// `mgmt` could not start its VMM (its log says why).
    NotStarted,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Failure::Status(code) => write!(f, "{} (VMM status {code})", status::describe(code)),
            Failure::VmmFaulted(fault) => {
                write!(f, "its VMM faulted: {} at ip {:#x}", fault.name(), fault.ip)
            }
            Failure::NotStarted => f.write_str("its VMM could not be started"),
        }
    }
}

/// The verdict so far of every domain of the plan (by index) that is a guest.
#[derive(Clone, Debug)]
pub struct Verdicts {
    /// None: not a guest; Some(None): no failure; Some(Some(f)): failed.
    guests: Vec<Option<Option<Failure>>, MAX_PLANNED>,
    /// Whether domain `i`'s last instance passed (a guest's only).
    passed: Vec<bool, MAX_PLANNED>,
}

impl Verdicts {
    /// `is_guest` says, for each domain of the plan, whether it is a guest's VMM.
    pub fn new(is_guest: impl IntoIterator<Item = bool>) -> Self {
        let guests: Vec<_, MAX_PLANNED> =
            is_guest.into_iter().map(|g| g.then_some(None)).take(MAX_PLANNED).collect();
        Self { passed: guests.iter().map(|_| false).collect(), guests }
    }

    /// Domain `i`'s instance ended on its own with `event`.
    pub fn ended(&mut self, i: usize, event: &Event) {
        let Some(Some(v)) = self.guests.get_mut(i) else { return };
        if let Some(p) = self.passed.get_mut(i) {
            *p = matches!(*event, Event::Exited { code: status::PASSED, .. });
        }
        *v = match *event {
            Event::Exited { code: status::PASSED, .. } => None,
            Event::Exited { code, .. } => Some(Failure::Status(code)),
            Event::Faulted { fault, .. } => Some(Failure::VmmFaulted(fault)),
        };
    }

    /// No verdict from domain `i` now: a new instance of it starts, or the
    /// operator ended the last one by hand.
    pub fn clear(&mut self, i: usize) {
        self.set(i, None);
    }

    /// Domain `i` could not be started (and will not be).
    pub fn not_started(&mut self, i: usize) {
        self.set(i, Some(Failure::NotStarted));
    }

    fn set(&mut self, i: usize, to: Option<Failure>) {
        if let Some(p) = self.passed.get_mut(i) {
            *p = false;
        }
        if let Some(Some(v)) = self.guests.get_mut(i) {
            *v = to;
        }
    }

    /// Every guest whose last instance failed, with how, by index.
    pub fn failures(&self) -> impl Iterator<Item = (usize, Failure)> + '_ {
        self.guests.iter().enumerate().filter_map(|(i, v)| Some((i, (*v)??)))
    }

    /// Guests whose last instance passed, and guests.
    pub fn finished(&self) -> (usize, usize) {
        (self.passed.iter().filter(|&&p| p).count(), self.guests.iter().filter(|g| g.is_some()).count())
    }

    /// Whether the run succeeds: no guest failed.
    pub fn success(&self) -> bool {
        self.failures().next().is_none()
    }
}

/// `mgmt`'s line for a failed guest, which `cargo xtask run` and the test
/// harness quote as the run's reason: `verdict: guest NAME failed: …`.
pub struct Line<'a> {
    pub name: &'a str,
    pub failure: Failure,
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}guest {} failed: {}", PREFIX, self.name, self.failure)
    }
}

/// How `mgmt`'s verdict lines begin (after the logger's `[mgmt] `).
pub const PREFIX: &str = "verdict: ";

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use ipc::event::DomainId;

    fn exited(code: u64) -> Event {
        Event::Exited { domain: DomainId(1), code }
    }

    #[test]
    fn a_guest_that_fails_fails_the_run_and_natives_do_not() {
        let mut v = Verdicts::new([false, true, true]);
        assert!(v.success(), "nothing ended yet");
        assert_eq!(v.finished(), (0, 2), "none finished yet");
        v.ended(0, &exited(101));
        assert!(v.success(), "a native domain's exit is its policy's business");
        v.ended(1, &exited(status::PASSED));
        v.ended(2, &exited(status::TRIPLE_FAULT));
        assert_eq!(v.failures().collect::<std::vec::Vec<_>>(), [(2, Failure::Status(4))]);
        assert!(!v.success());
        assert_eq!(v.finished(), (1, 2), "one passed, the native not counted");
        let line = Line { name: "guest-triple", failure: Failure::Status(4) }.to_string();
        assert_eq!(line, "verdict: guest guest-triple failed: it triple-faulted (VMM status 4)");
    }

    #[test]
    fn the_last_instance_decides_and_the_operator_gives_no_verdict() {
        let mut v = Verdicts::new([true, true]);
        v.ended(0, &exited(status::FAILED));
        v.ended(0, &exited(status::PASSED));
        assert!(v.success(), "restarted to a success");
        assert_eq!(v.finished(), (1, 2), "restarted to a success");
        v.ended(1, &exited(status::PASSED));
        v.clear(1);
        assert_eq!(v.finished(), (1, 2), "one cleared by hand did not finish");
        assert!(v.success(), "killed or destroyed by hand, or started anew");
        v.not_started(0);
        assert_eq!(v.failures().collect::<std::vec::Vec<_>>(), [(0, Failure::NotStarted)]);
        v.clear(0);
        let fault = Fault { vector: 14, error: 0, address: 0, ip: 0x40_1000 };
        v.ended(1, &Event::Faulted { domain: DomainId(2), fault });
        assert_eq!(v.failures().next(), Some((1, Failure::VmmFaulted(fault))));
        v.ended(7, &exited(5));
        assert_eq!(v.failures().count(), 1, "an index past the plan changes nothing");
    }
}
