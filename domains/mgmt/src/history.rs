//! A guest's console log as `mgmt` keeps it for `ryokan console`: the last
//! [`KEPT`] bytes the guest sent, older ones overwritten, each byte at an
//! offset that counts every byte ever sent (across the guest's restarts).
//! A reader asks from an offset and learns where what it got starts: later
//! than asked when the bytes between were overwritten, so it knows how
//! much it missed. (xenconsoled keeps a guest's output the same way, in a
//! buffer of its own beside the ring it drains.)

use alloc::boxed::Box;

/// The bytes kept.
pub const KEPT: usize = 8192;

pub struct History {
    buf: Box<[u8; KEPT]>,
    /// Bytes ever pushed: the offset after the newest.
    total: u64,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    pub fn new() -> Self {
        Self { buf: Box::new([0; KEPT]), total: 0 }
    }

    /// The offset after the newest byte.
    pub fn end(&self) -> u64 {
        self.total
    }

    /// The oldest offset still kept.
    pub fn start(&self) -> u64 {
        self.total.saturating_sub(KEPT as u64)
    }

    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf[(self.total % KEPT as u64) as usize] = b;
            self.total += 1;
        }
    }

    /// Copies what is kept from offset `from` on into `out`, as much as it
    /// holds; returns the offset of its first byte (`from`, or the oldest
    /// kept if that is later; the end if `from` is past it) and how many
    /// bytes it wrote.
    pub fn read(&self, from: u64, out: &mut [u8]) -> (u64, usize) {
        let start = from.clamp(self.start(), self.total);
        let n = usize::try_from(self.total - start).unwrap_or(usize::MAX).min(out.len());
        for (i, o) in out.iter_mut().take(n).enumerate() {
            *o = self.buf[((start + i as u64) % KEPT as u64) as usize];
        }
        (start, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(h: &History, from: u64, max: usize) -> (u64, std::vec::Vec<u8>) {
        let mut out = vec![0; max];
        let (start, n) = h.read(from, &mut out);
        out.truncate(n);
        (start, out)
    }

    #[test]
    fn reads_from_an_offset_in_order() {
        let mut h = History::new();
        assert_eq!(read(&h, 0, 10), (0, vec![]));
        h.push(b"hello ");
        h.push(b"world");
        assert_eq!(read(&h, 0, 100), (0, b"hello world".to_vec()));
        assert_eq!(read(&h, 6, 3), (6, b"wor".to_vec()), "as much as the reader holds");
        assert_eq!(read(&h, 11, 10), (11, vec![]), "nothing new");
        assert_eq!(read(&h, 500, 10), (11, vec![]), "a reader ahead of the log is told where it ends");
    }

    #[test]
    fn the_oldest_is_overwritten_and_the_reader_told() {
        let mut h = History::new();
        let all: std::vec::Vec<u8> = (0..3 * KEPT + 7).map(|i| (i % 251) as u8).collect();
        for chunk in all.chunks(100) {
            h.push(chunk);
        }
        assert_eq!(h.end(), all.len() as u64);
        let (start, got) = read(&h, 0, 2 * KEPT);
        assert_eq!(start, (all.len() - KEPT) as u64, "what was overwritten is skipped");
        assert_eq!(got, all[all.len() - KEPT..]);
        let (start, got) = read(&h, all.len() as u64 - 5, 100);
        assert_eq!((start, &got[..]), (all.len() as u64 - 5, &all[all.len() - 5..]));
    }
}
