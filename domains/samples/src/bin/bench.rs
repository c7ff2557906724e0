//! `bench`: measures path lengths with the TSC, which under QEMU's
//! `-icount shift=0,sleep=off` counts instructions executed (by all CPUs:
//! cross-CPU figures include the other CPU's share). `cargo xtask bench`
//! boots it and reads its `bench: <name> <instructions>` lines. It runs on
//! CPU 0; `bench-srv0` on CPU 0 and `bench-srv1` on CPU 1 are the far sides.

#![cfg_attr(target_os = "none", no_std)]
#![no_main]

use ipc::ring::Producer;
use ipc::CapSlot;
use samples::link::{self, Bells, SMALL};
use samples::proto::{self, BELLS, BENCH_STAMP_OFFSET, DONE, PING, REPORT, RING};
use samples::words::Words;
use samples::{Failure, OrFail};
use user::{arch, sys, Caps, SharedRegion, StartInfo};

user::entry!(main, heap_kib = 0);

/// Repetitions of each measurement.
const N: u64 = 10_000;

/// One far side: its endpoint and our doorbells with it.
#[derive(Clone, Copy)]
struct Peer {
    ep: CapSlot,
    bells: Bells,
}

fn main(start: &'static StartInfo) -> u64 {
    match run(start) {
        Ok(()) => {
            log::info!("bench: done");
            0
        }
        Err(why) => {
            log::error!("bench: FAIL {why}");
            1
        }
    }
}

/// The far side on CPU `cpu`: `endpoint:bench<cpu>`, `notification:up<cpu>`
/// (its doorbell) and `notification:down<cpu>` (ours).
fn peer(start: &StartInfo, cpu: usize) -> Result<Peer, Failure> {
    const NAMES: [[&str; 3]; 2] = [
        ["endpoint:bench0", "notification:down0", "notification:up0"],
        ["endpoint:bench1", "notification:down1", "notification:up1"],
    ];
    let [ep, mine, peer] = NAMES[cpu];
    Ok(Peer {
        ep: start.slot(ep).or_fail("no `endpoint:bench<cpu>`")?,
        bells: Bells {
            mine: start.slot(mine).or_fail("no `notification:down<cpu>`")?,
            peer: start.slot(peer).or_fail("no `notification:up<cpu>`")?,
        },
    })
}

fn report(name: &str, total: u64, n: u64) {
    log::info!("bench: {name} {}", total / n.max(1));
}

/// `n` times `f`, timed.
fn timed(n: u64, mut f: impl FnMut(u64) -> Result<(), Failure>) -> Result<u64, Failure> {
    let t0 = arch::rdtsc();
    for i in 0..n {
        f(i)?;
    }
    Ok(arch::rdtsc().wrapping_sub(t0))
}

fn call(p: Peer, label: u64, word: u64) -> Result<u64, Failure> {
    let (_, answer) = sys::ipc_call(p.ep, &proto::msg(label, word)).or_fail("calling")?;
    Ok(answer.words[0])
}

fn run(start: &StartInfo) -> Result<(), Failure> {
    let peers = [peer(start, 0)?, peer(start, 1)?];
    let bring = start.shared("bring").or_fail("no `shared:bring` region")?;
    let stamp = SharedRegion {
        va: bring.va + BENCH_STAMP_OFFSET,
        len: bring.len.saturating_sub(BENCH_STAMP_OFFSET),
        ..bring
    };
    // SAFETY: mgmt maps the region read-write for our life; the stamp word
    // is touched only through `Words`, the ring below it only through rings.
    let stamp = unsafe { Words::new(stamp, 1) }.or_fail("the `bring` region is too small")?;
    // SAFETY: as above.
    let region =
        unsafe { link::region(SharedRegion { len: BENCH_STAMP_OFFSET, ..bring }) }.or_fail("the ring")?;

    let t = timed(N, |_| sys::poll(peers[0].bells.mine).map(drop).or_fail("polling"))?;
    report("syscall_poll", t, N);

    for (p, name) in peers.iter().zip(["ipc_call_same_cpu", "ipc_call_cross_cpu"]) {
        let t = timed(N, |i| match call(*p, PING, i)? {
            w if w == i + 1 => Ok(()),
            _ => Err(Failure::new("a wrong answer")),
        })?;
        report(name, t, N);
    }

    let names = [
        ["ntfn_wake_same_cpu", "ntfn_pingpong_same_cpu"],
        ["ntfn_wake_cross_cpu", "ntfn_pingpong_cross_cpu"],
    ];
    for (p, [wake, pingpong]) in peers.iter().zip(names) {
        sys::poll(p.bells.mine).or_fail("clearing the doorbell")?;
        call(*p, BELLS, N)?;
        let t = timed(N, |_| {
            stamp.set(0, arch::rdtsc());
            sys::signal(p.bells.peer, 1).or_fail("signalling")?;
            sys::wait(p.bells.mine).map(drop).or_fail("waiting")
        })?;
        report(wake, call(*p, REPORT, 0)?, N);
        report(pingpong, t, N);
    }

    let payload = [0x5au8; 64];
    for (p, name) in peers.iter().zip(["ring_msg_64b_same_cpu", "ring_msg_64b_cross_cpu"]) {
        let mut tx = Producer::new(region, SMALL).or_fail("attaching to the ring")?;
        call(*p, RING, N)?;
        let t = timed(N, |_| link::send(&mut tx, p.bells, &payload).or_fail("sending"))?;
        // The far side answers once it has taken every message.
        let t0 = arch::rdtsc();
        call(*p, PING, 0)?;
        let drain = arch::rdtsc().wrapping_sub(t0);
        report(name, t + drain, N);
    }

    for p in peers {
        call(p, DONE, 0)?;
    }
    Ok(())
}
