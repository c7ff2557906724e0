//! The kernel's invariants, checked between entries (the random test
//! checks them after every syscall).
//!
//! - Reachability: every object belongs to a live domain and every domain
//!   to a live supervisor (nothing lives on that no capability holder can
//!   reach or destroy); every capability names a slot of its kind's pool.
//! - Quotas: no domain holds more than its limit, and what it holds is
//!   exactly accounted: its page-table frames, the pages of the memory it
//!   owns, its children's limits, its vCPUs' frames and the pages of the
//!   object windows' chunks it pays for.
//! - Frames: every frame of the fake's RAM is free or owned exactly once:
//!   by a domain's tables, a memory object or a vCPU (or counted as
//!   leaked); every recorded mapping translates to its object's frames.
//! - Threads: each run queue's links agree both ways and name live
//!   threads of that queue, none twice; a runnable thread is in its CPU's run queue, a
//!   running one is its CPU's current thread, a waiting one is where its
//!   state says; no CPU idles with an eligible thread queued.
//! - Deaths: no thread of a live domain waits on a dead domain's threads,
//!   endpoints or notifications; a dead domain's death is kept for its
//!   supervisor or was handed to the supervisor's waiting thread
//!   ([`reported`]).
//!
//! One pass over each pool (stopping at its last live object: pools fill
//! from the front), into buffers kept between checks: the random test runs
//! this ten million times. The capability tables (256 slots a domain) are
//! scanned by [`Checker::tables`], which the random test runs every 32nd
//! call.

use ipc::ObjectType;

use crate::hw::fake::{Machine, Owner, RAM_BASE};
use crate::obj::domain::DomainState;
use crate::obj::memory::Backing;
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;
use crate::obj::vcpu::HW_FRAMES;
use crate::state::{Kernel, MAX_DOMAINS, MAX_THREADS};

/// Scratch space for the checks.
#[derive(Default)]
pub struct Checker {
    /// The runs claimed by memory objects and vCPUs: (head, length).
    claims: Vec<(u64, u64)>,
    /// Live domains' roots.
    roots: Vec<u64>,
    /// Per frame: claims (for the frame-by-frame check).
    frames: Vec<u8>,
}

fn frame_of(pa: u64) -> usize {
    ((pa - RAM_BASE) / 4096) as usize
}

impl Checker {
    /// Checks them all; the first broken one is the error.
    pub fn check(&mut self, k: &Kernel, m: &mut Machine) -> Result<(), String> {
        self.claims.clear();
        self.roots.clear();

        // Domains: supervisors, accounts, capabilities.
        let live = |d: Ref| k.domains.get(d).is_some();
        let dead = |d: Ref| k.domains.get(d).is_none_or(|x| x.state == DomainState::Dead);
        // By slot, up to the last live domain's.
        let n = k.domains.iter().take(k.domains.used()).map(|(r, _)| usize::from(r.index) + 1).max();
        let n = n.unwrap_or(0).min(MAX_DOMAINS);
        let mut held = vec![0u64; n];
        for (r, d) in k.domains.iter().take(k.domains.used()) {
            match d.supervisor {
                None if Some(r) != k.root => return Err(format!("domain {r:?} has no supervisor")),
                Some(s) if !live(s) => return Err(format!("domain {r:?} outlived its supervisor")),
                Some(s) => held[usize::from(s.index)] += d.quota.limit,
                None => {}
            }
            self.roots.push(d.root.as_u64());
        }
        let orphan = |what: &str, owner: Ref| {
            if live(owner) {
                Ok(())
            } else {
                Err(format!("a {what} outlived its domain {owner:?}"))
            }
        };

        // Memory: owners, mappings, frames, charges.
        for (r, x) in k.memory.iter().take(k.memory.used()) {
            orphan("memory object", x.owner)?;
            if x.backing == Backing::Boot {
                continue;
            }
            held[usize::from(x.owner.index)] += x.pages;
            let head = x.base.as_u64();
            if m.ram.runs.get(&head) != Some(&x.pages) {
                return Err(format!("memory {r:?}'s frames are not its own: {:?}", m.ram.runs.get(&head)));
            }
            self.claims.push((head, x.pages));
        }
        // Mappings: each of a live object, in a live domain that pays for
        // its record, leading to the object's frames.
        for (r, map) in k.maps.iter().take(k.maps.used()) {
            let (Some(x), Some(d)) = (k.memory.get(map.memory), k.domains.get(map.domain)) else {
                return Err(format!("mapping {r:?} outlived its memory or its domain: {map:?}"));
            };
            if k.maps.owner(r) != Some(map.domain.index) {
                return Err(format!("mapping {r:?} is paid for by {:?}, not its domain", k.maps.owner(r)));
            }
            let pa = crate::hw::fake::space::lookup_in(m, d.guest, d.root, map.va).map(|(pa, _)| pa.as_u64());
            if x.pages > 0 && pa != Some(x.base.as_u64()) {
                return Err(format!("mapping {r:?} ({map:?}) leads to {pa:x?}"));
            }
        }

        // Threads: owners, vCPU frames, queues, waits.
        // Each node's back link names the node before it, so none is
        // reached twice but through a cycle, which the count bounds.
        let mut linked = 0;
        for (c, q) in k.runqs.iter().enumerate() {
            let (mut prev, mut at) = (Ref::NONE, q.head);
            while at != Ref::NONE {
                let Some(th) = k.threads.get(at) else {
                    return Err(format!("cpu {c}'s queue links to a destroyed thread {at:?}"));
                };
                if linked == k.threads.used() || th.link.queue != Some(c) || th.link.prev != prev {
                    return Err(format!(
                        "thread {at:?} is queued twice, or its links are wrong: {:?}",
                        th.link
                    ));
                }
                linked += 1;
                (prev, at) = (at, th.link.next);
            }
            if q.tail != prev {
                return Err(format!("cpu {c}'s queue ends at {prev:?}, its tail says {:?}", q.tail));
            }
        }
        if k.threads.iter().filter(|(_, t)| t.link.queue.is_some()).count() != linked {
            return Err("a thread says it is queued but is on no queue's links".into());
        }
        for (r, t) in k.threads.iter().take(k.threads.used()) {
            orphan("thread", t.domain)?;
            if let Some(v) = &t.vcpu {
                held[usize::from(t.domain.index)] += HW_FRAMES;
                let head = v.vmcs.as_u64();
                if m.ram.runs.get(&head) != Some(&HW_FRAMES) {
                    return Err(format!("vCPU {r:?}'s frames are not its own"));
                }
                self.claims.push((head, HW_FRAMES));
            }
            let wrong = |why: &str| Err(format!("thread {r:?} ({:?}): {why}", t.state));
            match t.state {
                ThreadState::Runnable => {
                    if t.link.queue != Some(t.cpu) {
                        return wrong("runnable, not in its CPU's queue");
                    }
                }
                ThreadState::Running(c) => {
                    if k.current[c] != Some(r) || m.cpus[c].idle {
                        return wrong("running, not its CPU's current thread");
                    }
                }
                ThreadState::Sending(e) | ThreadState::Receiving(e) => {
                    let Some(ep) = k.endpoints.get(e) else { return wrong("waits on a destroyed endpoint") };
                    let sending = matches!(t.state, ThreadState::Sending(_));
                    let q = if sending { &ep.senders } else { &ep.receivers };
                    if !q.iter().any(|x| *x == r) {
                        return wrong("not in the endpoint's queue");
                    }
                    if !dead(t.domain) && dead(ep.owner) {
                        return wrong("a live domain's thread waits on a dead domain's endpoint");
                    }
                }
                ThreadState::WaitingForSignal(n) => {
                    let Some(x) = k.notifications.get(n) else {
                        return wrong("waits on a destroyed notification");
                    };
                    if x.waiter != Some(r) {
                        return wrong("not the notification's waiter");
                    }
                    if !dead(t.domain) && dead(x.owner) {
                        return wrong("a live domain's thread waits on a dead domain's notification");
                    }
                }
                ThreadState::WaitingForIrq(i) => {
                    if k.irqs.get(i).and_then(|x| x.waiter) != Some(r) {
                        return wrong("not the line's waiter");
                    }
                }
                ThreadState::WaitingForEvent => {
                    if k.domains.get(t.domain).and_then(|d| d.waiter) != Some(r) {
                        return wrong("not its domain's waiter");
                    }
                }
                ThreadState::AwaitingReply(s) => {
                    let Some(server) = k.threads.get(s) else { return wrong("awaits a destroyed server") };
                    if !dead(t.domain) && dead(server.domain) {
                        return wrong("a live domain's thread awaits a dead domain's reply");
                    }
                }
                ThreadState::Created | ThreadState::Halted | ThreadState::Dead => {}
            }
        }
        for c in 0..m.cpus.len() {
            if let Some(t) = k.current[c] {
                if k.threads.get(t).map(|x| x.state) != Some(ThreadState::Running(c)) {
                    return Err(format!("cpu {c}'s current thread {t:?} does not run there"));
                }
            }
            if m.cpus[c].idle {
                if k.current[c].is_some() {
                    return Err(format!("cpu {c} idles with a current thread"));
                }
                let eligible = k.queued(c).any(|t| {
                    let th = k.threads.get(t);
                    let runnable = th.is_some_and(|th| th.state == ThreadState::Runnable);
                    let payer = crate::state::sched::payer(k, t);
                    // Its own domain not paused (`DomainPause`), its payer's
                    // uncapped: `sched::eligible`.
                    let awake = th.and_then(|th| k.domains.get(th.domain)).is_some_and(|d| !d.paused);
                    let free = k
                        .threads
                        .get(payer)
                        .and_then(|p| k.domains.get(p.domain))
                        .map(|d| d.cap_percent == 0);
                    runnable && awake && free == Some(true)
                });
                if eligible {
                    return Err(format!("cpu {c} idles with a runnable thread queued"));
                }
            } else if m.cpus[c].online && k.current[c].is_none() {
                return Err(format!("cpu {c} neither idles nor runs a thread"));
            }
        }

        // The other objects: owners, shares.
        for (_, x) in k.ioports.iter().take(k.ioports.used()) {
            orphan("port range", x.owner)?;
        }
        for (_, x) in k.endpoints.iter().take(k.endpoints.used()) {
            orphan("endpoint", x.owner)?;
        }
        for (_, x) in k.notifications.iter().take(k.notifications.used()) {
            orphan("notification", x.owner)?;
        }
        for (_, x) in k.virqs.iter().take(k.virqs.used()) {
            orphan("VirqLine", x.guest)?;
        }
        let mut listed = 0;
        for (g, dom) in k.domains.iter() {
            let mut b = dom.bells;
            while let Some(bell) = k.doorbells.get(b) {
                if bell.guest != g || listed == k.doorbells.used() {
                    return Err(format!("doorbell {b:?} is on the list of {g:?}, not its guest's, or twice"));
                }
                listed += 1;
                b = bell.next;
            }
            if b != Ref::NONE {
                return Err(format!("the doorbell list of {g:?} ends at {b:?}, not NONE"));
            }
        }
        for (_, x) in k.doorbells.iter().take(k.doorbells.used()) {
            orphan("doorbell", x.guest)?;
        }
        if listed != k.doorbells.used() {
            return Err(format!("{} doorbells, {listed} on their guests' lists", k.doorbells.used()));
        }
        for (_, t) in k.timers.iter().take(k.timers.used()) {
            orphan("timer", t.owner)?;
        }
        // Every timer on the list once, in the order they are due.
        let (mut listed, mut at, mut last) = (0, k.timer_list, 0);
        while let Some(t) = k.timers.get(at) {
            if t.due < last || listed == k.timers.used() {
                return Err(format!("timer {at:?} is out of order on the list, or on it twice"));
            }
            (listed, at, last) = (listed + 1, t.next, t.due);
        }
        let first = k.timers.get(k.timer_list).map_or(u64::MAX, |t| t.due);
        if at != Ref::NONE || listed != k.timers.used() || k.timer_due != first {
            return Err(format!(
                "{} timers, {listed} on the list, due first at {}",
                k.timers.used(),
                k.timer_due
            ));
        }
        for (_, irq) in k.irqs.iter().take(k.irqs.used()) {
            if irq.waiter.is_some_and(|w| k.threads.get(w).is_none()) {
                return Err(format!("IRQ line {} waits for a destroyed thread", irq.line));
            }
        }
        // Frames: each run the fake gave out owned once (or counted as
        // leaked), each table frame a live address space's; an object
        // window's frames are the window's.
        self.claims.extend(m.window_frames.values().map(|&pa| (pa, 1)));
        self.claims.sort_unstable();
        if let Some(w) = self.claims.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("frames at {:#x} are owned twice", w[0].0));
        }
        let given: u64 = m.ram.runs.values().sum();
        let claimed: u64 = self.claims.iter().map(|c| c.1).sum();
        if given - claimed != m.leaked {
            return Err(format!("{} frames are owned by nothing, {} were leaked", given - claimed, m.leaked));
        }
        self.roots.sort_unstable();
        let mut tables = 0;
        for (&root, &n) in &m.ram.tables {
            if self.roots.binary_search(&root).is_err() {
                return Err(format!("{n} table frames of {root:#x}, no live domain's"));
            }
            tables += n;
        }
        if m.ram.free + given + tables != m.ram.owner.len() as u64 {
            return Err("the fake's frames do not add up".into());
        }

        // Quotas: exactly what each domain holds.
        let windows = k.notifications.held().chain(k.endpoints.held()).chain(k.memory.held());
        let windows = windows.chain(k.ioports.held()).chain(k.virqs.held());
        let windows = windows.chain(k.doorbells.held()).chain(k.timers.held()).chain(k.threads.held());
        let windows = windows.chain(k.devices.held()).chain(k.maps.held());
        // A domain's place is its supervisor's (the root's, nobody's).
        for (owner, pages) in windows.chain(k.domains.held()) {
            match held.get_mut(usize::from(owner)) {
                Some(h) => *h += pages,
                None if k.root.is_some_and(|r| k.domains.owner(r) == Some(owner)) => {}
                None => return Err(format!("{pages} pages held by {owner}, no domain's slot")),
            }
        }
        for (r, d) in k.domains.iter().take(k.domains.used()) {
            let q = d.quota;
            if q.used > q.limit {
                return Err(format!("domain {r:?} holds {} pages over its limit {}", q.used, q.limit));
            }
            let expect =
                m.ram.tables.get(&d.root.as_u64()).copied().unwrap_or(0) + held[usize::from(r.index)];
            if q.used != expect {
                return Err(format!("domain {r:?} is charged {} pages but holds {expect}", q.used));
            }
        }
        Ok(())
    }

    /// Frame by frame: each free, or in exactly one claimed run, or a
    /// table frame of a live domain's address space (what [`Checker::check`]
    /// checks run by run, from the fake's own records).
    pub fn frames(&mut self, k: &Kernel, m: &Machine) -> Result<(), String> {
        self.frames.clear();
        self.frames.resize(m.ram.owner.len(), 0);
        let mut claim = |head: u64, len: u64| {
            for p in 0..len {
                self.frames[frame_of(head + p * 4096)] += 1;
            }
        };
        for (_, x) in k.memory.iter().filter(|(_, x)| x.backing != Backing::Boot) {
            claim(x.base.as_u64(), x.pages);
        }
        for (_, t) in k.threads.iter() {
            if let Some(v) = &t.vcpu {
                claim(v.vmcs.as_u64(), HW_FRAMES);
            }
        }
        for &pa in m.window_frames.values() {
            claim(pa, 1);
        }
        let roots: Vec<u64> = k.domains.iter().map(|(_, d)| d.root.as_u64()).collect();
        let mut unclaimed = 0;
        for (i, o) in m.ram.owner.iter().enumerate() {
            match (*o, self.frames[i]) {
                (Owner::Free, 0) | (Owner::Run { .. }, 1) => {}
                (Owner::Run { head, len }, 0) if m.ram.runs.get(&head) == Some(&len) => unclaimed += 1,
                (Owner::Table { root }, 0) if roots.contains(&root) => {}
                (o, n) => return Err(format!("frame {i} ({o:?}) is claimed {n} times")),
            }
        }
        if unclaimed != m.leaked {
            return Err(format!("{unclaimed} frames are owned by nothing, {} were leaked", m.leaked));
        }
        Ok(())
    }

    /// Every capability in every table names a slot of its kind's pool,
    /// and one that resolves names a live object of its kind.
    pub fn tables(&self, k: &Kernel) -> Result<(), String> {
        for (r, d) in k.domains.iter().take(k.domains.used()) {
            for (slot, cap) in d.caps.iter() {
                let (i, kind) = (usize::from(cap.obj.at.index), cap.obj.kind);
                let ok = match kind {
                    ObjectType::Domain => i < MAX_DOMAINS,
                    ObjectType::Thread => i < MAX_THREADS,
                    ObjectType::Memory => i < crate::state::MAX_MEMORY,
                    ObjectType::IoPorts => i < crate::state::MAX_IOPORTS,
                    ObjectType::Irq => i < crate::state::MAX_IRQS,
                    ObjectType::Console => i == 0,
                    ObjectType::Endpoint => i < crate::state::MAX_ENDPOINTS,
                    ObjectType::Notification => i < crate::state::MAX_NOTIFICATIONS,
                    ObjectType::VirqLine => i < crate::state::MAX_VIRQLINES,
                    ObjectType::Doorbell => i < crate::state::MAX_DOORBELLS,
                    ObjectType::Device => i < crate::state::MAX_DEVICES,
                };
                if !ok {
                    return Err(format!("domain {r:?} slot {slot:?} names no object: {cap:?}"));
                }
                let at = cap.obj.at;
                let alive = match kind {
                    ObjectType::Domain => k.domains.get(at).is_some(),
                    ObjectType::Thread => k.threads.get(at).is_some(),
                    ObjectType::Memory => k.memory.get(at).is_some(),
                    ObjectType::IoPorts => k.ioports.get(at).is_some(),
                    ObjectType::Irq => k.irqs.get(at).is_some(),
                    ObjectType::Console => true,
                    ObjectType::Endpoint => k.endpoints.get(at).is_some(),
                    ObjectType::Notification => k.notifications.get(at).is_some(),
                    ObjectType::VirqLine => k.virqs.get(at).is_some(),
                    ObjectType::Doorbell => k.doorbells.get(at).is_some(),
                    ObjectType::Device => k.devices.get(at).is_some(),
                };
                if k.resolve(r, slot).is_ok() && !alive {
                    return Err(format!("domain {r:?} slot {slot:?} resolves to a dead object"));
                }
            }
        }
        Ok(())
    }
}

/// A domain that died since the last look: its death must be kept for its
/// supervisor, or have been handed to the supervisor's waiting thread
/// (which then holds it as its syscall's result).
pub fn reported(k: &Kernel, d: Ref) -> Result<(), String> {
    let Some(dom) = k.domains.get(d) else { return Ok(()) };
    if dom.state != DomainState::Dead || dom.death.is_some() {
        return Ok(());
    }
    let id = crate::obj::domain::id(d).0;
    let handed = dom.supervisor.is_some_and(|s| {
        k.threads.iter().any(|(_, t)| {
            t.domain == s && t.ctx.rax == 0 && t.ctx.rdi == id && t.state != ThreadState::WaitingForEvent
        })
    });
    if handed {
        Ok(())
    } else {
        Err(format!("domain {d:?} died unreported"))
    }
}
