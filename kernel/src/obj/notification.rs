//! A notification: a word of signal bits, for everything asynchronous
//! (interrupts, timers, a supervised domain's death, a peer's doorbell).

use super::pool::Ref;

pub struct Notification {
    pub owner: Ref,
    /// Bits signalled and not yet collected.
    pub word: u64,
    /// The thread blocked in `Wait`.
    pub waiter: Option<Ref>,
    /// The thread it is bound to (`NotificationBind`), whose receives a
    /// signal ends.
    pub bound: Option<Ref>,
}

impl Notification {
    pub const fn new(owner: Ref) -> Self {
        Self { owner, word: 0, waiter: None, bound: None }
    }

    /// ORs in `bits`; returns the word for the waiter, taken, if one waits.
    pub fn signal(&mut self, bits: u64) -> Option<(Ref, u64)> {
        self.word |= bits;
        let w = self.waiter.take()?;
        Some((w, core::mem::take(&mut self.word)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_accumulate_until_taken() {
        let r = Ref { index: 0, generation: 0 };
        let mut n = Notification::new(r);
        assert_eq!(n.signal(1), None);
        assert_eq!(n.signal(4), None);
        assert_eq!(n.word, 5);
        n.waiter = Some(r);
        assert_eq!(n.signal(2), Some((r, 7)));
        assert_eq!((n.word, n.waiter), (0, None));
    }
}
