//! A guest's disk as the VMM serves it in this slice (issue 13): a client
//! of the `blk` domain's block service (`ipc::block`) over the channel
//! `mgmt` made for the disk (`ipc::block::clients`): each request the
//! guest's chain asks goes through the request ring, and its answer is
//! waited for before the next, so that a kick is served from `blk`'s disk.
//! A flush is `blk`'s flush (its device's), so a guest's flush is
//! honoured end to end.
//!
//! The size the guest sees is what `blk` answers a capacity request with
//! (its window of the disk), cut to the system file's size; the VMM
//! refuses past that end itself (`vq::blk`), and `blk`, told the region by
//! `mgmt`, refuses past it whatever the VMM asks ([`Backing::raw`] is how
//! the hostile test asks). An answer that is not the one waited for (its
//! tag, a read's length) or a ring the peer broke ends the channel: every
//! request after fails (the guest sees I/O errors), the VMM goes on.

use ipc::block::{Answer, Op, Request, MAX_SECTORS, RING, SECTOR};
use ipc::manifest::DiskSpec;
use ipc::ring::{Consumer, Producer, Region, Sleep};
use ipc::Error;

/// The most bytes one request moves.
const MOST: usize = MAX_SECTORS as usize * SECTOR;

/// How the VMM rings `blk` and sleeps until `blk` rings it back (syscalls
/// in the binary, a fake `blk` in the tests).
pub trait Bells {
    fn ring(&mut self) -> Result<(), Error>;
    fn wait(&mut self) -> Result<(), Error>;
}

/// One disk's end of the channel.
pub struct Backing<'a, B: Bells> {
    tx: Producer<'a>,
    rx: Consumer<'a>,
    bells: B,
    tag: u32,
    sectors: u64,
    read_only: bool,
    /// The channel broke: nothing more is asked.
    broken: bool,
}

impl<'a, B: Bells> Backing<'a, B> {
    /// The channel over its two rings' memory (requests, answers), its
    /// size asked of `blk` and cut to `spec`'s.
    pub fn connect(
        requests: Region<'a>,
        answers: Region<'a>,
        bells: B,
        spec: &DiskSpec,
    ) -> Result<Self, Error> {
        let tx = Producer::new(requests, RING)?;
        let rx = Consumer::new(answers, RING)?;
        let mut b = Backing { tx, rx, bells, tag: 0, sectors: 0, read_only: spec.read_only, broken: false };
        let capacity = b.call(Op::Capacity, 0, 0, &[], &mut [])?;
        b.sectors = spec.sectors.map_or(capacity, |n| n.min(capacity));
        Ok(b)
    }

    pub fn broken(&self) -> bool {
        self.broken
    }

    #[cfg(test)]
    pub(crate) fn bells(&self) -> &B {
        &self.bells
    }

    /// Asks `op` of `sector`, `count` sectors (zeros for a write) as it
    /// is, without the VMM's own checks: `blk`'s answer.
    pub fn raw(&mut self, op: Op, sector: u64, count: u32) -> Result<u64, Error> {
        let zeros = [0u8; MOST];
        let n = (count as usize * SECTOR).min(MOST);
        let mut out = [0u8; MOST];
        match op {
            Op::Write => self.call(op, sector, count, &zeros[..n], &mut []),
            Op::Read => self.call(op, sector, count, &[], &mut out[..n]),
            _ => self.call(op, sector, count, &[], &mut []),
        }
    }

    /// Tells `blk` this client is done (its answer waited for).
    pub fn close(&mut self) -> Result<(), Error> {
        self.call(Op::Close, 0, 0, &[], &mut []).map(drop)
    }

    /// Sends one request and waits for its answer: its value, a read's
    /// data in `out` (whose length the answer must have).
    fn call(&mut self, op: Op, sector: u64, count: u32, data: &[u8], out: &mut [u8]) -> Result<u64, Error> {
        if self.broken {
            return Err(Error::PeerDead);
        }
        self.tag = self.tag.wrapping_add(1);
        match self.exchange(&Request { op, tag: self.tag, sector, count, data }, out) {
            Ok(answered) => answered,
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    /// The answer to `r` (outer error: the channel broke).
    fn exchange(&mut self, r: &Request<'_>, out: &mut [u8]) -> Result<Result<u64, Error>, Error> {
        let mut buf = [0u8; RING.max_payload()];
        let n = r.encode(&mut buf).ok_or(Error::Malformed)?;
        loop {
            match self.tx.push(&buf[..n]) {
                Ok(s) => {
                    if s.is_needed() {
                        self.bells.ring()?;
                    }
                    break;
                }
                Err(Error::WouldBlock) => self.sleep(true)?,
                Err(e) => return Err(e),
            }
        }
        let len = loop {
            match self.rx.pop(&mut buf) {
                Ok((len, s)) => {
                    if s.is_needed() {
                        self.bells.ring()?;
                    }
                    break len;
                }
                Err(Error::WouldBlock) => self.sleep(false)?,
                Err(e) => return Err(e),
            }
        };
        let a = Answer::decode(&buf[..len])?;
        let want = if a.result.is_ok() { out.len() } else { 0 };
        if a.tag != r.tag || a.data.len() != want {
            return Err(Error::PeerMisbehaved);
        }
        if a.result.is_ok() {
            out.copy_from_slice(a.data);
        }
        Ok(a.result)
    }

    /// Sleeps for room in the request ring (`tx`) or an answer.
    fn sleep(&mut self, tx: bool) -> Result<(), Error> {
        let sleep = if tx { self.tx.prepare_to_sleep()? } else { self.rx.prepare_to_sleep()? };
        if sleep == Sleep::Wait {
            self.bells.wait()?;
        }
        Ok(())
    }

    /// Whether `bytes` from `sector` lie on the disk, in whole sectors.
    fn fits(&self, sector: u64, bytes: usize) -> bool {
        let end = sector.checked_add((bytes / SECTOR) as u64);
        bytes % SECTOR == 0 && end.is_some_and(|e| e <= self.sectors)
    }
}

impl<B: Bells> vq::blk::Disk for Backing<'_, B> {
    fn sectors(&self) -> u64 {
        self.sectors
    }

    fn read_only(&self) -> bool {
        self.read_only
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> bool {
        self.fits(sector, buf.len())
            && buf.chunks_mut(MOST).enumerate().all(|(i, chunk)| {
                let at = sector + (i * MOST / SECTOR) as u64;
                let count = (chunk.len() / SECTOR) as u32;
                self.call(Op::Read, at, count, &[], chunk).is_ok()
            })
    }

    fn write(&mut self, sector: u64, data: &[u8]) -> bool {
        !self.read_only
            && self.fits(sector, data.len())
            && data.chunks(MOST).enumerate().all(|(i, chunk)| {
                let at = sector + (i * MOST / SECTOR) as u64;
                let count = (chunk.len() / SECTOR) as u32;
                self.call(Op::Write, at, count, chunk, &mut []).is_ok()
            })
    }

    fn flush(&mut self) -> bool {
        self.call(Op::Flush, 0, 0, &[], &mut []).is_ok()
    }

    fn id(&self) -> &[u8] {
        b"ryokan-blk"
    }
}

#[cfg(test)]
pub(crate) mod tests;
