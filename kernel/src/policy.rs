//! Scheduling policy, in the manner of Xen's credit2: every thread holds
//! credit that burns while it runs, faster for lower weights; a CPU runs
//! its runnable thread with the most credit; when the best has none left,
//! every thread on the CPU is topped up. Shares under contention follow the
//! weights. A cap limits a domain to a percentage of one CPU per period,
//! whether or not the CPU is otherwise idle.
//!
//! Pure arithmetic, tested on the host; `sched` applies it.

/// The weight whose credit burns at wall-clock rate (the default).
pub const DEFAULT_WEIGHT: u16 = 256;
/// Credit given at a reset, in microseconds.
pub const CREDIT_INIT: i64 = 10_000;
/// A guest's time slice from one entry where the hardware times it (VT-x's
/// preemption timer), in microseconds: one scheduler tick.
pub const SLICE_US: u64 = 1000;
/// The period over which caps are enforced, in microseconds.
pub const CAP_PERIOD_US: i64 = 100_000;

/// The most links of a chain of nested calls [`payer`] follows.
pub const DONATION_DEPTH: usize = 4;

/// Whose time thread `t`'s is under time donation (see `sched`): `served(x)`
/// is the caller thread `x` serves (holds the reply of, that caller still
/// waiting on `x`), if any; followed up a chain of nested calls for at
/// most [`DONATION_DEPTH`] links, so that even a cycle (which the states
/// rule out) ends.
#[inline]
pub fn payer<T: Copy>(t: T, served: impl Fn(T) -> Option<T>) -> T {
    let mut p = t;
    for _ in 0..DONATION_DEPTH {
        match served(p) {
            Some(caller) => p = caller,
            None => break,
        }
    }
    p
}

/// Burns `elapsed_us` of running from `credit` at `weight`.
pub fn burn(credit: i64, elapsed_us: i64, weight: u16) -> i64 {
    credit - elapsed_us * i64::from(DEFAULT_WEIGHT) / i64::from(weight.max(1))
}

/// Tops up credit at a reset: at most [`CREDIT_INIT`], debt carried over
/// up to [`CREDIT_INIT`] of it, so never below 0 after.
///
/// The debt is bounded because time spent in the kernel is charged in one
/// piece at the next entry: a domain whose one call built a big domain
/// (mgmt loading images) could owe seconds, and with all debt kept it would
/// wait through that many resets, every other runnable thread (a spinning
/// guest) running meanwhile. Bounded, it waits at most about one reset.
pub fn reset(credit: i64) -> i64 {
    (credit.max(-CREDIT_INIT) + CREDIT_INIT).min(CREDIT_INIT)
}

/// The budget a domain capped at `percent` gets each period.
pub fn cap_budget(percent: u8) -> i64 {
    CAP_PERIOD_US * i64::from(percent) / 100
}

#[cfg(test)]
#[path = "../../kernel-tests/unit/policy.rs"]
mod tests;
