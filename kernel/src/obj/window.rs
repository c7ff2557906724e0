//! A pool of kernel objects of one kind whose memory is paid for by the
//! domains that create them (as seL4 retypes untyped memory), not a fixed
//! static array: the step from `obj::pool` that issue #10 asks for.
//!
//! The pool reserves a window of kernel virtual addresses large enough for
//! all `N` slots, and backs it on demand, one *chunk* (a few pages) at a
//! time. A chunk belongs to one owner (an account): only that owner's
//! objects are put in it, and the frames behind it are charged to its
//! memory quota, so an owner's objects cost its own pages and no owner can
//! take room another has paid for. `N` can be large (thousands) and costs
//! only one word a slot until slots are used.
//!
//! Each slot's word (a static array, always mapped) holds its generation,
//! with [`LIVE`] set while an object lives there. A lookup compares that
//! word with the reference's generation and `LIVE`, one compare, and then
//! reads the slot at `base + i * stride` (no chunk-table walk): a live
//! slot's chunk is always backed. The stride is the object's size rounded
//! up to a power of two (a page or more: whole chunks), or more where a
//! pool must have room for more owners than its slots fill chunks
//! ([`chunks_for`]), so that slots tile
//! chunks exactly and the address is a shift: that costs up to half of
//! each chunk for some sizes, paid from the owner's quota, where dividing
//! by an odd number of slots a chunk cost an IPC round trip 30
//! instructions (+3.6 % on a guest exit answered by its VMM).
//! A stale reference stays recognisable forever: a slot whose generation
//! reaches [`WORN`] (after 2^31 - 1 reuses) is never used again, so no
//! generation is handed out twice and no stale capability (kept in a
//! table that was never swept) can come to name a later object.
//!
//! When a chunk's last object goes, the chunk is unmapped, the window's
//! translations are shot down on every CPU, and only then are its frames
//! scrubbed, freed and refunded to the owner. If the shootdown is not
//! answered, a CPU may still reach the frames: the chunk is retired, its
//! frames are never freed and its window place never reused (issue #9,
//! item 8). Its pages stay charged to the owner, so that what a failed
//! shootdown costs is bounded by the owner's quota.
//!
//! Freeing an emptied chunk at once means a domain that makes and destroys
//! one object in a loop maps and shoots down a chunk each time; creation
//! and destruction are no fast path, and keeping no cache keeps a
//! domain's quota exact.

use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ptr;

use ipc::Error;

use super::domain::Quota;
use super::pool::Ref;

/// A page of the window.
pub const PAGE: usize = 4096;

/// The most pages in one chunk.
pub const MAX_CHUNK_PAGES: usize = 8;

/// Set in a slot's word while an object lives there; the rest is its
/// generation.
pub const LIVE: u32 = 1 << 31;

/// The last generation: a slot that reaches it is worn out, never live again.
pub const WORN: u32 = LIVE - 1;

/// Whether a slot with word `w` may take a new object.
#[inline(always)]
fn usable(w: u32) -> bool {
    w & LIVE == 0 && w != WORN
}

/// The memory under a pool's window: on the machine the kernel's page
/// tables (every CPU shares the window's translations), on the host a fake.
pub trait Backing {
    /// The window's first byte (page aligned); offsets are from here.
    fn base(&self) -> *mut u8;
    /// Maps `pages` fresh zeroed frames at `offset`; false, and nothing
    /// mapped, if there are not that many frames.
    fn back(&mut self, offset: usize, pages: usize) -> bool;
    /// Unmaps the `pages` at `offset`, putting the frames that were there
    /// into `frames`.
    fn unmap(&mut self, offset: usize, pages: usize, frames: &mut [u64; MAX_CHUNK_PAGES]);
    /// Flushes the window's translations on every CPU; true if every CPU
    /// answered.
    fn shootdown(&mut self) -> bool;
    /// Scrubs and frees frames that no CPU can reach any more.
    fn free(&mut self, frames: &[u64]);
    /// Gives up frames that a CPU may still reach: never freed, counted.
    fn retire(&mut self, frames: &[u64]);
}

/// What a chunk of the window is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunk {
    /// Not mapped, free for any owner.
    Unbacked,
    /// Mapped, charged to `owner`, with `live` objects in it.
    Backed { owner: u16, live: u16 },
    /// Unmapped after a shootdown that did not complete: never used again.
    Retired,
}

/// What a destruction means for the owner's quota: `pages` to give back
/// to `owner` (none unless its chunk was freed), `retired` if its chunk's
/// frames are lost for good.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refund {
    pub owner: u16,
    pub pages: u64,
    pub retired: bool,
}

/// The pages of one chunk of `T`s: enough for one object, at least one.
pub const fn chunk_pages<T>() -> usize {
    let pages = size_of::<T>().div_ceil(PAGE);
    if pages == 0 {
        1
    } else {
        pages
    }
}

/// The distance between two slots of `T`s: its size rounded up to a power
/// of two, or a whole chunk.
pub const fn stride<T>() -> usize {
    if size_of::<T>() <= PAGE {
        size_of::<T>().next_power_of_two()
    } else {
        chunk_pages::<T>() * PAGE
    }
}

/// The objects one chunk of `T`s holds.
pub const fn per_chunk<T>() -> usize {
    chunk_pages::<T>() * PAGE / stride::<T>()
}

/// The chunks a pool of `n` `T`s needs (its `C`).
pub const fn chunks<T>(n: usize) -> usize {
    n.div_ceil(per_chunk::<T>())
}

/// The `T`s a chunk of a pool of `n` in `c` chunks holds: as many as fit,
/// halved until the `n` need `c` chunks (no fewer: a chunk is one owner's).
const fn per<T>(n: usize, c: usize) -> usize {
    let mut p = per_chunk::<T>();
    while p > 1 && n.div_ceil(p) < c {
        p /= 2;
    }
    p
}

/// The chunks of a pool of `n` `T`s with room for `owners` owners (or `n`,
/// if fewer): its `C`, at least [`chunks`], its chunks holding fewer.
pub const fn chunks_for<T>(n: usize, owners: usize) -> usize {
    n.div_ceil(per::<T>(n, owners))
}

/// Up to `N` objects of type `T` in `C` chunks (`C` is [`chunks`]`::<T>(N)`,
/// or more: [`chunks_for`])
/// over the window `B` backs.
pub struct Pool<T, B: Backing, const N: usize, const C: usize> {
    words: [u32; N],
    chunks: [Chunk; C],
    /// One past the highest chunk ever backed: no chunk from here on is
    /// or was, so walks of the chunks stop here (chunks are taken lowest
    /// first, so this is about the most the pool ever held).
    top: usize,
    used: usize,
    backing: B,
    objects: PhantomData<T>,
}

impl<T, B: Backing, const N: usize, const C: usize> Pool<T, B, N, C> {
    const PAGES: usize = chunk_pages::<T>();
    const BYTES: usize = Self::PAGES * PAGE;
    /// The objects a chunk holds (fewer than fit, for room for `C` owners).
    pub const PER: usize = per::<T>(N, C);
    const STRIDE: usize = Self::BYTES / Self::PER;
    const CHECK: () = assert!(
        size_of::<T>() > 0
            && align_of::<T>() <= PAGE
            && Self::PAGES <= MAX_CHUNK_PAGES
            && N <= 1 << 16
            && C == N.div_ceil(Self::PER)
            && C <= u16::MAX as usize
            && (Self::PER == 1 || Self::STRIDE.is_power_of_two())
            && Self::STRIDE >= stride::<T>()
    );

    pub const fn new(backing: B) -> Self {
        let () = Self::CHECK;
        Self { words: [0; N], chunks: [Chunk::Unbacked; C], top: 0, used: 0, backing, objects: PhantomData }
    }

    /// Where slot `i` lives.
    #[inline(always)]
    fn slot(&self, i: usize) -> *mut T {
        self.backing.base().wrapping_add(i * Self::STRIDE).cast()
    }

    /// Whether `r` names a live object.
    #[inline(always)]
    fn live(&self, r: Ref) -> bool {
        self.words.get(usize::from(r.index)) == Some(&(r.generation | LIVE))
    }

    /// The slots of chunk `c`: `PER` of them, fewer in the last.
    fn slots_of(c: usize) -> core::ops::Range<usize> {
        let first = c * Self::PER;
        first..(first + Self::PER).min(N)
    }

    /// Whether chunk `c` has a slot that may take a new object.
    fn has_usable(&self, c: usize) -> bool {
        Self::slots_of(c).any(|i| usable(self.words[i]))
    }

    /// Stores `value` for `owner`, in a chunk it holds, or in a new one
    /// charged to `quota` (the owner's). `QuotaExceeded` if the quota (or
    /// the machine's free frames) cannot pay for a new chunk,
    /// `OutOfObjects` if the window has none left; the value comes back.
    pub fn insert(&mut self, owner: u16, quota: &mut Quota, value: T) -> Result<Ref, (Error, T)> {
        let room = |(c, k): (usize, &Chunk)| match *k {
            Chunk::Backed { owner: o, live } => {
                o == owner && usize::from(live) < Self::slots_of(c).len() && self.has_usable(c)
            }
            _ => false,
        };
        let c = match self.chunks[..self.top].iter().enumerate().position(room) {
            Some(c) => c,
            None => {
                let free = (0..self.top).find(|&c| self.chunks[c] == Chunk::Unbacked && self.has_usable(c));
                let Some(c) = free.or((self.top < C).then_some(self.top)) else {
                    return Err((Error::OutOfObjects, value));
                };
                if let Err(e) = quota.charge(Self::PAGES as u64) {
                    return Err((e, value));
                }
                if !self.backing.back(c * Self::BYTES, Self::PAGES) {
                    quota.release(Self::PAGES as u64);
                    return Err((Error::QuotaExceeded, value));
                }
                self.chunks[c] = Chunk::Backed { owner, live: 0 };
                self.top = self.top.max(c + 1);
                c
            }
        };
        let Some(i) = Self::slots_of(c).find(|&i| usable(self.words[i])) else {
            // The chunk was chosen for a usable slot: it has one.
            return Err((Error::OutOfObjects, value));
        };
        // SAFETY: slot `i` lies in chunk `c` (strides tile chunks), which
        // is backed (just now or before); the slot is free, so nothing
        // refers to its memory, and it is aligned for `T` (the window is
        // page aligned, the stride a power of two at least `T`'s size, so
        // a multiple of its alignment, or whole pages; `CHECK`).
        unsafe { ptr::write(self.slot(i), value) };
        if let Chunk::Backed { live, .. } = &mut self.chunks[c] {
            *live += 1;
        }
        self.words[i] |= LIVE;
        self.used += 1;
        Ok(Ref { index: i as u16, generation: self.words[i] & !LIVE })
    }

    /// The live object `r` names.
    #[inline(always)]
    pub fn get(&self, r: Ref) -> Option<&T> {
        // SAFETY: a live slot holds an initialised `T` in a backed chunk;
        // the borrow of `self` keeps it there.
        self.live(r).then(|| unsafe { &*self.slot(usize::from(r.index)) })
    }

    #[inline(always)]
    pub fn get_mut(&mut self, r: Ref) -> Option<&mut T> {
        // SAFETY: as for `get`, and `&mut self` makes the borrow unique.
        self.live(r).then(|| unsafe { &mut *self.slot(usize::from(r.index)) })
    }

    /// Takes the object out; every reference to it is stale from now on.
    /// With it, what its owner's quota gets back.
    pub fn remove(&mut self, r: Ref) -> Option<(T, Refund)> {
        if !self.live(r) {
            return None;
        }
        let i = usize::from(r.index);
        // SAFETY: the slot is live: an initialised `T` in a backed chunk,
        // read once; the slot is marked free below before anything else
        // can see it.
        let value = unsafe { ptr::read(self.slot(i)) };
        Some((value, self.vacate(i)))
    }

    /// Drops the object where it lies (for objects too large to move
    /// through a kernel stack); what its owner's quota gets back, if it
    /// was live.
    pub fn discard(&mut self, r: Ref) -> Option<Refund> {
        if !self.live(r) {
            return None;
        }
        let i = usize::from(r.index);
        // SAFETY: as for `remove`; dropped in place once, then vacated.
        unsafe { ptr::drop_in_place(self.slot(i)) };
        Some(self.vacate(i))
    }

    /// Marks live slot `i` free with its next generation (worn out at
    /// [`WORN`]: the `& !LIVE` never wraps it to a used one), and lets its
    /// chunk go if it was the last there.
    fn vacate(&mut self, i: usize) -> Refund {
        self.words[i] = self.words[i].wrapping_add(1) & !LIVE;
        self.used -= 1;
        let c = i / Self::PER;
        let Chunk::Backed { owner, live } = &mut self.chunks[c] else {
            return Refund::default(); // a live slot's chunk is backed
        };
        let owner = *owner;
        *live -= 1;
        if *live > 0 {
            return Refund { owner, pages: 0, retired: false };
        }
        let mut frames = [0; MAX_CHUNK_PAGES];
        self.backing.unmap(c * Self::BYTES, Self::PAGES, &mut frames);
        let frames = &frames[..Self::PAGES];
        if self.backing.shootdown() {
            self.backing.free(frames);
            self.chunks[c] = Chunk::Unbacked;
            Refund { owner, pages: Self::PAGES as u64, retired: false }
        } else {
            self.backing.retire(frames);
            self.chunks[c] = Chunk::Retired;
            Refund { owner, pages: 0, retired: true }
        }
    }

    /// The live object in slot `index`, whatever its generation: for what
    /// names an owner by slot alone (a chunk's owner), which holds nothing
    /// past its owner's death.
    pub fn at_mut(&mut self, index: u16) -> Option<&mut T> {
        let i = usize::from(index);
        let live = self.words.get(i).is_some_and(|w| w & LIVE != 0);
        // SAFETY: as for `get_mut`: the slot is live.
        live.then(|| unsafe { &mut *self.slot(i) })
    }

    /// The first live object at slot `from` or after: a walk of the pool
    /// that holds no borrow of it between steps.
    pub fn next_live(&self, from: usize) -> Option<Ref> {
        let end = (self.top * Self::PER).min(N);
        let i = from + self.words.get(from..end)?.iter().position(|w| w & LIVE != 0)?;
        Some(Ref { index: i as u16, generation: self.words[i] & !LIVE })
    }

    /// Objects in the pool.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Chunk `c`'s state (`None` past the window).
    pub fn chunk(&self, c: usize) -> Option<Chunk> {
        self.chunks.get(c).copied()
    }

    /// Pages backing `owner`'s chunks now (retired ones not counted).
    pub fn pages_of(&self, owner: u16) -> u64 {
        let n = self.chunks[..self.top]
            .iter()
            .filter(|k| matches!(k, Chunk::Backed { owner: o, .. } if *o == owner))
            .count();
        (n * Self::PAGES) as u64
    }

    /// Each backed chunk's owner and pages (retired ones not counted).
    pub fn held(&self) -> impl Iterator<Item = (u16, u64)> + '_ {
        self.chunks[..self.top].iter().filter_map(|k| match *k {
            Chunk::Backed { owner, .. } => Some((owner, Self::PAGES as u64)),
            _ => None,
        })
    }

    /// The owner of live object `r`.
    pub fn owner(&self, r: Ref) -> Option<u16> {
        match self.live(r).then(|| self.chunks[usize::from(r.index) / Self::PER])? {
            Chunk::Backed { owner, .. } => Some(owner),
            _ => None,
        }
    }

    /// The backing, for inspection.
    pub fn backing(&self) -> &B {
        &self.backing
    }

    pub fn backing_mut(&mut self) -> &mut B {
        &mut self.backing
    }

    /// The live slots, in order: those of backed chunks (an owner's
    /// objects may sit anywhere in the window), ending at the last.
    fn live_slots(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.top)
            .filter(|&c| matches!(self.chunks[c], Chunk::Backed { .. }))
            .flat_map(Self::slots_of)
            .filter(|&i| self.words[i] & LIVE != 0)
            .take(self.used)
    }

    /// Every live object with its reference, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Ref, &T)> {
        self.live_slots()
            .map(|i| (Ref { index: i as u16, generation: self.words[i] & !LIVE }, self.slot(i)))
            // SAFETY: each slot is live (initialised, backed) and borrowed
            // shared with `self`.
            .map(|(r, p)| (r, unsafe { &*p }))
    }

    /// Every live object, mutably (as [`Self::iter`]).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Ref, &mut T)> {
        let this = &*self;
        this.live_slots()
            .map(|i| (Ref { index: i as u16, generation: this.words[i] & !LIVE }, this.slot(i)))
            // SAFETY: each slot is live and distinct, and `&mut self` is
            // borrowed for as long as the references live: they are unique.
            .map(|(r, p)| (r, unsafe { &mut *p }))
    }

    /// The first live object that satisfies `pred`.
    pub fn find(&self, pred: impl Fn(&T) -> bool) -> Option<Ref> {
        self.iter().find(|(_, x)| pred(x)).map(|(r, _)| r)
    }
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/obj/window.rs"]
mod tests;
