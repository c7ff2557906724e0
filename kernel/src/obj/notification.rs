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
#[path = "../../../kernel-tests/unit/obj/notification.rs"]
mod tests;
