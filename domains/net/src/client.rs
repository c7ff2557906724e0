//! `net-client`: a client of the frame service (`ipc::net`, served by
//! `net`), a station of its own behind it. It asks its MAC and the link,
//! has a frame from another address refused (`BadAddress`) and frames
//! too long or too short refused (`Malformed`), then runs `smoltcp` over
//! the service and takes a DHCP lease of its own from QEMU's user
//! network; last it moves its request ring's index back (`net` must drop
//! it and serve on). It exits 0 if every answer was the one owed.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

extern crate alloc;

use core::sync::atomic::{AtomicU32, Ordering};
use ipc::net::{mac_of, Event, Op, Request, MAX_FRAME, RING};
use ipc::ring::{Consumer, Producer};

use ipc::Error;
use samples::link::{self, Bells};
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::socket::dhcpv4;
use smoltcp::wire::{EthernetAddress, HardwareAddress};
use station::{now, Frames, Mac, Station};
use user::{sys, StartInfo};

mod service;
mod station;

user::entry!(main, heap_kib = 256);

const TIMER: u64 = 2;
/// How long the lease may take.
const LEASE_MS: u64 = 20_000;

struct Service {
    /// The region's first byte (its request ring's producer index).
    base: *mut u8,
    tx: Producer<'static>,
    rx: Consumer<'static>,
    bells: Bells,
    tag: u32,
    /// Sends the service refused, and answers that were not the one owed.
    wrong: u64,
}

impl Service {
    fn attach(start: &StartInfo) -> Result<Self, &'static str> {
        let (service::Link { tx, rx, bells }, base) = service::attach(start)?;
        Ok(Service { base, tx, rx, bells, tag: 0, wrong: 0 })
    }

    fn request(&mut self, op: Op, frame: &[u8]) -> Result<u32, Error> {
        self.tag = self.tag.wrapping_add(1);
        let mut out = [0u8; RING.max_payload()];
        let n = Request { op, tag: self.tag, frame }.encode(&mut out).ok_or(Error::Malformed)?;
        link::send(&mut self.tx, self.bells, &out[..n])?;
        Ok(self.tag)
    }

    /// Asks `op` and waits for its answer (frames meanwhile are dropped).
    fn call(&mut self, op: Op, frame: &[u8]) -> Result<Result<u64, Error>, Error> {
        let tag = self.request(op, frame)?;
        let mut buf = [0u8; RING.max_payload()];
        loop {
            let n = link::recv(&mut self.rx, self.bells, &mut buf)?;
            if let Event::Answer { tag: t, result } = Event::decode(&buf[..n])? {
                if t == tag {
                    return Ok(result);
                }
                self.wrong += u64::from(result.is_err());
            }
        }
    }

    /// The next frame received, if one has come (answers to sends are
    /// read past, a refusal counted).
    fn frame(&mut self, out: &mut [u8; MAX_FRAME]) -> Option<usize> {
        let mut buf = [0u8; RING.max_payload()];
        loop {
            let (n, s) = self.rx.pop(&mut buf).ok()?;
            if s.is_needed() {
                let _ = sys::signal(self.bells.peer, 1);
            }
            match Event::decode(&buf[..n]) {
                Ok(Event::Frame(f)) => {
                    out[..f.len()].copy_from_slice(f);
                    return Some(f.len());
                }
                Ok(Event::Answer { result, .. }) => self.wrong += u64::from(result.is_err()),
                Err(_) => self.wrong += 1,
            }
        }
    }
}

impl Frames for Service {
    fn take(&mut self, out: &mut [u8; MAX_FRAME]) -> Option<usize> {
        self.frame(out)
    }

    fn put(&mut self, frame: &[u8]) {
        if self.request(Op::Send, frame).is_err() {
            self.wrong += 1;
        }
    }
}

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(why) => {
            log::info!("net-client: FAIL: {why}");
            1
        }
    }
}

fn run(start: &'static StartInfo) -> Result<bool, &'static str> {
    let mut s = Service::attach(start)?;
    let mut ok = true;
    let mut check = |what: &str, good: bool| {
        log::info!("net-client: {what}: {}", if good { "as owed" } else { "FAIL" });
        ok &= good;
    };
    let failed = |_| "the frame service failed";
    let mac = s.call(Op::Mac, &[]).map_err(failed)?.ok().and_then(mac_of);
    check("its MAC, net's plus one", mac.is_some_and(|m| m[..3] == [0x52, 0x54, 0x00]));
    let mac = mac.ok_or("no MAC")?;
    log::info!("net-client: its MAC is {}", Mac(mac));
    check("the link up", s.call(Op::Link, &[]).map_err(failed)? == Ok(1));
    let mut frame = [0u8; MAX_FRAME + 1];
    frame[..6].fill(0xff);
    frame[6..12].copy_from_slice(&mac);
    frame[11] = frame[11].wrapping_sub(1); // net's own address
    let spoofed = s.call(Op::Send, &frame[..60]).map_err(failed)?;
    check("a frame from another address refused", spoofed == Err(Error::BadAddress));
    frame[11] = mac[5];
    let long = s.call(Op::Send, &frame[..MAX_FRAME + 1]).map_err(failed)?;
    check("a frame too long refused", long == Err(Error::Malformed));
    let short = s.call(Op::Send, &frame[..13]).map_err(failed)?;
    check("a frame too short refused", short == Err(Error::Malformed));

    let ntfn = s.bells.mine;
    let mut iface = Interface::new(
        Config::new(HardwareAddress::Ethernet(EthernetAddress(mac))),
        &mut Station(&mut s),
        now(),
    );
    let mut sockets = SocketSet::new(alloc::vec::Vec::new());
    let dhcp = sockets.add(dhcpv4::Socket::new());
    let deadline = user::time::deadline_ms(LEASE_MS);
    loop {
        iface.poll(now(), &mut Station(&mut s), &mut sockets);
        if let Some(dhcpv4::Event::Configured(c)) = sockets.get_mut::<dhcpv4::Socket>(dhcp).poll() {
            match c.router {
                Some(r) => log::info!("net-client: DHCP lease: address {}, gateway {r}", c.address),
                None => log::info!("net-client: DHCP lease: address {}, no gateway", c.address),
            }
            break;
        }
        if user::time::passed(deadline) {
            return Err("no DHCP lease within 20 s");
        }
        if s.rx.prepare_to_sleep() == Ok(ipc::ring::Sleep::Wait) {
            let delay =
                iface.poll_delay(now(), &sockets).map_or(100_000, |d| d.total_micros().clamp(100, 100_000));
            sys::timer_set(ntfn, TIMER, delay, 0).map_err(|_| "setting a timer")?;
            sys::wait(ntfn).map_err(|_| "waiting")?;
        }
    }
    let wrong = s.wrong;
    let mut check = |what: &str, good: bool| {
        log::info!("net-client: {what}: {}", if good { "as owed" } else { "FAIL" });
        ok &= good;
    };
    check("every frame sent taken", wrong == 0);
    // Last, hostile: its request ring's producer index (the region's first
    // word) moved back; `net` must see it, drop this client and serve on.
    // SAFETY: the region is ours, mapped read-write, 4-aligned at its
    // start; the ring's words are only touched atomically.
    let index = unsafe { &*(s.base as *const AtomicU32) };
    index.store(index.load(Ordering::Relaxed).wrapping_sub(3), Ordering::SeqCst);
    sys::signal(s.bells.peer, 1).map_err(|_| "ringing net")?;
    log::info!("net-client: moved its producer index back");
    Ok(ok)
}
