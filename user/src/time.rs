//! Time from the time-stamp counter. There is no sleep syscall: a delay
//! yields until the counter passes its deadline.

use crate::{arch, rt, sys};

/// The TSC rate assumed when the start page does not give one (1 GHz).
pub const FALLBACK_TSC_PER_MS: u64 = 1_000_000;

/// TSC ticks per millisecond, from the start page.
pub fn tsc_per_ms() -> u64 {
    match rt::start_info().map(|s| s.tsc_per_ms) {
        Some(t) if t > 0 => t,
        _ => FALLBACK_TSC_PER_MS,
    }
}

/// The TSC value `ms` milliseconds from now.
pub fn deadline_ms(ms: u64) -> u64 {
    arch::rdtsc().saturating_add(ms.saturating_mul(tsc_per_ms()))
}

/// Whether the TSC has passed `deadline`.
pub fn passed(deadline: u64) -> bool {
    arch::rdtsc() >= deadline
}

/// Yields until `ms` milliseconds have passed.
pub fn delay_ms(ms: u64) {
    let deadline = deadline_ms(ms);
    while !passed(deadline) {
        sys::yield_now();
    }
}

/// The time-stamp counter now.
pub fn now() -> u64 {
    arch::rdtsc()
}
