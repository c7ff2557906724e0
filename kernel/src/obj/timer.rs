//! A timer: signals `bits` on a notification at a time (TSC), and again
//! every period if it has one. Made from the quota of the domain that set
//! it (`obj::window`), whose death it dies with; all timers are on one
//! list in the order they are due (`state::timer`), linked through `next`.

use super::pool::Ref;

#[derive(Clone, Copy, Debug)]
pub struct Timer {
    /// The domain that set it and pays for it.
    pub owner: Ref,
    pub ntfn: Ref,
    pub bits: u64,
    /// When it fires next (TSC).
    pub due: u64,
    /// Its period in TSC ticks; 0 for once.
    pub period: u64,
    /// The timer due next after it, or [`Ref::NONE`].
    pub next: Ref,
}

impl Timer {
    /// When it fires again after firing at `now` (at or after `due`):
    /// the first of its periods after `now` (ticks missed are not made
    /// up); `None` if it fires once (or its next time is past the TSC's
    /// range).
    pub fn after(&self, now: u64) -> Option<u64> {
        let late = now.saturating_sub(self.due).checked_div(self.period)?;
        let due = self.due.saturating_add(late.saturating_add(1).saturating_mul(self.period));
        (due > now).then_some(due)
    }
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/obj/timer.rs"]
mod tests;
