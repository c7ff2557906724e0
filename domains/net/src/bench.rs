//! `net-bench`: the device bench's client of the frame service
//! (`ipc::net`, served by `net`; `bench-devices.toml`, under `-icount`:
//! the TSC counts instructions). Its first request (its MAC) is answered
//! once `net` has its lease and serves it. Then it sends `N` frames of
//! 1514 bytes (a 1500-byte payload; to the broadcast address, of an
//! EtherType no one on QEMU's user network takes), one at a time, each
//! timed from its send to its answer: this domain's request and answer
//! through the rings and doorbells, `net`'s decoding and checking, the
//! driver's copy into DMA memory, the device's notification and the wait
//! until it has taken the frame (QEMU's, in its own time: included, not
//! taken off). It logs `bench: net_send_1500 <n>` and exits 0 if every
//! answer was the one owed.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::net::{mac_of, Event, Op, Request, MAX_FRAME, RING};
use ipc::ring::{Consumer, Producer};
use ipc::Error;
use samples::link::{self, Bells};
use user::{arch, StartInfo};

mod service;

user::entry!(main, heap_kib = 0);

const N: u64 = 200;
/// IEEE 802's EtherType for local experiments.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

struct Service {
    tx: Producer<'static>,
    rx: Consumer<'static>,
    bells: Bells,
    tag: u32,
}

impl Service {
    fn attach(start: &StartInfo) -> Result<Self, &'static str> {
        let (service::Link { tx, rx, bells }, _) = service::attach(start)?;
        Ok(Service { tx, rx, bells, tag: 0 })
    }

    /// Asks `op` and waits for its answer (frames meanwhile are read past).
    fn call(&mut self, op: Op, frame: &[u8]) -> Result<Result<u64, Error>, Error> {
        self.tag = self.tag.wrapping_add(1);
        let mut buf = [0u8; RING.max_payload()];
        let n = Request { op, tag: self.tag, frame }.encode(&mut buf).ok_or(Error::Malformed)?;
        link::send(&mut self.tx, self.bells, &buf[..n])?;
        loop {
            let n = link::recv(&mut self.rx, self.bells, &mut buf)?;
            if let Event::Answer { tag, result } = Event::decode(&buf[..n])? {
                if tag == self.tag {
                    return Ok(result);
                }
            }
        }
    }
}

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => 0,
        Err(why) => {
            log::info!("net-bench: FAIL: {why}");
            1
        }
    }
}

fn run(start: &StartInfo) -> Result<(), &'static str> {
    let mut s = Service::attach(start)?;
    let failed = |_| "the frame service failed";
    let mac = s.call(Op::Mac, &[]).map_err(failed)?.ok().and_then(mac_of).ok_or("no MAC")?;
    let mut frame = [0u8; MAX_FRAME];
    frame[..6].fill(0xff);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&ETHERTYPE);
    for (i, b) in frame[14..].iter_mut().enumerate() {
        *b = i as u8;
    }
    let t0 = arch::rdtsc();
    for _ in 0..N {
        if s.call(Op::Send, &frame).map_err(failed)? != Ok(0) {
            return Err("a send was refused");
        }
    }
    let t = arch::rdtsc().wrapping_sub(t0);
    log::info!("bench: net_send_1500 {}", t / N);
    if s.call(Op::Close, &[]).map_err(failed)? != Ok(0) {
        return Err("the close was not answered as owed");
    }
    log::info!("net-bench: done");
    Ok(())
}
