//! A memory object: physically contiguous frames, owned by (and charged to)
//! one domain, mapped into any number of address spaces by whoever holds a
//! capability with the rights.

use x86_64::PhysAddr;

use super::pool::Ref;
use crate::mem::shootdown::Release;

/// A mapping of memory object `memory` into `domain` at `va`: a record
/// of its own (`state::Mappings`), paid for from the quota of the domain
/// mapped into, whose destruction removes it, so that an object has as
/// many mappings as their domains can pay for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub memory: Ref,
    pub domain: Ref,
    pub va: u64,
}

/// Where the frames came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backing {
    /// From the frame allocator: scrubbed and freed with the object.
    Allocated,
    /// A boot module: never freed.
    Boot,
    /// Allocated, but a shootdown of one of its mappings did not complete:
    /// a CPU may still cache translations to its frames, so they are never
    /// freed (leaked with the object, loudly, and counted).
    Unflushed,
}

impl Backing {
    /// The backing after a shootdown of one of the object's mappings that
    /// `completed` or not. Unflushed stays so when a later one completes:
    /// that one asks only the CPUs that use the space then, not the one
    /// that did not answer before and may cache translations still.
    pub const fn after_shootdown(self, completed: bool) -> Backing {
        match self {
            Backing::Allocated if !completed => Backing::Unflushed,
            b => b,
        }
    }

    /// What destroying the object does with its frames.
    pub const fn on_destroy(self) -> Release {
        match self {
            Backing::Allocated => Release::Free,
            Backing::Boot => Release::Keep,
            Backing::Unflushed => Release::Leak,
        }
    }
}

pub struct Memory {
    pub base: PhysAddr,
    pub pages: u64,
    /// Exact size in bytes (a module's length; else `pages * 4096`).
    pub bytes: u64,
    pub owner: Ref,
    pub backing: Backing,
    /// Grant epoch: copies made before the last revocation are stale.
    pub epoch: u32,
}
