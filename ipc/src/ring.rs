//! A single-producer, single-consumer ring of fixed-size slots in a shared
//! Memory object, with notification suppression, that treats the peer as
//! hostile.
//!
//! # Layout
//!
//! The region (the header is `#[repr(C)]`; every field a little-endian `u32`;
//! offsets in bytes):
//!
//! | offset                   | field              | written by |
//! |--------------------------|--------------------|------------|
//! | 0                        | producer index     | producer   |
//! | 4                        | `producer_waiting` | producer   |
//! | 64                       | consumer index     | consumer   |
//! | 68                       | `consumer_waiting` | consumer   |
//! | 128 + i * `slot_size`    | slot `i`: length   | producer   |
//! | 132 + i * `slot_size`    | slot `i`: payload  | producer   |
//!
//! The header is two 64-byte cache lines, one per writer, so neither side
//! writes a line the other writes. Indices are free-running `u32` counters;
//! index `n` lives in slot `n & (capacity - 1)`. The ring is empty when the
//! indices are equal and full when they differ by `capacity`. A slot holds a
//! `u32` length, then at most `slot_size - 4` payload bytes. A region should
//! be page-aligned (Memory objects are); [`Region::from_raw`] insists on 64.
//!
//! # Trust
//!
//! Each handle keeps its own index locally and never reads it back. It reads
//! the peer's index (when its last view says empty or full, and in
//! `prepare_to_sleep`) and checks it: the consumer index may only move
//! forward and never past the producer's; the producer index may only move
//! forward and never more than `capacity` ahead of the consumer's. A slot
//! length must be at most `slot_size - 4`, and is read once. A violation is
//! [`Error::PeerMisbehaved`] and changes nothing: the handle keeps its last
//! good view (a bad length leaves the message unconsumed). The error is not
//! sticky: every call reads the shared memory again, so calls fail for as long
//! as the peer leaves the bad value there and work again once it is valid.
//! Whether to give up on such a peer is the caller's policy. A peer can still
//! send garbage *within* those bounds (it owns what it writes); it can never
//! make us panic, touch memory outside the region, or lose our own place.
//!
//! Shared memory is touched only through atomic accesses to `AtomicU32`s
//! (STYLE.md habit 6); the peer's concurrent writes, however wild, are races
//! on atomics, not undefined behaviour. A ring has one producer and one
//! consumer; making a handle resets its side's header line, so a restarted
//! side needs a fresh ring (its peer would see its index go backwards).
//!
//! # Waking
//!
//! [`Producer::push`] and [`Consumer::pop`] return a [`Signal`]: signal the
//! peer's notification only when it says so. A side about to sleep calls
//! `prepare_to_sleep`, which raises its `*_waiting` flag and then looks at the
//! ring again; it sleeps only on [`Sleep::Wait`]. The flag stays up until that
//! side next moves a message. The other side, after publishing its index,
//! reads the flag and the sleeper's index, and asks for a signal when the flag
//! is up and the sleeper had taken everything (the ring went empty → non-empty)
//! or the ring had been full (full → non-full). A consumer, say:
//!
//! ```text
//! loop {
//!     match consumer.pop(&mut buf) {
//!         Ok((n, signal)) => { if signal.is_needed() { signal(producer) }; use(&buf[..n]) }
//!         Err(WouldBlock) => if consumer.prepare_to_sleep()? == Sleep::Wait { wait(own) },
//!         Err(e) => return Err(e), // PeerMisbehaved: the caller's policy
//!     }
//! }
//! ```
//!
//! Why no wake-up is lost: both sides do "store (index or flag),
//! `fence(SeqCst)`, load (the other's flag or index)". Of the two fences one
//! comes first in the single order of SeqCst fences, so either the sleeper's
//! re-check sees the new message (or free slot) and does not sleep, or the
//! waker sees the flag and the sleeper's final index and signals (or an
//! earlier push or pop already did). Notifications must latch (a signal sent
//! before the wait is kept), as Ryokan's do. That fence is the price: one per
//! push or pop (an `mfence` on x86). The producer index is stored `Release`
//! and loaded `Acquire`, so a slot's contents travel with it; the consumer
//! index likewise, so the consumer is done reading a slot before the producer
//! fills it again. The loads that decide a signal are only compared, never
//! trusted: a peer that lies in them can only lose its own wake-up or get a
//! spare one.

#![allow(unexpected_cfgs)] // `cfg(loom)` for the model checker; see ipc/tests/loom.rs.

use core::fmt;
use core::mem::{offset_of, size_of};
use core::sync::atomic::Ordering::{self, Acquire, Relaxed, Release, SeqCst};
#[cfg(not(loom))]
use core::sync::atomic::{fence, AtomicU32};
#[cfg(loom)]
use loom::sync::atomic::{fence, AtomicU32};

use crate::error::Error;

/// The header's layout. Only its offsets are used: the ring never makes a
/// reference to it, since the peer writes it.
#[repr(C)]
struct Header {
    producer_index: u32,
    producer_waiting: u32,
    _producer_line: [u8; 56],
    consumer_index: u32,
    consumer_waiting: u32,
    _consumer_line: [u8; 56],
}

/// Bytes before the first slot: two cache lines.
pub const HEADER_BYTES: usize = size_of::<Header>();
const _: () = assert!(HEADER_BYTES == 128);
/// Bytes of a slot's length field.
const LEN_BYTES: usize = 4;

// Word offsets of the header fields.
const PRODUCER_INDEX: usize = offset_of!(Header, producer_index) / 4;
const PRODUCER_WAITING: usize = offset_of!(Header, producer_waiting) / 4;
const CONSUMER_INDEX: usize = offset_of!(Header, consumer_index) / 4;
const CONSUMER_WAITING: usize = offset_of!(Header, consumer_waiting) / 4;

/// The shape of a ring: how many slots, how big each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLayout {
    capacity: u32,
    slot_size: u32,
}

impl RingLayout {
    /// A checked layout: `capacity` a power of two, `slot_size` at least 8
    /// and a multiple of 8, the whole region addressable. Else `Malformed`.
    pub const fn new(capacity: u32, slot_size: u32) -> Result<Self, Error> {
        if !capacity.is_power_of_two() || slot_size < 8 || slot_size & 7 != 0 {
            return Err(Error::Malformed);
        }
        match (capacity as usize).checked_mul(slot_size as usize) {
            Some(slots) if slots <= isize::MAX as usize - HEADER_BYTES => Ok(Self { capacity, slot_size }),
            _ => Err(Error::Malformed),
        }
    }

    pub const fn capacity(self) -> u32 {
        self.capacity
    }

    pub const fn slot_size(self) -> u32 {
        self.slot_size
    }

    /// The largest payload a slot holds.
    pub const fn max_payload(self) -> usize {
        self.slot_size as usize - LEN_BYTES
    }

    /// The size of the region the ring needs, in bytes.
    pub const fn bytes(self) -> usize {
        HEADER_BYTES + self.capacity as usize * self.slot_size as usize
    }

    /// The word offset of the slot holding `index`.
    fn slot(self, index: u32) -> usize {
        (HEADER_BYTES + (index & (self.capacity - 1)) as usize * self.slot_size as usize) / 4
    }
}

/// The shared memory under a ring: 32-bit words, only ever accessed
/// atomically, since the peer may write any of them at any time.
#[derive(Clone, Copy)]
pub struct Region<'a> {
    words: &'a [AtomicU32],
}

impl<'a> Region<'a> {
    /// A region over words we own (host tests, the loom model).
    pub fn from_words(words: &'a [AtomicU32]) -> Self {
        Self { words }
    }

    /// A region over `len` bytes of mapped shared memory at `base` (the tail
    /// beyond a multiple of 4 is ignored). `Misaligned` unless `base` is
    /// 64-byte aligned.
    ///
    /// # Safety
    ///
    /// `base..base + len` must be mapped readable and writable and stay so
    /// for `'a` (the life of every handle made from the region), and must not
    /// be accessed in this address space other than atomically. What the peer
    /// does to it from elsewhere is fine.
    #[cfg(not(loom))]
    pub unsafe fn from_raw(base: *mut u8, len: usize) -> Result<Self, Error> {
        if base.is_null() || base.addr() & 63 != 0 {
            return Err(Error::Misaligned);
        }
        // SAFETY: the caller promises the bytes are mapped, writable, live for
        // 'a and only accessed atomically; `base` is non-null and aligned for
        // `AtomicU32`, which has the size of `u32` and allows shared mutation.
        let words = unsafe { core::slice::from_raw_parts(base.cast::<AtomicU32>(), len / 4) };
        Ok(Self { words })
    }

    /// The size in bytes.
    pub fn bytes(self) -> usize {
        self.words.len() * 4
    }

    // Handles check `layout.bytes() <= self.bytes()` when made, so every word
    // they name is in bounds; indexing cannot fail.
    fn load(self, word: usize, order: Ordering) -> u32 {
        self.words[word].load(order)
    }

    fn store(self, word: usize, value: u32, order: Ordering) {
        self.words[word].store(value, order)
    }

    /// Writes `bytes` from word `at` on, padding the last word with zeros.
    fn write(self, at: usize, bytes: &[u8]) {
        for (word, c) in (at..).zip(bytes.chunks(4)) {
            let mut le = [0; 4];
            le[..c.len()].copy_from_slice(c);
            self.store(word, u32::from_le_bytes(le), Relaxed);
        }
    }

    /// Fills `out` from word `at` on.
    fn read(self, at: usize, out: &mut [u8]) {
        for (word, c) in (at..).zip(out.chunks_mut(4)) {
            c.copy_from_slice(&self.load(word, Relaxed).to_le_bytes()[..c.len()]);
        }
    }
}

impl fmt::Debug for Region<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({} bytes)", self.bytes())
    }
}

/// Whether the caller must signal the peer's notification now.
#[must_use = "the peer may be asleep until signalled"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Needed,
    Suppressed,
}

impl Signal {
    fn needed_if(needed: bool) -> Self {
        if needed {
            Signal::Needed
        } else {
            Signal::Suppressed
        }
    }

    pub fn is_needed(self) -> bool {
        self == Signal::Needed
    }
}

/// What `prepare_to_sleep` found after raising the waiting flag.
#[must_use = "sleeping on `Retry` may sleep forever"]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sleep {
    /// Still nothing to do: wait on the notification; the peer will signal.
    Wait,
    /// The ring changed meanwhile: try again instead of sleeping.
    Retry,
}

/// Makes a handle: checks the region is big enough and resets the handle's
/// own header line.
fn attach(
    region: Region<'_>,
    layout: RingLayout,
    index: usize,
    waiting: usize,
    start: u32,
) -> Result<(), Error> {
    if region.bytes() < layout.bytes() {
        return Err(Error::Malformed);
    }
    region.store(waiting, 0, Relaxed);
    region.store(index, start, Release);
    Ok(())
}

/// The writing end.
#[derive(Debug)]
pub struct Producer<'a> {
    region: Region<'a>,
    layout: RingLayout,
    /// Our index: messages pushed so far (from the start index).
    produced: u32,
    /// The consumer's index as last read and checked.
    consumed: u32,
    /// Our `producer_waiting` flag is up.
    waiting: bool,
}

impl<'a> Producer<'a> {
    /// The producer of an empty ring whose indices start at 0.
    pub fn new(region: Region<'a>, layout: RingLayout) -> Result<Self, Error> {
        Self::starting_at(region, layout, 0)
    }

    /// The producer of an empty ring whose indices start at `start`; the
    /// consumer must be made with the same `start`. `Malformed` if the region
    /// is smaller than `layout.bytes()`.
    pub fn starting_at(region: Region<'a>, layout: RingLayout, start: u32) -> Result<Self, Error> {
        attach(region, layout, PRODUCER_INDEX, PRODUCER_WAITING, start)?;
        Ok(Self { region, layout, produced: start, consumed: start, waiting: false })
    }

    pub fn layout(&self) -> RingLayout {
        self.layout
    }

    /// Copies `payload` into the next slot and publishes it. `Malformed` if it
    /// is longer than `layout.max_payload()`, `WouldBlock` if the ring is full.
    pub fn push(&mut self, payload: &[u8]) -> Result<Signal, Error> {
        if payload.len() > self.layout.max_payload() {
            return Err(Error::Malformed);
        }
        if self.is_full() {
            self.refresh()?;
            if self.is_full() {
                return Err(Error::WouldBlock);
            }
        }
        let slot = self.layout.slot(self.produced);
        self.region.store(slot, payload.len() as u32, Relaxed);
        self.region.write(slot + 1, payload);
        let before = self.produced;
        self.produced = before.wrapping_add(1);
        if self.waiting {
            self.waiting = false;
            self.region.store(PRODUCER_WAITING, 0, Relaxed);
        }
        self.region.store(PRODUCER_INDEX, self.produced, Release);
        fence(SeqCst); // Pairs with the consumer's in `prepare_to_sleep`.
        let asked = self.region.load(CONSUMER_WAITING, Relaxed) != 0;
        Ok(Signal::needed_if(asked && self.region.load(CONSUMER_INDEX, Relaxed) == before))
    }

    /// Raises `producer_waiting`, then looks again: `Wait` if the ring is
    /// still full. Call it after `push` said `WouldBlock`, before sleeping.
    pub fn prepare_to_sleep(&mut self) -> Result<Sleep, Error> {
        self.waiting = true;
        self.region.store(PRODUCER_WAITING, 1, Relaxed);
        fence(SeqCst); // Pairs with the consumer's in `pop`.
        self.refresh()?;
        Ok(if self.is_full() { Sleep::Wait } else { Sleep::Retry })
    }

    fn is_full(&self) -> bool {
        self.produced.wrapping_sub(self.consumed) == self.layout.capacity
    }

    /// Reads and checks the consumer's index: forward, and not past ours.
    fn refresh(&mut self) -> Result<(), Error> {
        let consumed = self.region.load(CONSUMER_INDEX, Acquire);
        if consumed.wrapping_sub(self.consumed) > self.produced.wrapping_sub(self.consumed) {
            return Err(Error::PeerMisbehaved);
        }
        self.consumed = consumed;
        Ok(())
    }
}

/// The reading end.
#[derive(Debug)]
pub struct Consumer<'a> {
    region: Region<'a>,
    layout: RingLayout,
    /// Our index: messages popped so far (from the start index).
    consumed: u32,
    /// The producer's index as last read and checked.
    produced: u32,
    /// Our `consumer_waiting` flag is up.
    waiting: bool,
}

impl<'a> Consumer<'a> {
    /// The consumer of an empty ring whose indices start at 0.
    pub fn new(region: Region<'a>, layout: RingLayout) -> Result<Self, Error> {
        Self::starting_at(region, layout, 0)
    }

    /// The consumer of an empty ring whose indices start at `start`; the
    /// producer must be made with the same `start`. `Malformed` if the region
    /// is smaller than `layout.bytes()`.
    pub fn starting_at(region: Region<'a>, layout: RingLayout, start: u32) -> Result<Self, Error> {
        attach(region, layout, CONSUMER_INDEX, CONSUMER_WAITING, start)?;
        Ok(Self { region, layout, consumed: start, produced: start, waiting: false })
    }

    pub fn layout(&self) -> RingLayout {
        self.layout
    }

    /// Copies the next message into `out` and frees its slot; returns its
    /// length. `WouldBlock` if the ring is empty; `Malformed` (nothing
    /// consumed) if `out` is too short, which an `out` of
    /// `layout.max_payload()` bytes never is; `PeerMisbehaved` (nothing
    /// consumed) for a length beyond `layout.max_payload()`.
    pub fn pop(&mut self, out: &mut [u8]) -> Result<(usize, Signal), Error> {
        if self.produced == self.consumed {
            self.refresh()?;
            if self.produced == self.consumed {
                return Err(Error::WouldBlock);
            }
        }
        let slot = self.layout.slot(self.consumed);
        let len = self.region.load(slot, Relaxed) as usize; // Read once: the peer may change it.
        if len > self.layout.max_payload() {
            return Err(Error::PeerMisbehaved);
        }
        let Some(out) = out.get_mut(..len) else {
            return Err(Error::Malformed);
        };
        self.region.read(slot + 1, out);
        let before = self.consumed;
        self.consumed = before.wrapping_add(1);
        if self.waiting {
            self.waiting = false;
            self.region.store(CONSUMER_WAITING, 0, Relaxed);
        }
        self.region.store(CONSUMER_INDEX, self.consumed, Release);
        fence(SeqCst); // Pairs with the producer's in `prepare_to_sleep`.
        let asked = self.region.load(PRODUCER_WAITING, Relaxed) != 0;
        let full = before.wrapping_add(self.layout.capacity);
        Ok((len, Signal::needed_if(asked && self.region.load(PRODUCER_INDEX, Relaxed) == full)))
    }

    /// Whether the ring looks empty: the peer's index read once and not
    /// checked, so a hint only (that [`Self::pop`] would say `WouldBlock`,
    /// which checks), to skip the work of a pop where nothing came.
    #[inline(always)]
    pub fn looks_empty(&self) -> bool {
        self.produced == self.consumed && self.region.load(PRODUCER_INDEX, Relaxed) == self.consumed
    }

    /// Raises `consumer_waiting`, then looks again: `Wait` if the ring is
    /// still empty. Call it after `pop` said `WouldBlock`, before sleeping.
    pub fn prepare_to_sleep(&mut self) -> Result<Sleep, Error> {
        self.waiting = true;
        self.region.store(CONSUMER_WAITING, 1, Relaxed);
        fence(SeqCst); // Pairs with the producer's in `push`.
        self.refresh()?;
        Ok(if self.produced == self.consumed { Sleep::Wait } else { Sleep::Retry })
    }

    /// Reads and checks the producer's index: forward, and at most
    /// `capacity` ahead of ours.
    fn refresh(&mut self) -> Result<(), Error> {
        let produced = self.region.load(PRODUCER_INDEX, Acquire);
        let limit = self.consumed.wrapping_add(self.layout.capacity);
        if produced.wrapping_sub(self.produced) > limit.wrapping_sub(self.produced) {
            return Err(Error::PeerMisbehaved);
        }
        self.produced = produced;
        Ok(())
    }
}
