//! A million random syscalls, from a fixed seed, drawn from every syscall
//! of `ipc::syscall` and the message verbs of `ipc::msg` alike, with
//! arguments shaped as each call's (`samples::fuzz`): mostly slots of
//! objects the calls made, page-aligned addresses and values at the edges
//! of what each argument allows, so that most calls pass `Call::decode` and
//! reach the kernel's objects. Each must come back with success or a known
//! error (and, for `InvalidArgument` from a syscall, name an argument that
//! exists).
//!
//! What the calls make (domains, guests, memory, threads, vCPUs, endpoints,
//! notifications, port ranges, copies) is kept in a pool of slots the
//! arguments are drawn from; when the pool is full the oldest is destroyed
//! (if a domain) and deleted, so that the kernel's tables stay neither full
//! nor empty; stale slots are dropped. The objects the run starts with (a
//! copy of `self`, a port range, a code page, a console without WRITE, and
//! a sandbox child and guest, remade every few thousand calls so that what
//! the calls leave in them is freed) are drawn from too.
//!
//! So that the domain survives to tell (the survivability rules):
//! - `self`, `console`, the witness endpoint, the given port range and the
//!   run's own endpoint and notification are never passed (a forged slot equal to one is changed),
//!   so none can be deleted, revoked, copied or written through;
//! - `Exit` is not made here: the children make it, running the code page
//!   (an `Exit`) that the calls may map into them;
//! - `ThreadCreate` always starts at `park`, whatever domain it names: in
//!   this one that thread blocks for good (in a child, the code page runs
//!   if mapped there, or the child faults; a guest refuses);
//! - nothing waits for ever: `DomainWait` never blocks; `Wait` on a
//!   notification it could signal gets a periodic 100 µs timer first,
//!   cancelled after the call, and becomes `Poll` on one it could not (or
//!   when the domain's timers are all taken); a receive gets the bound
//!   notification's timer first; `Call` on a live endpoint (no thread here
//!   ever serves one) carries a capability that cannot be sent, so it is
//!   refused; `IrqWait` is never made on an interrupt line;
//! - a child is destroyed before a capability to it is deleted (with its
//!   last capability gone it could never be, and would hold one of the few
//!   children a domain may have for good).
//!
//! `MemoryUnmap` and `CapRevoke` touch only memory the calls made: this
//! domain holds no capability to its own image, stack or start page.

use core::fmt;

use ipc::event::Event;
use ipc::msg::{self as ipcmsg, NO_CAP, REGS};
use ipc::syscall::Nr;
use ipc::{CapSlot, Error, ObjectType, Rights};
use samples::fuzz::{self, Hints};
use samples::rng::XorShift;
use user::{arch, layout, sys};

pub const CALLS: u32 = 1_000_000;
const SEED: u64 = 0x5259_4f4b_414e_2121;
/// The pool of slots the calls made.
const POOL: usize = 48;
/// Calls between checks that the objects the run started with still exist
/// (and the pool's slots: stale ones are dropped).
const REFRESH: u32 = 512;
/// Calls between remakes of the sandbox child and guest (whatever the calls
/// left in them is freed, their quota returned).
const RECYCLE: u32 = 8192;
/// The quota of each of them.
const SANDBOX_PAGES: u64 = 48;
/// Where the code page is written before it is mapped into children (no
/// random call is drawn near it, so it stays free).
const SCRATCH: u64 = layout::FREE2_BASE + (1 << 40);
/// `ThreadCreate`s on domain capabilities that start at `park`: fewer than
/// the two park endpoints queue (2 × 32), less this domain's own threads.
const PARKERS: u32 = 56;
/// An entry no thread can have (the kernel's half).
const KERNEL_ENTRY: u64 = 0xffff_8000_0000_0000;
/// What a child that runs the code page exits with.
pub const CHILD_EXIT: u64 = 0x77;
/// The first port of the range the system file gives (tests/systems/hostile.toml).
pub const PORTS_BASE: u16 = 0x2f8;
/// The types of `Fuzzer::fixed`.
const FIXED_KINDS: [ObjectType; 6] = [
    ObjectType::Domain,
    ObjectType::Domain,
    ObjectType::IoPorts,
    ObjectType::Memory,
    ObjectType::Console,
    ObjectType::Domain,
];
/// The bit the receive timer signals.
const WAKE: u64 = 1;
/// The bits of the timer that ends a `Wait`.
const WAIT_BITS: u64 = 1 << 63;

// A thread started in this domain blocks in a receive on an endpoint no one
// ever calls (many threads may wait on one endpoint; on a notification only
// one may). An endpoint queues at most `QUEUE` receivers, fewer than the
// threads this domain's quota pays for: a thread the first refuses waits
// on the second, so that none spins. It
// uses no stack, so any stack pointer will do. 64-byte aligned, so the code
// page's copy of it fits its page.
core::arch::global_asm!(
    ".pushsection .text.hostile_park, \"ax\", @progbits",
    ".balign 64",
    ".global hostile_park",
    "hostile_park:",
    "    mov rdi, [rip + {ep}]",
    "    mov eax, {recv}",
    "    syscall",
    "    mov rdi, [rip + {ep} + 8]",
    "    mov eax, {recv}",
    "    syscall",
    "    jmp hostile_park",
    ".popsection",
    ep = sym PARK_EP,
    recv = const ipcmsg::nr::RECV,
);

unsafe extern "C" {
    /// Blocks for good (see above). Never called: only started as a thread.
    fn hostile_park() -> !;
}

/// Where `hostile_park` starts.
pub fn park_entry() -> u64 {
    hostile_park as *const () as usize as u64
}

/// The endpoints `hostile_park` receives on (written once, before any thread
/// is started there; read by those threads only).
#[unsafe(no_mangle)]
static PARK_EP: [core::sync::atomic::AtomicU64; 2] =
    [const { core::sync::atomic::AtomicU64::new(NO_CAP) }; 2];

/// `mov eax, 2 (Exit); mov edi, CHILD_EXIT; syscall; ud2`.
const EXIT_CODE: [u8; 14] =
    [0xb8, Nr::Exit as u8, 0, 0, 0, 0xbf, CHILD_EXIT as u8, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b];

/// A call that came back wrong.
pub struct Failure {
    call: u32,
    nr: u64,
    args: [u64; 6],
    rax: u64,
    arg: u64,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "random call {}: syscall {} {:#x?}: got rax {} (rdi {}), want 0 or a known error",
            self.call, self.nr, self.args, self.rax, self.arg
        )
    }
}

impl Failure {
    fn setup(what: Error) -> Self {
        Failure { call: 0, nr: 0, args: [0; 6], rax: what.code(), arg: 0 }
    }
}

/// What the run counts: calls and successes per syscall number, results per
/// error, events of children.
pub struct Counts {
    pub calls: u32,
    pub by_nr: [(u32, u32); 256],
    pub by_error: [u32; Error::ALL.len() + 1],
    pub child_exits: u32,
    pub child_faults: u32,
}

/// The run's state.
struct Fuzzer {
    rng: XorShift,
    protected: [u64; 7],
    wake: CapSlot,
    /// The notification whose `WAIT_BITS` timer the call about to be made
    /// set (cancelled after it).
    waited: Option<u64>,
    pool: [(u64, Option<ObjectType>); POOL],
    next: usize,
    /// The objects the run started with: self copy, guest, ports, code page,
    /// mute console, a child (0 for one that could not be made).
    fixed: [u64; 6],
    pages: [u64; 4],
    ports: [u16; 1],
    this: CapSlot,
    console: CapSlot,
    given_ports: Option<CapSlot>,
    /// `ThreadCreate`s on a domain capability so far (see `PARKERS`).
    threads: u32,
}

fn raw(nr: u64, a: [u64; 6]) -> (u64, [u64; 4]) {
    // SAFETY: every call made here follows the module's survivability rules.
    unsafe { sys::syscall_raw(nr, a) }
}

impl Fuzzer {
    /// Adds a slot a call made, if it is in this domain's table, with its
    /// type; the oldest goes when the pool is full.
    fn add(&mut self, slot: u64) {
        let Some(info) = self.info(slot) else { return };
        let at = self.next % POOL;
        let (old, _) = core::mem::replace(&mut self.pool[at], (slot, info.kind));
        self.next += 1;
        if old != 0 && !self.protected.contains(&old) && !self.fixed.contains(&old) {
            let _ = raw(Nr::DomainDestroy as u64, [old, 0, 0, 0, 0, 0]);
            let _ = raw(Nr::CapDelete as u64, [old, 0, 0, 0, 0, 0]);
        }
    }

    /// Destroys the sandbox child and guest, to be made again by `refresh`.
    fn recycle(&mut self) {
        for at in [1, 5] {
            let s = core::mem::take(&mut self.fixed[at]);
            let _ = raw(Nr::DomainDestroy as u64, [s, 0, 0, 0, 0, 0]);
            let _ = raw(Nr::CapDelete as u64, [s, 0, 0, 0, 0, 0]);
        }
    }

    /// Drops the pool's stale slots; makes again whichever of the run's
    /// first objects the calls deleted.
    fn refresh(&mut self) {
        for i in 0..POOL {
            let slot = self.pool[i].0;
            if slot != 0 && self.info(slot).is_none() {
                // A capability whose object is gone still holds its slot.
                let _ = raw(Nr::CapDelete as u64, [slot, 0, 0, 0, 0, 0]);
                self.pool[i] = (0, None);
            }
        }
        let stale = |s: u64| s == 0 || sys::cap_info(CapSlot(s as u32)).is_err();
        if stale(self.fixed[0]) {
            self.fixed[0] = sys::cap_derive(self.this, Rights::CONTROL).map_or(0, |s| u64::from(s.0));
        }
        if stale(self.fixed[1]) {
            self.fixed[1] = sys::guest_create(SANDBOX_PAGES).map_or(0, |(s, _)| u64::from(s.0));
        }
        if stale(self.fixed[2]) {
            let copy = |p| sys::cap_derive(p, sys::cap_info(p)?.rights - Rights::REVOKE);
            self.fixed[2] = self.given_ports.and_then(|p| copy(p).ok()).map_or(0, |s| u64::from(s.0));
        }

        if stale(self.fixed[4]) {
            self.fixed[4] = sys::cap_derive(self.console, Rights::empty()).map_or(0, |s| u64::from(s.0));
        }
        if stale(self.fixed[5]) {
            let mut child = sys::domain_create(SANDBOX_PAGES);
            if matches!(child, Err(Error::OutOfObjects | Error::QuotaExceeded)) {
                // The calls made as many children as the account may hold
                // (or took the quota they need): the sandbox comes first.
                for p in self.pool.iter_mut().filter(|p| p.1 == Some(ObjectType::Domain)) {
                    let _ = raw(Nr::DomainDestroy as u64, [p.0, 0, 0, 0, 0, 0]);
                    let _ = raw(Nr::CapDelete as u64, [p.0, 0, 0, 0, 0, 0]);
                    *p = (0, None);
                }
                child = sys::domain_create(SANDBOX_PAGES);
            }
            self.fixed[5] = child.map_or(0, |(s, _)| u64::from(s.0));
        }
        if stale(self.fixed[3]) && self.fixed[5] != 0 {
            // The child's, where its threads start: a thread made in it
            // exits (the only `Exit` of the run). Freed with the child.
            let child = CapSlot(self.fixed[5] as u32);
            let code = code_page(self.this, child);
            if let Ok(c) = code {
                let _ = sys::memory_map(c, child, park_entry() & !0xfff, Rights::READ | Rights::EXEC);
            }
            self.fixed[3] = code.map_or(0, |s| u64::from(s.0));
        }
    }

    fn hints(&self) -> ([(u64, Option<ObjectType>); POOL + FIXED_KINDS.len()], usize) {
        let mut slots = [(0, None); POOL + FIXED_KINDS.len()];
        let mut n = 0;
        for &s in self.pool.iter().filter(|s| s.0 != 0) {
            slots[n] = s;
            n += 1;
        }
        for (&s, kind) in self.fixed.iter().zip(FIXED_KINDS).filter(|(&s, _)| s != 0) {
            slots[n] = (s, Some(kind));
            n += 1;
        }
        (slots, n)
    }

    fn info(&self, slot: u64) -> Option<sys::CapInfo> {
        u32::try_from(slot).ok().and_then(|s| sys::cap_info(CapSlot(s)).ok())
    }

    /// Applies the survivability rules to a drawn call (see the module's
    /// doc); returns the number to make, or None to draw again.
    fn tame(&mut self, nr: u64, a: &mut [u64; 6], m: &mut [u64; REGS]) -> Option<u64> {
        const WAIT: u64 = Nr::Wait as u64;
        const DOMAIN_WAIT: u64 = Nr::DomainWait as u64;
        const THREAD_CREATE: u64 = Nr::ThreadCreate as u64;
        const IRQ_WAIT: u64 = Nr::IrqWait as u64;
        const CAP_DELETE: u64 = Nr::CapDelete as u64;
        match nr {
            2 => None, // Exit
            DOMAIN_WAIT => {
                a[0] &= !1;
                Some(nr)
            }
            THREAD_CREATE => {
                // A thread made in this domain parks for good: past what the
                // two endpoints queue, one would spin. Threads are bounded by
                // this domain's quota alone, so the rule bounds them here:
                // past `PARKERS` on a domain, the entry is a kernel address,
                // refused.
                let on_domain = self.info(a[0]).is_some_and(|i| i.kind == Some(ObjectType::Domain));
                self.threads += u32::from(on_domain);
                a[1] = if self.threads <= PARKERS { park_entry() } else { KERNEL_ENTRY };
                Some(nr)
            }
            CAP_DELETE => {
                // The last capability to a child gone, the child could never
                // be destroyed: it would hold one of the few children a
                // domain may have for good.
                if self.info(a[0]).is_some_and(|i| i.kind == Some(ObjectType::Domain)) {
                    let _ = raw(Nr::DomainDestroy as u64, [a[0], 0, 0, 0, 0, 0]);
                }
                Some(nr)
            }
            IRQ_WAIT => {
                self.info(a[0]).filter(|i| i.kind == Some(ObjectType::Irq)).map_or(Some(nr), |_| None)
            }
            WAIT => {
                let Some(i) = self.info(a[0]) else { return Some(nr) };
                if i.kind != Some(ObjectType::Notification) || !i.rights.contains(Rights::READ) {
                    return Some(nr);
                }
                if !i.rights.contains(Rights::WRITE) {
                    return Some(Nr::Poll as u64);
                }
                // Another thread of this domain may wait on it too (the
                // targeted checks' client parks on one the calls can draw):
                // a single wake-up, a one-shot timer's or a signal, could
                // wake that thread and leave this one waiting for good
                // (whichever waits first is the waiter, a second gets
                // `Busy`). A periodic timer wakes whichever waits, until
                // this call is over. Only one in 16 waits so: each waits a
                // tick or so (timers fire at ticks), and they would take
                // most of the run (in a fixed pool of timers this domain's
                // share was mostly taken, and a `Wait` became a `Poll`).
                if self.rng.below(16) != 0 {
                    return Some(Nr::Poll as u64);
                }
                if raw(Nr::TimerSet as u64, [a[0], WAIT_BITS, 100, 100, 0, 0]).0 != 0 {
                    // The domain's timers are all taken.
                    return Some(Nr::Poll as u64);
                }
                self.waited = Some(a[0]);
                Some(nr)
            }
            ipcmsg::nr::CALL => {
                let live = self.info(m[0]).is_some_and(|i| {
                    i.kind == Some(ObjectType::Endpoint) && i.rights.contains(Rights::WRITE)
                });
                if live {
                    // A slot past the table's end: the kernel refuses to send it.
                    m[2] = u64::from(CapSlot::new(ipc::cap::SLOTS + 1, 0).0);
                }
                Some(nr)
            }
            ipcmsg::nr::RECV | ipcmsg::nr::REPLY_RECV => {
                let w = u64::from(self.wake.0);
                if raw(Nr::TimerSet as u64, [w, WAKE, 100, 0, 0, 0]).0 != 0 {
                    raw(Nr::Signal as u64, [w, WAKE, 0, 0, 0, 0]);
                }
                raw(Nr::NotificationBind as u64, [w, 0, 0, 0, 0, 0]);
                Some(nr)
            }
            _ => Some(nr),
        }
    }

    /// Undoes what `tame` set up for the call just made: a `Wait`'s timer.
    fn untame(&mut self) {
        if let Some(n) = self.waited.take() {
            let _ = raw(Nr::TimerSet as u64, [n, WAIT_BITS, 0, 0, 0, 0]);
        }
    }
}

/// A page of `owner`'s holding [`EXIT_CODE`] where `hostile_park` is in
/// its page: a child that maps it at `hostile_park`'s page and is given a
/// thread exits.
fn code_page(this: CapSlot, owner: CapSlot) -> Result<CapSlot, Error> {
    let page = sys::memory_create(owner, 1)?;
    sys::memory_map(page, this, SCRATCH, Rights::READ | Rights::WRITE)?;
    let at = SCRATCH + (park_entry() & 0xfff);
    // SAFETY: the page was just mapped read-write at SCRATCH for this domain
    // alone, and `hostile_park` is 64-byte aligned, so the code fits.
    unsafe { core::ptr::copy_nonoverlapping(EXIT_CODE.as_ptr(), at as *mut u8, EXIT_CODE.len()) };
    // SAFETY: nothing refers to the scratch mapping any more.
    unsafe { sys::memory_unmap(page, this, SCRATCH)? };
    Ok(page)
}

/// The rule for `Wait` holds beside another waiter: with the client of the
/// targeted checks waiting on `parked` (binding it is refused while a
/// thread waits on it) and no timer to be had (its quota all given away), a `Wait` on
/// it as the rules make it returns. Under the rule before, a signal in
/// place of the timer, the client took the signal and this thread waited
/// for good (1 run in 3 of this test timed out so).
fn wait_beside_a_waiter(f: &mut Fuzzer, parked: CapSlot) -> Result<(), Failure> {
    while sys::notification_bind(parked) != Err(Error::Busy) {
        // Not waiting yet: the binding goes back to the run's own, and the
        // client gets the CPU.
        sys::notification_bind(f.wake).map_err(Failure::setup)?;
        sys::yield_now();
    }
    let far = 60_000_000; // µs: none fires during the check
                          // Timers are paid from the domain's own quota: with all of it given to
                          // children (a child's quota is taken from its supervisor's), none can
                          // be set.
    let mut hogs = [CapSlot(0); 16];
    let mut held = 0;
    for k in (0..24).rev() {
        if held < hogs.len() {
            if let Ok((h, _)) = sys::domain_create(1 << k) {
                hogs[held] = h;
                held += 1;
            }
        }
    }
    // What the hogs left (less than a domain's place costs) goes to far
    // timers, until one more finds no page to be made from.
    let fill = |i: u64| i << 8; // bits apart from the run's own
    let mut filled = 0;
    while filled < 4096 && sys::timer_set(f.wake, fill(filled + 1), far, 0).is_ok() {
        filled += 1;
    }
    if !matches!(sys::timer_set(f.wake, 2, far, 0), Err(Error::QuotaExceeded | Error::OutOfObjects)) {
        return Err(Failure::setup(Error::QuotaExceeded));
    }
    let mut a = [u64::from(parked.0), 0, 0, 0, 0, 0];
    let nr = f.tame(Nr::Wait as u64, &mut a, &mut [0; REGS]).unwrap_or(Nr::Wait as u64);
    let (rax, r) = raw(nr, a);
    f.untame();
    for i in 1..=filled {
        sys::timer_set(f.wake, fill(i), 0, 0).map_err(Failure::setup)?;
    }
    for &h in hogs.iter().take(held) {
        sys::domain_destroy(h).map_err(Failure::setup)?;
    }
    if rax != 0 && rax != Error::Busy.code() {
        return Err(Failure { call: 0, nr, args: a, rax, arg: r[0] });
    }
    log::info!("hostile: a Wait beside another thread's returned");
    Ok(())
}

/// Makes the calls; returns what they did. `parked`: a notification
/// another thread of this domain waits on.
pub fn run(
    this: CapSlot,
    console: CapSlot,
    witness: Option<CapSlot>,
    ports: Option<CapSlot>,
    parked: CapSlot,
) -> Result<Counts, Failure> {
    let park = sys::endpoint_create(this).map_err(Failure::setup)?;
    let park2 = sys::endpoint_create(this).map_err(Failure::setup)?;
    for (at, ep) in PARK_EP.iter().zip([park, park2]) {
        at.store(u64::from(ep.0), core::sync::atomic::Ordering::Release);
    }
    let wake = sys::notification_create(this).map_err(Failure::setup)?;
    let s = |c: CapSlot| u64::from(c.0);
    let park_page = park_entry() & !0xfff;
    let mut f = Fuzzer {
        rng: XorShift::new(SEED),
        protected: [
            s(this),
            s(console),
            witness.map_or(0, s),
            s(park),
            s(park2),
            s(wake),
            ports.map_or(0, s),
        ],
        wake,
        waited: None,
        pool: [(0, None); POOL],
        next: 0,
        fixed: [0; 6],
        pages: [park_page, layout::FREE2_BASE, layout::FREE_BASE, layout::IMAGE_BASE],
        ports: [PORTS_BASE],
        this,
        console,
        given_ports: ports,
        threads: 0,
    };
    let mut c = Counts {
        calls: 0,
        by_nr: [(0, 0); 256],
        by_error: [0; Error::ALL.len() + 1],
        child_exits: 0,
        child_faults: 0,
    };
    wait_beside_a_waiter(&mut f, parked)?;
    let mut call = 0;
    while call < CALLS {
        if call % RECYCLE == RECYCLE - 1 {
            f.recycle();
        }
        if call % REFRESH == 0 {
            f.refresh();
        }
        let (slots, n) = f.hints();
        // The pages it maps and unmaps at random; never its image.
        let scratch = [layout::FREE2_BASE, layout::FREE_BASE];
        let hints = Hints { slots: &slots[..n], pages: &f.pages, ports: &f.ports, scratch: &scratch };
        let nr = fuzz::number(&mut f.rng);
        let mut a = fuzz::arguments(nr, &mut f.rng, &hints);
        let mut m = fuzz::message(&mut f.rng, &hints);
        // The slot arguments (the endpoint and capability of a message).
        let slots = fuzz::slot_arguments(nr);
        let forged = a.iter_mut().zip(slots).filter(|(_, s)| *s).map(|(v, _)| v);
        let (m0, rest) = m.split_at_mut(1);
        for v in forged.chain(m0.iter_mut()).chain(rest[1..2].iter_mut()) {
            if f.protected.contains(v) {
                *v ^= 1 << 12; // another generation of the slot
            }
        }
        let Some(nr) = f.tame(nr, &mut a, &mut m) else { continue };
        let (rax, r0, made) = if fuzz::MESSAGE_NRS.contains(&nr) {
            // SAFETY: message verbs leave this domain's memory and threads
            // alone, and the rules above keep them from blocking for good.
            let (rax, r) = unsafe { arch::ipc_raw(nr, m) };
            (rax, r[0], None)
        } else {
            let (rax, r) = raw(nr, a);
            f.untame();
            if nr == Nr::DomainWait as u64 && rax == 0 {
                match Event::decode(r) {
                    Some(Event::Exited { code: CHILD_EXIT, .. }) => c.child_exits += 1,
                    Some(Event::Faulted { .. }) => c.child_faults += 1,
                    _ => {}
                }
            }
            (rax, r[0], Some(r[0]))
        };
        let known = rax == 0 || Error::ALL.iter().any(|e| e.code() == rax);
        // A reply a vCPU's whitelist refuses (`ipc::vcpu::Reply::decode`)
        // is refused whole: no argument index for the message verbs.
        let message = fuzz::MESSAGE_NRS.contains(&nr);
        let arg_ok = rax != Error::InvalidArgument.code() || (1..=6).contains(&r0) || message;
        if !known || !arg_ok {
            return Err(Failure { call, nr, args: a, rax, arg: r0 });
        }
        c.by_error[rax as usize] += 1;
        let e = &mut c.by_nr[nr as usize & 0xff];
        e.0 += 1;
        e.1 += u32::from(rax == 0);
        if rax == 0 && makes(nr) {
            if let Some(slot) = made {
                f.add(slot);
            }
        }
        call += 1;
    }
    c.calls = call;
    Ok(c)
}

/// The calls whose first result is a new slot: in this domain's table, or
/// (`CapGrant`) in the receiver's, which `Fuzzer::add` keeps only if that is
/// this domain.
fn makes(nr: u64) -> bool {
    nr == Nr::CapGrant as u64 || Nr::MAKE_SLOT.iter().any(|&m| m as u64 == nr)
}

/// The error counts, as `Name n, …`.
pub struct ByError<'a>(pub &'a [u32]);

impl fmt::Display for ByError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for e in Error::ALL {
            let n = self.0.get(e.code() as usize).copied().unwrap_or(0);
            if n > 0 {
                write!(f, "{}{e:?} {n}", if first { "" } else { ", " })?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Calls and successes per syscall, as `nr calls/ok, …` for every number
/// called.
pub struct ByNr<'a>(pub &'a [(u32, u32)]);

impl fmt::Display for ByNr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (nr, (calls, ok)) in self.0.iter().enumerate().filter(|(_, (calls, ok))| *ok > 0 || *calls > 0) {
            if Nr::ALL.iter().any(|&n| n as usize == nr) || fuzz::MESSAGE_NRS.contains(&(nr as u64)) {
                write!(f, "{}{nr} {calls}/{ok}", if first { "" } else { ", " })?;
                first = false;
            }
        }
        Ok(())
    }
}
