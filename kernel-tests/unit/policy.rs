//! Host tests of `policy` (not the kernel: `kernel/src/policy.rs` includes them).

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
fn donation_follows_the_callers_chain_a_bounded_way() {
    // 3 serves 2, which serves 1, which serves 0; 5 serves nobody.
    let chain = |x: usize| (1..=3).contains(&x).then(|| x - 1);
    assert_eq!(payer(3, chain), 0, "a nested server's time is the first caller's");
    assert_eq!(payer(1, chain), 0);
    assert_eq!(payer(0, chain), 0, "a caller pays for itself");
    assert_eq!(payer(5, chain), 5);
    // A chain deeper than DONATION_DEPTH pays at its last link walked;
    // a cycle ends too.
    let deep = |x: usize| Some(x + 1);
    assert_eq!(payer(0, deep), DONATION_DEPTH);
    assert_eq!(payer(0, |x: usize| Some(x ^ 1)), DONATION_DEPTH % 2);
}

/// One CPU with a 1 ms tick: a caller that spends `call_us` of every
/// 1 ms of its own in calls served by another thread (a guest whose
/// exits its VMM serves), next to a CPU-bound thread of the same weight.
/// Returns the CPU-bound thread's share.
fn neighbour_share(donate: bool) -> f64 {
    // Threads: 0 the caller, 1 its server, 2 the neighbour.
    let mut credit = [CREDIT_INIT; 3];
    let mut ran = [0i64; 3];
    let call_us = 500;
    for _ in 0..10_000 {
        let best = |c: &[i64; 3]| if c[0] >= c[2] { 0 } else { 2 };
        let mut b = best(&credit);
        if credit[b] <= 0 {
            credit.iter_mut().for_each(|c| *c = reset(*c));
            b = best(&credit);
        }
        if b == 2 {
            credit[2] = burn(credit[2], 1000, 256);
            ran[2] += 1000;
            continue;
        }
        // The caller's tick: half its own, half its server's.
        credit[0] = burn(credit[0], 1000 - call_us, 256);
        let server = if donate { 0 } else { 1 };
        credit[server] = burn(credit[server], call_us, 256);
        ran[0] += 1000 - call_us;
        ran[1] += call_us;
    }
    ran[2] as f64 / ran.iter().sum::<i64>() as f64
}

#[test]
fn a_callers_server_time_is_its_own_share() {
    let (without, with) = (neighbour_share(false), neighbour_share(true));
    assert!(without < 0.40, "without donation the neighbour got {without}");
    assert!((0.47..=0.53).contains(&with), "with donation the neighbour got {with}");
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

/// A tick of 1 ms at 1,000 TSC ticks a microsecond, 62,500 timer counts.
const PERIOD: u64 = 1_000_000;
const COUNT: u32 = 62_500;

/// A CPU's timer is started for the earlier of its tick and the first
/// kernel timer, rounded up in counts (never sooner than it is for).
#[test]
fn the_timer_fires_at_the_earlier_of_tick_and_timer() {
    let now = 5_000_000;
    let tick = now + PERIOD;
    assert_eq!(timer_arm(now, tick, u64::MAX, PERIOD, COUNT), (tick, COUNT), "none due: the tick");
    assert_eq!(timer_arm(now, tick, tick + 1, PERIOD, COUNT), (tick, COUNT), "due after the tick");
    let (at, n) = timer_arm(now, tick, now + 300_000, PERIOD, COUNT);
    assert_eq!(at, now + 300_000, "due sooner: then");
    assert_eq!(n, 18_750);
    let (_, n) = timer_arm(now, tick, now + 300_001, PERIOD, COUNT);
    assert_eq!(n, 18_751, "rounded up: not before it is due");
}

/// A timer already due (or due within 100 µs) gets the shortest start, a
/// tenth of a tick, never a count of 1 (an interrupt storm) nor 0 (a
/// stopped timer), and never a tick's wait.
#[test]
fn a_timer_past_due_fires_at_once_without_a_storm() {
    let now = 5_000_000;
    for due in [0, now - 1, now, now + 1] {
        let (at, n) = timer_arm(now, now + PERIOD, due, PERIOD, COUNT);
        assert_eq!((at, n), (now + PERIOD / TIMER_MIN, COUNT / TIMER_MIN as u32), "due at {due}");
    }
    // Restarted again and again while it stays due (its interrupt's
    // handler has not fired it yet), it is never sooner than that.
    let mut t = now;
    for _ in 0..100 {
        let (at, n) = timer_arm(t, now + PERIOD, now, PERIOD, COUNT);
        assert!(at >= t + PERIOD / TIMER_MIN && n >= COUNT / TIMER_MIN as u32);
        t = at;
    }
    // A tick already past (interrupts were off) is no different.
    assert_eq!(timer_arm(now, now - 10, u64::MAX, PERIOD, COUNT).1, COUNT / TIMER_MIN as u32);
    // An uncalibrated timer (tiny counts) still starts at a count of 1.
    assert_eq!(timer_arm(now, now, now, PERIOD, 5).1, 1);
}

/// A timer set moves the CPU's interrupt sooner, never later: timers set
/// again and again, each within the shortest start, do not put the tick
/// off.
#[test]
fn a_timer_set_never_puts_the_interrupt_off() {
    let now = 5_000_000;
    let tick = now + PERIOD;
    let soon = now + 300_000;
    assert_eq!(timer_arm_sooner(now, tick, soon, PERIOD, COUNT, tick), Some((soon, 18_750)));
    assert_eq!(timer_arm_sooner(now, tick, soon + 1, PERIOD, COUNT, soon), None, "not sooner");
    assert_eq!(timer_arm_sooner(now, tick, tick + 5, PERIOD, COUNT, tick), None, "after the tick");
    // Armed for the tick's time; timers due at once set every 10 µs from
    // 50 µs before it: none moves it (each would start 100 µs on).
    let mut armed = tick;
    for i in 0..20 {
        let t = tick - 50_000 + i * 10_000;
        if let Some((at, _)) = timer_arm_sooner(t, tick, t + 1, PERIOD, COUNT, armed) {
            armed = at;
        }
        assert_eq!(armed, tick, "at {t}");
    }
}

/// Only an interrupt at (or just before) the tick's time is the tick; the
/// next is a period on, or a period from now after a long gap.
#[test]
fn only_the_tick_is_a_tick() {
    let at = 10_000_000;
    assert_eq!(tick_at(at - 300_000, at, PERIOD), None, "a kernel timer's interrupt");
    assert_eq!(tick_at(at - PERIOD / TICK_SLACK - 1, at, PERIOD), None);
    assert_eq!(tick_at(at - PERIOD / TICK_SLACK, at, PERIOD), Some(at + PERIOD), "the APIC a little fast");
    assert_eq!(tick_at(at, at, PERIOD), Some(at + PERIOD));
    assert_eq!(tick_at(at + 2_000, at, PERIOD), Some(at + PERIOD), "a late one keeps the phase");
    assert_eq!(tick_at(at + 5 * PERIOD, at, PERIOD), Some(at + 6 * PERIOD), "missed ones not made up");
    // Kernel timers every 100 µs through a tick: ten interrupts, one tick.
    let (mut next, mut ticks) = (at, 0);
    for i in 1..=10 {
        if let Some(n) = tick_at(at - PERIOD + i * PERIOD / 10, next, PERIOD) {
            next = n;
            ticks += 1;
        }
    }
    assert_eq!((ticks, next), (1, at + PERIOD));
}

#[test]
fn a_fault_flood_is_logged_a_few_times_only() {
    let logged = (1..=1_000_000u64).filter(|&n| fault_logged(n)).count();
    assert_eq!(logged, FAULTS_LOGGED as usize + 16, "the first 8, then 16, 32, ... 2^19");
    assert!((1..=FAULTS_LOGGED).all(fault_logged), "each of the first in full");
    assert!(!fault_logged(FAULTS_LOGGED + 1) && fault_logged(1 << 40));
}
