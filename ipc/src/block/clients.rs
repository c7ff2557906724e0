//! The guests' disks a `blk` domain serves, as `mgmt` tells it (issue 13).
//!
//! For each `[[guest]]` disk on a `blk` domain, `mgmt` makes the channel
//! itself, as a system file's `[[shared]]` and `[[notification]]` would: a
//! region of [`super::REGION_BYTES`] holding the block service's two rings,
//! a notification the guest's VMM waits on for answers, and the one `blk`
//! waits on for requests (`notification:blk-req`: the system file's if it
//! gives `blk` one to wait on, else one `mgmt` makes). Client `n` of a
//! `blk` domain (in the order of the manifest's guests, then of each
//! guest's disks) is, to `blk`, `shared:guest-disk:<n>` and
//! `notification:guest-disk:<n>` ([`blk_region`], [`blk_bell`]); disk `k` of
//! a guest is, to its VMM, `shared:disk:<k>`, `notification:disk:<k>` and
//! `notification:disk-req:<k>` ([`vmm_region`], [`vmm_bell`],
//! [`vmm_blk_bell`]).
//!
//! How `blk` learns its clients (design choice): at start, from a page
//! `mgmt` grants it read-only as [`CLIENTS_CAP`], holding the postcard
//! [`Clients`]: for client `n`, the guest's name, the region of `blk`'s
//! disk it may reach and whether read-only. That comes from `mgmt`, which
//! read the system file, never from a VMM; `blk` puts every request of
//! client `n` through its [`Window`], so a VMM, even a hostile one,
//! reaches only its own region, and writes nothing on a read-only one.
//!
//! Limits of this slice (issue 13): `blk` serves a client until it closes
//! (a VMM closes its disks when its guest stops for good) or breaks its
//! ring; a VMM that dies without closing is served on, so `blk`, and the
//! system, does not stop by itself then. A restarted VMM makes its ring
//! ends afresh over the region, which `blk`'s ends take for a peer moving
//! an index back: that client is dropped, and the new VMM's disks get no
//! answer. (A VMM waiting on `blk` has no time-out either.)

use core::fmt::Write;

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

use super::{Op, Request};
use crate::error::Error;
use crate::manifest::Name;

/// The name of `blk`'s capability to its clients' page.
pub const CLIENTS_CAP: &str = "blk-clients";
pub const CLIENTS_VERSION: u32 = 1;
/// The most guests' disks one `blk` serves.
pub const MAX_CLIENTS: usize = 4;
/// The most bytes [`Clients`] encodes to (a page holds them).
pub const CLIENTS_MAX: usize = 512;

/// One guest's disk on `blk`'s disk: its first sector and sectors (`None`:
/// to the disk's end), as the system file gave them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub guest: Name,
    pub first_sector: u64,
    pub sectors: Option<u64>,
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clients {
    pub version: u32,
    pub list: Vec<Client, MAX_CLIENTS>,
}

impl Clients {
    pub fn new() -> Self {
        Clients { version: CLIENTS_VERSION, list: Vec::new() }
    }

    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a mut [u8], Error> {
        postcard::to_slice(self, buf).map_err(|_| Error::Malformed)
    }

    /// Decodes and checks them: the version, no region of no sectors.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let c: Clients = postcard::from_bytes(bytes).map_err(|_| Error::Malformed)?;
        let ok = c.version == CLIENTS_VERSION && c.list.iter().all(|d| d.sectors != Some(0));
        if ok {
            Ok(c)
        } else {
            Err(Error::Malformed)
        }
    }
}

impl Default for Clients {
    fn default() -> Self {
        Self::new()
    }
}

/// The part of `blk`'s disk one client may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub first: u64,
    pub sectors: u64,
    pub read_only: bool,
}

impl Window {
    /// The whole disk of `capacity` sectors, writable (a system file's client).
    pub fn whole(capacity: u64) -> Self {
        Window { first: 0, sectors: capacity, read_only: false }
    }

    /// Client `c`'s window on a disk of `capacity` sectors: its region, cut
    /// where the disk ends (of no sectors if it starts past the end).
    pub fn of(c: &Client, capacity: u64) -> Self {
        let first = c.first_sector.min(capacity);
        let rest = capacity - first;
        let sectors = c.sectors.map_or(rest, |n| n.min(rest));
        Window { first, sectors, read_only: c.read_only }
    }

    /// Where request `r` (decoded) goes on the disk: for a read or write,
    /// its first sector there; `BadAddress` if it reaches past the
    /// window's end (wrapping included), `InsufficientRights` for a write
    /// to a read-only window. Anything else touches no sector: `Ok(0)`.
    pub fn translate(&self, r: &Request<'_>) -> Result<u64, Error> {
        if !matches!(r.op, Op::Read | Op::Write) {
            return Ok(0);
        }
        if r.out_of_range(self.sectors) {
            return Err(Error::BadAddress);
        }
        if r.op == Op::Write && self.read_only {
            return Err(Error::InsufficientRights);
        }
        // In range: sector + count <= sectors, and first + sectors <= capacity.
        self.first.checked_add(r.sector).ok_or(Error::BadAddress)
    }
}

type Cap = String<32>;

fn named(prefix: &str, n: usize) -> Cap {
    let mut s = Cap::new();
    // Each prefix and a number below 100 fit in 32 bytes.
    let _ = write!(s, "{prefix}{n}");
    s
}

/// `blk`'s capability to client `n`'s region.
pub fn blk_region(n: usize) -> Cap {
    named("shared:guest-disk:", n)
}

/// `blk`'s capability to the notification client `n` waits on.
pub fn blk_bell(n: usize) -> Cap {
    named("notification:guest-disk:", n)
}

/// The notification `blk` waits on for every client's requests.
pub const BLK_REQUESTS: &str = "notification:blk-req";

/// A VMM's capability to its disk `k`'s region.
pub fn vmm_region(k: usize) -> Cap {
    named("shared:disk:", k)
}

/// The notification a VMM waits on for disk `k`'s answers.
pub fn vmm_bell(k: usize) -> Cap {
    named("notification:disk:", k)
}

/// `blk`'s notification, as the VMM rings it for disk `k`'s requests.
pub fn vmm_blk_bell(k: usize) -> Cap {
    named("notification:disk-req:", k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(op: Op, sector: u64, count: u32) -> Request<'static> {
        Request { op, tag: 1, sector, count, data: &[] }
    }

    fn client(first: u64, sectors: Option<u64>, read_only: bool) -> Client {
        Client { guest: Name::try_from("g").unwrap(), first_sector: first, sectors, read_only }
    }

    #[test]
    fn requests_land_inside_the_window_or_are_refused() {
        let w = Window::of(&client(2048, Some(100), false), 1 << 20);
        assert_eq!(w.translate(&rw(Op::Read, 0, 8)), Ok(2048));
        assert_eq!(w.translate(&rw(Op::Write, 92, 8)), Ok(2140), "the last 8 sectors");
        assert_eq!(w.translate(&rw(Op::Read, 93, 8)), Err(Error::BadAddress), "one past the end");
        assert_eq!(w.translate(&rw(Op::Write, 100, 1)), Err(Error::BadAddress), "at the end");
        assert_eq!(w.translate(&rw(Op::Read, u64::MAX - 2, 8)), Err(Error::BadAddress), "wraps");
        assert_eq!(
            w.translate(&rw(Op::Read, u64::MAX - 2047, 1)),
            Err(Error::BadAddress),
            "wraps on the disk"
        );
        assert_eq!(w.translate(&rw(Op::Flush, u64::MAX, 0)), Ok(0));
        assert_eq!(w.translate(&rw(Op::Capacity, 0, 0)), Ok(0));
    }

    #[test]
    fn a_read_only_window_takes_no_write() {
        let w = Window::of(&client(0, Some(16), true), 64);
        assert_eq!(w.translate(&rw(Op::Read, 8, 8)), Ok(8));
        assert_eq!(w.translate(&rw(Op::Write, 0, 1)), Err(Error::InsufficientRights));
        assert_eq!(w.translate(&rw(Op::Write, 16, 1)), Err(Error::BadAddress), "past the end first");
    }

    #[test]
    fn windows_are_cut_where_the_disk_ends() {
        assert_eq!(
            Window::of(&client(10, None, false), 64),
            Window { first: 10, sectors: 54, read_only: false }
        );
        assert_eq!(Window::of(&client(60, Some(16), false), 64).sectors, 4);
        let past = Window::of(&client(100, Some(16), false), 64);
        assert_eq!((past.first, past.sectors), (64, 0));
        assert_eq!(past.translate(&rw(Op::Read, 0, 1)), Err(Error::BadAddress));
        assert_eq!(Window::whole(64), Window { first: 0, sectors: 64, read_only: false });
    }

    #[test]
    fn clients_round_trip_and_are_checked() {
        let mut c = Clients::new();
        for i in 0..MAX_CLIENTS as u64 {
            let name = "a-guest-name-of-24-bytes";
            let d =
                Client { guest: Name::try_from(name).unwrap(), ..client(u64::MAX - i, Some(u64::MAX), true) };
            c.list.push(d).unwrap();
        }
        let mut buf = [0u8; CLIENTS_MAX];
        let n = c.encode(&mut buf).expect("the most clients fit").len();
        assert_eq!(Clients::decode(&buf[..n]), Ok(c.clone()));
        c.list[1].sectors = Some(0);
        let n = c.encode(&mut buf).unwrap().len();
        assert_eq!(Clients::decode(&buf[..n]), Err(Error::Malformed), "a region of no sectors");
        c.list[1].sectors = None;
        c.version = 2;
        let n = c.encode(&mut buf).unwrap().len();
        assert_eq!(Clients::decode(&buf[..n]), Err(Error::Malformed), "another version");
        assert!(Clients::decode(&buf[..n - 1]).is_err(), "cut short");
    }

    #[test]
    fn capability_names_fit_a_start_page() {
        assert_eq!(blk_region(3), "shared:guest-disk:3");
        assert_eq!(blk_bell(3), "notification:guest-disk:3");
        assert_eq!(vmm_region(0), "shared:disk:0");
        assert_eq!(vmm_bell(1), "notification:disk:1");
        assert_eq!(vmm_blk_bell(2), "notification:disk-req:2");
        assert_eq!(blk_bell(MAX_CLIENTS * 16), "notification:guest-disk:64");
    }
}
