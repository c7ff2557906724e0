//! A descriptor chain, walked once and checked (virtio 1.2 §2.7.5): the
//! segments a backend reads its request from and writes its answer to.

use crate::desc::{self, Desc, INDIRECT, NEXT, WRITE};
use crate::{Fault, GuestMemory, MAX_SIZE};

/// One buffer of a chain: `len` (> 0) bytes at guest-physical `addr`, all
/// inside the memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub addr: u64,
    pub len: u32,
}

/// A checked chain of at most `N` segments: the device-readable ones first,
/// then the device-writable ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain<const N: usize> {
    segments: [Segment; N],
    count: usize,
    /// The index of the first writable segment.
    split: usize,
    writable_bytes: u32,
}

impl<const N: usize> Chain<N> {
    /// The device-readable segments, in order.
    pub fn readable(&self) -> &[Segment] {
        self.segments.get(..self.split).unwrap_or(&[])
    }

    /// The device-writable segments, in order.
    pub fn writable(&self) -> &[Segment] {
        self.segments.get(self.split..self.count).unwrap_or(&[])
    }

    /// The device-readable bytes.
    pub fn readable_bytes(&self) -> u64 {
        self.readable().iter().map(|s| u64::from(s.len)).sum()
    }

    /// The device-writable bytes (at most `u32::MAX`: the used entry's length).
    pub fn writable_bytes(&self) -> u32 {
        self.writable_bytes
    }

    /// Reads the readable bytes from `offset` on into `buf`, across
    /// segments; how many were read (fewer than `buf.len()` at the end).
    pub fn read(&self, mem: &impl GuestMemory, offset: u64, buf: &mut [u8]) -> Result<usize, Fault> {
        let mut done = 0;
        for (at, n) in spans(self.readable(), offset, buf.len()) {
            let to = buf.get_mut(done..done + n).ok_or(Fault::Memory)?;
            if !mem.read(at, to) {
                return Err(Fault::Memory);
            }
            done += n;
        }
        Ok(done)
    }

    /// Writes `data` into the writable bytes from `offset` on, across
    /// segments; how many were written (fewer than `data.len()` at the end).
    pub fn write(&self, mem: &impl GuestMemory, offset: u64, data: &[u8]) -> Result<usize, Fault> {
        let mut done = 0;
        for (at, n) in spans(self.writable(), offset, data.len()) {
            let from = data.get(done..done + n).ok_or(Fault::Memory)?;
            if !mem.write(at, from) {
                return Err(Fault::Memory);
            }
            done += n;
        }
        Ok(done)
    }

    /// Walks the chain at `head` of the table at `table` with `size`
    /// descriptors; `indirect`: whether INDIRECT was negotiated.
    pub(crate) fn walk(
        mem: &impl GuestMemory,
        table: u64,
        size: u16,
        head: u16,
        indirect: bool,
    ) -> Result<Self, Fault> {
        let mut chain = Chain { segments: [Segment::default(); N], count: 0, split: 0, writable_bytes: 0 };
        let (mut writable_total, mut seen_write) = (0u64, false);
        // The table being walked: the queue's, then perhaps one indirect one.
        let (mut at, mut len, mut nested) = (table, u32::from(size), false);
        let (mut index, mut steps) = (u32::from(head), 0u32);
        loop {
            if index >= len {
                return Err(Fault::NextOutOfRange);
            }
            steps += 1;
            if steps > len {
                return Err(Fault::Loop);
            }
            let d: Desc = desc::read(mem, at, index)?;
            if d.flags & INDIRECT != 0 {
                if !indirect {
                    return Err(Fault::IndirectNotNegotiated);
                }
                if nested {
                    return Err(Fault::IndirectNested);
                }
                if d.flags & NEXT != 0 {
                    return Err(Fault::IndirectWithNext);
                }
                if d.len == 0 || d.len % 16 != 0 || d.len / 16 > u32::from(MAX_SIZE) {
                    return Err(Fault::IndirectBadLength);
                }
                if !mem.contains(d.addr, u64::from(d.len)) {
                    return Err(Fault::BufferOutsideMemory);
                }
                (at, len, nested, index, steps) = (d.addr, d.len / 16, true, 0, 0);
                continue;
            }
            let write = d.flags & WRITE != 0;
            if !write && seen_write {
                return Err(Fault::ReadableAfterWritable);
            }
            seen_write |= write;
            if d.len > 0 {
                if !mem.contains(d.addr, u64::from(d.len)) {
                    return Err(Fault::BufferOutsideMemory);
                }
                let slot = chain.segments.get_mut(chain.count).ok_or(Fault::TooManySegments)?;
                *slot = Segment { addr: d.addr, len: d.len };
                chain.count += 1;
                if write {
                    writable_total += u64::from(d.len);
                } else {
                    chain.split = chain.count;
                }
            }
            if d.flags & NEXT == 0 {
                break;
            }
            index = u32::from(d.next);
        }
        chain.writable_bytes = u32::try_from(writable_total).map_err(|_| Fault::TooLarge)?;
        Ok(chain)
    }
}

/// The pieces (address, length) of `want` bytes from byte `offset` of the
/// buffer `segments` make.
fn spans(segments: &[Segment], offset: u64, want: usize) -> impl Iterator<Item = (u64, usize)> + '_ {
    let (mut skip, mut left) = (offset, want as u64);
    segments.iter().filter_map(move |s| {
        let len = u64::from(s.len);
        if skip >= len {
            skip -= len;
            return None;
        }
        let n = (len - skip).min(left);
        let at = s.addr + skip; // inside the segment, so inside the memory
        skip = 0;
        left -= n;
        (n > 0).then_some((at, n as usize))
    })
}
