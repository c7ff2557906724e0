//! The kernel's objects and the operations that keep them consistent:
//! capability resolution, object lifetimes, domain death and destruction.
//!
//! One lock (the big kernel lock, as in seL4's SMP kernel) guards all of it:
//! every entry from user mode takes it, and the kernel never runs with
//! interrupts on while holding it. Simple, and fast enough while kernel paths
//! are short; finer locking can come when measurements ask for it.

use ipc::event::Event;
use ipc::{CapSlot, Error, ObjectType, Rights};
use spin::Mutex;
use x86_64::{PhysAddr, VirtAddr};

use crate::arch::cpu::{self, MAX_CPUS};
use crate::cap::Cap;
use crate::mem::kspace;
use crate::mem::paging::PageTable;
use crate::obj::domain::{self, Domain, DomainState};
use crate::obj::endpoint::Endpoint;
use crate::obj::ioports::IoPorts;
use crate::obj::irq::Irq;
use crate::obj::memory::{Backing, Memory};
use crate::obj::notification::Notification;
use crate::obj::pool::{Pool, Ref};
use crate::obj::thread::{Thread, ThreadState};

pub const MAX_DOMAINS: usize = 64;
pub const MAX_THREADS: usize = 256;
pub const MAX_MEMORY: usize = 1024;
pub const MAX_IOPORTS: usize = 64;
pub const MAX_IRQS: usize = 24;
pub const MAX_ENDPOINTS: usize = 256;
pub const MAX_NOTIFICATIONS: usize = 256;

/// All kernel objects.
pub struct Kernel {
    pub domains: Pool<Domain, MAX_DOMAINS>,
    pub threads: Pool<Thread, MAX_THREADS>,
    pub memory: Pool<Memory, MAX_MEMORY>,
    pub ioports: Pool<IoPorts, MAX_IOPORTS>,
    pub irqs: Pool<Irq, MAX_IRQS>,
    pub endpoints: Pool<Endpoint, MAX_ENDPOINTS>,
    pub notifications: Pool<Notification, MAX_NOTIFICATIONS>,
    /// Each CPU's runnable threads.
    pub runqs: [heapless::Vec<Ref, MAX_THREADS>; MAX_CPUS],
    /// The thread each CPU runs.
    pub current: [Option<Ref>; MAX_CPUS],
    /// A CPU must choose again at its next exit to user mode (a thread with
    /// more credit than its current one woke).
    pub resched: [bool; MAX_CPUS],
    /// The root domain; its death ends the system.
    pub root: Option<Ref>,
}

/// The big kernel lock and everything it guards.
pub static KERNEL: Mutex<Kernel> = Mutex::new(Kernel::new());

/// What `Stats` reports.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub free_frames: u64,
    pub objects: u64,
}

impl Kernel {
    pub const fn new() -> Self {
        Self {
            domains: Pool::new(),
            threads: Pool::new(),
            memory: Pool::new(),
            ioports: Pool::new(),
            irqs: Pool::new(),
            endpoints: Pool::new(),
            notifications: Pool::new(),
            runqs: [const { heapless::Vec::new() }; MAX_CPUS],
            current: [None; MAX_CPUS],
            resched: [false; MAX_CPUS],
            root: None,
        }
    }

    pub fn stats(&self) -> Stats {
        let objects = self.domains.used()
            + self.threads.used()
            + self.memory.used()
            + self.ioports.used()
            + self.irqs.used()
            + self.endpoints.used()
            + self.notifications.used();
        Stats { free_frames: kspace::free_frames(), objects: objects as u64 }
    }

    pub fn domain(&self, d: Ref) -> Result<&Domain, Error> {
        self.domains.get(d).ok_or(Error::StaleCapability)
    }

    pub fn domain_mut(&mut self, d: Ref) -> Result<&mut Domain, Error> {
        self.domains.get_mut(d).ok_or(Error::StaleCapability)
    }

    /// The capability `slot` of domain `d`, checked against its object: the
    /// object must be alive, and a copy must be of its current grant epoch.
    pub fn resolve(&self, d: Ref, slot: CapSlot) -> Result<Cap, Error> {
        let cap = self.domain(d)?.caps.get(slot)?;
        let at = cap.obj.at;
        let epoch = match cap.obj.kind {
            ObjectType::Domain => self.domains.get(at).map(|_| 0),
            ObjectType::Thread => self.threads.get(at).map(|_| 0),
            ObjectType::Memory => self.memory.get(at).map(|m| m.epoch),
            ObjectType::IoPorts => self.ioports.get(at).map(|_| 0),
            ObjectType::Irq => self.irqs.get(at).map(|_| 0),
            ObjectType::Console => Some(0),
            ObjectType::Endpoint => self.endpoints.get(at).map(|_| 0),
            ObjectType::Notification => self.notifications.get(at).map(|_| 0),
        };
        match epoch {
            Some(e) if cap.original || cap.epoch == e => Ok(cap),
            _ => Err(Error::StaleCapability),
        }
    }

    /// Resolves `slot` as a `kind` capability with `rights`.
    pub fn cap(&self, d: Ref, slot: CapSlot, kind: ObjectType, rights: Rights) -> Result<Cap, Error> {
        self.resolve(d, slot)?.check(kind, rights)
    }

    /// Puts `cap` into domain `d`'s table.
    pub fn give(&mut self, d: Ref, cap: Cap) -> Result<CapSlot, Error> {
        self.domain_mut(d)?.caps.insert(cap)
    }

    /// Makes thread `t` runnable.
    pub fn wake(&mut self, t: Ref) {
        let Some(th) = self.threads.get_mut(t) else { return };
        if matches!(th.state, ThreadState::Dead | ThreadState::Runnable | ThreadState::Running(_)) {
            return;
        }
        th.state = ThreadState::Runnable;
        let (c, credit) = (th.cpu, th.credit);
        // Every thread is queued at most once: cannot overflow.
        let _ = self.runqs[c].push(t);
        let busy = self.current[c].and_then(|r| self.threads.get(r)).map(|r| r.credit);
        if busy.is_none_or(|cur| credit > cur) {
            self.resched[c] = true;
            kick(c);
        }
    }

    /// The online CPU with the fewest threads (new threads go there).
    pub fn least_loaded_cpu(&self) -> usize {
        let mut load = [0usize; MAX_CPUS];
        for (_, t) in self.threads.iter() {
            load[t.cpu.min(MAX_CPUS - 1)] += 1;
        }
        (0..MAX_CPUS)
            .filter(|&c| cpu::cpu(c).is_some_and(|p| p.online.load(core::sync::atomic::Ordering::Relaxed)))
            .min_by_key(|&c| load[c])
            .unwrap_or(0)
    }

    /// ORs `bits` into notification `n`, waking its waiter with the word.
    pub fn signal(&mut self, n: Ref, bits: u64) {
        let Some(woken) = self.notifications.get_mut(n).and_then(|x| x.signal(bits)) else { return };
        let (t, word) = woken;
        if let Some(th) = self.threads.get_mut(t) {
            th.ctx.set_result(0, [word, 0, 0, 0]);
        }
        self.wake(t);
    }

    /// Ends thread `t`'s wait with `err` (its peer is gone).
    pub fn fail_wait(&mut self, t: Ref, err: Error) {
        if let Some(th) = self.threads.get_mut(t) {
            th.ctx.set_result(err.code(), [0; 4]);
        }
        self.wake(t);
    }

    /// Wakes, with `PeerDead`, every thread of another domain whose wait
    /// depends on domain `d`: callers of its threads, callers queued on its
    /// endpoints, waiters on its notifications.
    fn release_waiters_of(&mut self, d: Ref) {
        let mut victims: heapless::Vec<Ref, MAX_THREADS> = heapless::Vec::new();
        for (_, th) in self.threads.iter().filter(|(_, th)| th.domain == d) {
            if let Some(caller) = th.reply_to {
                let _ = victims.push(caller);
            }
        }
        for (t, th) in self.threads.iter().filter(|(_, th)| th.domain != d) {
            let stuck = match th.state {
                ThreadState::Sending(ep) | ThreadState::Receiving(ep) => {
                    self.endpoints.get(ep).is_some_and(|e| e.owner == d)
                }
                ThreadState::AwaitingReply(server) => self.threads.get(server).is_none_or(|s| s.domain == d),
                ThreadState::WaitingForSignal(n) => self.notifications.get(n).is_some_and(|x| x.owner == d),
                _ => false,
            };
            if stuck && !victims.contains(&t) {
                let _ = victims.push(t);
            }
        }
        for t in victims {
            let waiting = self.threads.get(t).is_some_and(|th| {
                th.domain != d
                    && matches!(
                        th.state,
                        ThreadState::AwaitingReply(_)
                            | ThreadState::Sending(_)
                            | ThreadState::Receiving(_)
                            | ThreadState::WaitingForSignal(_)
                    )
            });
            if waiting {
                self.unqueue(t);
                self.fail_wait(t, Error::PeerDead);
            }
        }
    }

    /// Takes thread `t` out of any endpoint or notification it waits on.
    pub fn unqueue(&mut self, t: Ref) {
        let Some(state) = self.threads.get(t).map(|th| th.state) else { return };
        match state {
            ThreadState::Sending(ep) | ThreadState::Receiving(ep) => {
                if let Some(e) = self.endpoints.get_mut(ep) {
                    e.senders.retain(|x| *x != t);
                    e.receivers.retain(|x| *x != t);
                }
            }
            ThreadState::WaitingForSignal(n) => {
                if let Some(x) = self.notifications.get_mut(n) {
                    x.waiter = x.waiter.filter(|w| *w != t);
                }
            }
            _ => {}
        }
    }

    /// Stops domain `d` for good and tells its supervisor why. Its resources
    /// stay until the supervisor destroys it.
    pub fn kill(&mut self, d: Ref, why: Event) {
        let Some(dom) = self.domains.get_mut(d) else { return };
        if dom.state == DomainState::Dead {
            return;
        }
        dom.state = DomainState::Dead;
        let supervisor = dom.supervisor;
        let mut running_elsewhere = [false; MAX_CPUS];
        for (_, th) in self.threads.iter_mut().filter(|(_, th)| th.domain == d) {
            if let ThreadState::Running(c) = th.state {
                running_elsewhere[c] = true;
            }
            th.state = ThreadState::Dead;
        }
        for (c, _) in running_elsewhere.iter().enumerate().filter(|(_, r)| **r) {
            kick(c);
        }
        self.release_waiters_of(d);
        if let Some((n, bits)) = self.domains.get(d).and_then(|x| x.notify) {
            self.signal(n, bits);
        }
        match why {
            Event::Exited { code, .. } => {
                log::info!("domain {:#x}: exited with code {code}", domain::id(d).0)
            }
            Event::Faulted { fault, .. } => log::info!(
                "domain {:#x}: stopped: {} (vector {}) at ip {:#x}, address {:#x}",
                domain::id(d).0,
                fault.name(),
                fault.vector,
                fault.ip,
                fault.address
            ),
        }
        match supervisor {
            Some(s) => self.post(s, why),
            None => crate::sched::root_died(why),
        }
    }

    /// Delivers an event to supervisor `s`: to its waiting thread, or queued.
    fn post(&mut self, s: Ref, event: Event) {
        let Some(sup) = self.domains.get_mut(s) else { return };
        if let Some(w) = sup.waiter.take() {
            if let Some(th) = self.threads.get_mut(w) {
                th.ctx.set_result(0, event.encode());
            }
            self.wake(w);
        } else if sup.events.push_back(event).is_err() {
            log::warn!("domain {:#x}: supervisor event queue full; event dropped", domain::id(s).0);
        }
    }

    /// Interrupt line `gsi` fired: mask it until the next wait, and hand it
    /// to the waiting thread or leave it pending.
    pub fn irq_fired(&mut self, gsi: u32) {
        crate::arch::ioapic::set_masked(gsi, true);
        crate::arch::apic::eoi();
        let Some((_, irq)) = self.irqs.iter_mut().find(|(_, i)| u32::from(i.line) == gsi) else { return };
        if let Some((n, bits)) = irq.bound {
            irq.pending = true;
            self.signal(n, bits);
            return;
        }
        match irq.waiter.take() {
            Some(t) => {
                if let Some(th) = self.threads.get_mut(t) {
                    th.ctx.set_result(0, [0; 4]);
                }
                self.wake(t);
            }
            None => irq.pending = true,
        }
    }

    /// Removes mapping `va` of memory `m` from domain `d`'s address space.
    pub fn unmap_memory(&mut self, m: Ref, d: Ref, va: u64) -> Result<(), Error> {
        let mem = self.memory.get_mut(m).ok_or(Error::StaleCapability)?;
        let i = mem.mappings.iter().position(|x| x.domain == d && x.va == va).ok_or(Error::NotMapped)?;
        mem.mappings.swap_remove(i);
        let pages = mem.pages;
        if let Some(dom) = self.domains.get(d) {
            let pt = PageTable::from_root(dom.root);
            for p in 0..pages {
                // The mapping was recorded, so each page is mapped.
                let _ = kspace::uspace_unmap(&pt, VirtAddr::new(va + p * 4096));
            }
            self.shootdown(d);
        }
        Ok(())
    }

    /// Makes sure no CPU uses stale translations of domain `d`'s address
    /// space: CPUs running it in user mode are interrupted and waited for;
    /// every CPU flushes before running it again.
    pub fn shootdown(&mut self, d: Ref) {
        let Some(dom) = self.domains.get_mut(d) else { return };
        dom.tlb_epoch += 1;
        let root = dom.root.as_u64();
        let me = cpu::current_index();
        for c in (0..MAX_CPUS).filter(|&c| c != me) {
            let Some(pc) = cpu::cpu(c) else { continue };
            if pc.online.load(core::sync::atomic::Ordering::SeqCst)
                && pc.loaded_root.load(core::sync::atomic::Ordering::SeqCst) == root
            {
                wait_until(c, |pc| pc.in_kernel.load(core::sync::atomic::Ordering::SeqCst));
            }
        }
    }

    /// Destroys memory object `m`: unmaps it everywhere, frees its frames,
    /// returns its pages to its owner's quota.
    pub fn destroy_memory(&mut self, m: Ref) {
        let Some(mem) = self.memory.get(m) else { return };
        let mappings = mem.mappings.clone();
        for map in mappings {
            let _ = self.unmap_memory(m, map.domain, map.va);
        }
        if let Some(mem) = self.memory.remove(m) {
            if mem.backing == Backing::Allocated {
                kspace::free_contiguous(mem.base, mem.pages);
                if let Some(owner) = self.domains.get_mut(mem.owner) {
                    owner.quota.release(mem.pages);
                }
            }
        }
    }

    /// Destroys domain `d` and everything it owns: the domains it
    /// supervises, its threads, memory, port ranges, capabilities and page
    /// tables. Every capability to any of them becomes stale.
    pub fn destroy_domain(&mut self, d: Ref) {
        let children: heapless::Vec<Ref, MAX_DOMAINS> =
            self.domains.iter().filter(|(_, x)| x.supervisor == Some(d)).map(|(r, _)| r).collect();
        for c in children {
            self.destroy_domain(c);
        }
        if self.domains.get(d).is_none() {
            return;
        }
        // Stop it (silently: its supervisor is the one destroying it).
        if let Some(dom) = self.domains.get_mut(d) {
            dom.state = DomainState::Dead;
        }
        self.release_waiters_of(d);
        let threads: heapless::Vec<Ref, MAX_THREADS> =
            self.threads.iter().filter(|(_, t)| t.domain == d).map(|(r, _)| r).collect();
        for t in &threads {
            self.unqueue(*t);
        }
        for t in &threads {
            if let Some(th) = self.threads.get_mut(*t) {
                if let ThreadState::Running(c) = th.state {
                    kick(c);
                }
                th.state = ThreadState::Dead;
            }
        }
        let owned: heapless::Vec<Ref, MAX_MEMORY> =
            self.memory.iter().filter(|(_, m)| m.owner == d).map(|(r, _)| r).collect();
        for m in owned {
            self.destroy_memory(m);
        }
        // Its mappings of others' memory.
        let foreign: heapless::Vec<(Ref, u64), MAX_MEMORY> = self
            .memory
            .iter()
            .flat_map(|(r, m)| m.mappings.iter().filter(|x| x.domain == d).map(move |x| (r, x.va)))
            .collect();
        for (m, va) in foreign {
            let _ = self.unmap_memory(m, d, va);
        }
        let ports: heapless::Vec<Ref, MAX_IOPORTS> =
            self.ioports.iter().filter(|(_, p)| p.owner == d).map(|(r, _)| r).collect();
        for p in ports {
            self.ioports.remove(p);
        }
        let endpoints: heapless::Vec<Ref, MAX_ENDPOINTS> =
            self.endpoints.iter().filter(|(_, e)| e.owner == d).map(|(r, _)| r).collect();
        for e in endpoints {
            self.endpoints.remove(e);
        }
        let ntfns: heapless::Vec<Ref, MAX_NOTIFICATIONS> =
            self.notifications.iter().filter(|(_, n)| n.owner == d).map(|(r, _)| r).collect();
        for n in &ntfns {
            self.notifications.remove(*n);
        }
        for (_, irq) in self.irqs.iter_mut() {
            let bound_gone = irq.bound.is_some_and(|(n, _)| ntfns.contains(&n));
            if irq.waiter.is_some_and(|w| threads.contains(&w)) || bound_gone {
                irq.waiter = None;
                irq.bound = None;
                crate::arch::ioapic::set_masked(u32::from(irq.line), true);
            }
        }
        for (_, dom) in self.domains.iter_mut() {
            dom.notify = dom.notify.filter(|(n, _)| !ntfns.contains(n));
        }
        for (_, th) in self.threads.iter_mut() {
            th.reply_to = th.reply_to.filter(|r| !threads.contains(r));
        }
        for t in threads {
            for q in self.runqs.iter_mut() {
                q.retain(|x| *x != t);
            }
            self.threads.remove(t);
            for c in self.current.iter_mut().filter(|c| **c == Some(t)) {
                *c = None;
            }
        }
        let Some(dom) = self.domains.get(d) else { return };
        let root = dom.root;
        // No CPU may keep these page tables loaded once they are freed.
        for c in 0..MAX_CPUS {
            let Some(pc) = cpu::cpu(c) else { continue };
            if pc.loaded_root.load(core::sync::atomic::Ordering::SeqCst) == root.as_u64() {
                if c == cpu::current_index() {
                    crate::sched::load_kernel_root();
                } else {
                    pc.leave_address_space.store(true, core::sync::atomic::Ordering::SeqCst);
                    wait_until(c, |pc| {
                        pc.loaded_root.load(core::sync::atomic::Ordering::SeqCst) != root.as_u64()
                    });
                }
            }
        }
        if let Some(dom) = self.domains.remove(d) {
            let tables = kspace::uspace_destroy(PageTable::from_root(dom.root));
            if let Some(sup) = dom.supervisor.and_then(|s| self.domains.get_mut(s)) {
                sup.quota.release(dom.quota.limit);
                let _ = tables; // page tables were charged to the domain itself
                sup.events.retain(|e| e.domain() != domain::id(d));
            }
        }
        // Capabilities to it and its objects are now stale everywhere; purge
        // them from the tables that still hold them.
        self.purge_dead_caps();
    }

    /// Whether the object a capability names still exists.
    fn is_live(&self, c: &Cap) -> bool {
        match c.obj.kind {
            ObjectType::Domain => self.domains.get(c.obj.at).is_some(),
            ObjectType::Thread => self.threads.get(c.obj.at).is_some(),
            ObjectType::Memory => self.memory.get(c.obj.at).is_some(),
            ObjectType::IoPorts => self.ioports.get(c.obj.at).is_some(),
            ObjectType::Irq => self.irqs.get(c.obj.at).is_some(),
            ObjectType::Console => true,
            ObjectType::Endpoint => self.endpoints.get(c.obj.at).is_some(),
            ObjectType::Notification => self.notifications.get(c.obj.at).is_some(),
        }
    }

    /// Empties every slot whose object no longer exists.
    fn purge_dead_caps(&mut self) {
        let refs: heapless::Vec<Ref, MAX_DOMAINS> = self.domains.iter().map(|(r, _)| r).collect();
        for r in refs {
            let Some(d) = self.domains.get_mut(r) else { continue };
            let mut table = core::mem::take(&mut d.caps);
            table.remove_where(|c| !self.is_live(c));
            if let Some(d) = self.domains.get_mut(r) {
                d.caps = table;
            }
        }
    }

    /// Creates a memory object of `pages` owned by (and charged to) `owner`.
    pub fn create_memory(&mut self, owner: Ref, pages: u64) -> Result<Ref, Error> {
        self.domain_mut(owner)?.quota.charge(pages)?;
        let release = |k: &mut Kernel| {
            if let Ok(d) = k.domain_mut(owner) {
                d.quota.release(pages);
            }
        };
        let Some(base) = kspace::alloc_contiguous(pages) else {
            release(self);
            return Err(Error::QuotaExceeded);
        };
        let mem = Memory {
            base,
            pages,
            bytes: pages * 4096,
            owner,
            backing: Backing::Allocated,
            epoch: 0,
            mappings: heapless::Vec::new(),
        };
        self.memory.insert(mem).map_err(|mem| {
            kspace::free_contiguous(mem.base, mem.pages);
            release(self);
            Error::OutOfObjects
        })
    }

    /// Maps memory `m` into domain `d` at `va` with `flags`, charging page
    /// tables to `d`.
    pub fn map_memory(
        &mut self,
        m: Ref,
        d: Ref,
        va: u64,
        flags: crate::mem::paging::MapFlags,
    ) -> Result<(), Error> {
        let mem = self.memory.get(m).ok_or(Error::StaleCapability)?;
        let (base, pages) = (mem.base, mem.pages);
        if mem.mappings.is_full() {
            return Err(Error::Busy);
        }
        let end = va.checked_add(pages * 4096).filter(|&e| e <= ipc::syscall::USER_END);
        if end.is_none() {
            return Err(Error::BadAddress);
        }
        let dom = self.domain(d)?;
        if dom.state == DomainState::Dead {
            return Err(Error::PeerDead);
        }
        // Worst case for the page tables this may add.
        let tables_bound = 3 + pages.div_ceil(512) + pages.div_ceil(512 * 512);
        if dom.quota.free() < tables_bound {
            return Err(Error::QuotaExceeded);
        }
        let pt = PageTable::from_root(dom.root);
        let mut taken = 0;
        for p in 0..pages {
            let r = kspace::uspace_map(&pt, VirtAddr::new(va + p * 4096), base + p * 4096, flags);
            match r {
                Ok(n) => taken += n,
                Err(e) => {
                    for q in 0..p {
                        let _ = kspace::uspace_unmap(&pt, VirtAddr::new(va + q * 4096));
                    }
                    self.domain_mut(d)?.quota.used += taken;
                    self.shootdown(d);
                    return Err(match e {
                        crate::mem::paging::MapError::AlreadyMapped => Error::AlreadyMapped,
                        crate::mem::paging::MapError::Misaligned => Error::Misaligned,
                        _ => Error::QuotaExceeded,
                    });
                }
            }
        }
        self.domain_mut(d)?.quota.used += taken;
        let mem = self.memory.get_mut(m).ok_or(Error::StaleCapability)?;
        // Checked not full above; nothing ran in between.
        let _ = mem.mappings.push(crate::obj::memory::Mapping { domain: d, va });
        Ok(())
    }

    /// Copies `len` bytes from user address `va` of domain `d` into `out`,
    /// page by page through the direct map, after checking each page is
    /// mapped user-readable.
    pub fn copy_from_user(&self, d: Ref, va: u64, out: &mut [u8]) -> Result<(), Error> {
        let pt = PageTable::from_root(self.domain(d)?.root);
        let mut done = 0usize;
        while done < out.len() {
            let at = va + done as u64;
            let (pa, flags) = kspace::uspace_translate(&pt, VirtAddr::new(at)).ok_or(Error::BadAddress)?;
            if !flags.contains(crate::mem::paging::MapFlags::USER) {
                return Err(Error::BadAddress);
            }
            let n = ((4096 - (at % 4096)) as usize).min(out.len() - done);
            let src = kspace::phys_to_virt(PhysAddr::new(pa.as_u64()));
            // SAFETY: `pa..pa + n` lies in one frame mapped into the domain
            // (so RAM the direct map covers); it is only read, into `out`.
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr::<u8>(), out[done..].as_mut_ptr(), n) };
            done += n;
        }
        Ok(())
    }
}

impl Default for Kernel {
    fn default() -> Self {
        Self::new()
    }
}

/// Interrupts CPU `c` so that it enters the kernel.
pub fn kick(c: usize) {
    if c != cpu::current_index() {
        if let Some(pc) = cpu::cpu(c) {
            crate::arch::apic::send_fixed(
                pc.apic_id.load(core::sync::atomic::Ordering::Relaxed),
                crate::arch::trap::vector::KICK,
            );
        }
    }
}

/// Kicks CPU `c` and waits (boundedly) until `done` holds for it.
fn wait_until(c: usize, done: impl Fn(&cpu::PerCpu) -> bool) {
    let Some(pc) = cpu::cpu(c) else { return };
    for i in 0..100_000_000u64 {
        if done(pc) {
            return;
        }
        if i % 100_000 == 0 {
            kick(c);
        }
        core::hint::spin_loop();
    }
    log::error!("cpu {c} did not answer a shootdown");
}
