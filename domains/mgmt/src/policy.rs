//! The restart policy: what becomes of a domain that exited or faulted.

use ipc::event::Event;
use ipc::manifest::Restart;

/// What to do after a domain's event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with code 0: it finished its work and stays stopped.
    Finished,
    /// Start it again after `delay_ms`: the `attempt`-th restart of `max`.
    Restart { delay_ms: u64, attempt: u32, max: u32 },
    /// It failed and may not be restarted (policy `Never`, or no restart left).
    StoppedForGood,
}

/// The outcome of `event` for a domain with policy `restart` that has been
/// restarted `restarts` times so far. A domain fails when it exits with a
/// code other than 0 or faults; `Backoff` then waits `initial_ms`, doubling
/// with each restart up to `max_ms`, for at most `max_restarts` restarts.
pub fn after(event: &Event, restart: Restart, restarts: u32) -> Outcome {
    if let Event::Exited { code: 0, .. } = event {
        return Outcome::Finished;
    }
    match restart {
        Restart::Never => Outcome::StoppedForGood,
        Restart::Backoff { max_restarts, initial_ms, max_ms } => {
            if restarts >= max_restarts {
                return Outcome::StoppedForGood;
            }
            let doubled =
                u64::from(initial_ms).checked_shl(restarts).filter(|d| d >> restarts == initial_ms as u64);
            let delay_ms = doubled.unwrap_or(u64::MAX).min(u64::from(max_ms));
            Outcome::Restart { delay_ms, attempt: restarts + 1, max: max_restarts }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::event::{DomainId, Fault};

    const D: DomainId = DomainId(0x1_0000_0002);
    const FAULT: Event =
        Event::Faulted { domain: D, fault: Fault { vector: 14, error: 4, ip: 0x40_1000, address: 0 } };
    const BACKOFF: Restart = Restart::Backoff { max_restarts: 4, initial_ms: 10, max_ms: 50 };

    #[test]
    fn a_clean_exit_is_never_restarted() {
        let done = Event::Exited { domain: D, code: 0 };
        assert_eq!(after(&done, BACKOFF, 0), Outcome::Finished);
        assert_eq!(after(&done, Restart::Never, 0), Outcome::Finished);
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_cap() {
        let failed = Event::Exited { domain: D, code: 1 };
        let delays: Vec<Outcome> = (0..5).map(|k| after(&failed, BACKOFF, k)).collect();
        assert_eq!(
            delays,
            [
                Outcome::Restart { delay_ms: 10, attempt: 1, max: 4 },
                Outcome::Restart { delay_ms: 20, attempt: 2, max: 4 },
                Outcome::Restart { delay_ms: 40, attempt: 3, max: 4 },
                Outcome::Restart { delay_ms: 50, attempt: 4, max: 4 },
                Outcome::StoppedForGood,
            ]
        );
        assert_eq!(after(&FAULT, Restart::Never, 0), Outcome::StoppedForGood);
        assert_eq!(after(&FAULT, BACKOFF, 2), Outcome::Restart { delay_ms: 40, attempt: 3, max: 4 });
    }

    #[test]
    fn huge_backoffs_saturate_at_the_cap() {
        let r = Restart::Backoff { max_restarts: u32::MAX, initial_ms: u32::MAX, max_ms: u32::MAX };
        for k in [0, 1, 31, 32, 63, 64, 1000] {
            assert_eq!(
                after(&FAULT, r, k),
                Outcome::Restart { delay_ms: u64::from(u32::MAX), attempt: k + 1, max: u32::MAX }
            );
        }
        let zero = Restart::Backoff { max_restarts: 0, initial_ms: 1, max_ms: 1 };
        assert_eq!(after(&FAULT, zero, 0), Outcome::StoppedForGood);
    }
}
