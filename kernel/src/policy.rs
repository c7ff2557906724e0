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
mod tests {
    use super::*;

    /// Simulates CPU-bound threads on one CPU with a 1 ms tick: returns the
    /// time each got over `ms` milliseconds.
    fn simulate(weights: &[u16], caps: &[u8], ms: i64) -> Vec<i64> {
        simulate_from(&vec![CREDIT_INIT; weights.len()], weights, caps, ms)
    }

    /// `simulate`, with each thread's credit at the start given.
    fn simulate_from(start: &[i64], weights: &[u16], caps: &[u8], ms: i64) -> Vec<i64> {
        let n = weights.len();
        let mut credit = start.to_vec();
        let mut ran = vec![0i64; n];
        let mut budget: Vec<i64> = caps.iter().map(|&c| cap_budget(c)).collect();
        for t in 0..ms {
            if (t * 1000) % CAP_PERIOD_US == 0 {
                budget = caps.iter().map(|&c| cap_budget(c)).collect();
            }
            let eligible = |i: usize, b: &Vec<i64>| caps[i] == 0 || b[i] > 0;
            let mut best = (0..n).filter(|&i| eligible(i, &budget)).max_by_key(|&i| (credit[i], -(i as i64)));
            if best.is_some_and(|b| credit[b] <= 0) {
                credit.iter_mut().for_each(|c| *c = reset(*c));
                best = (0..n).filter(|&i| eligible(i, &budget)).max_by_key(|&i| (credit[i], -(i as i64)));
            }
            if let Some(b) = best {
                credit[b] = burn(credit[b], 1000, weights[b]);
                ran[b] += 1000;
                budget[b] -= 1000;
            }
        }
        ran
    }

    #[test]
    fn weights_give_proportional_shares() {
        let ran = simulate(&[512, 256], &[0, 0], 10_000);
        let ratio = ran[0] as f64 / ran[1] as f64;
        assert!((1.9..=2.1).contains(&ratio), "2:1 weights gave {ratio}");
        let ran = simulate(&[256, 256, 768], &[0, 0, 0], 10_000);
        let share = ran[2] as f64 / ran.iter().sum::<i64>() as f64;
        assert!((0.57..=0.63).contains(&share), "3:1:1 gave {share}");
    }

    #[test]
    fn caps_hold_even_when_alone() {
        let ran = simulate(&[256], &[25], 10_000);
        let share = ran[0] as f64 / 10_000_000.0;
        assert!((0.24..=0.27).contains(&share), "capped at 25% got {share}");
    }

    #[test]
    fn reset_keeps_debt_and_bounds_credit() {
        assert_eq!(reset(-3000), CREDIT_INIT - 3000);
        assert_eq!(reset(9000), CREDIT_INIT);
        assert_eq!(reset(-5 * CREDIT_INIT), 0);
        assert!(burn(1000, 1000, 512) > burn(1000, 1000, 256));
    }

    #[test]
    fn a_deep_debt_is_not_starvation() {
        // A thread that owes 2 s (one long call charged at once) next to a
        // CPU-bound guest of twice its weight: it runs within ~2 resets.
        let ran = simulate_from(&[-2_000_000, CREDIT_INIT], &[256, 512], &[0, 0], 100);
        assert!(ran[0] > 0, "the indebted thread never ran in 100 ms: {ran:?}");
        let ran = simulate_from(&[-2_000_000, CREDIT_INIT], &[256, 512], &[0, 0], 10_000);
        let ratio = ran[1] as f64 / ran[0] as f64;
        assert!((1.8..=2.2).contains(&ratio), "2:1 weights after a debt gave {ratio}");
    }
}
