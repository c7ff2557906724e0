//! The physical frame allocator: one bit per 4 KiB frame between the lowest
//! and the highest usable address, set while the frame is in use or not
//! usable at all. It hands out only frames of the usable ranges it was built
//! from, and refuses to take back a frame it never handed out.

use core::ops::Range;

use x86_64::PhysAddr;

use super::memmap::Ranges;
use super::PAGE_SIZE;

/// Why a frame was not taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The address is not frame aligned.
    Misaligned,
    /// The frame is not one this allocator manages.
    NotManaged,
    /// The frame is already free.
    DoubleFree,
    /// The bitmap given to [`FrameAllocator::new`] is too small.
    BitmapTooSmall,
}

/// A bitmap frame allocator over a set of usable ranges.
pub struct FrameAllocator<'a> {
    /// Frame number of bit 0.
    base: u64,
    /// One bit per frame from `base`; set = not free.
    bits: &'a mut [u64],
    /// The usable ranges, for checking what is given back.
    ranges: Ranges,
    usable: u64,
    free: u64,
    /// Index of the word where the next search starts.
    hint: usize,
}

impl<'a> FrameAllocator<'a> {
    /// How many `u64` words of bitmap the ranges need.
    pub fn bitmap_words(ranges: &[Range<u64>]) -> usize {
        let frames =
            ranges.first().zip(ranges.last()).map_or(0, |(first, last)| (last.end - first.start) / PAGE_SIZE);
        frames.div_ceil(64) as usize
    }

    /// An allocator whose free frames are exactly those of `ranges` (sorted,
    /// disjoint, frame aligned, as [`super::memmap::usable`] makes them).
    pub fn new(ranges: &Ranges, bits: &'a mut [u64]) -> Result<Self, FrameError> {
        if bits.len() < Self::bitmap_words(ranges) {
            return Err(FrameError::BitmapTooSmall);
        }
        bits.fill(u64::MAX);
        let base = ranges.first().map_or(0, |r| r.start / PAGE_SIZE);
        let mut this = Self { base, bits, ranges: ranges.clone(), usable: 0, free: 0, hint: 0 };
        for r in ranges.iter() {
            for frame in r.start / PAGE_SIZE..r.end / PAGE_SIZE {
                let i = (frame - base) as usize;
                this.bits[i / 64] &= !(1 << (i % 64));
            }
            this.usable += (r.end - r.start) / PAGE_SIZE;
        }
        this.free = this.usable;
        Ok(this)
    }

    /// Takes a free frame, the lowest one at or after the search hint.
    pub fn alloc(&mut self) -> Option<PhysAddr> {
        self.alloc_below(u64::MAX)
    }

    /// Takes a free frame that lies wholly below `limit`.
    pub fn alloc_below(&mut self, limit: u64) -> Option<PhysAddr> {
        let n = self.bits.len();
        for w in (self.hint..n).chain(0..self.hint) {
            if self.bits[w] == u64::MAX {
                continue;
            }
            let bit = (!self.bits[w]).trailing_zeros() as u64;
            let pa = (self.base + w as u64 * 64 + bit) * PAGE_SIZE;
            if pa.saturating_add(PAGE_SIZE) > limit {
                continue; // words before the hint may still be low enough
            }
            self.bits[w] |= 1 << bit;
            self.free -= 1;
            self.hint = w;
            return Some(PhysAddr::new(pa));
        }
        None
    }

    /// Takes `n` physically contiguous free frames (first fit); returns the
    /// first.
    pub fn alloc_contiguous(&mut self, n: u64) -> Option<PhysAddr> {
        if n == 0 || n > self.free {
            return None;
        }
        let total = self.bits.len() as u64 * 64;
        let (mut start, mut run) = (0u64, 0u64);
        for i in 0..total {
            if self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0 {
                run = 0;
                continue;
            }
            if run == 0 {
                start = i;
            }
            run += 1;
            if run == n {
                for j in start..start + n {
                    self.bits[(j / 64) as usize] |= 1 << (j % 64);
                }
                self.free -= n;
                return Some(PhysAddr::new((self.base + start) * PAGE_SIZE));
            }
        }
        None
    }

    /// Gives back a frame that [`Self::alloc`] handed out.
    pub fn free(&mut self, pa: PhysAddr) -> Result<(), FrameError> {
        let pa = pa.as_u64();
        if pa % PAGE_SIZE != 0 {
            return Err(FrameError::Misaligned);
        }
        if !self.ranges.iter().any(|r| r.start <= pa && pa < r.end) {
            return Err(FrameError::NotManaged);
        }
        let i = (pa / PAGE_SIZE - self.base) as usize;
        if self.bits[i / 64] & (1 << (i % 64)) == 0 {
            return Err(FrameError::DoubleFree);
        }
        self.bits[i / 64] &= !(1 << (i % 64));
        self.free += 1;
        self.hint = self.hint.min(i / 64);
        Ok(())
    }

    /// Frames free now.
    pub fn free_count(&self) -> u64 {
        self.free
    }

    /// Frames this allocator manages.
    pub fn usable_count(&self) -> u64 {
        self.usable
    }
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/mem/frames.rs"]
mod tests;
