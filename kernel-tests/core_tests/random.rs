//! Random syscalls from hostile domains, the kernel's invariants checked
//! after each (`invariants`).
//!
//! Four children of the root (and whatever they make) run on two CPUs,
//! each with two threads, a capability to itself, the console, an
//! endpoint and a notification of the root's, an interrupt line, a port
//! range and control of a sibling. Each call is drawn from every syscall
//! (`Nr::ALL` and the message verbs) with arguments mostly from the slots
//! the domain was given or made, else garbage; vCPUs get random exits.
//! The root, the domains' supervisor, collects their deaths, destroys the
//! dead, and now and then destroys a live one mid-whatever, making a new
//! one in its place. Timer ticks, device interrupts and faults come at
//! random too.
//!
//! The number of calls is `RYOKAN_RANDOM_CALLS` (default 100,000 in a
//! debug build, ~10 s, where overflow checks are on; 10,000,000 optimized,
//! about a minute), the seed `RYOKAN_RANDOM_SEED`. `cargo xtask test` runs
//! it both ways: with the kernel's other host tests (debug), then alone
//! optimized (`cargo test --release -p ryokan-kernel --test host core_tests::random`), 10^7 calls. A
//! failure names the seed and the call to reproduce it. The capability
//! tables and the frame-by-frame check run every 32nd call (`invariants`).
//!
//! At the end every syscall number must have run (succeeded or blocked)
//! at least once: a random test whose calls all fail tests nothing.

use std::collections::{BTreeMap, BTreeSet};

use ipc::msg::NO_CAP;
use ipc::syscall::{Call, Nr, UserAddr, ANY_CPU, NO_SIPI};
use ipc::vcpu::{Exit, ExitReason};
use ipc::{CapSlot, ObjectType, Rights};

use super::invariants;
use super::sim::{run, Out, Sim, ENTRY, STACK};
use crate::hw::guest::HwExit;
use crate::hw::trap::vector;
use crate::obj::domain::DomainState;
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;

/// SplitMix64: small, fast and good enough to draw calls with.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }
}

const HOSTILE: usize = 4;
const QUOTA: u64 = 300;
const SLOTS_KEPT: usize = 48;
/// Where each child has a read-write page of the root's making.
const STATE_BUF: u64 = 0x18_0000;
/// Where the root maps its shared image into each child (as `mgmt` maps
/// one guest image into every VMM).
const IMAGE_VA: u64 = 0x1c_0000;

/// A pool reference as a map key.
type Key = (u16, u32);

fn key(r: Ref) -> Key {
    (r.index, r.generation)
}

/// What the harness remembers of a domain: the slots it may name.
struct World {
    rng: Rng,
    /// Each live domain's known slots (given or made), with their kinds.
    slots: BTreeMap<Key, Vec<(u64, ObjectType)>>,
    /// Each live domain's mappings that worked: memory, domain slots, va.
    maps: BTreeMap<Key, Vec<[u64; 3]>>,
    /// Each live domain's vCPU slots (from `VcpuCreate`), for the state
    /// calls, which a vCPU slot among all thread slots would seldom meet.
    vcpus: BTreeMap<Key, Vec<u64>>,
    /// The root's slots for its hostile children.
    children: Vec<(CapSlot, Ref)>,
    /// The root's shared endpoint and notification.
    shared: (CapSlot, CapSlot),
    /// The root's image, mapped into every child and granted to it (which
    /// may map it anywhere, and into its sibling); now and then revoked.
    image: CapSlot,
    /// The root's port ranges to hand out (0x60 + 8 n, 8 ports each).
    ports: Vec<CapSlot>,
    /// Per syscall number: calls that ran (succeeded or blocked), refused.
    done: BTreeMap<u64, (u64, u64)>,
    checks: u64,
    root_calls: u64,
    dead: BTreeSet<Key>,
    /// The last call: what a failure names.
    last: (u64, [u64; 11], Ref),
    checker: invariants::Checker,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn random_calls_from_hostile_domains_keep_every_invariant() {
    let default = if cfg!(debug_assertions) { 100_000 } else { 10_000_000 };
    let calls = env("RYOKAN_RANDOM_CALLS", default);
    let seed = env("RYOKAN_RANDOM_SEED", 0x5EED_0001);
    run(2, 4096, move |s| {
        let t0 = std::time::Instant::now();
        let mut w = World {
            rng: Rng(seed),
            slots: BTreeMap::new(),
            maps: BTreeMap::new(),
            vcpus: BTreeMap::new(),
            children: Vec::new(),
            shared: (CapSlot(0), CapSlot(0)),
            image: CapSlot(0),
            ports: Vec::new(),
            done: BTreeMap::new(),
            checks: 0,
            root_calls: 0,
            dead: BTreeSet::new(),
            last: (0, [0; 11], Ref { index: 0, generation: 0 }),
            checker: invariants::Checker::default(),
        };
        let r = s.root_thread;
        let ep = s.call(r, Call::EndpointCreate { domain: s.caps.me }).slot();
        let n = s.call(r, Call::NotificationCreate { domain: s.caps.me }).slot();
        w.shared = (ep, n);
        w.image = s.call(r, Call::MemoryCreate { domain: s.caps.me, pages: 2 }).slot();
        for i in 0..8 {
            let base = 0x60 + i * 8;
            w.ports.push(s.call(r, Call::IoPortsCreate { ports: s.caps.ioports, base, count: 8 }).slot());
        }
        for _ in 0..HOSTILE {
            spawn(s, &mut w);
        }
        check(s, &mut w, seed);
        while s.syscalls < calls {
            step(s, &mut w);
            check(s, &mut w, seed);
        }
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "random: {} calls in {secs:.1} s ({:.0} calls/s), seed {seed:#x}; {} objects live",
            s.syscalls,
            s.syscalls as f64 / secs,
            s.k().stats().objects
        );
        // Every verb was drawn and got past its checks at least once (a
        // random test whose calls all fail tests nothing).
        let verbs = Nr::ALL.iter().map(|&n| n as u64).chain(ipc::msg::nr::CALL..=ipc::msg::nr::REPLY);
        let (mut line, mut never) = (String::new(), Vec::new());
        for nr in verbs {
            let (ran, refused) = w.done.get(&nr).copied().unwrap_or_default();
            line += &format!(" {nr}:{ran}/{refused}");
            if ran == 0 {
                never.push(nr);
            }
        }
        eprintln!("random: ran/refused per number:{line}; the root's calls: {}", w.root_calls);
        assert!(never.is_empty(), "syscalls that never ran: {never:?}");
    });
}

fn check(s: &mut Sim, w: &mut World, seed: u64) {
    s.seen.clear();
    let k = s.k();
    let mut broken = s.m(|m| w.checker.check(&k, m)).err();
    w.checks += 1;
    if w.checks % 32 == 0 {
        broken = broken.or(w.checker.tables(&k).err());
        broken = broken.or(s.m(|m| w.checker.frames(&k, m)).err());
    }
    let newly: Vec<Ref> = k
        .domains
        .iter()
        .filter(|(r, d)| d.state == DomainState::Dead && !w.dead.contains(&key(*r)))
        .map(|(r, _)| r)
        .collect();
    let unreported = newly.iter().find_map(|&d| invariants::reported(&k, d).err());
    drop(k);
    w.dead.extend(newly.iter().map(|&d| key(d)));
    if let Some(e) = broken.or(unreported) {
        let (nr, args, t) = w.last;
        panic!("after call {} ({nr} {args:x?} by {t:?}), seed {seed:#x}: {e}", s.syscalls);
    }
}

/// A new hostile child of the root, with its capabilities.
fn spawn(s: &mut Sim, w: &mut World) {
    let r = s.root_thread;
    let cpu = w.rng.below(2) as u16;
    let c = s.child(QUOTA, Some(cpu));
    for i in 0..3 {
        s.thread(c.slot, Some((cpu + 1 + i) % 2));
    }
    let mut slots =
        vec![(u64::from(c.me.0), ObjectType::Domain), (u64::from(c.console.0), ObjectType::Console)];
    let grant =
        |s: &mut Sim, slot, rights, kind| match s.call(r, Call::CapGrant { domain: c.slot, slot, rights }) {
            Out::Ok(x) => Some((x[0], kind)),
            _ => None,
        };
    let rwg = Rights::READ | Rights::WRITE | Rights::GRANT;
    slots.extend(grant(s, w.shared.0, rwg, ObjectType::Endpoint));
    slots.extend(grant(s, w.shared.1, rwg, ObjectType::Notification));
    let line = s.caps.irqs[w.rng.below(s.caps.irqs.len() as u64) as usize];
    slots.extend(grant(s, line, Rights::CONTROL, ObjectType::Irq));
    let ports = w.ports[w.rng.below(w.ports.len() as u64) as usize];
    slots.extend(grant(s, ports, rwg, ObjectType::IoPorts));
    slots.extend(grant(s, s.caps.pci, Rights::CONTROL, ObjectType::Device));
    slots.extend(grant(s, w.image, Rights::READ | Rights::GRANT, ObjectType::Memory));
    let va = UserAddr::page(IMAGE_VA).expect("va");
    let _ = s.call(r, Call::MemoryMap { memory: w.image, domain: c.slot, va, rights: Rights::READ });
    if let Some(&(sibling, _)) = w.children.last() {
        slots.extend(grant(s, sibling, Rights::CONTROL | Rights::GRANT, ObjectType::Domain));
    }
    // A read-write page the child cannot unmap (the root holds it), for
    // buffers the kernel writes (`VcpuStateRead`).
    let page = s.call(r, Call::MemoryCreate { domain: c.slot, pages: 1 });
    if let Out::Ok([m, ..]) = page {
        let (va, rights) = (UserAddr::page(STATE_BUF).expect("va"), Rights::READ | Rights::WRITE);
        s.call(r, Call::MemoryMap { memory: CapSlot(m as u32), domain: c.slot, va, rights }).ok();
    }
    w.slots.insert(key(c.domain), slots);
    w.children.push((c.slot, c.domain));
}

/// One step: the thread a random CPU runs makes a call (the root its
/// supervisor's work), or time passes.
fn step(s: &mut Sim, w: &mut World) {
    let c = w.rng.below(s.cpus as u64) as usize;
    if w.rng.one_in(48) || s.idle(c) {
        let us = 10 + w.rng.below(2000);
        s.tick(c, us);
        return;
    }
    if w.rng.one_in(400) {
        let line = vector::IRQ_BASE + w.rng.below(u64::from(super::sim::IRQ_LINES)) as u8;
        s.interrupt(c, line);
        return;
    }
    let Some(t) = s.k().current[c] else { return };
    if t == s.root_thread {
        // The root works now and then; else it gives way, or time passes.
        if w.rng.one_in(8) {
            root_turn(s, w);
        } else {
            let us = 10 + w.rng.below(2000);
            s.tick(c, us);
        }
        return;
    }
    let Some(d) = s.k().threads.get(t).map(|th| th.domain) else { return };
    if w.rng.one_in(64) {
        script_a_vcpu(s, w);
    }
    if w.rng.one_in(4000) {
        let v = w.rng.below(32) as u8;
        w.last = (1000 + u64::from(v), [0; 11], t);
        s.fault(t, v, w.rng.below(16), w.rng.next());
        return;
    }
    let (nr, args) = draw(w, d);
    w.last = (nr, args, t);
    let out = if (ipc::msg::nr::CALL..=ipc::msg::nr::REPLY).contains(&nr) {
        ipc_raw(s, t, nr, args)
    } else {
        s.raw(t, nr, [args[0], args[1], args[2], args[3], args[4], args[5]])
    };
    let e = w.done.entry(nr).or_default();
    if matches!(out, Out::Err(..)) {
        e.1 += 1;
    } else {
        e.0 += 1;
    }
    learn(s, w, d, t, nr, &args, out);
}

/// A message syscall with all eleven registers.
fn ipc_raw(s: &mut Sim, t: Ref, nr: u64, r: [u64; 11]) -> Out {
    let c = s.schedule_in(t);
    let f = &mut s.frames[c];
    [f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9, f.r12, f.r13, f.r14, f.r15, f.rbx] = r;
    s.raw_keep(t, nr)
}

/// Remembers the slots a call handed its domain (and the mappings it made).
fn learn(s: &Sim, w: &mut World, d: Ref, t: Ref, nr: u64, args: &[u64; 11], out: Out) {
    let mut got = Vec::new();
    if let Out::Ok(r) = out {
        if Nr::MAKE_SLOT.iter().any(|&x| x as u64 == nr) {
            got.push(r[0]);
        }
        if nr == Nr::VcpuCreate as u64 {
            let vcpus = w.vcpus.entry(key(d)).or_default();
            if vcpus.len() < SLOTS_KEPT {
                vcpus.push(r[0]);
            }
        }
        if nr == Nr::MemoryMap as u64 {
            let maps = w.maps.entry(key(d)).or_default();
            if maps.len() < SLOTS_KEPT {
                maps.push([args[0], args[1], args[2]]);
            }
        }
    }
    // A receive that returned at once may carry a capability.
    if out != Out::Off && (nr == ipc::msg::nr::RECV || nr == ipc::msg::nr::REPLY_RECV) {
        let cap = s.regs(t).rdx;
        if cap != NO_CAP && cap != ipc::msg::NOTIFIED {
            got.push(cap);
        }
    }
    let Some(slots) = w.slots.get_mut(&key(d)) else { return };
    for g in got {
        let Some(kind) =
            u32::try_from(g).ok().and_then(|x| s.k().resolve(d, CapSlot(x)).ok()).map(|c| c.obj.kind)
        else {
            continue;
        };
        if slots.len() < SLOTS_KEPT {
            slots.push((g, kind));
        } else {
            let i = (w.rng.next() % SLOTS_KEPT as u64) as usize;
            slots[i] = (g, kind);
        }
    }
}

/// The supervisor's turn: collect a death (and destroy the dead), now and
/// then destroy a live child; make up the number; give way.
fn root_turn(s: &mut Sim, w: &mut World) {
    let before = s.syscalls;
    root_work(s, w);
    w.root_calls += s.syscalls - before;
}

fn root_work(s: &mut Sim, w: &mut World) {
    let r = s.root_thread;
    w.last = (0, [0; 11], s.root_thread);
    if let Out::Ok(e) = s.call(r, Call::DomainWait { block: false }) {
        let dead = ipc::event::Event::decode(e).map(|e| e.domain());
        if let Some(i) = w.children.iter().position(|&(_, d)| Some(crate::obj::domain::id(d)) == dead) {
            let (slot, d) = w.children.swap_remove(i);
            s.call(r, Call::DomainDestroy { domain: slot }).ok();
            w.slots.remove(&key(d));
            w.maps.remove(&key(d));
            w.vcpus.remove(&key(d));
        }
    }
    // A child none of whose threads can run is stuck (each waits on
    // another): it goes, as does one at random now and then.
    let stuck = w.children.iter().position(|&(_, d)| {
        let k = s.k();
        let can_run = k.threads.iter().any(|(_, t)| {
            t.domain == d && matches!(t.state, ThreadState::Runnable | ThreadState::Running(_))
        });
        !can_run
    });
    let victim = stuck.or_else(|| {
        (!w.children.is_empty() && w.rng.one_in(50)).then(|| w.rng.below(w.children.len() as u64) as usize)
    });
    if let Some(i) = victim {
        let (slot, d) = w.children.swap_remove(i);
        s.call(r, Call::DomainDestroy { domain: slot }).ok();
        w.slots.remove(&key(d));
        w.maps.remove(&key(d));
        w.vcpus.remove(&key(d));
    }
    // The image's copies go stale, and its mappings but the root's go.
    if w.rng.one_in(64) {
        let image = s.obj(s.root, w.image);
        s.call(r, Call::CapRevoke { slot: w.image }).ok();
        let root = s.root;
        let left = s.k().maps.iter().filter(|(_, x)| x.memory == image && x.domain != root).count();
        assert_eq!(left, 0, "a revoked image still mapped in a child");
    }
    while w.children.len() < HOSTILE
        && s.call(r, Call::Stats).ok()[3] + QUOTA * 2 < s.call(r, Call::Stats).ok()[2]
    {
        spawn(s, w);
    }
    s.call(r, Call::Yield);
}

/// Gives a random vCPU a few random exits to make.
fn script_a_vcpu(s: &mut Sim, w: &mut World) {
    let hws: Vec<u64> =
        s.k().threads.iter().filter_map(|(_, t)| t.vcpu.as_ref().map(|v| v.vmcs.as_u64())).collect();
    if hws.is_empty() {
        return;
    }
    let hw = hws[w.rng.below(hws.len() as u64) as usize];
    let n = 1 + w.rng.below(3);
    let exits: Vec<HwExit> = (0..n)
        .map(|_| {
            let len = w.rng.below(16);
            let vmm =
                |reason, q| HwExit::Vmm(Exit { reason, rip: 0, len, qualification: q, gpa: 0, regs: [0; 4] });
            match w.rng.below(13) {
                0 => HwExit::Interrupt { nmi: w.rng.one_in(8) },
                1 => HwExit::Undefined,
                2 => HwExit::Window,
                3 => HwExit::SliceOver,
                4 => HwExit::Reflect { vector: 1, error: None, len },
                5 => HwExit::Skip { len },
                6 => HwExit::Xsetbv { len },
                7 => vmm(ExitReason::PortOut, (0x500 + w.rng.below(16)) | (1 << 16)),
                8 => vmm(ExitReason::Hlt, 0),
                9 => vmm(ExitReason::EntryFailed, w.rng.next()),
                10 => HwExit::Spin { len },
                _ => vmm(ExitReason::Cpuid, 0),
            }
        })
        .collect();
    // Now and then guests halt with interrupts off: that halt is an exit
    // to the VMM (the vCPU then waits in it, where its VMM may read and
    // write its state), not an idle wait.
    let on = !w.rng.one_in(3);
    s.m(|m| {
        m.exits.entry(hw).or_default().extend(exits);
        m.interrupts_on = on;
    });
}

/// A slot for a `kind` capability argument: mostly a known one of that
/// kind, else any known one, else garbage.
fn pick(rng: &mut Rng, known: &[(u64, ObjectType)], kind: ObjectType) -> u64 {
    match rng.below(16) {
        0 => u64::from(CapSlot::new(rng.below(300) as usize, rng.below(4) as u32).0),
        1 => rng.next(),
        _ if known.is_empty() => rng.below(8),
        2..=4 => known[rng.below(known.len() as u64) as usize].0,
        _ => {
            let of: Vec<u64> = known.iter().filter(|x| x.1 == kind).map(|x| x.0).collect();
            if of.is_empty() {
                known[rng.below(known.len() as u64) as usize].0
            } else {
                of[rng.below(of.len() as u64) as usize]
            }
        }
    }
}

/// A random call for a thread of domain `d`: its number and registers.
fn draw(w: &mut World, d: Ref) -> (u64, [u64; 11]) {
    use ObjectType as O;
    let World { rng, slots, maps, vcpus, .. } = w;
    let known: &[(u64, ObjectType)] = slots.get(&key(d)).map_or(&[], |v| v.as_slice());
    // Every syscall (however many `Nr::ALL` has), then the message verbs.
    let all = Nr::ALL.len() as u64;
    let nr = match rng.below(all + 7) {
        n if n < all => Nr::ALL[n as usize] as u64,
        n if n < all + 2 => ipc::msg::nr::CALL,
        n if n < all + 4 => ipc::msg::nr::REPLY_RECV,
        n if n < all + 6 => ipc::msg::nr::RECV,
        _ => ipc::msg::nr::REPLY,
    };
    // Rarely an exit: a domain that exits at every turn leaves little else.
    let nr = if nr == Nr::Exit as u64 && !rng.one_in(20) { Nr::Yield as u64 } else { nr };
    let mut a = [0u64; 11];
    let page = |x: u64| 0x10_0000 + (x % 64) * 4096;
    let any = |rng: &mut Rng| {
        let kinds = [O::Domain, O::Thread, O::Memory, O::Endpoint, O::Notification, O::Console];
        let k = kinds[rng.below(kinds.len() as u64) as usize];
        pick(rng, known, k)
    };
    match nr {
        x if x == Nr::Exit as u64 => a[0] = rng.below(8),
        x if x == Nr::ConsoleWrite as u64 => {
            a[..3].copy_from_slice(&[pick(rng, known, O::Console), page(rng.next()), rng.below(80)])
        }
        x if x == Nr::CapDerive as u64 => a[..2].copy_from_slice(&[any(rng), rng.below(512)]),
        x if x == Nr::CapGrant as u64 => {
            a[..3].copy_from_slice(&[pick(rng, known, O::Domain), any(rng), rng.below(512)])
        }
        x if x == Nr::CapMint as u64 => {
            let k = if rng.one_in(2) { O::Endpoint } else { O::Notification };
            a[..3].copy_from_slice(&[pick(rng, known, k), rng.below(512), rng.below(4)]);
        }
        x if x == Nr::CapDelete as u64 || x == Nr::CapInfo as u64 => a[0] = any(rng),
        x if x == Nr::CapRevoke as u64 => a[0] = pick(rng, known, O::Memory),
        x if x == Nr::DomainCreate as u64 || x == Nr::GuestCreate as u64 => a[0] = rng.below(48),
        x if x == Nr::DomainWait as u64 => a[0] = rng.below(3),
        x if x == Nr::DomainDestroy as u64 || x == Nr::DomainInfo as u64 => {
            a[0] = pick(rng, known, O::Domain)
        }
        x if x == Nr::GuestExits as u64 => {
            a[..2].copy_from_slice(&[pick(rng, known, O::Domain), rng.below(14)])
        }
        x if x == Nr::MemoryCreate as u64 => {
            a[..2].copy_from_slice(&[pick(rng, known, O::Domain), rng.below(9)])
        }
        x if x == Nr::MemoryMap as u64 => {
            let rights = [1, 3, 5, 1, 3, 7][rng.below(6) as usize];
            let (m, dom) = (pick(rng, known, O::Memory), pick(rng, known, O::Domain));
            a[..4].copy_from_slice(&[m, dom, page(rng.next()), rights]);
        }
        x if x == Nr::MemoryUnmap as u64 => {
            let made = maps.get(&key(d)).filter(|m| !m.is_empty() && rng.one_in(2));
            match made {
                Some(m) => a[..3].copy_from_slice(&m[rng.below(m.len() as u64) as usize]),
                None => a[..3].copy_from_slice(&[
                    pick(rng, known, O::Memory),
                    pick(rng, known, O::Domain),
                    page(rng.next()),
                ]),
            }
        }
        x if x == Nr::ThreadCreate as u64 => {
            let cpu = [ANY_CPU, 0, 1, 2][rng.below(4) as usize];
            a[..5].copy_from_slice(&[pick(rng, known, O::Domain), ENTRY, STACK, rng.next(), cpu]);
        }
        x if x == Nr::VcpuCreate as u64 => {
            let sipi = if rng.one_in(2) { NO_SIPI } else { rng.below(300) };
            let cpu = [ANY_CPU, 0, 1, 5][rng.below(4) as usize];
            let (g, e) = (pick(rng, known, O::Domain), pick(rng, known, O::Endpoint));
            let entry = if rng.one_in(4) { rng.below(1 << 20) } else { 0 };
            a[..6].copy_from_slice(&[g, e, entry, 0, sipi, cpu]);
        }
        x if x == Nr::VirqCreate as u64 => {
            a[..2].copy_from_slice(&[pick(rng, known, O::Domain), 20 + rng.below(240)])
        }
        x if x == Nr::VcpuInterrupt as u64 => {
            a[..2].copy_from_slice(&[pick(rng, known, O::Thread), 20 + rng.below(240)])
        }
        x if x == Nr::VcpuStateRead as u64 || x == Nr::VcpuStateWrite as u64 => {
            // A buffer in a page a mapping of this domain's put somewhere
            // (often its own space), else anywhere near.
            let me = known.first().map(|x| x.0);
            let own: Vec<u64> =
                maps.get(&key(d)).into_iter().flatten().filter(|m| Some(m[1]) == me).map(|m| m[2]).collect();
            let at = match rng.below(4) {
                0 if !own.is_empty() => own[rng.below(own.len() as u64) as usize],
                0 | 1 => page(rng.next()),
                _ => STATE_BUF,
            };
            let vcpu = match vcpus.get(&key(d)).filter(|v| !v.is_empty() && rng.one_in(2)) {
                Some(v) => v[rng.below(v.len() as u64) as usize],
                None => pick(rng, known, O::Thread),
            };
            a[..2].copy_from_slice(&[vcpu, at + rng.below(0x200)])
        }
        x if x == Nr::VirqRaise as u64 => a[0] = pick(rng, known, O::VirqLine),
        x if x == Nr::DoorbellCreate as u64 => {
            let (g, n) = (pick(rng, known, O::Domain), pick(rng, known, O::Notification));
            a[..4].copy_from_slice(&[g, 0x500 + rng.below(16), n, rng.below(8)]);
        }
        x if x == Nr::IoPortRead as u64 || x == Nr::IoPortWrite as u64 => {
            let width = [1, 2, 4, 3][rng.below(4) as usize];
            a[..4].copy_from_slice(&[
                pick(rng, known, O::IoPorts),
                0x58 + rng.below(80),
                width,
                rng.below(0x1_0000),
            ]);
        }
        x if x == Nr::IoPortsCreate as u64 => {
            a[..3].copy_from_slice(&[pick(rng, known, O::IoPorts), 0x58 + rng.below(80), rng.below(16)])
        }
        x if x == Nr::DeviceCreate as u64 => {
            use crate::hw::fake::{PCI_BRIDGE, PCI_FUNCTION, PCI_OTHER};
            let f = [PCI_FUNCTION, PCI_OTHER, PCI_BRIDGE, 0x30][rng.below(4) as usize];
            let f = if rng.one_in(8) { rng.below(0x1_0000) } else { u64::from(f) };
            // Half of them for the caller itself (its first slot), so that
            // what only a device's holder may do (DeviceDma, DevicePorts)
            // gets past its checks too.
            let owner =
                if rng.one_in(2) { known.first().map_or(0, |x| x.0) } else { pick(rng, known, O::Domain) };
            a[..4].copy_from_slice(&[pick(rng, known, O::Device), owner, f, rng.below(2)]);
        }
        x if x == Nr::DeviceConfigRead as u64 || x == Nr::DeviceConfigWrite as u64 => {
            let width = [1, 2, 4, 3][rng.below(4) as usize];
            let at = [0x04, 0x10, 0x3c, 0x44, 0x50][rng.below(5) as usize];
            let at = if rng.one_in(4) { rng.below(4200) } else { at };
            a[..4].copy_from_slice(&[pick(rng, known, O::Device), width, at, rng.below(0x1_0000)]);
        }
        x if x == Nr::DeviceMap as u64 || x == Nr::DevicePorts as u64 => {
            let va = if rng.one_in(4) { rng.next() } else { 0x7000_0000 + rng.below(16) * 0x1000 };
            a[..3].copy_from_slice(&[pick(rng, known, O::Device), rng.below(8), va]);
        }
        x if x == Nr::DeviceDma as u64 => {
            a[..2].copy_from_slice(&[pick(rng, known, O::Device), pick(rng, known, O::Memory)])
        }
        x if x == Nr::DeviceIrqBind as u64 => a[..4].copy_from_slice(&[
            pick(rng, known, O::Device),
            rng.below(6),
            pick(rng, known, O::Notification),
            rng.below(4),
        ]),
        x if x == Nr::IrqWait as u64 => a[0] = pick(rng, known, O::Irq),
        x if x == Nr::IrqBind as u64 => a[..3].copy_from_slice(&[
            pick(rng, known, O::Irq),
            pick(rng, known, O::Notification),
            rng.below(4),
        ]),
        x if x == Nr::EndpointCreate as u64 || x == Nr::NotificationCreate as u64 => {
            a[0] = pick(rng, known, O::Domain)
        }
        x if x == Nr::Signal as u64 => {
            a[..2].copy_from_slice(&[pick(rng, known, O::Notification), rng.next()])
        }
        x if x == Nr::Wait as u64 || x == Nr::Poll as u64 || x == Nr::NotificationBind as u64 => {
            a[0] = pick(rng, known, O::Notification)
        }
        x if x == Nr::SchedSet as u64 => {
            a[..3].copy_from_slice(&[pick(rng, known, O::Domain), rng.below(1024), rng.below(120)])
        }
        x if x == Nr::DomainPause as u64 => {
            a[..2].copy_from_slice(&[pick(rng, known, O::Domain), rng.below(3)])
        }
        x if x == Nr::ThreadSetCpu as u64 => {
            a[..2].copy_from_slice(&[pick(rng, known, O::Thread), rng.below(3)])
        }
        x if x == Nr::DomainNotify as u64 => a[..3].copy_from_slice(&[
            pick(rng, known, O::Domain),
            pick(rng, known, O::Notification),
            rng.below(4),
        ]),
        x if x == Nr::TimerSet as u64 => {
            let period = if rng.one_in(2) { 0 } else { 100 + rng.below(2000) };
            a[..4].copy_from_slice(&[
                pick(rng, known, O::Notification),
                1 + rng.below(16),
                rng.below(3000),
                period,
            ]);
        }
        x if x == ipc::msg::nr::CALL || x == ipc::msg::nr::REPLY_RECV || x == ipc::msg::nr::REPLY => {
            let cap = if rng.one_in(4) { any(rng) } else { NO_CAP };
            // A reply to a vCPU is read as actions: draw those often.
            let label = if rng.one_in(2) { rng.below(256) } else { rng.next() };
            a[0] = pick(rng, known, O::Endpoint);
            a[1] = label;
            a[2] = cap;
            for r in a.iter_mut().skip(3) {
                *r = rng.below(64);
            }
        }
        x if x == ipc::msg::nr::RECV => a[0] = pick(rng, known, O::Endpoint),
        _ => {
            for r in a.iter_mut().take(4) {
                *r = rng.next();
            }
        }
    }
    (nr, a)
}
