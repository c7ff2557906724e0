//! The harness: a kernel and a fake machine of its own per test, a root
//! domain built as the loader builds it, and threads that make syscalls
//! through the real entry (`sched::from_user`, which tries the IPC fast
//! path, then decodes and invokes), the CPUs stepped as the scheduler
//! decides.

use ipc::msg::IpcCall;
use ipc::syscall::Call;
use ipc::{CapSlot, Error, ObjectType, Rights};
use spin::{Mutex, MutexGuard};

use crate::cap::Cap;
use crate::hw::fake::{self, Event, Machine};
use crate::hw::trap::{vector, TrapFrame, USER_CS, USER_SS};
use crate::obj::domain::Domain;
use crate::obj::ioports::IoPorts;
use crate::obj::irq::Irq;
use crate::obj::pool::Ref;
use crate::obj::thread::{Context, Thread, ThreadState};
use crate::state::Kernel;

/// Interrupt lines the root is given.
pub const IRQ_LINES: u8 = 4;
/// Where harness threads start and their stacks (never run: the harness
/// plays their user code).
pub const ENTRY: u64 = 0x40_0000;
pub const STACK: u64 = 0x80_0000;

/// What a syscall came to, for its thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out {
    /// It returned at once: success with results, or an error with its
    /// argument register.
    Ok([u64; 4]),
    Err(Error, u64),
    /// The thread waits, or is gone. (A thread that yielded or lost its
    /// CPU at the end of its call has its results, which it sees when it
    /// runs again: `Ok` or `Err`.)
    Off,
}

impl Out {
    /// The results of a success; panics otherwise.
    #[track_caller]
    pub fn ok(self) -> [u64; 4] {
        match self {
            Out::Ok(r) => r,
            other => panic!("expected success, got {other:?}"),
        }
    }

    /// The slot a creation returned.
    #[track_caller]
    pub fn slot(self) -> CapSlot {
        CapSlot(self.ok()[0] as u32)
    }

    /// The error; panics on anything else.
    #[track_caller]
    pub fn err(self) -> Error {
        match self {
            Out::Err(e, _) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

/// The root's capabilities (as the loader gives them).
#[derive(Clone, Debug)]
pub struct RootCaps {
    pub me: CapSlot,
    pub console: CapSlot,
    pub ioports: CapSlot,
    pub irqs: Vec<CapSlot>,
    /// PCI segment 0 (a Device, CONTROL and GRANT).
    pub pci: CapSlot,
}

/// One simulated system.
pub struct Sim {
    k: &'static Mutex<Kernel>,
    /// Each CPU's frame: the user context it returns to.
    pub frames: Vec<TrapFrame>,
    pub cpus: usize,
    pub root: Ref,
    pub root_thread: Ref,
    pub caps: RootCaps,
    /// What the fake saw, in order (tests may clear it).
    pub seen: Vec<Event>,
    /// Syscalls made so far.
    pub syscalls: u64,
}

/// A blank frame.
pub fn blank() -> TrapFrame {
    TrapFrame {
        r15: 0,
        r14: 0,
        r13: 0,
        r12: 0,
        r11: 0,
        r10: 0,
        r9: 0,
        r8: 0,
        rbp: 0,
        rdi: 0,
        rsi: 0,
        rdx: 0,
        rcx: 0,
        rbx: 0,
        rax: 0,
        vector: 0,
        error: 0,
        rip: 0,
        cs: USER_CS,
        rflags: 0x202,
        rsp: 0,
        ss: USER_SS,
    }
}

/// Runs `f` on a simulated system of `cpus` CPUs and `frames` frames of
/// RAM, on a thread of its own (with room for a kernel on its stack, and
/// its own fake machine).
pub fn run(cpus: usize, frames: usize, f: impl FnOnce(&mut Sim) + Send + 'static) {
    let t = std::thread::Builder::new().stack_size(256 << 20).spawn(move || {
        let mut s = Sim::new(cpus, frames);
        f(&mut s);
    });
    if let Err(e) = t.expect("spawn a test thread").join() {
        std::panic::resume_unwind(e);
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(k) = fake::uninstall() {
            // SAFETY: `k` came from `Box::leak` in `Sim::new` and this thread
            // was its only user; with the machine gone nothing reaches it.
            unsafe { drop(Box::from_raw(k as *const Mutex<Kernel> as *mut Mutex<Kernel>)) };
        }
    }
}

impl Sim {
    fn new(cpus: usize, frames: usize) -> Self {
        let k: &'static Mutex<Kernel> = Box::leak(Box::new(Mutex::new(Kernel::new())));
        fake::install(Machine::new(cpus, frames), k);
        let (root, root_thread, caps) = {
            let mut k = k.lock();
            build_root(&mut k)
        };
        let frames = (0..cpus).map(|_| blank()).collect();
        let mut s = Sim { k, frames, cpus, root, root_thread, caps, seen: Vec::new(), syscalls: 0 };
        for c in 0..cpus {
            s.resume(c);
        }
        s.settle();
        s
    }

    /// The kernel, locked (never across a kernel entry).
    pub fn k(&self) -> MutexGuard<'static, Kernel> {
        self.k.try_lock().expect("the kernel lock is free between entries")
    }

    /// The fake machine.
    pub fn m<R>(&self, f: impl FnOnce(&mut Machine) -> R) -> R {
        fake::with(f)
    }

    /// Advances the clock by `us` microseconds.
    pub fn advance(&mut self, us: u64) {
        self.m(|m| m.clock += us * m.tsc_per_us);
    }

    fn on(&self, c: usize) {
        self.m(|m| m.current = c);
    }

    /// Whether CPU `c` idles.
    pub fn idle(&self, c: usize) -> bool {
        self.m(|m| m.cpus[c].idle)
    }

    /// CPU `c`, idle, looks for work again.
    pub fn resume(&mut self, c: usize) {
        self.on(c);
        self.m(|m| m.cpus[c].idle = false);
        let mut f = std::mem::replace(&mut self.frames[c], blank());
        crate::sched::schedule(c, &mut f);
        self.frames[c] = f;
    }

    /// An entry from user mode on CPU `c` with `vector` (its frame as set).
    fn enter(&mut self, c: usize, vector: u64) {
        assert!(!self.idle(c), "cpu {c} idles: no user context to enter from");
        self.on(c);
        let mut f = std::mem::replace(&mut self.frames[c], blank());
        f.vector = vector;
        crate::sched::from_user(&mut f);
        self.frames[c] = f;
    }

    /// An interrupt `vector` on CPU `c`: taken from user mode, or ending
    /// its idling.
    pub fn interrupt(&mut self, c: usize, vector: u8) {
        if self.idle(c) {
            if (crate::hw::trap::vector::IRQ_BASE..crate::hw::trap::vector::IRQ_BASE + 24).contains(&vector) {
                self.on(c);
                crate::sched::irq_in_idle(u32::from(vector - crate::hw::trap::vector::IRQ_BASE));
            }
            use crate::hw::trap::vector::{MSI_BASE, MSI_COUNT};
            if (MSI_BASE..MSI_BASE + MSI_COUNT).contains(&vector) {
                self.on(c);
                crate::sched::msi_in_idle(vector);
            }
            self.resume(c);
        } else {
            self.enter(c, u64::from(vector));
        }
        self.settle();
    }

    /// A timer tick on CPU `c`, `us` after the last.
    pub fn tick(&mut self, c: usize, us: u64) {
        self.advance(us);
        self.interrupt(c, vector::TIMER);
    }

    /// Delivers every IPI sent so far (each a kick into the kernel), until
    /// none is left; the fake's events are drained into [`Sim::seen`].
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            let events = self.m(|m| std::mem::take(&mut m.events));
            if events.is_empty() {
                return;
            }
            for e in &events {
                if let Event::Kick { to, .. } = *e {
                    if to < self.cpus {
                        if self.idle(to) {
                            self.resume(to);
                        } else {
                            self.enter(to, u64::from(vector::KICK));
                        }
                    }
                }
            }
            self.seen.extend(events);
        }
        panic!("IPIs keep coming: the CPUs kick each other forever");
    }

    /// The CPU thread `t` runs on now, if it runs.
    pub fn running(&self, t: Ref) -> Option<usize> {
        let k = self.k();
        match k.threads.get(t).map(|th| th.state) {
            Some(ThreadState::Running(c)) if k.current[c] == Some(t) && !self.idle(c) => Some(c),
            _ => None,
        }
    }

    /// Makes thread `t` (runnable or running) the one its CPU runs, by
    /// timer ticks of 1 ms (at most 5,000: a heavier domain may keep the
    /// CPU for a while, but not for ever); panics if it cannot run.
    #[track_caller]
    pub fn schedule_in(&mut self, t: Ref) -> usize {
        for _ in 0..5000 {
            if let Some(c) = self.running(t) {
                return c;
            }
            let (state, home) = {
                let k = self.k();
                let th = k.threads.get(t).unwrap_or_else(|| panic!("thread {t:?} is gone"));
                (th.state, th.cpu)
            };
            assert!(
                matches!(state, ThreadState::Runnable | ThreadState::Running(_)),
                "thread {t:?} cannot run: {state:?}"
            );
            self.tick(home, 1000);
        }
        panic!("thread {t:?} never got its CPU");
    }

    /// Thread `t` makes syscall `nr` with `args` (in rdi, rsi, rdx, r10,
    /// r8, r9) through the real entry.
    #[track_caller]
    pub fn raw(&mut self, t: Ref, nr: u64, args: [u64; 6]) -> Out {
        let c = self.schedule_in(t);
        let f = &mut self.frames[c];
        [f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9] = args;
        self.raw_keep(t, nr)
    }

    /// Thread `t`, running, makes syscall `nr` with the other registers
    /// as its frame holds them.
    #[track_caller]
    pub fn raw_keep(&mut self, t: Ref, nr: u64) -> Out {
        let c = self.running(t).unwrap_or_else(|| panic!("thread {t:?} does not run"));
        self.frames[c].rax = nr;
        self.syscalls += 1;
        self.enter(c, vector::SYSCALL);
        self.settle();
        self.outcome(t, c)
    }

    /// What thread `t`, which entered on CPU `c`, found on return.
    fn outcome(&self, t: Ref, c: usize) -> Out {
        if self.running(t) == Some(c) {
            let f = &self.frames[c];
            return match Error::from_code(f.rax) {
                Ok(()) => Out::Ok([f.rdi, f.rsi, f.rdx, f.r10]),
                Err(e) => Out::Err(e, f.rdi),
            };
        }
        match self.state(t) {
            Some(ThreadState::Runnable | ThreadState::Running(_)) => self.result(t),
            _ => Out::Off,
        }
    }

    /// Thread `t` makes `call`.
    #[track_caller]
    pub fn call(&mut self, t: Ref, call: Call) -> Out {
        let (nr, args) = call.encode();
        self.raw(t, nr, args)
    }

    /// Thread `t` makes the message syscall `call`.
    #[track_caller]
    pub fn ipc(&mut self, t: Ref, call: IpcCall) -> Out {
        let (nr, r) = call.encode();
        let c = self.schedule_in(t);
        let f = &mut self.frames[c];
        [f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9, f.r12, f.r13, f.r14, f.r15, f.rbx] = r;
        self.raw_keep(t, nr)
    }

    /// Thread `t`'s registers as it will see them when it next runs (its
    /// frame if it runs now, else its saved context).
    pub fn regs(&self, t: Ref) -> Context {
        if let Some(c) = self.running(t) {
            return crate::state::sched::save(&self.frames[c]);
        }
        self.k().threads.get(t).map(|th| th.ctx).unwrap_or_default()
    }

    /// Thread `t`'s syscall result as it will see it: rax, then rdi, rsi,
    /// rdx, r10.
    pub fn result(&self, t: Ref) -> Out {
        let r = self.regs(t);
        match Error::from_code(r.rax) {
            Ok(()) => Out::Ok([r.rdi, r.rsi, r.rdx, r.r10]),
            Err(e) => Out::Err(e, r.rdi),
        }
    }

    /// The message thread `t` received (its registers as `ipc::msg` reads them).
    pub fn message(&self, t: Ref) -> [u64; ipc::msg::REGS] {
        self.regs(t).msg_regs()
    }

    /// Thread `t`'s state.
    pub fn state(&self, t: Ref) -> Option<ThreadState> {
        self.k().threads.get(t).map(|th| th.state)
    }

    /// A CPU exception `vector` in thread `t`'s user code.
    pub fn fault(&mut self, t: Ref, vector: u8, error: u64, cr2: u64) {
        let c = self.schedule_in(t);
        self.m(|m| m.cr2 = cr2);
        self.frames[c].error = error;
        self.enter(c, u64::from(vector));
        self.settle();
    }

    /// A copy of domain `from`'s capability `slot` (all its rights but
    /// REVOKE) put into domain `to`'s table, as a grant would: a test's
    /// shortcut past the capabilities a grant needs.
    pub fn lend(&mut self, from: Ref, slot: CapSlot, to: Ref) -> CapSlot {
        let mut k = self.k();
        let cap = k.resolve(from, slot).expect("a live capability");
        let copy = k.copy(cap, cap.rights - Rights::REVOKE, None).expect("a copy");
        k.give(to, copy).expect("a free slot")
    }

    /// The object capability `slot` of domain `d` names.
    pub fn obj(&self, d: Ref, slot: CapSlot) -> Ref {
        self.k().resolve(d, slot).expect("a live capability").obj.at
    }

    /// A child of the root with `quota` pages and one thread on `cpu`, given
    /// a capability to itself (CONTROL) and the console: what the root's
    /// syscalls make. Returns the root's slot for it, the child, its thread,
    /// and the child's slot for itself.
    pub fn child(&mut self, quota: u64, cpu: Option<u16>) -> Child {
        let r = self.root_thread;
        let slot = self.call(r, Call::DomainCreate { quota_pages: quota }).slot();
        let domain = self.obj(self.root, slot);
        let stack = ipc::syscall::UserAddr::new(STACK).expect("stack");
        let entry = ipc::syscall::UserAddr::new(ENTRY).expect("entry");
        let made = self.call(r, Call::ThreadCreate { domain: slot, entry, stack, arg: 0, cpu });
        let thread = self.obj(self.root, made.slot());
        let me = self.call(r, Call::CapGrant { domain: slot, slot, rights: Rights::CONTROL }).slot();
        let console = self.caps.console;
        let console =
            self.call(r, Call::CapGrant { domain: slot, slot: console, rights: Rights::WRITE }).slot();
        Child { slot, domain, thread, me, console }
    }

    /// Another thread of domain `d` (the root's `slot` for it), made by the root.
    pub fn thread(&mut self, slot: CapSlot, cpu: Option<u16>) -> Ref {
        let stack = ipc::syscall::UserAddr::new(STACK).expect("stack");
        let entry = ipc::syscall::UserAddr::new(ENTRY).expect("entry");
        let r = self.root_thread;
        let t = self.call(r, Call::ThreadCreate { domain: slot, entry, stack, arg: 0, cpu }).slot();
        self.obj(self.root, t)
    }
}

/// A child domain the root made.
#[derive(Clone, Copy, Debug)]
pub struct Child {
    /// The root's capability for it.
    pub slot: CapSlot,
    pub domain: Ref,
    pub thread: Ref,
    /// Its own capabilities: itself (CONTROL), the console (WRITE).
    pub me: CapSlot,
    pub console: CapSlot,
}

/// The root domain as `loader::start_root` makes it (less the image): its
/// address space, quota (all free memory but a reserve), capabilities to
/// itself, the console, every port and a few interrupt lines; one thread
/// on CPU 0.
fn build_root(k: &mut Kernel) -> (Ref, Ref, RootCaps) {
    let (root_pa, tables) = crate::hw::space::create(false).expect("root tables");
    let quota = crate::hw::frames::free_count().saturating_sub(64);
    let mut dom = Domain::new(root_pa, quota, None);
    dom.quota.used = tables;
    let d = k.add_domain(dom).expect("root domain");
    k.root = Some(d);
    let give = |k: &mut Kernel, cap| k.give(d, cap).expect("root slot");
    let me = give(k, Cap::new(ObjectType::Domain, d, Rights::CONTROL | Rights::GRANT));
    let console = give(
        k,
        Cap::new(ObjectType::Console, Ref { index: 0, generation: 0 }, Rights::WRITE | Rights::GRANT),
    );
    let ports = k.add_ioports(IoPorts { base: 0, count: u16::MAX, owner: d }).expect("ports");
    let all = Rights::READ | Rights::WRITE | Rights::GRANT | Rights::REVOKE;
    let ioports = give(k, Cap::new(ObjectType::IoPorts, ports, all));
    let mut irqs = Vec::new();
    for line in 0..IRQ_LINES {
        let r = k.irqs.insert(Irq { line, pending: false, waiter: None, bound: None }).ok().expect("irq");
        irqs.push(give(k, Cap::new(ObjectType::Irq, r, Rights::CONTROL | Rights::GRANT)));
    }
    let seg = k.add_device(crate::obj::device::Device::segment(d)).expect("pci");
    let pci = give(k, Cap::new(ObjectType::Device, seg, Rights::CONTROL | Rights::GRANT));
    let ctx = Context::start(ENTRY, STACK, 0);
    let t = k.create_thread(Thread::new(d, ctx, 0)).expect("root thread");
    k.wake(t);
    (d, t, RootCaps { me, console, ioports, irqs, pci })
}
