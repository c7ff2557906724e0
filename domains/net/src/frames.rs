//! The frame service (`ipc::net`) to the client the system file names
//! (`shared:net-client`, its doorbell `notification:net-client-ans`; it
//! rings this domain's `notification:net-req`): a station of its own
//! behind `net`, with the address `net`'s MAC plus one in its last byte.
//! Its sends are checked (`Request::decode`: one whole frame) and put on
//! the wire only from its own address (another is `BadAddress`); frames
//! received for that address, and broadcast and multicast ones, are given
//! to it (`offer`; dropped, and counted, while its event ring is full). A
//! client that breaks a ring (`PeerMisbehaved`) is served no more.

use ipc::net::{mac_value, Event, Op, Request, EVENTS_AT, REGION_BYTES, RING};
use ipc::ring::{Consumer, Producer, Region, Sleep};
use ipc::{CapSlot, Error};
use user::{sys, Caps, StartInfo};

pub struct Client {
    requests: Consumer<'static>,
    events: Producer<'static>,
    bell: CapSlot,
    pub mac: [u8; 6],
    /// An answer the full event ring did not take yet.
    pending: Option<([u8; RING.max_payload()], usize)>,
    pub done: bool,
    pub dropped: u64,
}

/// The client, if the system file names one.
pub fn attach(start: &StartInfo, mac: [u8; 6]) -> Result<Option<Client>, &'static str> {
    let Some(shared) = start.shared("net-client") else { return Ok(None) };
    if (shared.len as usize) < REGION_BYTES {
        return Err("the client's region is too small");
    }
    let bell = start.slot("notification:net-client-ans").ok_or("the client's doorbell is missing")?;
    // SAFETY: mgmt maps the region read-write for this domain's life; only
    // these two rings use it, each in its own part.
    let (req, ev) = unsafe {
        let va = shared.va as *mut u8;
        (Region::from_raw(va, EVENTS_AT), Region::from_raw(va.add(EVENTS_AT), REGION_BYTES - EVENTS_AT))
    };
    let requests = Consumer::new(req.map_err(|_| "a request ring")?, RING).map_err(|_| "a request ring")?;
    let events = Producer::new(ev.map_err(|_| "an event ring")?, RING).map_err(|_| "an event ring")?;
    let mut mac = mac;
    mac[5] = mac[5].wrapping_add(1);
    Ok(Some(Client { requests, events, bell, mac, pending: None, done: false, dropped: 0 }))
}

impl Client {
    fn push(&mut self, bytes: &[u8]) -> Result<bool, Error> {
        match self.events.push(bytes) {
            Ok(s) => {
                if s.is_needed() {
                    sys::signal(self.bell, 1)?;
                }
                Ok(true)
            }
            Err(Error::WouldBlock) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether a received frame is the client's: to its address, or to
    /// every station (broadcast, multicast).
    pub fn wants(&self, frame: &[u8]) -> bool {
        frame.get(..6).is_some_and(|to| to == self.mac || to[0] & 1 != 0)
    }

    /// Gives the client a received frame (dropped if its ring is full).
    pub fn offer(&mut self, frame: &[u8]) {
        if self.done {
            return;
        }
        let mut out = [0u8; RING.max_payload()];
        let Some(n) = Event::Frame(frame).encode(&mut out) else { return };
        match self.push(&out[..n]) {
            Ok(true) => {}
            Ok(false) => self.dropped += 1,
            Err(e) => self.drop_client(e),
        }
    }

    /// Whether the client gives nothing to do now, this side of each ring
    /// ready to sleep (so that its next message rings `net-req`).
    pub fn sleepy(&mut self) -> bool {
        if self.done {
            return true;
        }
        let events = self.pending.is_none() || self.events.prepare_to_sleep() == Ok(Sleep::Wait);
        events && self.requests.prepare_to_sleep() == Ok(Sleep::Wait)
    }

    fn drop_client(&mut self, e: Error) {
        log::info!("net: client net-client broke its ring ({e:?}): no longer served");
        self.done = true;
    }

    /// Serves the client's requests, `send` putting a frame on the wire
    /// (`Err`: the device refused it) and `link` whether the link is up;
    /// whether anything moved.
    pub fn serve(&mut self, mut send: impl FnMut(&[u8]) -> Result<(), ()>, link: bool) -> bool {
        let mut moved = false;
        while !self.done {
            match self.step(&mut send, link) {
                Ok(true) => moved = true,
                Ok(false) => break,
                Err(e) => self.drop_client(e),
            }
        }
        moved
    }

    fn step(&mut self, send: &mut impl FnMut(&[u8]) -> Result<(), ()>, link: bool) -> Result<bool, Error> {
        if let Some((bytes, n)) = self.pending {
            if !self.push(&bytes[..n])? {
                return Ok(false);
            }
            self.pending = None;
        }
        let mut req = [0u8; RING.max_payload()];
        let n = match self.requests.pop(&mut req) {
            Ok((n, s)) => {
                if s.is_needed() {
                    sys::signal(self.bell, 1)?;
                }
                n
            }
            Err(Error::WouldBlock) => return Ok(false),
            Err(e) => return Err(e),
        };
        let (tag, result) = match Request::decode(&req[..n]) {
            Err((tag, e)) => (tag, Err(e)),
            Ok(r) => (
                r.tag,
                match r.op {
                    Op::Send if r.source() != Some(self.mac) => Err(Error::BadAddress),
                    Op::Send => send(r.frame).map(|_| 0).map_err(|_| Error::NotSupported),
                    Op::Mac => Ok(mac_value(self.mac)),
                    Op::Link => Ok(u64::from(link)),
                    Op::Close => {
                        self.done = true;
                        Ok(0)
                    }
                },
            ),
        };
        let mut out = [0u8; RING.max_payload()];
        let n = Event::Answer { tag, result }.encode(&mut out).ok_or(Error::Malformed)?;
        if !self.push(&out[..n])? {
            self.pending = Some((out, n));
        }
        Ok(true)
    }
}
