//! The end of a domain: stopping it (death, reported to its supervisor)
//! and destroying it (everything it owns freed, every capability to it stale).

use ipc::event::Event;
use ipc::ObjectType;

use super::{kick, Kernel};
use crate::cap::Cap;
use crate::hw::{self, cpu::MAX_CPUS};
use crate::mem::shootdown::Release;
use crate::obj::domain::{self, DomainState};
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;

impl Kernel {
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
        for (_, e) in self.endpoints.iter_mut().filter(|(_, e)| e.owner == d) {
            e.dead = true;
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
            Some(s) => self.post(s, d, why),
            None => super::sched::root_died(why),
        }
    }

    /// Tells supervisor `s` of the death of `d`: handed to its waiting
    /// thread, or kept on `d` until collected.
    fn post(&mut self, s: Ref, d: Ref, event: Event) {
        let waiter = self.domains.get_mut(s).and_then(|sup| sup.waiter.take());
        match waiter {
            Some(w) => {
                if let Some(th) = self.threads.get_mut(w) {
                    th.ctx.set_result(0, event.encode());
                }
                self.wake(w);
            }
            None => {
                if let Some(dead) = self.domains.get_mut(d) {
                    dead.death = Some(event);
                }
            }
        }
    }

    /// Destroys domain `d` and everything it owns: the domains it
    /// supervises, its threads, memory, port ranges, capabilities and page
    /// tables. Every capability to any of them becomes stale.
    ///
    /// One leaf of its tree at a time (down from `d` through any child to
    /// one with none), children before their supervisors: neither
    /// recursive nor holding a list of the tree, for a kernel stack is
    /// 64 KiB and a tree may hold thousands of domains.
    pub fn destroy_domain(&mut self, d: Ref) {
        while self.domains.get(d).is_some() {
            let mut leaf = d;
            while let Some(c) = self.domains.find(|x| x.supervisor == Some(leaf)) {
                leaf = c;
            }
            self.destroy_one(leaf);
        }
    }

    /// Destroys domain `d`, whose children are gone.
    fn destroy_one(&mut self, d: Ref) {
        if self.domains.get(d).is_none() {
            return;
        }
        // Stop it (silently: its supervisor is the one destroying it).
        if let Some(dom) = self.domains.get_mut(d) {
            dom.state = DomainState::Dead;
        }
        self.release_waiters_of(d);
        // Its threads out of every wait, and stopped; by slot, with no list
        // of them on the kernel stack (as every walk of them below).
        let mut from = 0;
        while let Some(t) = self.threads.next_live(from) {
            from = usize::from(t.index) + 1;
            if self.threads.get(t).is_none_or(|th| th.domain != d) {
                continue;
            }
            self.unqueue(t);
            if let Some(th) = self.threads.get_mut(t) {
                if let ThreadState::Running(c) = th.state {
                    kick(c);
                }
                th.state = ThreadState::Dead;
            }
        }
        // A guest's vCPUs may still be in it on other CPUs: they leave it
        // (and its VMCBs, VMCSs and tables) before any of it is freed.
        let left = !self.domains.get(d).is_some_and(|x| x.guest) || self.shootdown(d);
        // Each loop below removes what it found, so it ends. Its devices'
        // DMA stops before any of its memory is freed.
        while let Some(v) = self.devices.find(|v| v.owner == d) {
            self.destroy_device(v);
        }
        while let Some(m) = self.memory.find(|m| m.owner == d) {
            self.destroy_memory(m);
        }
        // Its mappings of others' memory (their records its own).
        while let Some(r) = self.maps.find(|x| x.domain == d) {
            self.unmap(r);
        }
        while let Some(p) = self.ioports.find(|p| p.owner == d) {
            self.destroy_ioports(p);
        }
        self.cancel_timers(|t| t.owner == d);
        while let Some(v) = self.virqs.find(|v| v.guest == d) {
            self.destroy_virq(v);
        }
        while self.destroy_first_doorbell(d) {}
        while let Some(e) = self.endpoints.find(|e| e.owner == d) {
            self.destroy_endpoint(e);
        }
        while let Some(n) = self.notifications.find(|n| n.owner == d) {
            self.destroy_notification(n);
        }
        // Bindings to notifications that are gone (its own, just now).
        let notifications = &self.notifications;
        let gone = |n: Ref| notifications.get(n).is_none();
        let threads = &self.threads;
        let mine = |t: Ref| threads.get(t).is_some_and(|th| th.domain == d);
        for (_, irq) in self.irqs.iter_mut() {
            let bound_gone = irq.bound.is_some_and(|(n, _)| gone(n));
            if irq.waiter.is_some_and(mine) || bound_gone {
                irq.waiter = None;
                irq.bound = None;
                hw::irq::set_masked(u32::from(irq.line), true);
            }
        }
        for (_, dom) in self.domains.iter_mut() {
            dom.notify = dom.notify.filter(|&(n, _)| !gone(n));
        }
        // Replies owed to its threads, then the threads.
        let mut from = 0;
        while let Some(t) = self.threads.next_live(from) {
            from = usize::from(t.index) + 1;
            let to = self.threads.get(t).and_then(|th| th.reply_to);
            let owed = to.and_then(|r| self.threads.get(r)).is_some_and(|th| th.domain == d);
            if let Some(th) = self.threads.get_mut(t).filter(|_| owed) {
                th.reply_to = None;
            }
        }
        let mut from = 0;
        while let Some(t) = self.threads.next_live(from) {
            from = usize::from(t.index) + 1;
            if self.threads.get(t).is_none_or(|th| th.domain != d) {
                continue;
            }
            if let Some(th) = self.remove_thread(t) {
                match (&th.vcpu, Release::after(left)) {
                    (Some(v), Release::Free) => hw::vm::retire(v, th.cpu),
                    (Some(_), _) => {
                        hw::frames::leak(crate::obj::vcpu::HW_FRAMES, "a vCPU a CPU may still run")
                    }
                    (None, _) => {}
                }
            }
            for c in self.current.iter_mut().filter(|c| **c == Some(t)) {
                *c = None;
            }
        }
        // What is needed of it is read first, and it is dropped where it
        // lies: a domain (its capability table) is too large to move
        // through a kernel stack.
        let Some((root, guest, supervisor, limit)) =
            self.domains.get(d).map(|x| (x.root, x.guest, x.supervisor, x.quota.limit))
        else {
            return;
        };
        // No CPU may keep these page tables loaded once they are freed.
        let unloaded = hw::space::unload(root.as_u64()) && left;
        if let Some(place) = self.domains.discard(d) {
            let tables = if Release::after(unloaded) == Release::Leak {
                hw::frames::leak(0, "page tables a CPU may still use (uncounted)");
                0
            } else {
                hw::space::destroy(guest, root)
            };
            if let Some(sup) = supervisor.and_then(|s| self.domains.get_mut(s)) {
                sup.quota.release(limit);
                let _ = tables; // page tables were charged to the domain itself
            }
            super::refund(&mut self.domains, Some(((), place)));
        }
        // Capabilities to it and its objects are now stale everywhere:
        // every lookup checks its object's generation. No table is swept
        // here (a sweep of every live domain's table made each destroy cost
        // in proportion to all the domains); a table sheds its stale
        // capabilities when it fills ([`Kernel::give`]).
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
            ObjectType::VirqLine => self.virqs.get(c.obj.at).is_some(),
            ObjectType::Doorbell => self.doorbells.get(c.obj.at).is_some(),
            ObjectType::Device => self.devices.get(c.obj.at).is_some(),
        }
    }

    /// Empties every slot of domain `d`'s table whose object no longer
    /// exists (in place: a table is too large to move through a kernel
    /// stack); how many.
    pub(super) fn purge_dead_caps(&mut self, d: Ref) -> usize {
        let mut n = 0;
        for i in 0..self.domains.get(d).map_or(0, |x| x.caps.capacity()) {
            let Some(cap) = self.domains.get(d).and_then(|x| x.caps.at(i)) else { continue };
            if !self.is_live(&cap) {
                if let Some(x) = self.domains.get_mut(d) {
                    x.caps.clear(i);
                    n += 1;
                }
            }
        }
        n
    }
}
