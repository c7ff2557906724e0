//! One direction of a shared-memory link: an `ipc::ring` in a shared region
//! plus two notifications as doorbells, one each way. The sender rings
//! `data` when the ring goes non-empty, the receiver rings `space` when it
//! goes non-full; each side sleeps on its own doorbell only after the
//! ring's `prepare_to_sleep` says so, so no wake-up is lost and most are
//! suppressed. Also the stream `ring-tx` sends and its checksum.

use ipc::ring::{Consumer, Producer, Region, RingLayout, Sleep};
use ipc::{CapSlot, Error};
use user::{sys, SharedRegion};

/// The demo stream's ring: 32 slots of 1 KiB payload (33 KiB of a 64 KiB region).
pub const STREAM: RingLayout = layout(32, 1032);
/// The demo stream's payload per message.
pub const CHUNK: usize = 1024;
/// The bench's ring: 64 slots of 64-byte payloads.
pub const SMALL: RingLayout = layout(64, 72);

const fn layout(capacity: u32, slot_size: u32) -> RingLayout {
    match RingLayout::new(capacity, slot_size) {
        Ok(l) => l,
        Err(_) => panic!("bad ring layout"),
    }
}

/// The doorbells of one side: the one it sleeps on, and the peer's.
#[derive(Clone, Copy, Debug)]
pub struct Bells {
    /// Ours: we wait on it (needs the `wait` right).
    pub mine: CapSlot,
    /// The peer's: we signal it.
    pub peer: CapSlot,
}

/// The ring memory of `region`.
///
/// # Safety
///
/// The region must be mapped read-write at `region.va` for the rest of the
/// domain's life and touched in this domain only through rings made from it.
pub unsafe fn region(region: SharedRegion) -> Result<Region<'static>, Error> {
    let len = usize::try_from(region.len).map_err(|_| Error::Malformed)?;
    // SAFETY: the caller's contract.
    unsafe { Region::from_raw(region.va as *mut u8, len) }
}

/// Sends `payload`, sleeping on our doorbell while the ring is full.
pub fn send(p: &mut Producer<'_>, bells: Bells, payload: &[u8]) -> Result<(), Error> {
    loop {
        match p.push(payload) {
            Ok(signal) => {
                if signal.is_needed() {
                    sys::signal(bells.peer, 1)?;
                }
                return Ok(());
            }
            Err(Error::WouldBlock) => {
                if p.prepare_to_sleep()? == Sleep::Wait {
                    sys::wait(bells.mine)?;
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Receives the next message into `out`, sleeping on our doorbell while the
/// ring is empty; returns its length.
pub fn recv(c: &mut Consumer<'_>, bells: Bells, out: &mut [u8]) -> Result<usize, Error> {
    loop {
        match c.pop(out) {
            Ok((len, signal)) => {
                if signal.is_needed() {
                    sys::signal(bells.peer, 1)?;
                }
                return Ok(len);
            }
            Err(Error::WouldBlock) => {
                if c.prepare_to_sleep()? == Sleep::Wait {
                    sys::wait(bells.mine)?;
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// FNV-1a, 64 bits, fed incrementally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Fills `buf` with the next bytes of the stream from `state` (xorshift64).
pub fn fill(state: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_fit_their_regions() {
        assert!(STREAM.bytes() <= 64 * 1024 && STREAM.max_payload() >= CHUNK);
        assert!(SMALL.bytes() <= 8 * 1024 && SMALL.max_payload() >= 64);
    }

    #[test]
    fn the_stream_is_deterministic_and_the_checksum_is_fnv1a() {
        let (mut a, mut b) = (1u64, 1u64);
        let (mut x, mut y) = ([0u8; 20], [0u8; 20]);
        fill(&mut a, &mut x);
        fill(&mut b, &mut y);
        assert_eq!(x, y);
        assert_ne!(x[..8], x[8..16]);
        let mut h = Fnv::default();
        h.update(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }
}
