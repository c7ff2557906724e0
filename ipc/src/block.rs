//! The block service: what a client asks of the disk driver domain (`blk`)
//! and what it answers, one message per slot of two `ipc::ring`s (requests
//! client → blk, answers blk → client) in a region the two share.
//!
//! A request is 24 bytes of header (little-endian: `op: u32`, `tag: u32`,
//! `sector: u64`, `count: u32`, `_: u32`) and, for a write, `count`
//! sectors of data. An answer is 16 bytes of header (`tag: u32`, `status:
//! u32` (0: done, else an [`Error`] code), `value: u64` (a capacity's
//! sectors, else 0)) and, for a read, the sectors read. Every request is
//! checked by [`Request::decode`] before the server acts on it; one it
//! cannot decode is answered `Malformed` under the tag it carried (0 if
//! none), one past the disk's end `BadAddress`.

pub mod clients;
pub mod pattern;

/// The words of the device bench's shared region `bench-stamp`
/// (`tests/systems/bench-devices.toml`): `stamper`'s latest TSC, the flag
/// that stops it, and the TSC ticks `blk` has spent waiting for its device
/// in all it served.
pub mod bench {
    pub const STAMP: usize = 0;
    pub const STOP: usize = 1;
    pub const DEVICE_WAIT: usize = 2;
    pub const WORDS: usize = 3;
}

use crate::error::Error;
use crate::le_u32 as word;
use crate::ring::RingLayout;

/// Bytes of a sector.
pub const SECTOR: usize = 512;
/// The most sectors one request moves.
pub const MAX_SECTORS: u32 = 8;
/// The bytes of a request's or an answer's header.
pub const REQUEST_HEADER: usize = 24;
pub const ANSWER_HEADER: usize = 16;
/// Both rings' layout: 8 slots, each a header and 4 KiB of data.
pub const RING: RingLayout = match RingLayout::new(8, 4136) {
    Ok(l) => l,
    Err(_) => panic!("bad block ring layout"),
};
/// Where the answer ring starts in the shared region (the request ring at 0).
pub const ANSWERS_AT: usize = 64 << 10;
/// The shared region's size: both rings.
pub const REGION_BYTES: usize = 128 << 10;

crate::wire_enum! {
    /// What a request asks.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Op: u32 {
        Read = 1,
        Write = 2,
        Flush = 3,
        Capacity = 4,
        /// The client is done: answered, then served no more.
        Close = 5,
    }
}

/// A checked request. `data` is a write's sectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub op: Op,
    pub tag: u32,
    pub sector: u64,
    pub count: u32,
    pub data: &'a [u8],
}

impl<'a> Request<'a> {
    /// Checks a request as a client wrote it: a known op; a read or write
    /// of 1..=`MAX_SECTORS` sectors (a write carrying exactly that much
    /// data); a flush or capacity with no sectors and no data. On failure
    /// the tag it carried (0 if too short for one) and why. (A close is
    /// as a flush.)
    pub fn decode(b: &'a [u8]) -> Result<Self, (u32, Error)> {
        let tag = word(b, 4).unwrap_or(0);
        let bad = |e| Err((tag, e));
        if b.len() < REQUEST_HEADER {
            return bad(Error::Malformed);
        }
        let (op, count) = (word(b, 0).unwrap_or(0), word(b, 16).unwrap_or(0));
        let sector = u64::from(word(b, 8).unwrap_or(0)) | u64::from(word(b, 12).unwrap_or(0)) << 32;
        let Some(op) = Op::from_u64(u64::from(op)) else { return bad(Error::Malformed) };
        let data = &b[REQUEST_HEADER..];
        let moves = matches!(op, Op::Read | Op::Write);
        let want = if op == Op::Write { count as usize * SECTOR } else { 0 };
        if moves != (1..=MAX_SECTORS).contains(&count) || data.len() != want {
            return bad(Error::Malformed);
        }
        Ok(Request { op, tag, sector, count, data })
    }

    /// Writes the request into `out`; returns its length (`None`: too small).
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let n = REQUEST_HEADER + self.data.len();
        let out = out.get_mut(..n)?;
        out[0..4].copy_from_slice(&(self.op as u32).to_le_bytes());
        out[4..8].copy_from_slice(&self.tag.to_le_bytes());
        out[8..16].copy_from_slice(&self.sector.to_le_bytes());
        out[16..20].copy_from_slice(&self.count.to_le_bytes());
        out[20..24].fill(0);
        out[REQUEST_HEADER..].copy_from_slice(self.data);
        Some(n)
    }

    /// Whether it reaches past a disk of `capacity` sectors.
    pub fn out_of_range(&self, capacity: u64) -> bool {
        matches!(self.op, Op::Read | Op::Write)
            && self.sector.checked_add(u64::from(self.count)).is_none_or(|end| end > capacity)
    }
}

/// An answer: `Ok(value)` (a capacity's sectors, else 0) or the error,
/// and a read's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer<'a> {
    pub tag: u32,
    pub result: Result<u64, Error>,
    pub data: &'a [u8],
}

impl<'a> Answer<'a> {
    /// Writes the answer into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let n = ANSWER_HEADER + self.data.len();
        let out = out.get_mut(..n)?;
        let (status, value) = match self.result {
            Ok(v) => (0, v),
            Err(e) => (e.code(), 0),
        };
        out[0..4].copy_from_slice(&self.tag.to_le_bytes());
        out[4..8].copy_from_slice(&(status as u32).to_le_bytes());
        out[8..16].copy_from_slice(&value.to_le_bytes());
        out[ANSWER_HEADER..].copy_from_slice(self.data);
        Some(n)
    }

    /// Reads an answer as the server wrote it (a client checks it too).
    pub fn decode(b: &'a [u8]) -> Result<Self, Error> {
        if b.len() < ANSWER_HEADER {
            return Err(Error::Malformed);
        }
        let (tag, status) = (word(b, 0).unwrap_or(0), word(b, 4).unwrap_or(0));
        let value = u64::from(word(b, 8).unwrap_or(0)) | u64::from(word(b, 12).unwrap_or(0)) << 32;
        let result = match Error::from_code(u64::from(status)) {
            Ok(()) => Ok(value),
            Err(e) => Err(e),
        };
        Ok(Answer { tag, result, data: &b[ANSWER_HEADER..] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: u32, tag: u32, sector: u64, count: u32) -> [u8; 24 + 4096] {
        let mut b = [0u8; 24 + 4096];
        b[0..4].copy_from_slice(&op.to_le_bytes());
        b[4..8].copy_from_slice(&tag.to_le_bytes());
        b[8..16].copy_from_slice(&sector.to_le_bytes());
        b[16..20].copy_from_slice(&count.to_le_bytes());
        b
    }

    #[test]
    fn requests_are_checked_before_use() {
        let b = req(1, 7, 5, 2);
        let r = Request::decode(&b[..24]).expect("a read");
        assert_eq!((r.op, r.tag, r.sector, r.count), (Op::Read, 7, 5, 2));
        let w = req(2, 8, 0, 1);
        assert_eq!(Request::decode(&w[..24 + 512]).expect("a write").data.len(), 512);
        assert_eq!(Request::decode(&w[..24 + 511]), Err((8, Error::Malformed)), "short data");
        assert_eq!(Request::decode(&req(1, 9, 0, 0)[..24]), Err((9, Error::Malformed)), "no sectors");
        assert_eq!(Request::decode(&req(1, 9, 0, 9)[..24]), Err((9, Error::Malformed)), "too many");
        assert_eq!(Request::decode(&req(1, 9, 0, 1)[..30]), Err((9, Error::Malformed)), "a read with data");
        assert_eq!(Request::decode(&req(3, 9, 0, 1)[..24]), Err((9, Error::Malformed)), "a flush of sectors");
        assert_eq!(Request::decode(&req(99, 9, 0, 0)[..24]), Err((9, Error::Malformed)), "no such op");
        assert_eq!(Request::decode(&[1, 0, 0]), Err((0, Error::Malformed)), "too short for a tag");
        assert_eq!(Request::decode(&req(4, 1, 0, 0)[..24]).expect("capacity").op, Op::Capacity);
    }

    #[test]
    fn out_of_range_requests_are_seen_even_where_they_wrap() {
        let at = |sector, count| Request { op: Op::Read, tag: 0, sector, count, data: &[] };
        assert!(!at(2040, 8).out_of_range(2048));
        assert!(at(2041, 8).out_of_range(2048));
        assert!(at(u64::MAX - 2, 8).out_of_range(2048), "wraps");
        assert!(!Request { op: Op::Flush, ..at(u64::MAX, 0) }.out_of_range(2048));
    }

    #[test]
    fn both_round_trip() {
        let data = [0x5a; 1024];
        let r = Request { op: Op::Write, tag: 3, sector: 1 << 40, count: 2, data: &data };
        let mut b = [0u8; 4096 + 24];
        let n = r.encode(&mut b).expect("fits");
        assert_eq!(Request::decode(&b[..n]), Ok(r));
        let a = Answer { tag: 3, result: Err(Error::BadAddress), data: &[] };
        let n = a.encode(&mut b).expect("fits");
        assert_eq!(Answer::decode(&b[..n]), Ok(a));
        let a = Answer { tag: 4, result: Ok(2048), data: &data[..512] };
        let n = a.encode(&mut b).expect("fits");
        assert_eq!(Answer::decode(&b[..n]), Ok(a));
        assert!(RING.bytes() <= ANSWERS_AT && ANSWERS_AT + RING.bytes() <= REGION_BYTES);
        assert!(RING.max_payload() >= REQUEST_HEADER + MAX_SECTORS as usize * SECTOR);
    }
}
