//! Which domains run, which wait for a restart, which are stopped, and how
//! often each was restarted: the state of `mgmt`'s supervision loop, apart
//! from the syscalls that change it.

use heapless::Vec;
use ipc::event::{DomainId, Event};
use ipc::manifest::Restart;

use crate::plan::MAX_PLANNED;
use crate::policy::{self, Outcome};

/// Where a domain of the manifest stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Running as this domain id.
    Running(DomainId),
    /// To be started again when the clock reaches `due`.
    Pending { due: u64 },
    /// Finished, or failed with no restart left: for good.
    Stopped,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    state: State,
    restart: Restart,
    restarts: u32,
    /// Of `restarts`, those asked for by hand.
    manual: u32,
}

/// The state of every domain of the manifest, by index. Time is whatever
/// clock the caller counts in, `ticks_per_ms` of it a millisecond.
#[derive(Clone, Debug)]
pub struct Tracker {
    entries: Vec<Entry, MAX_PLANNED>,
    ticks_per_ms: u64,
}

impl Tracker {
    /// Domains with these policies, all stopped until started.
    pub fn new(policies: impl IntoIterator<Item = Restart>, ticks_per_ms: u64) -> Self {
        let entries = policies.into_iter().map(|restart| Entry {
            state: State::Stopped,
            restart,
            restarts: 0,
            manual: 0,
        });
        Self { entries: entries.take(MAX_PLANNED).collect(), ticks_per_ms }
    }

    /// One more domain, stopped until started (`ryokan create`); false if
    /// the tracker is full.
    pub fn add(&mut self, restart: Restart) -> bool {
        self.entries.push(Entry { state: State::Stopped, restart, restarts: 0, manual: 0 }).is_ok()
    }

    /// Forgets the last domain added.
    pub fn pop(&mut self) {
        self.entries.pop();
    }

    pub fn state(&self, i: usize) -> Option<State> {
        self.entries.get(i).map(|e| e.state)
    }

    /// How many times domain `i` was restarted: the generation of its next start page.
    pub fn restarts(&self, i: usize) -> u32 {
        self.entries.get(i).map_or(0, |e| e.restarts)
    }

    /// Domain `i` now runs as `id`.
    pub fn started(&mut self, i: usize, id: DomainId) {
        if let Some(e) = self.entries.get_mut(i) {
            e.state = State::Running(id);
        }
    }

    /// Domain `i` could not be started: it stays stopped.
    pub fn stop(&mut self, i: usize) {
        if let Some(e) = self.entries.get_mut(i) {
            e.state = State::Stopped;
        }
    }

    /// Domain `i` is started again by hand (`ryokan restart`): one more
    /// restart (its next generation), not counted against its policy's.
    pub fn restarted_by_hand(&mut self, i: usize) {
        if let Some(e) = self.entries.get_mut(i) {
            e.restarts += 1;
            e.manual += 1;
            e.state = State::Stopped;
        }
    }

    /// The running domain with this id.
    pub fn find(&self, id: DomainId) -> Option<usize> {
        self.entries.iter().position(|e| e.state == State::Running(id))
    }

    /// Domain `i` exited or faulted at time `now`: decides by its policy and
    /// schedules its restart.
    pub fn on_event(&mut self, i: usize, event: &Event, now: u64) -> Outcome {
        let Some(e) = self.entries.get_mut(i) else { return Outcome::StoppedForGood };
        let outcome = policy::after(event, e.restart, e.restarts - e.manual);
        e.state = match outcome {
            Outcome::Restart { delay_ms, .. } => {
                e.restarts += 1;
                State::Pending { due: now.saturating_add(delay_ms.saturating_mul(self.ticks_per_ms)) }
            }
            Outcome::Finished | Outcome::StoppedForGood => State::Stopped,
        };
        outcome
    }

    /// A domain whose restart is due at `now`.
    pub fn due(&self, now: u64) -> Option<usize> {
        self.entries.iter().position(|e| matches!(e.state, State::Pending { due } if due <= now))
    }

    /// When the earliest pending restart is due (TSC), if any is.
    pub fn next_due(&self) -> Option<u64> {
        self.entries
            .iter()
            .filter_map(|e| match e.state {
                State::Pending { due } => Some(due),
                _ => None,
            })
            .min()
    }

    pub fn any_pending(&self) -> bool {
        self.entries.iter().any(|e| matches!(e.state, State::Pending { .. }))
    }

    /// Whether every domain is stopped for good: time to shut down.
    pub fn all_stopped(&self) -> bool {
        self.entries.iter().all(|e| e.state == State::Stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::event::Fault;

    const A: DomainId = DomainId(0x1_0000_0001);
    const B: DomainId = DomainId(0x1_0000_0002);
    const B2: DomainId = DomainId(0x2_0000_0002);

    fn fault(domain: DomainId) -> Event {
        Event::Faulted { domain, fault: Fault { vector: 6, error: 0, ip: 0x40_0000, address: 0 } }
    }

    #[test]
    fn a_faulting_domain_is_restarted_until_its_budget_is_spent() {
        let backoff = Restart::Backoff { max_restarts: 2, initial_ms: 10, max_ms: 100 };
        let mut t = Tracker::new([Restart::Never, backoff], 1000);
        t.started(0, A);
        t.started(1, B);
        assert!(!t.all_stopped());
        assert_eq!(t.find(B), Some(1));
        assert_eq!(t.on_event(1, &fault(B), 5_000), Outcome::Restart { delay_ms: 10, attempt: 1, max: 2 });
        assert_eq!(t.state(1), Some(State::Pending { due: 15_000 }));
        assert!(t.any_pending());
        assert_eq!(t.find(B), None, "the dead instance is no longer known");
        assert_eq!(t.due(14_999), None);
        assert_eq!(t.due(15_000), Some(1));
        t.started(1, B2);
        assert_eq!(t.restarts(1), 1);
        assert_eq!(t.on_event(1, &fault(B2), 20_000), Outcome::Restart { delay_ms: 20, attempt: 2, max: 2 });
        t.started(1, B);
        assert_eq!(t.on_event(1, &fault(B), 50_000), Outcome::StoppedForGood);
        assert_eq!(t.state(1), Some(State::Stopped));
        assert!(!t.all_stopped(), "A still runs");
        assert_eq!(t.on_event(0, &Event::Exited { domain: A, code: 0 }, 60_000), Outcome::Finished);
        assert!(t.all_stopped());
        assert!(!t.any_pending());
    }

    #[test]
    fn restarts_by_hand_count_but_spend_no_budget() {
        let backoff = Restart::Backoff { max_restarts: 1, initial_ms: 10, max_ms: 10 };
        let mut t = Tracker::new([backoff], 1);
        t.started(0, A);
        t.restarted_by_hand(0);
        assert_eq!(t.state(0), Some(State::Stopped));
        t.started(0, B);
        assert_eq!(t.restarts(0), 1, "a new generation");
        assert_eq!(t.on_event(0, &fault(B), 0), Outcome::Restart { delay_ms: 10, attempt: 1, max: 1 });
        t.started(0, B2);
        assert_eq!(t.on_event(0, &fault(B2), 0), Outcome::StoppedForGood);
        assert_eq!(t.restarts(0), 2);
    }

    #[test]
    fn a_domain_that_cannot_start_counts_as_stopped() {
        let mut t = Tracker::new([Restart::Never, Restart::Never], 1);
        t.started(0, A);
        t.stop(1);
        assert!(!t.all_stopped());
        assert_eq!(t.on_event(0, &Event::Exited { domain: A, code: 3 }, 0), Outcome::StoppedForGood);
        assert!(t.all_stopped());
    }
}
