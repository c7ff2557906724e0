//! A pool of DMA memory: offsets `start..end`, taken page by page from the
//! bottom, given back all at once when every piece taken has been. A take
//! the pool has no room for is refused (`None`) and takes nothing.

use core::sync::atomic::{AtomicU64, Ordering};

pub const PAGE: u64 = 4096;

/// `bytes` rounded up to whole pages (the most pages a `u64` holds past it).
pub const fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE).saturating_mul(PAGE)
}

pub struct Pool {
    start: u64,
    end: u64,
    /// The next free offset, and the pieces taken and not given back.
    next: AtomicU64,
    live: AtomicU64,
}

impl Pool {
    pub const fn new(start: u64, end: u64) -> Self {
        Self { start, end, next: AtomicU64::new(start), live: AtomicU64::new(0) }
    }

    /// Takes `bytes` (page-rounded): the piece's offset, or `None` if the
    /// pool has not that much room left.
    pub fn take(&self, bytes: u64) -> Option<u64> {
        let bytes = pages(bytes);
        let mut at = self.next.load(Ordering::Relaxed);
        loop {
            let to = at.checked_add(bytes).filter(|&to| to <= self.end)?;
            match self.next.compare_exchange(at, to, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    self.live.fetch_add(1, Ordering::Relaxed);
                    return Some(at);
                }
                Err(now) => at = now,
            }
        }
    }

    /// The end of what has been taken (the pool's start if nothing is).
    pub fn taken_end(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// The bytes left to take.
    pub fn room(&self) -> u64 {
        self.end.saturating_sub(self.next.load(Ordering::Relaxed))
    }

    /// One piece given back; once every piece is, all the pool is free
    /// again. A give-back with nothing taken is ignored.
    pub fn give_back(&self) {
        let was = self.live.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if was == Ok(1) {
            self.next.store(self.start, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_whole_pages_from_the_bottom() {
        let p = Pool::new(PAGE, 4 * PAGE);
        assert_eq!(p.take(1), Some(PAGE));
        assert_eq!(p.take(PAGE + 1), Some(2 * PAGE));
        assert_eq!(p.room(), 0);
    }

    #[test]
    fn a_take_past_the_end_is_refused_and_takes_nothing() {
        let p = Pool::new(0, 3 * PAGE);
        assert_eq!(p.take(2 * PAGE), Some(0));
        assert_eq!(p.take(2 * PAGE), None);
        assert_eq!(p.room(), PAGE, "the refused take took nothing");
        assert_eq!(p.take(PAGE), Some(2 * PAGE));
        assert_eq!(p.take(1), None);
        assert_eq!(p.take(u64::MAX), None, "no wrap");
    }

    #[test]
    fn free_again_only_once_every_piece_is_given_back() {
        let p = Pool::new(PAGE, 3 * PAGE);
        p.give_back(); // nothing taken: ignored
        assert_eq!((p.take(PAGE), p.take(PAGE), p.take(1)), (Some(PAGE), Some(2 * PAGE), None));
        p.give_back();
        assert_eq!(p.take(1), None, "one piece still out");
        p.give_back();
        assert_eq!(p.room(), 2 * PAGE);
        assert_eq!(p.take(2 * PAGE), Some(PAGE));
    }
}
