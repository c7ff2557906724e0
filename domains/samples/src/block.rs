//! A client's end of the block service (`ipc::block`): its region's two
//! rings (requests out, answers in), its doorbell and `blk`'s.

use ipc::block::{Answer, Request, ANSWERS_AT, REGION_BYTES, RING};
use ipc::ring::{Consumer, Producer, Region};
use ipc::Error;
use user::{Caps, StartInfo};

use crate::link::{self, Bells};
use crate::{Failure, OrFail};

pub struct Conn {
    tx: Producer<'static>,
    rx: Consumer<'static>,
    bells: Bells,
    /// The region's first byte (a hostile client writes it raw).
    pub base: *mut u8,
    buf: [u8; RING.max_payload()],
}

/// What came back: the tag, the result, and how many bytes of data
/// (`Conn::data`).
pub type Got = (u32, Result<u64, Error>, usize);

impl Conn {
    /// The client `name`'s end: region `shared:<name>`, waiting on
    /// `notification:<name>-ans`, ringing `notification:blk-req`.
    pub fn attach(start: &StartInfo, name: &str, mine: &str) -> Result<Self, Failure> {
        let shared = start.shared(name).or_fail("no region for the block service")?;
        if (shared.len as usize) < REGION_BYTES {
            return Err(Failure::new("the block service's region is too small"));
        }
        let bells = Bells {
            mine: start.prefixed("notification:", mine).or_fail("no doorbell of our own")?,
            peer: start.slot("notification:blk-req").or_fail("no notification:blk-req")?,
        };
        let base = shared.va as *mut u8;
        // SAFETY: mgmt maps the region read-write for our life; these two
        // rings, each in its own half, are all that use it.
        let (req, ans) = unsafe {
            (
                Region::from_raw(base, ANSWERS_AT),
                Region::from_raw(base.add(ANSWERS_AT), REGION_BYTES - ANSWERS_AT),
            )
        };
        let tx = Producer::new(req.or_fail("the request ring")?, RING).or_fail("the request ring")?;
        let rx = Consumer::new(ans.or_fail("the answer ring")?, RING).or_fail("the answer ring")?;
        Ok(Conn { tx, rx, bells, base, buf: [0; RING.max_payload()] })
    }

    /// Sends `bytes` as one request, as they are.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Error> {
        link::send(&mut self.tx, self.bells, bytes)
    }

    /// Waits for the next answer.
    pub fn answer(&mut self) -> Result<Got, Error> {
        let n = link::recv(&mut self.rx, self.bells, &mut self.buf)?;
        let a = Answer::decode(&self.buf[..n])?;
        Ok((a.tag, a.result, a.data.len()))
    }

    /// A read's data in the last answer.
    pub fn data(&self, len: usize) -> &[u8] {
        &self.buf[ipc::block::ANSWER_HEADER..ipc::block::ANSWER_HEADER + len]
    }

    /// Sends `r` and waits for its answer.
    pub fn call(&mut self, r: &Request<'_>) -> Result<Got, Error> {
        let mut out = [0u8; RING.max_payload()];
        let n = r.encode(&mut out).ok_or(Error::Malformed)?;
        self.send(&out[..n])?;
        self.answer()
    }

    /// Rings `blk`'s doorbell (after writing the ring raw).
    pub fn ring(&self) -> Result<(), Error> {
        user::sys::signal(self.bells.peer, 1)
    }
}
