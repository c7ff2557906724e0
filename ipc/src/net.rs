//! The frame service: what a client asks of the network driver domain
//! (`net`) and what it hears back, one message per slot of two
//! `ipc::ring`s (requests client → net, events net → client) in a region
//! the two share. A client is an Ethernet station of its own behind
//! `net`: `Mac` tells it the address `net` gave it, `Link` whether the
//! link is up, `Send` puts a frame on the wire (only one from that
//! address: another source is `BadAddress`); frames `net` receives for
//! that address, and broadcast and multicast ones, come as `Frame` events.
//!
//! A request is 8 bytes of header (little-endian `op: u32`, `tag: u32`)
//! and, for a send, the frame (`MIN_FRAME..=MAX_FRAME` bytes: Ethernet
//! without its checksum). An event is 16 bytes of header (`kind: u32` (1:
//! an answer, 2: a frame), `status: u32` (0: done, else an [`Error`]
//! code), `value: u64` (an answer's: the MAC in its low 48 bits, the link
//! 1 up or 0 down, else 0; a frame's: 0)), then an answer's tag (`u32`)
//! or a frame's bytes. Every request is checked by [`Request::decode`]
//! before the server acts on it; one it cannot decode is answered
//! `Malformed` under the tag it carried (0 if none).

use crate::error::Error;
use crate::le_u32 as word;
use crate::ring::RingLayout;

/// The shortest and longest frames sent or received (14: an Ethernet
/// header alone; 1514: a 1500-byte payload).
pub const MIN_FRAME: usize = 14;
pub const MAX_FRAME: usize = 1514;
pub const REQUEST_HEADER: usize = 8;
pub const EVENT_HEADER: usize = 16;
/// Both rings' layout: 16 slots, each a header and a whole frame.
pub const RING: RingLayout = match RingLayout::new(16, 1544) {
    Ok(l) => l,
    Err(_) => panic!("bad frame ring layout"),
};
/// Where the event ring starts in the shared region (the request ring at 0).
pub const EVENTS_AT: usize = 32 << 10;
/// The shared region's size: both rings.
pub const REGION_BYTES: usize = 64 << 10;

crate::wire_enum! {
    /// What a request asks.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Op: u32 {
        Send = 1,
        Mac = 2,
        Link = 3,
        /// The client is done: answered, then served no more.
        Close = 4,
    }
}

/// A checked request; `frame` is a send's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub op: Op,
    pub tag: u32,
    pub frame: &'a [u8],
}

impl<'a> Request<'a> {
    /// Checks a request as a client wrote it: a known op; a send carrying
    /// one frame of `MIN_FRAME..=MAX_FRAME` bytes, the others nothing. On
    /// failure the tag it carried (0 if too short for one) and why.
    pub fn decode(b: &'a [u8]) -> Result<Self, (u32, Error)> {
        let tag = word(b, 4).unwrap_or(0);
        let bad = |e| Err((tag, e));
        if b.len() < REQUEST_HEADER {
            return bad(Error::Malformed);
        }
        let Some(op) = Op::from_u64(u64::from(word(b, 0).unwrap_or(0))) else { return bad(Error::Malformed) };
        let frame = &b[REQUEST_HEADER..];
        let ok = match op {
            Op::Send => (MIN_FRAME..=MAX_FRAME).contains(&frame.len()),
            _ => frame.is_empty(),
        };
        if !ok {
            return bad(Error::Malformed);
        }
        Ok(Request { op, tag, frame })
    }

    /// Writes the request into `out`; returns its length (`None`: too small).
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let n = REQUEST_HEADER + self.frame.len();
        let out = out.get_mut(..n)?;
        out[0..4].copy_from_slice(&(self.op as u32).to_le_bytes());
        out[4..8].copy_from_slice(&self.tag.to_le_bytes());
        out[REQUEST_HEADER..].copy_from_slice(self.frame);
        Some(n)
    }

    /// A send's source address (bytes 6..12 of its frame).
    pub fn source(&self) -> Option<[u8; 6]> {
        self.frame.get(6..12)?.try_into().ok()
    }
}

/// What `net` tells a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The answer to request `tag`: `Ok(value)` or the error.
    Answer { tag: u32, result: Result<u64, Error> },
    /// A frame received for the client.
    Frame(&'a [u8]),
}

impl<'a> Event<'a> {
    /// Writes the event into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let (kind, status, value, body): (u32, u64, u64, &[u8]) = match self {
            Event::Answer { result: Ok(v), .. } => (1, 0, *v, &[]),
            Event::Answer { result: Err(e), .. } => (1, e.code(), 0, &[]),
            Event::Frame(f) => (2, 0, 0, f),
        };
        let tail = if let Event::Answer { .. } = self { 4 } else { body.len() };
        let out = out.get_mut(..EVENT_HEADER + tail)?;
        out[0..4].copy_from_slice(&kind.to_le_bytes());
        out[4..8].copy_from_slice(&(status as u32).to_le_bytes());
        out[8..16].copy_from_slice(&value.to_le_bytes());
        match self {
            Event::Answer { tag, .. } => out[EVENT_HEADER..].copy_from_slice(&tag.to_le_bytes()),
            Event::Frame(f) => out[EVENT_HEADER..].copy_from_slice(f),
        }
        Some(EVENT_HEADER + tail)
    }

    /// Reads an event as the server wrote it (a client checks it too): a
    /// known kind, an answer with its tag alone, a frame of
    /// `MIN_FRAME..=MAX_FRAME` bytes with status and value 0.
    pub fn decode(b: &'a [u8]) -> Result<Self, Error> {
        if b.len() < EVENT_HEADER {
            return Err(Error::Malformed);
        }
        let (kind, status) = (word(b, 0).unwrap_or(0), word(b, 4).unwrap_or(0));
        let value = u64::from(word(b, 8).unwrap_or(0)) | u64::from(word(b, 12).unwrap_or(0)) << 32;
        let body = &b[EVENT_HEADER..];
        match kind {
            1 if body.len() == 4 => {
                let tag = word(body, 0).unwrap_or(0);
                let result = match Error::from_code(u64::from(status)) {
                    Ok(()) => Ok(value),
                    Err(e) => Err(e),
                };
                Ok(Event::Answer { tag, result })
            }
            2 if status == 0 && value == 0 && (MIN_FRAME..=MAX_FRAME).contains(&body.len()) => {
                Ok(Event::Frame(body))
            }
            _ => Err(Error::Malformed),
        }
    }
}

/// A MAC address as an answer's value (its low 48 bits), and back.
pub fn mac_value(mac: [u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(&mac);
    u64::from_le_bytes(b)
}

pub fn mac_of(value: u64) -> Option<[u8; 6]> {
    let b = value.to_le_bytes();
    (value >> 48 == 0).then(|| [b[0], b[1], b[2], b[3], b[4], b[5]])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: u32, tag: u32, frame: usize) -> ([u8; 8 + 1600], usize) {
        let mut b = [0u8; 8 + 1600];
        b[0..4].copy_from_slice(&op.to_le_bytes());
        b[4..8].copy_from_slice(&tag.to_le_bytes());
        (b, 8 + frame)
    }

    #[test]
    fn requests_are_checked_before_use() {
        let (b, n) = req(1, 7, 60);
        let r = Request::decode(&b[..n]).expect("a send");
        assert_eq!((r.op, r.tag, r.frame.len()), (Op::Send, 7, 60));
        let (b, n) = req(1, 8, MAX_FRAME);
        assert!(Request::decode(&b[..n]).is_ok(), "the longest frame");
        let (b, n) = req(1, 8, MAX_FRAME + 1);
        assert_eq!(Request::decode(&b[..n]), Err((8, Error::Malformed)), "oversized");
        let (b, n) = req(1, 8, MIN_FRAME - 1);
        assert_eq!(Request::decode(&b[..n]), Err((8, Error::Malformed)), "too short for a header");
        let (b, n) = req(2, 9, 1);
        assert_eq!(Request::decode(&b[..n]), Err((9, Error::Malformed)), "a MAC request with data");
        let (b, _) = req(99, 9, 0);
        assert_eq!(Request::decode(&b[..8]), Err((9, Error::Malformed)), "no such op");
        assert_eq!(Request::decode(&[1, 0, 0]), Err((0, Error::Malformed)), "too short for a tag");
        let (b, _) = req(3, 1, 0);
        assert_eq!(Request::decode(&b[..8]).expect("link").op, Op::Link);
    }

    #[test]
    fn events_are_checked_too() {
        let mut b = [0u8; 16 + 1600];
        let frame = [0xab; 60];
        for e in [
            Event::Answer { tag: 3, result: Ok(mac_value([2, 0, 0, 0, 0, 1])) },
            Event::Answer { tag: 4, result: Err(Error::BadAddress) },
            Event::Frame(&frame),
        ] {
            let n = e.encode(&mut b).expect("fits");
            assert_eq!(Event::decode(&b[..n]), Ok(e));
        }
        let n = Event::Frame(&frame).encode(&mut b).expect("fits");
        b[4] = 1;
        assert_eq!(Event::decode(&b[..n]), Err(Error::Malformed), "a frame with a status");
        b[4] = 0;
        b[0] = 3;
        assert_eq!(Event::decode(&b[..n]), Err(Error::Malformed), "no such kind");
        b[0] = 2;
        assert_eq!(Event::decode(&b[..16 + 13]), Err(Error::Malformed), "a short frame");
        b[0] = 1;
        assert_eq!(Event::decode(&b[..n]), Err(Error::Malformed), "an answer with a body");
    }

    #[test]
    fn macs_round_trip_and_the_rings_fit() {
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x57];
        assert_eq!(mac_of(mac_value(mac)), Some(mac));
        assert_eq!(mac_of(1 << 48), None);
        let (mut b, n) = req(1, 1, 60);
        b[8 + 6..8 + 12].copy_from_slice(&mac);
        assert_eq!(Request::decode(&b[..n]).expect("a send").source(), Some(mac));
        assert!(RING.bytes() <= EVENTS_AT && EVENTS_AT + RING.bytes() <= REGION_BYTES);
        assert!(RING.max_payload() >= REQUEST_HEADER + MAX_FRAME);
        assert!(RING.max_payload() >= EVENT_HEADER + MAX_FRAME);
    }
}
