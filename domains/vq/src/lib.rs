//! The device side of a virtio 1.x split virtqueue (virtio 1.2 §2.7), for
//! the backends that serve guests' queues directly (the VMM's control
//! plane hands them the queue's [`Layout`]; the blk and net domains pop the
//! chains and push the used entries).
//!
//! Everything in the rings and the descriptor tables is written by the
//! guest, which may change it at any time from another vCPU, so:
//!
//! - The layout is checked once ([`Queue::new`]): the size a power of two of
//!   at most [`MAX_SIZE`], each ring aligned as §2.7 says and wholly inside
//!   the memory the backend was given ([`GuestMemory::contains`]).
//! - Each index and descriptor is read once into a local and checked there
//!   (§2.7.5–2.7.7): an available index more than the queue size ahead of
//!   the device's (or behind it) breaks the queue for good (the device sets
//!   `DEVICE_NEEDS_RESET`); a head outside the table does too; a chain
//!   whose `next` leaves the table, that is longer than its table (so it
//!   loops), whose buffers leave the memory (the end computed without
//!   overflow), that has a device-readable buffer after a device-writable
//!   one, or whose writable bytes pass `u32::MAX`, is refused with its head
//!   ([`Error::head`]) so that the backend can complete it with an error.
//! - INDIRECT descriptors (§2.7.5.3) are walked only if
//!   `VIRTIO_RING_F_INDIRECT_DESC` was negotiated, one level deep, a table
//!   of a whole number of descriptors, at most [`MAX_SIZE`] of them, inside
//!   the memory, on a descriptor without NEXT, each of its descriptors
//!   checked like the others.
//! - Design choice (the spec is silent): a zero-length buffer carries no
//!   bytes, so it is walked (counted against the loop bound) but left out of
//!   the chain's segments; its address is not checked, as nothing is read
//!   or written there.
//! - A chain has at most `N` segments (the backend's choice, e.g. its
//!   `seg_max` plus header and status); a longer one is refused with its
//!   head, so a chain never costs the backend more than a bounded walk.
//!
//! Notifications (§2.7.7, §2.7.10): with `VIRTIO_RING_F_EVENT_IDX` the
//! device interrupts only when the used index passes `used_event` and asks
//! for kicks by writing `avail_event`; without it the guest's
//! `VIRTQ_AVAIL_F_NO_INTERRUPT` and the device's `VIRTQ_USED_F_NO_NOTIFY`.
//! A busy queue so costs neither side a notification per request.
//!
//! Memory ordering (§2.7.13): a read barrier (`fence(Acquire)`) between
//! reading the available index and the entries it covers, a write barrier
//! (`fence(Release)`) between writing used entries and the used index, and a
//! full fence (`fence(SeqCst)`) between publishing the used index (or the
//! device's notification wish) and reading the driver's event index (or
//! the available index again), as the spec's "suppression" sections need.

#![cfg_attr(not(any(test, feature = "mock")), no_std)]

pub mod blk;
mod chain;
mod desc;
mod layout;
mod mem;
#[cfg(any(test, feature = "mock"))]
pub mod mock;
mod queue;

pub use chain::{Chain, Segment};
pub use layout::{Layout, MAX_SIZE};
pub use mem::GuestMemory;
pub use queue::{Head, Queue};

/// `VIRTIO_RING_F_INDIRECT_DESC` (virtio 1.2 §6): indirect descriptor tables.
pub const F_INDIRECT_DESC: u64 = 1 << 28;
/// `VIRTIO_RING_F_EVENT_IDX` (virtio 1.2 §6): `used_event` and `avail_event`.
pub const F_EVENT_IDX: u64 = 1 << 29;

/// What is wrong with a queue or a chain the guest wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The queue size is not a power of two in 1..=[`MAX_SIZE`].
    BadSize,
    /// A ring's address is not aligned as §2.7 requires.
    Misaligned,
    /// A ring is not wholly inside the memory the backend was given.
    RingOutsideMemory,
    /// The available index moved more than the queue size past the
    /// device's, or backwards (the queue needs a reset).
    AvailIndexJump,
    /// An available ring entry names a descriptor outside the table (the
    /// queue needs a reset: there is no head to complete).
    HeadOutOfRange,
    /// A descriptor's `next` is outside its table.
    NextOutOfRange,
    /// The chain is longer than its table: it loops.
    Loop,
    /// A buffer (or an indirect table) is not wholly inside the memory.
    BufferOutsideMemory,
    /// A device-readable buffer after a device-writable one.
    ReadableAfterWritable,
    /// More device-writable bytes than a used entry's `u32` can say.
    TooLarge,
    /// More segments than the backend takes.
    TooManySegments,
    /// An INDIRECT descriptor without the feature negotiated.
    IndirectNotNegotiated,
    /// An INDIRECT descriptor inside an indirect table.
    IndirectNested,
    /// An INDIRECT descriptor with NEXT set too.
    IndirectWithNext,
    /// An indirect table of no descriptors, a partial one, or more than
    /// [`MAX_SIZE`].
    IndirectBadLength,
    /// The guest memory refused an access the layout said was inside it
    /// (the mapping changed under the backend).
    Memory,
}

/// A chain [`Queue::pop`] refused, with its head if it had a valid one:
/// the backend completes that head (with an error status where it can
/// write one, else a used length of 0); without a head the queue is broken
/// ([`Queue::broken`]) and the device needs a reset.
#[derive(Debug, PartialEq, Eq)]
pub struct Error {
    pub fault: Fault,
    pub head: Option<Head>,
}

#[cfg(test)]
mod blk_tests;
#[cfg(test)]
mod prop;
#[cfg(test)]
mod tests;
