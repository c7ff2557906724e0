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

/// A CPU's timer interrupt is its scheduler's tick when it comes at most
/// this fraction of a tick before the tick's time: the local APIC's rate
/// and the TSC's are calibrated apart, and a timer due a little after the
/// tick would otherwise cost an interrupt of its own just before it.
pub const TICK_SLACK: u64 = 8;
/// The shortest a CPU's timer is started for, in ticks' tenths (100 µs):
/// a count of 1 (a timer already due, which the interrupt's handler fires
/// next) fired the periodic timer every 32 ns, and QEMU, spending longer
/// than that on each, never got past it. It also bounds the interrupts
/// that kernel timers cost a CPU, whoever set them, to 10,000 a second
/// beside its ticks (a domain's many short periodic timers had QEMU spend
/// most of its time taking them), at the price of a timer firing up to
/// 100 µs after it is due when another fired just before it.
pub const TIMER_MIN: u64 = 10;

/// Whether a timer interrupt at TSC `now` is the scheduler's tick, due at
/// `tick_at` (`period` TSC ticks apart); if so, the next tick's time: a
/// period on from this one, or from `now` if the CPU is a period behind
/// (its interrupts were off), so that missed ticks are not made up in a
/// burst. Other interrupts (a kernel timer's) are no tick: the scheduler's
/// choice and its charges stay per elapsed time, not per interrupt.
pub fn tick_at(now: u64, tick_at: u64, period: u64) -> Option<u64> {
    if now.saturating_add(period / TICK_SLACK) < tick_at {
        return None;
    }
    let next = tick_at.saturating_add(period);
    Some(if next <= now { now.saturating_add(period) } else { next })
}

/// The first faults of a device logged each in full; past them only its
/// `n`th for `n` a power of two, so a device faulting without end cannot
/// flood the console (every one is still counted and charged).
pub const FAULTS_LOGGED: u64 = 8;

/// Whether a device's `n`th IOMMU fault (from 1) is logged.
pub fn fault_logged(n: u64) -> bool {
    n <= FAULTS_LOGGED || n.is_power_of_two()
}

/// When a CPU's timer is to fire next, at TSC `now`: at the earlier of its
/// next tick (`tick_at`) and the kernel's first timer (`due`), not sooner
/// than [`TIMER_MIN`] of a tick from now (a time already past fires then).
/// `period` is a tick in TSC ticks, `count` in the timer's own counts.
/// Returns the TSC it fires at and the count it is started with, rounded
/// up so that it never fires before the time it is for.
pub fn timer_arm(now: u64, tick_at: u64, due: u64, period: u64, count: u32) -> (u64, u32) {
    let target = tick_at.min(due);
    let min = period / TIMER_MIN;
    let until = target.saturating_sub(now).clamp(min.max(1), period.max(1));
    let n = (u128::from(until) * u128::from(count)).div_ceil(u128::from(period.max(1)));
    let n =
        u32::try_from(n).unwrap_or(count).clamp((u64::from(count) / TIMER_MIN).max(1) as u32, count.max(1));
    (now.saturating_add(until), n)
}

/// As [`timer_arm`], for a timer set (not fired) at `now` while the CPU's
/// timer is started to fire at `armed`: the new start, only if it fires
/// sooner than that. A timer set never puts the CPU's interrupt off, so
/// that timers set again and again, each sooner than the last but within
/// [`TIMER_MIN`], cannot keep a CPU from its tick.
pub fn timer_arm_sooner(
    now: u64,
    tick_at: u64,
    due: u64,
    period: u64,
    count: u32,
    armed: u64,
) -> Option<(u64, u32)> {
    Some(timer_arm(now, tick_at, due, period, count)).filter(|&(at, _)| at < armed)
}

#[cfg(test)]
#[path = "../../kernel-tests/unit/policy.rs"]
mod tests;
