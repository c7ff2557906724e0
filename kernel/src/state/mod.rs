//! The kernel's objects and the operations that keep them consistent:
//! capability resolution, object lifetimes, domain death and destruction.
//!
//! One lock (the big kernel lock, as in seL4's SMP kernel) guards all of it:
//! every entry from user mode takes it, and the kernel never runs with
//! interrupts on while holding it. Simple, and fast enough while kernel paths
//! are short; finer locking can come when measurements ask for it.

use ipc::{CapSlot, Error, ObjectType, Rights};
use spin::Mutex;

mod faults;
mod life;
mod memory;
pub mod runq;
pub mod sched;
mod timer;
mod wake;

use crate::cap::Cap;
use crate::hw;
use crate::hw::cpu::MAX_CPUS;
use crate::obj::device::Device;
use crate::obj::domain::Domain;
use crate::obj::endpoint::Endpoint;
use crate::obj::ioports::IoPorts;
use crate::obj::irq::Irq;
use crate::obj::memory::{Mapping, Memory};
use crate::obj::notification::Notification;
use crate::obj::pool::{Pool, Ref};
use crate::obj::thread::Thread;
use crate::obj::timer::Timer;
use crate::obj::virq::{Doorbell, VirqLine};
use crate::obj::window::{self, Refund};
use ipc::syscall::Width;

/// The pool of up to `$max` `$t`s in object window `$w` (`obj::window`),
/// with room for [`OWNERS`] owners.
macro_rules! pool {
    ($t:ty, $w:literal, $max:ident) => {
        window::Pool<$t, hw::window::Window<$w>, $max, { window::chunks_for::<$t>($max, OWNERS) }>
    };
}

/// The owners each object window has room for (a chunk each, at least):
/// 100 guests, their VMMs and the rest of a system.
pub const OWNERS: usize = 256;

/// Domains, each made from its supervisor's quota (the root's from
/// nobody's), besides the quota it is given.
pub const MAX_DOMAINS: usize = 4096;

/// The domains, in object window 7.
pub type Domains = pool!(Domain, 7, MAX_DOMAINS);

/// The owner of the root domain's place: nobody (no domain has this slot).
const NOBODY: u16 = u16::MAX;

/// Threads and vCPUs, each made from the quota of the domain it runs in
/// (whose death it dies with).
pub const MAX_THREADS: usize = 8192;

/// The threads and vCPUs, in object window 8, each chunk paid for by the
/// domain its threads run in.
pub type Threads = pool!(Thread, 8, MAX_THREADS);
pub const MAX_IRQS: usize = 24;
/// Notifications are made from their owners' quotas (`obj::window`):
/// many cost nothing until made. 16,384: [`OWNERS`] chunks of a page's
/// worth (64).
pub const MAX_NOTIFICATIONS: usize = 16384;

/// Memory objects, each kept in memory paid for by its owner
/// (`obj::window`), besides the pages it holds.
pub const MAX_MEMORY: usize = 8192;

/// The memory objects, in object window 2.
pub type Memories = pool!(Memory, 2, MAX_MEMORY);

/// Mappings of memory objects, each paid for by the domain mapped into.
pub const MAX_MAPPINGS: usize = 8192;

/// The mappings, in object window 11 (window 10 holds the root's
/// capability table: `state::ROOT_SLOTS`).
pub type Mappings = pool!(Mapping, 11, MAX_MAPPINGS);

/// Port ranges, made from their owners' quotas (`obj::window`).
pub const MAX_IOPORTS: usize = 1024;

/// The port ranges, in object window 3.
pub type PortRanges = pool!(IoPorts, 3, MAX_IOPORTS);

/// Endpoints, made from their owners' quotas (`obj::window`).
pub const MAX_ENDPOINTS: usize = 4096;

/// The endpoints, in object window 1, each chunk paid for by its owner.
pub type Endpoints = pool!(Endpoint, 1, MAX_ENDPOINTS);

/// The notifications, in object window 0, each chunk of them paid for by
/// its owner domain (by its slot in `domains`).
pub type Notifications = pool!(Notification, 0, MAX_NOTIFICATIONS);
/// VirqLines, made from their guests' quotas (`obj::window`). 32,768
/// ([`OWNERS`] chunks of 128, 128 KiB of slot words here): a guest's page
/// holds a hundred lines and more, and no guest given a few spare pages
/// can take every line (it would need 256, from its VMM's own quota).
pub const MAX_VIRQLINES: usize = 32768;

/// The VirqLines, in object window 4, each chunk paid for by its guest.
pub type VirqLines = pool!(VirqLine, 4, MAX_VIRQLINES);

/// Doorbells, made from their guests' quotas (`obj::window`).
pub const MAX_DOORBELLS: usize = 4096;

/// The doorbells, in object window 5, each chunk paid for by its guest.
pub type Doorbells = pool!(Doorbell, 5, MAX_DOORBELLS);

/// Timers, made from the quotas of the domains that set them.
pub const MAX_TIMERS: usize = 4096;

/// The timers, in object window 6, each chunk paid for by the domain
/// that set them.
pub type Timers = pool!(Timer, 6, MAX_TIMERS);

/// Device objects, made from their owners' quotas (`obj::window`): a
/// function of PCI segment 0 has at most one.
pub const MAX_DEVICES: usize = 256;

/// The devices, in object window 9, each chunk paid for by its owner.
pub type Devices = pool!(Device, 9, MAX_DEVICES);

/// All kernel objects.
pub struct Kernel {
    pub domains: Domains,
    pub threads: Threads,
    pub memory: Memories,
    pub maps: Mappings,
    pub ioports: PortRanges,
    pub irqs: Pool<Irq, MAX_IRQS>,
    pub endpoints: Endpoints,
    pub notifications: Notifications,
    pub virqs: VirqLines,
    pub doorbells: Doorbells,
    pub devices: Devices,
    /// Each CPU's runnable threads (`state::runq`).
    pub runqs: [runq::RunQueue; MAX_CPUS],
    /// The thread each CPU runs.
    pub current: [Option<Ref>; MAX_CPUS],
    /// A CPU must choose again at its next exit to user mode (a thread with
    /// more credit than its current one woke).
    pub resched: [bool; MAX_CPUS],
    /// The thread that yielded on each CPU: passed over at the next choice
    /// if anything else may run.
    pub yielded: [Option<Ref>; MAX_CPUS],
    /// Each CPU's last hand-over (`Kernel::wake_by`), until its next tick:
    /// that tick passes over the signaller if the waiter has not run yet
    /// (`sched`'s docs on hand-over).
    pub handed: [Option<HandOver>; MAX_CPUS],
    /// The root domain; its death ends the system.
    pub root: Option<Ref>,
    /// Timers that signal notifications (`state::timer`).
    pub timers: Timers,
    /// The timer due first, or `Ref::NONE`: the head of the list of them
    /// all, in the order they are due.
    pub timer_list: Ref,
    /// When the first timer is due (TSC); `u64::MAX` if none is set.
    pub timer_due: u64,
    /// When each CPU last charged time to a thread (TSC).
    pub charged: [u64; MAX_CPUS],
}

/// A signal's hand-over of a CPU (`Kernel::wake_by`): thread `by` gave it
/// to thread `to`, resumed at `rip` and `rsp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandOver {
    pub to: Ref,
    pub by: Ref,
    pub rip: u64,
    pub rsp: u64,
}

/// The big kernel lock and everything it guards.
#[cfg(target_os = "none")]
pub static KERNEL: Mutex<Kernel> = Mutex::new(Kernel::new());

/// The kernel: [`KERNEL`] on the machine; on the host, the instance the
/// running test made (the fake hardware's), so that tests run side by side.
#[inline(always)]
pub fn kernel() -> &'static Mutex<Kernel> {
    #[cfg(target_os = "none")]
    {
        &KERNEL
    }
    #[cfg(not(target_os = "none"))]
    {
        hw::kernel()
    }
}

impl Kernel {
    /// Guest `d`'s first vCPU, where its VirqLines go.
    pub fn first_vcpu(&self, d: Ref) -> Option<Ref> {
        self.threads.iter().find(|(_, th)| th.domain == d && th.vcpu.is_some()).map(|(r, _)| r)
    }
}

/// What `Stats` reports.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub free_frames: u64,
    pub objects: u64,
}

impl Kernel {
    pub const fn new() -> Self {
        Self {
            domains: window::Pool::new(hw::window::Window),
            threads: window::Pool::new(hw::window::Window),
            memory: window::Pool::new(hw::window::Window),
            maps: window::Pool::new(hw::window::Window),
            ioports: window::Pool::new(hw::window::Window),
            irqs: Pool::new(),
            endpoints: window::Pool::new(hw::window::Window),
            notifications: window::Pool::new(hw::window::Window),
            virqs: window::Pool::new(hw::window::Window),
            doorbells: window::Pool::new(hw::window::Window),
            devices: window::Pool::new(hw::window::Window),
            runqs: [runq::RunQueue::EMPTY; MAX_CPUS],
            current: [None; MAX_CPUS],
            resched: [false; MAX_CPUS],
            yielded: [None; MAX_CPUS],
            handed: [None; MAX_CPUS],
            root: None,
            timers: window::Pool::new(hw::window::Window),
            timer_list: Ref::NONE,
            timer_due: u64::MAX,
            charged: [0; MAX_CPUS],
        }
    }

    pub fn stats(&self) -> Stats {
        let objects = self.domains.used()
            + self.threads.used()
            + self.memory.used()
            + self.ioports.used()
            + self.irqs.used()
            + self.endpoints.used()
            + self.notifications.used()
            + self.virqs.used()
            + self.doorbells.used()
            + self.devices.used()
            + self.timers.used();
        Stats { free_frames: hw::frames::free_count(), objects: objects as u64 }
    }

    pub fn domain(&self, d: Ref) -> Result<&Domain, Error> {
        self.domains.get(d).ok_or(Error::StaleCapability)
    }

    /// Domain `d` if it has not died: objects are made only for such a
    /// one (a dead domain's are freed with it, and run or wait no more).
    pub fn living(&self, d: Ref) -> Result<&Domain, Error> {
        match self.domain(d)? {
            dom if dom.state == crate::obj::domain::DomainState::Dead => Err(Error::PeerDead),
            dom => Ok(dom),
        }
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
            ObjectType::VirqLine => self.virqs.get(at).map(|_| 0),
            ObjectType::Doorbell => self.doorbells.get(at).map(|_| 0),
            ObjectType::Device => self.devices.get(at).map(|_| 0),
        };
        match epoch {
            Some(e) if cap.original || cap.epoch == e => Ok(cap),
            _ => Err(Error::StaleCapability),
        }
    }

    /// The endpoint `slot` of domain `d` names, if the capability has
    /// `rights`, with its badge: [`Kernel::cap`]'s checks for an endpoint
    /// (which has no grant epochs: a copy is current if made in epoch 0),
    /// without building a `Result` — the IPC fast paths' lookup. (Written
    /// out, not through a shared helper returning the capability: that
    /// copy cost a call round trip 37 instructions.)
    #[inline(always)]
    pub fn endpoint_cap(&self, d: Ref, slot: CapSlot, rights: Rights) -> Option<(Ref, u64)> {
        let cap = self.domains.get(d)?.caps.get(slot).ok()?;
        let ok = cap.obj.kind == ObjectType::Endpoint
            && cap.rights.contains(rights)
            && (cap.original || cap.epoch == 0)
            && self.endpoints.get(cap.obj.at).is_some();
        ok.then_some((cap.obj.at, cap.badge))
    }

    /// The notification `slot` of domain `d` names, if the capability has
    /// `rights`: [`Self::endpoint_cap`]'s checks for a notification (no
    /// grant epochs either), the lookup of the signal fast path and of
    /// `Wait` and `Poll`.
    #[inline(always)]
    pub fn notification_cap(&self, d: Ref, slot: CapSlot, rights: Rights) -> Option<Ref> {
        let cap = self.domains.get(d)?.caps.get(slot).ok()?;
        let ok = cap.obj.kind == ObjectType::Notification
            && cap.rights.contains(rights)
            && (cap.original || cap.epoch == 0)
            && self.notifications.get(cap.obj.at).is_some();
        ok.then_some(cap.obj.at)
    }

    /// Resolves `slot` as a `kind` capability with `rights`.
    pub fn cap(&self, d: Ref, slot: CapSlot, kind: ObjectType, rights: Rights) -> Result<Cap, Error> {
        self.resolve(d, slot)?.check(kind, rights)
    }

    /// A copy of `cap` with `rights` (and `badge`): [`Cap::copy`] stamped
    /// with its object's current grant epoch. Every copy is made here.
    pub fn copy(&self, cap: Cap, rights: Rights, badge: Option<u64>) -> Result<Cap, Error> {
        let epoch = match cap.obj.kind {
            ObjectType::Memory => self.memory.get(cap.obj.at).map_or(0, |m| m.epoch),
            _ => 0,
        };
        cap.copy(rights, epoch, badge)
    }

    /// Makes a notification owned by, and paid for from the quota of,
    /// domain `d`.
    pub fn create_notification(&mut self, d: Ref) -> Result<Ref, Error> {
        make(&mut self.notifications, &mut self.domains, d, Notification::new(d))
    }

    /// Destroys notification `n`, giving its owner back what that freed.
    pub fn destroy_notification(&mut self, n: Ref) {
        refund(&mut self.domains, self.notifications.remove(n));
    }

    /// Keeps memory object `mem` (its frames and their charge already
    /// taken), its place paid for from its owner's quota.
    pub fn add_memory(&mut self, mem: Memory) -> Result<Ref, Error> {
        make(&mut self.memory, &mut self.domains, mem.owner, mem)
    }

    /// Keeps port range `ports`, its place paid for by its owner.
    pub fn add_ioports(&mut self, ports: IoPorts) -> Result<Ref, Error> {
        make(&mut self.ioports, &mut self.domains, ports.owner, ports)
    }

    /// Destroys port range `p`, giving its owner back what that freed.
    pub fn destroy_ioports(&mut self, p: Ref) {
        refund(&mut self.domains, self.ioports.remove(p));
    }

    /// Keeps device `dev`, its place paid for by its owner.
    pub fn add_device(&mut self, dev: Device) -> Result<Ref, Error> {
        make(&mut self.devices, &mut self.domains, dev.owner, dev)
    }

    /// Destroys device `v`, its function's bus mastering turned off first
    /// (no DMA of its holder's outlives it), giving its owner back what
    /// that freed.
    pub fn destroy_device(&mut self, v: Ref) {
        let (mut freed, mut stale) = ((Ref::NONE, 0), heapless::Vec::new());
        if let Some(d) = self.devices.get(v) {
            if let (Some(f), Some(m)) = (d.function, d.msix) {
                // Its MSI-X entries masked, MSI-X off: no vector of a
                // later holder's is raised by this one's settings.
                for b in &d.bound {
                    m.entry(&d.bars, b.0).map(|pa| hw::pci::msix_write(pa, [0, 0, 0, 1]));
                    hw::irq::msi_unroute(b.1); // then its remapping entry
                }
                let control = m.cap + 2;
                let off = crate::obj::device::msix_control(hw::pci::read(f, control, Width::Word), false);
                hw::pci::write(f, control, Width::Word, off);
            }
            if let Some(f) = d.function {
                hw::pci::stop_dma(f);
            }
            // Then its DMA space: the unit forgets it before any frame it
            // reached is reused (its memory, the owner's own, is freed
            // only at the owner's death, after its devices: `state::life`).
            if let (Some(f), Some(s)) = (d.function, &d.space) {
                match hw::iommu::detach(f, s.did, s.root) {
                    Some(n) => freed = (d.owner, n),
                    None => stale = s.maps.clone(),
                }
            }
        }
        if let Ok(o) = self.domain_mut(freed.0) {
            o.quota.release(freed.1);
        }
        // The unit may still cache what it reached: never to be reused.
        stale.iter().for_each(|&(m, _, _)| self.unflushed(m));
        refund(&mut self.domains, self.devices.remove(v));
    }

    /// Makes a VirqLine, paid for from the quota of its guest (whose death
    /// it dies with).
    pub fn add_virq(&mut self, line: VirqLine) -> Result<Ref, Error> {
        make(&mut self.virqs, &mut self.domains, line.guest, line)
    }

    /// Destroys VirqLine `v`, giving its guest back what that freed.
    pub fn destroy_virq(&mut self, v: Ref) {
        refund(&mut self.domains, self.virqs.remove(v));
    }

    /// Makes a doorbell on guest `bell.guest`'s port, paid for from that
    /// guest's quota (it dies with it), first on the guest's list.
    pub fn add_doorbell(&mut self, mut bell: Doorbell) -> Result<Ref, Error> {
        let g = bell.guest;
        bell.next = self.living(g)?.bells;
        let b = make(&mut self.doorbells, &mut self.domains, g, bell)?;
        if let Some(dom) = self.domains.get_mut(g) {
            dom.bells = b;
        }
        Ok(b)
    }

    /// Guest `g`'s doorbell on `port`: its notification and bits. Walks
    /// that guest's list alone (an exit's lookup, beside the vCPU it holds:
    /// the pools are passed apart).
    #[inline(always)]
    pub fn doorbell_at(domains: &Domains, doorbells: &Doorbells, g: Ref, port: u16) -> Option<(Ref, u64)> {
        let mut b = domains.get(g)?.bells;
        while let Some(bell) = doorbells.get(b) {
            if bell.port == port {
                return Some((bell.ntfn, bell.bits));
            }
            b = bell.next;
        }
        None
    }

    /// Destroys guest `g`'s first doorbell, giving the guest back what that
    /// freed; false if it has none.
    pub fn destroy_first_doorbell(&mut self, g: Ref) -> bool {
        let Some(dom) = self.domains.get_mut(g) else { return false };
        let first = core::mem::replace(&mut dom.bells, Ref::NONE);
        let Some((bell, r)) = self.doorbells.remove(first) else { return false };
        if let Some(dom) = self.domains.get_mut(g) {
            dom.bells = bell.next;
        }
        refund(&mut self.domains, Some(((), r)));
        true
    }

    /// Makes thread (or vCPU) `th`, paid for from the quota of the domain
    /// it runs in.
    pub fn create_thread(&mut self, th: Thread) -> Result<Ref, Error> {
        make(&mut self.threads, &mut self.domains, th.domain, th)
    }

    /// Destroys thread `t`, out of its run queue first, giving its domain
    /// back what that freed; the thread, for what it held (a vCPU's frames).
    pub fn remove_thread(&mut self, t: Ref) -> Option<Thread> {
        self.dequeue(t);
        refund(&mut self.domains, self.threads.remove(t))
    }

    /// Makes an endpoint owned by, and paid for from the quota of, `d`.
    pub fn create_endpoint(&mut self, d: Ref) -> Result<Ref, Error> {
        make(&mut self.endpoints, &mut self.domains, d, Endpoint::new(d))
    }

    /// Destroys endpoint `e`, giving its owner back what that freed.
    pub fn destroy_endpoint(&mut self, e: Ref) {
        refund(&mut self.domains, self.endpoints.remove(e));
    }

    /// Keeps domain `dom`, its place paid for from its supervisor's quota
    /// (the root's from nobody's); if it cannot be, the root of its address
    /// space comes back (for the caller to destroy).
    pub fn add_domain(&mut self, mut dom: Domain) -> Result<Ref, (Error, x86_64::PhysAddr)> {
        let sup = dom.supervisor;
        let (owner, mut quota) = match sup.map(|s| self.domains.get(s).map(|x| (s.index, x.quota))) {
            Some(Some(x)) => x,
            Some(None) => return Err((Error::StaleCapability, dom.root)),
            None => (NOBODY, crate::obj::domain::Quota { limit: u64::MAX, used: 0 }),
        };
        if sup.is_none() {
            dom.caps.widen(root_slots().ok_or((Error::QuotaExceeded, dom.root))?);
        }
        let d = self.domains.insert(owner, &mut quota, dom).map_err(|(e, dom)| (e, dom.root))?;
        if let Some(x) = sup.and_then(|s| self.domains.get_mut(s)) {
            x.quota = quota;
        }
        Ok(d)
    }

    /// Puts `cap` into domain `d`'s table; a full table first sheds the
    /// capabilities whose objects are gone (stale since, whoever destroyed
    /// them: no destroy sweeps the tables).
    pub fn give(&mut self, d: Ref, cap: Cap) -> Result<CapSlot, Error> {
        match self.domain_mut(d)?.caps.insert(cap) {
            Err(Error::OutOfSlots) if self.purge_dead_caps(d) > 0 => self.domain_mut(d)?.caps.insert(cap),
            r => r,
        }
    }

    /// Gives `cap` to domain `d`; if that fails, runs `undo` (which takes
    /// back what was made for it) before saying why.
    pub fn give_or(&mut self, d: Ref, cap: Cap, undo: impl FnOnce(&mut Self)) -> Result<CapSlot, Error> {
        let given = self.give(d, cap);
        if given.is_err() {
            undo(self);
        }
        given
    }
}

/// The root's capability table: [`ROOT_SLOTS`] slots in object window 10,
/// backed once (by nobody's quota, as the root's place), never freed.
pub const ROOT_SLOTS: usize = 4096;

fn root_slots() -> Option<&'static mut [crate::cap::table::Slot]> {
    use crate::cap::table::{Slot, EMPTY};
    use window::Backing;
    let mut w = hw::window::Window::<10>;
    w.back(0, (ROOT_SLOTS * core::mem::size_of::<Slot>()).div_ceil(window::PAGE)).then_some(())?;
    let at: *mut Slot = w.base().cast();
    // SAFETY: the window's first pages, just backed (page aligned, so
    // aligned for slots), hold the slots, each written before the slice
    // is made; nothing else uses window 10 (the root is made once), and
    // the table lives as long as the kernel.
    unsafe {
        (0..ROOT_SLOTS).for_each(|i| at.add(i).write(EMPTY));
        Some(core::slice::from_raw_parts_mut(at, ROOT_SLOTS))
    }
}

/// Makes `value` in window pool `pool`, owned by domain `d` and paid for
/// from its quota.
fn make<T, B: window::Backing, const N: usize, const C: usize>(
    pool: &mut window::Pool<T, B, N, C>,
    domains: &mut Domains,
    d: Ref,
    value: T,
) -> Result<Ref, Error> {
    let quota = &mut domains.get_mut(d).ok_or(Error::StaleCapability)?.quota;
    pool.insert(d.index, quota, value).map_err(|(e, _)| e)
}

/// Gives what a window pool's destruction freed back to the quota of its
/// owner (a domain, by slot: it lives while it holds a chunk).
/// Takes what was removed (if anything), the object it was.
fn refund<T>(domains: &mut Domains, gone: Option<(T, Refund)>) -> Option<T> {
    let (value, r) = gone?;
    if let Some(d) = domains.at_mut(r.owner) {
        d.quota.release(r.pages);
    }
    Some(value)
}

impl Default for Kernel {
    fn default() -> Self {
        Self::new()
    }
}

/// Interrupts CPU `c` so that it enters the kernel.
pub fn kick(c: usize) {
    if c != hw::cpu::current() {
        hw::irq::kick(c);
    }
}
