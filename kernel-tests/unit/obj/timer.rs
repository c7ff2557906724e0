//! Host tests of `obj::timer` (not the kernel: `kernel/src/obj/timer.rs` includes them).

use super::*;

fn timer(due: u64, period: u64) -> Timer {
    let r = Ref { index: 0, generation: 0 };
    Timer { owner: r, ntfn: r, bits: 1, due, period, next: Ref::NONE }
}

#[test]
fn a_one_shot_timer_fires_once() {
    assert_eq!(timer(100, 0).after(100), None);
    assert_eq!(timer(100, 0).after(5000), None);
}

#[test]
fn a_periodic_timer_skips_the_periods_it_missed() {
    assert_eq!(timer(100, 10).after(100), Some(110));
    assert_eq!(timer(100, 10).after(109), Some(110));
    assert_eq!(timer(100, 10).after(110), Some(120));
    assert_eq!(timer(100, 10).after(1_000_005), Some(1_000_010));
}

#[test]
fn a_period_past_the_tsc_range_ends_the_timer() {
    assert_eq!(timer(100, u64::MAX).after(100), Some(u64::MAX));
    assert_eq!(timer(u64::MAX - 1, 10).after(u64::MAX), None);
}
