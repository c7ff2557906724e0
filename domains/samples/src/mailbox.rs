//! The mailbox `shm-a` and `shm-b` share (the manifest's region `mailbox`):
//! a state word and a checksum, touched only through atomic accessors, as
//! memory a peer writes must be.
//!
//! The protocol: A maps its memory X into B read-only at [`X_VA`], writes
//! the checksum, then the state `MAPPED`; B checks X and sets `VERIFIED`;
//! A revokes X and sets `REVOKED`; B reads X again, which must fault.

use core::sync::atomic::{AtomicU64, Ordering};

use user::{sys, time};

/// Where A maps X into B.
pub const X_VA: u64 = 0x2000_0000_0000;
/// X's size.
pub const X_PAGES: u64 = 4;

pub const EMPTY: u64 = 0;
pub const MAPPED: u64 = 1;
pub const VERIFIED: u64 = 2;
pub const REVOKED: u64 = 3;

const STATE: usize = 0;
const CHECKSUM: usize = 1;

/// The byte at offset `i` of X.
pub const fn pattern(i: usize) -> u8 {
    (i * 7 + 3) as u8
}

/// FNV-1a, 64 bits.
pub fn checksum(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

pub struct Mailbox {
    base: *mut u64,
}

impl Mailbox {
    /// The mailbox at `va`.
    ///
    /// # Safety
    ///
    /// At least 16 bytes at `va` (8-byte aligned) stay mapped read-write in
    /// this domain for the mailbox's life.
    pub unsafe fn new(va: u64) -> Self {
        Self { base: va as *mut u64 }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        // SAFETY: `new`'s contract: the word is mapped, aligned, and only
        // ever accessed atomically (by us and by the peer).
        unsafe { AtomicU64::from_ptr(self.base.add(i)) }
    }

    pub fn state(&self) -> u64 {
        self.word(STATE).load(Ordering::Acquire)
    }

    pub fn set_state(&self, s: u64) {
        self.word(STATE).store(s, Ordering::Release);
    }

    pub fn checksum(&self) -> u64 {
        self.word(CHECKSUM).load(Ordering::Acquire)
    }

    pub fn set_checksum(&self, c: u64) {
        self.word(CHECKSUM).store(c, Ordering::Release);
    }

    /// Yields until the state is `state`; false if `patience_ms` passed first.
    pub fn wait_for(&self, state: u64, patience_ms: u64) -> bool {
        let deadline = time::deadline_ms(patience_ms);
        while self.state() != state {
            if time::passed(deadline) {
                return false;
            }
            sys::yield_now();
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_and_its_checksum_are_fixed() {
        assert_eq!((pattern(0), pattern(1), pattern(37)), (3, 10, 6));
        assert_eq!(checksum([]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(checksum(*b"a"), 0xaf63_dc4c_8601_ec8c);
        let mut words = [0u64; 2];
        // SAFETY: `words` outlives the mailbox and is only used through it.
        let m = unsafe { Mailbox::new(words.as_mut_ptr() as u64) };
        m.set_checksum(7);
        m.set_state(MAPPED);
        assert_eq!((m.state(), m.checksum()), (MAPPED, 7));
    }
}
