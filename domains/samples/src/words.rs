//! Words of a shared region that domains exchange flags, counters and time
//! stamps through, touched only atomically: a peer writes them at any time.

use core::sync::atomic::{AtomicU64, Ordering};

use user::{sys, time, SharedRegion};

/// The first `n` 64-bit words of a shared region.
#[derive(Debug)]
pub struct Words {
    base: *mut u64,
    n: usize,
}

impl Words {
    /// The first `n` words of `region`; `None` if it is smaller.
    ///
    /// # Safety
    ///
    /// The region must be mapped read-write at `region.va` for the life of
    /// the value, and accessed in this domain only through it (atomically).
    pub unsafe fn new(region: SharedRegion, n: usize) -> Option<Self> {
        let bytes = (n as u64).checked_mul(8)?;
        (region.len >= bytes && region.va % 8 == 0).then_some(Self { base: region.va as *mut u64, n })
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.n, "word {i} of {}", self.n);
        // SAFETY: `new`'s contract: word `i` (< n) is mapped, 8-byte aligned,
        // and only ever accessed atomically, by us and by the peer.
        unsafe { AtomicU64::from_ptr(self.base.add(i)) }
    }

    pub fn get(&self, i: usize) -> u64 {
        self.word(i).load(Ordering::Acquire)
    }

    pub fn set(&self, i: usize, v: u64) {
        self.word(i).store(v, Ordering::Release);
    }

    /// Yields until word `i` satisfies `ok`; its value, or `None` if
    /// `patience_ms` passed first.
    pub fn wait_until(&self, i: usize, patience_ms: u64, ok: impl Fn(u64) -> bool) -> Option<u64> {
        let deadline = time::deadline_ms(patience_ms);
        loop {
            let v = self.get(i);
            if ok(v) {
                return Some(v);
            }
            if time::passed(deadline) {
                return None;
            }
            sys::yield_now();
        }
    }
}

/// The first capability whose start-page name begins with `prefix` (for
/// images that serve under several names, each given one such capability).
pub fn first_cap(start: &user::StartInfo, prefix: &str) -> Option<user::CapSlot> {
    start.caps().iter().find(|c| c.name().starts_with(prefix)).map(|c| user::CapSlot(c.slot))
}

/// A value and a total as `whole.frac` with `digits` decimals (no floats on
/// the target): `fixed(2, 1, 2)` is `(2, 0)` for "2.00".
pub fn fixed(value: u64, total: u64, digits: u32) -> (u64, u64) {
    let scale = 10u64.pow(digits);
    let scaled = (u128::from(value) * u128::from(scale) + u128::from(total) / 2) / u128::from(total.max(1));
    let scaled = u64::try_from(scaled).unwrap_or(u64::MAX);
    (scaled / scale, scaled % scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_rounds() {
        assert_eq!(fixed(2, 1, 2), (2, 0));
        assert_eq!(fixed(1999, 1000, 2), (2, 0));
        assert_eq!(fixed(1994, 1000, 2), (1, 99));
        assert_eq!(fixed(253, 1000, 1), (0, 3));
        assert_eq!(fixed(2534, 10000, 3), (0, 253));
        assert_eq!(fixed(5, 0, 2), (5, 0));
    }

    #[test]
    fn words_are_bounded_by_the_region() {
        let mut mem = [0u64; 4];
        let region = SharedRegion { slot: user::CapSlot(1), va: mem.as_mut_ptr() as u64, len: 32 };
        // SAFETY: `mem` outlives `w` and is only used through it.
        let w = unsafe { Words::new(region, 4) }.expect("fits");
        w.set(3, 9);
        assert_eq!(w.get(3), 9);
        // SAFETY: as above; it is refused anyway.
        assert!(unsafe { Words::new(region, 5) }.is_none());
    }
}
