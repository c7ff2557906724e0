//! The syscalls: numbers, the registers they use, and their decoding.
//!
//! Registers (System V order, with r10 for rcx, which `syscall` clobbers):
//! `rax` = number; `rdi, rsi, rdx, r10, r8, r9` = arguments 0..6.
//! On return `rax` = 0 or an [`Error`] code, and `rdi, rsi, rdx, r10` carry
//! results; on `InvalidArgument`, `rdi` = the 1-based index of the argument.
//!
//! Every verb that makes a kernel object (a domain, guest, thread, vCPU,
//! memory object, port range, endpoint, notification, VirqLine, doorbell or
//! timer) charges it to an *account*: the caller's (or the owner's) ancestor
//! that the root domain supervises, so a domain and all it made share one.
//! An account holds at most a quarter of the kernel's pool of each kind;
//! past that the verb fails with `QuotaExceeded`, and an object destroyed
//! (with its domain, or a timer cancelled) gives its place back. The root
//! is limited by the pools alone (`OutOfObjects`).
//!
//! [`Call::decode`] is the kernel's half of decode-then-invoke: every
//! argument is checked here, and the kernel acts only on a decoded `Call`.
//! [`Call::encode`] is the user side. One definition serves both.

use crate::cap::{CapSlot, Rights};
use crate::error::Error;

/// The lowest address a domain may map (the null page stays unmapped).
pub const USER_MIN: u64 = 0x1000;
/// One past the highest address a domain may map: the lower half.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// The most bytes one console write carries.
pub const CONSOLE_MAX: u64 = 4096;
/// The most pages one memory object holds (1 GiB).
pub const MEMORY_MAX_PAGES: u64 = 1 << 18;

/// Syscall numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Nr {
    ConsoleWrite = 1,
    Exit = 2,
    Yield = 3,
    CapDerive = 10,
    CapGrant = 11,
    CapDelete = 12,
    CapRevoke = 13,
    CapInfo = 14,
    DomainCreate = 20,
    DomainDestroy = 21,
    DomainWait = 22,
    DomainInfo = 23,
    GuestCreate = 24,
    MemoryCreate = 30,
    MemoryMap = 31,
    MemoryUnmap = 32,
    ThreadCreate = 40,
    VcpuCreate = 41,
    VirqCreate = 42,
    VirqRaise = 43,
    DoorbellCreate = 44,
    VcpuInterrupt = 45,
    IoPortRead = 50,
    IoPortWrite = 51,
    IoPortsCreate = 52,
    IrqWait = 60,
    Stats = 70,
    EndpointCreate = 90,
    NotificationCreate = 91,
    Signal = 92,
    Wait = 93,
    Poll = 94,
    IrqBind = 95,
    CapMint = 96,
    SchedSet = 97,
    ThreadSetCpu = 98,
    DomainNotify = 99,
    TimerSet = 100,
    NotificationBind = 101,
    DomainPause = 102,
}

impl Nr {
    /// Every syscall, in number order (a test checks that no other number
    /// decodes): what a fuzzer draws from to miss none.
    pub const ALL: [Nr; 40] = [
        Nr::ConsoleWrite,
        Nr::Exit,
        Nr::Yield,
        Nr::CapDerive,
        Nr::CapGrant,
        Nr::CapDelete,
        Nr::CapRevoke,
        Nr::CapInfo,
        Nr::DomainCreate,
        Nr::DomainDestroy,
        Nr::DomainWait,
        Nr::DomainInfo,
        Nr::GuestCreate,
        Nr::MemoryCreate,
        Nr::MemoryMap,
        Nr::MemoryUnmap,
        Nr::ThreadCreate,
        Nr::VcpuCreate,
        Nr::VirqCreate,
        Nr::VirqRaise,
        Nr::DoorbellCreate,
        Nr::VcpuInterrupt,
        Nr::IoPortRead,
        Nr::IoPortWrite,
        Nr::IoPortsCreate,
        Nr::IrqWait,
        Nr::Stats,
        Nr::EndpointCreate,
        Nr::NotificationCreate,
        Nr::Signal,
        Nr::Wait,
        Nr::Poll,
        Nr::IrqBind,
        Nr::CapMint,
        Nr::SchedSet,
        Nr::ThreadSetCpu,
        Nr::DomainNotify,
        Nr::TimerSet,
        Nr::NotificationBind,
        Nr::DomainPause,
    ];
}

/// `ThreadCreate`'s CPU argument when the kernel is to choose.
pub const ANY_CPU: u64 = u64::MAX;
/// `VcpuCreate`'s word for "a Multiboot start, not a start-up IPI".
pub const NO_SIPI: u64 = u64::MAX;

/// A user virtual address: canonical, in the lower half, above the null page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserAddr(u64);

impl UserAddr {
    /// Checks `va` (any alignment).
    pub const fn new(va: u64) -> Option<Self> {
        if va >= USER_MIN && va < USER_END {
            Some(Self(va))
        } else {
            None
        }
    }

    /// A page-aligned address below [`USER_END`], page 0 included: what a
    /// guest's memory map may use (a guest's RAM starts at guest-physical 0).
    /// The kernel refuses page 0 for a native domain.
    pub const fn page_or_zero(va: u64) -> Option<Self> {
        if va % 4096 == 0 && va < USER_END {
            Some(Self(va))
        } else {
            None
        }
    }

    /// Checks `va` and that it is page aligned.
    pub const fn page(va: u64) -> Option<Self> {
        if va % 4096 == 0 {
            Self::new(va)
        } else {
            None
        }
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

/// A user buffer: `len` bytes from `addr`, wholly inside the user range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserBuf {
    pub addr: UserAddr,
    pub len: u64,
}

impl UserBuf {
    /// Checks `len` bytes at `addr` (at most `max`) lie in user space.
    pub fn new(addr: u64, len: u64, max: u64) -> Option<Self> {
        let end = addr.checked_add(len)?;
        if len > max || end > USER_END {
            return None;
        }
        Some(Self { addr: UserAddr::new(addr)?, len })
    }
}

/// Port I/O access width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    Byte = 1,
    Word = 2,
    Dword = 4,
}

/// A decoded, checked syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Writes `buf` to the debug console (`console` needs WRITE).
    ConsoleWrite { console: CapSlot, buf: UserBuf },
    /// Ends the calling domain; its supervisor learns `code`.
    Exit { code: u64 },
    /// Gives up the rest of the time slice.
    Yield,
    /// A copy of `slot` in the caller's table with `rights` (a subset).
    /// Returns the new slot.
    CapDerive { slot: CapSlot, rights: Rights },
    /// A copy of `slot` (which needs GRANT) with `rights` into the table of
    /// `domain` (which needs CONTROL). Returns the slot there.
    CapGrant { domain: CapSlot, slot: CapSlot, rights: Rights },
    /// Empties `slot`.
    CapDelete { slot: CapSlot },
    /// Invalidates every copy granted from the object of `slot` (which needs
    /// REVOKE), and unmaps what they mapped; `slot` itself stays valid.
    CapRevoke { slot: CapSlot },
    /// The type and rights of `slot`, and its size: bytes for memory, ports
    /// for a port range, 0 otherwise.
    CapInfo { slot: CapSlot },
    /// A new, empty domain supervised by the caller, with `quota_pages` of
    /// the caller's quota moved to it. Returns its slot and its id.
    DomainCreate { quota_pages: u64 },
    /// Destroys a domain the caller supervises and everything it owns; its
    /// quota returns to the caller.
    DomainDestroy { domain: CapSlot },
    /// Waits for an event of a supervised domain (see [`crate::event`]).
    /// Returns `WouldBlock` when there is none and `block` is false, or when
    /// the caller supervises no domain (the wait could never end).
    DomainWait { block: bool },
    /// What the kernel knows of a domain the caller controls: [CPU time used
    /// in microseconds, weight, cap percent, 1 if running else 0].
    DomainInfo { domain: CapSlot },
    /// A new, empty guest (a virtual machine) supervised by the caller, with
    /// `quota_pages` of the caller's quota. Memory mapped into it lands in its
    /// second-level page tables (EPT or NPT): `READ` maps readable and
    /// executable (a guest runs code from its RAM), `WRITE` adds writable.
    /// Returns its slot and id. `NotSupported` without VT-x or AMD-V.
    GuestCreate { quota_pages: u64 },
    /// A new memory object of `pages` zeroed, physically contiguous pages,
    /// owned by and charged to `domain` (the caller's own or one it
    /// controls); destroyed with that domain.
    MemoryCreate { domain: CapSlot, pages: u64 },
    /// Maps all of `memory` into `domain` at `va` with `rights`: READ and
    /// any of WRITE and EXEC (never both), each of which the memory
    /// capability must have.
    MemoryMap { memory: CapSlot, domain: CapSlot, va: UserAddr, rights: Rights },
    /// Removes the mapping of `memory` at `va` from `domain`.
    MemoryUnmap { memory: CapSlot, domain: CapSlot, va: UserAddr },
    /// A thread in `domain` starting at `entry` with `stack` and `arg` in rdi,
    /// on CPU `cpu` (`None`: the least loaded one). Placing it at creation,
    /// not after, means it never runs anywhere else (and a vCPU it makes
    /// lands on that CPU too). `WrongType` for a guest, which runs vCPUs
    /// only (`VcpuCreate`).
    ThreadCreate { domain: CapSlot, entry: UserAddr, stack: UserAddr, arg: u64, cpu: Option<u16> },
    /// A virtual CPU of `guest` (CONTROL). With `sipi` None it starts in
    /// 32-bit protected mode without paging at `entry` with ebx = `arg` and
    /// eax = 0x2BADB002 (the Multiboot hand-off); with `sipi` = Some(v) it
    /// starts as an application processor does after INIT and a start-up
    /// IPI of vector v: in real mode at v:0000, that is 0x1000·v (`entry`
    /// and `arg` must be 0). It runs on `cpu` (None: the caller's), where it
    /// stays once started. Its exits are calls on endpoint `exit` (WRITE;
    /// see [`crate::vcpu`]). Returns its slot.
    VcpuCreate { guest: CapSlot, exit: CapSlot, entry: u64, arg: u64, sipi: Option<u8>, cpu: Option<u16> },
    /// The right to inject interrupt `vector` (32..=255) into `guest`
    /// (CONTROL): a VirqLine capability (WRITE|GRANT), to hand to whoever
    /// raises it (a device backend).
    VirqCreate { guest: CapSlot, vector: u8 },
    /// Raises the line: the vector is delivered to the guest's first vCPU as
    /// soon as it can take interrupts (needs WRITE).
    VirqRaise { virq: CapSlot },
    /// Raises interrupt `vector` (32..=255) on the one vCPU `vcpu` names
    /// (its thread capability, CONTROL): delivered as soon as that vCPU can
    /// take it, kicking its CPU if it runs a guest there (the interprocessor
    /// interrupts a VMM's local APIC model sends).
    VcpuInterrupt { vcpu: CapSlot, vector: u8 },
    /// Binds notification `ntfn` (READ) to the calling thread: while it
    /// receives on any endpoint, a signal ends the receive with the word
    /// (`ipc::msg::NOTIFIED`); a word already signalled is returned by the
    /// next receive, before any call. One thread per notification, one
    /// notification per thread (a new bind replaces the thread's old one).
    NotificationBind { ntfn: CapSlot },
    /// A doorbell: the guest's `OUT` to `port` signals `bits` on `ntfn`
    /// without an exit reaching the VMM (the ioeventfd). Returns its slot.
    DoorbellCreate { guest: CapSlot, port: u16, ntfn: CapSlot, bits: u64 },
    /// Reads a port of the range `ports` covers.
    IoPortRead { ports: CapSlot, port: u16, width: Width },
    /// Writes a port of the range `ports` covers.
    IoPortWrite { ports: CapSlot, port: u16, width: Width, value: u32 },
    /// A new port range `base..base + count` inside the one `ports` covers,
    /// owned by the caller, with at most the rights of `ports`.
    IoPortsCreate { ports: CapSlot, base: u16, count: u16 },
    /// Acknowledges the last interrupt of the line of `irq` (unmasks it) and
    /// blocks until the next, or returns at once if it fired meanwhile. The
    /// line stays masked from an interrupt until this call. For a line bound
    /// to a notification (`IrqBind`) it only acknowledges, without waiting.
    IrqWait { irq: CapSlot },
    /// Kernel-wide counts: free frames, objects in use, the caller's quota.
    Stats,
    /// A new endpoint owned by `domain` (see [`crate::msg`]). Returns its slot.
    EndpointCreate { domain: CapSlot },
    /// A new notification (a word of signal bits) owned by `domain`.
    NotificationCreate { domain: CapSlot },
    /// ORs `bits` into the notification (needs WRITE); wakes its waiter.
    Signal { ntfn: CapSlot, bits: u64 },
    /// Waits until the word is non-zero (needs READ); returns and clears it.
    Wait { ntfn: CapSlot },
    /// Returns and clears the word without waiting (needs READ).
    Poll { ntfn: CapSlot },
    /// Delivers the interrupt line of `irq` as `bits` on `ntfn` instead of to
    /// `IrqWait`; after handling each interrupt, acknowledge it with
    /// `IrqWait` (which then returns at once).
    IrqBind { irq: CapSlot, ntfn: CapSlot, bits: u64 },
    /// A copy of `slot` (an unbadged endpoint or notification with CONTROL)
    /// with `rights` (less CONTROL) and `badge` (not 0, which means
    /// unbadged), which the receiver sees with every message sent through
    /// it. A badged copy can never be badged again.
    CapMint { slot: CapSlot, rights: Rights, badge: u64 },
    /// Sets a domain's CPU weight (1..=65535, default 256) and cap (percent
    /// of one CPU, 1..=100, or 0 for none). Needs CONTROL.
    SchedSet { domain: CapSlot, weight: u16, cap_percent: u8 },
    /// Moves a thread to CPU `cpu` (needs CONTROL on the thread).
    ThreadSetCpu { thread: CapSlot, cpu: u16 },
    /// Signals `bits` on `ntfn` when supervised `domain` exits or faults (the
    /// event itself is then read with a non-blocking `DomainWait`).
    DomainNotify { domain: CapSlot, ntfn: CapSlot, bits: u64 },
    /// Signals `bits` on `ntfn` (WRITE) after `delay_us` microseconds, then
    /// every `period_us` if that is not 0. Setting the same notification and
    /// bits again replaces the timer; `delay_us` = 0 cancels it. Timers are
    /// charged to the caller's account (see above) and end with the caller.
    TimerSet { ntfn: CapSlot, bits: u64, delay_us: u64, period_us: u64 },
    /// Pauses (`paused`) or resumes `domain` (CONTROL) and every domain
    /// below it (a VMM and its guest), which the caller must be above: its
    /// supervisor, or its supervisor's, and so on. A paused domain's threads
    /// and vCPUs are not run; one running stops at its CPU's next tick (the
    /// CPU is kicked at once). Calls, signals and timers still reach it and
    /// wait.
    DomainPause { domain: CapSlot, paused: bool },
}

fn slot(v: u64) -> Option<CapSlot> {
    u32::try_from(v).ok().map(CapSlot)
}

fn rights(v: u64) -> Option<Rights> {
    Rights::from_u64(v)
}

impl Call {
    /// Checks a syscall's number and arguments. On failure: the error and,
    /// for `InvalidArgument`, which argument (1-based).
    pub fn decode(nr: u64, a: [u64; 6]) -> Result<Call, (Error, u64)> {
        let bad = |i: u64| (Error::InvalidArgument, i);
        let call = match nr {
            1 => Call::ConsoleWrite {
                console: slot(a[0]).ok_or(bad(1))?,
                buf: UserBuf::new(a[1], a[2], CONSOLE_MAX).ok_or(bad(2))?,
            },
            2 => Call::Exit { code: a[0] },
            3 => Call::Yield,
            10 => Call::CapDerive { slot: slot(a[0]).ok_or(bad(1))?, rights: rights(a[1]).ok_or(bad(2))? },
            11 => Call::CapGrant {
                domain: slot(a[0]).ok_or(bad(1))?,
                slot: slot(a[1]).ok_or(bad(2))?,
                rights: rights(a[2]).ok_or(bad(3))?,
            },
            12 => Call::CapDelete { slot: slot(a[0]).ok_or(bad(1))? },
            13 => Call::CapRevoke { slot: slot(a[0]).ok_or(bad(1))? },
            14 => Call::CapInfo { slot: slot(a[0]).ok_or(bad(1))? },
            20 => Call::DomainCreate { quota_pages: a[0] },
            21 => Call::DomainDestroy { domain: slot(a[0]).ok_or(bad(1))? },
            22 => Call::DomainWait {
                block: match a[0] {
                    0 => false,
                    1 => true,
                    _ => return Err(bad(1)),
                },
            },
            23 => Call::DomainInfo { domain: slot(a[0]).ok_or(bad(1))? },
            24 => Call::GuestCreate { quota_pages: a[0] },
            30 => Call::MemoryCreate {
                domain: slot(a[0]).ok_or(bad(1))?,
                pages: Some(a[1]).filter(|&p| p > 0 && p <= MEMORY_MAX_PAGES).ok_or(bad(2))?,
            },
            31 => Call::MemoryMap {
                memory: slot(a[0]).ok_or(bad(1))?,
                domain: slot(a[1]).ok_or(bad(2))?,
                va: UserAddr::page_or_zero(a[2]).ok_or(bad(3))?,
                // Every mapping is readable (x86 has no write- or
                // execute-only pages): READ is always asked for, so the
                // capability must have it too.
                rights: rights(a[3])
                    .filter(|r| (Rights::READ | Rights::WRITE | Rights::EXEC).contains(*r))
                    .filter(|r| r.contains(Rights::READ))
                    .filter(|r| !r.contains(Rights::WRITE | Rights::EXEC))
                    .ok_or(bad(4))?,
            },
            32 => Call::MemoryUnmap {
                memory: slot(a[0]).ok_or(bad(1))?,
                domain: slot(a[1]).ok_or(bad(2))?,
                va: UserAddr::page_or_zero(a[2]).ok_or(bad(3))?,
            },
            40 => Call::ThreadCreate {
                domain: slot(a[0]).ok_or(bad(1))?,
                entry: UserAddr::new(a[1]).ok_or(bad(2))?,
                stack: UserAddr::new(a[2]).filter(|s| s.get() % 16 == 0).ok_or(bad(3))?,
                arg: a[3],
                cpu: match a[4] {
                    ANY_CPU => None,
                    c => Some(u16::try_from(c).map_err(|_| bad(5))?),
                },
            },
            41 => {
                let sipi = match a[4] {
                    NO_SIPI => None,
                    v => Some(u8::try_from(v).map_err(|_| bad(5))?),
                };
                // A start-up IPI says where to start: no entry, no argument.
                let fits = |v: u64| v < 1 << 32 && (sipi.is_none() || v == 0);
                Call::VcpuCreate {
                    guest: slot(a[0]).ok_or(bad(1))?,
                    exit: slot(a[1]).ok_or(bad(2))?,
                    entry: Some(a[2]).filter(|&e| fits(e)).ok_or(bad(3))?,
                    arg: Some(a[3]).filter(|&e| fits(e)).ok_or(bad(4))?,
                    sipi,
                    cpu: match a[5] {
                        ANY_CPU => None,
                        c => Some(u16::try_from(c).map_err(|_| bad(6))?),
                    },
                }
            }
            42 => Call::VirqCreate {
                guest: slot(a[0]).ok_or(bad(1))?,
                vector: u8::try_from(a[1]).ok().filter(|&v| v >= 32).ok_or(bad(2))?,
            },
            43 => Call::VirqRaise { virq: slot(a[0]).ok_or(bad(1))? },
            101 => Call::NotificationBind { ntfn: slot(a[0]).ok_or(bad(1))? },
            45 => Call::VcpuInterrupt {
                vcpu: slot(a[0]).ok_or(bad(1))?,
                vector: u8::try_from(a[1]).ok().filter(|&v| v >= 32).ok_or(bad(2))?,
            },
            44 => Call::DoorbellCreate {
                guest: slot(a[0]).ok_or(bad(1))?,
                port: u16::try_from(a[1]).map_err(|_| bad(2))?,
                ntfn: slot(a[2]).ok_or(bad(3))?,
                bits: Some(a[3]).filter(|&b| b != 0).ok_or(bad(4))?,
            },
            50 | 51 => {
                let ports = slot(a[0]).ok_or(bad(1))?;
                let port = u16::try_from(a[1]).map_err(|_| bad(2))?;
                let width = match a[2] {
                    1 => Width::Byte,
                    2 => Width::Word,
                    4 => Width::Dword,
                    _ => return Err(bad(3)),
                };
                if nr == 50 {
                    Call::IoPortRead { ports, port, width }
                } else {
                    let max = match width {
                        Width::Byte => 0xff,
                        Width::Word => 0xffff,
                        Width::Dword => 0xffff_ffff,
                    };
                    let value = Some(a[3]).filter(|&v| v <= max).ok_or(bad(4))? as u32;
                    Call::IoPortWrite { ports, port, width, value }
                }
            }
            52 => {
                let base = u16::try_from(a[1]).map_err(|_| bad(2))?;
                let count =
                    u16::try_from(a[2]).ok().filter(|&c| c > 0 && u32::from(base) + u32::from(c) <= 0x1_0000);
                Call::IoPortsCreate { ports: slot(a[0]).ok_or(bad(1))?, base, count: count.ok_or(bad(3))? }
            }
            60 => Call::IrqWait { irq: slot(a[0]).ok_or(bad(1))? },
            70 => Call::Stats,
            90 => Call::EndpointCreate { domain: slot(a[0]).ok_or(bad(1))? },
            91 => Call::NotificationCreate { domain: slot(a[0]).ok_or(bad(1))? },
            92 => Call::Signal { ntfn: slot(a[0]).ok_or(bad(1))?, bits: a[1] },
            93 => Call::Wait { ntfn: slot(a[0]).ok_or(bad(1))? },
            94 => Call::Poll { ntfn: slot(a[0]).ok_or(bad(1))? },
            95 => Call::IrqBind {
                irq: slot(a[0]).ok_or(bad(1))?,
                ntfn: slot(a[1]).ok_or(bad(2))?,
                bits: Some(a[2]).filter(|&b| b != 0).ok_or(bad(3))?,
            },
            96 => Call::CapMint {
                slot: slot(a[0]).ok_or(bad(1))?,
                rights: rights(a[1]).ok_or(bad(2))?,
                badge: Some(a[2]).filter(|&b| b != 0).ok_or(bad(3))?,
            },
            97 => Call::SchedSet {
                domain: slot(a[0]).ok_or(bad(1))?,
                weight: u16::try_from(a[1]).ok().filter(|&w| w > 0).ok_or(bad(2))?,
                cap_percent: u8::try_from(a[2]).ok().filter(|&c| c <= 100).ok_or(bad(3))?,
            },
            98 => Call::ThreadSetCpu {
                thread: slot(a[0]).ok_or(bad(1))?,
                cpu: u16::try_from(a[1]).map_err(|_| bad(2))?,
            },
            99 => Call::DomainNotify {
                domain: slot(a[0]).ok_or(bad(1))?,
                ntfn: slot(a[1]).ok_or(bad(2))?,
                bits: Some(a[2]).filter(|&b| b != 0).ok_or(bad(3))?,
            },
            100 => Call::TimerSet {
                ntfn: slot(a[0]).ok_or(bad(1))?,
                bits: Some(a[1]).filter(|&b| b != 0).ok_or(bad(2))?,
                delay_us: Some(a[2]).filter(|&d| d <= 1 << 40).ok_or(bad(3))?,
                period_us: Some(a[3]).filter(|&p| p == 0 || (100..=1 << 40).contains(&p)).ok_or(bad(4))?,
            },
            102 => Call::DomainPause {
                domain: slot(a[0]).ok_or(bad(1))?,
                paused: match a[1] {
                    0 => false,
                    1 => true,
                    _ => return Err(bad(2)),
                },
            },
            _ => return Err((Error::UnknownSyscall, 0)),
        };
        Ok(call)
    }

    /// The number and arguments that make this call.
    pub fn encode(&self) -> (u64, [u64; 6]) {
        let s = |c: CapSlot| u64::from(c.0);
        let r = |r: Rights| u64::from(r.bits());
        match *self {
            Call::ConsoleWrite { console, buf } => (1, [s(console), buf.addr.get(), buf.len, 0, 0, 0]),
            Call::Exit { code } => (2, [code, 0, 0, 0, 0, 0]),
            Call::Yield => (3, [0; 6]),
            Call::CapDerive { slot, rights } => (10, [s(slot), r(rights), 0, 0, 0, 0]),
            Call::CapGrant { domain, slot, rights } => (11, [s(domain), s(slot), r(rights), 0, 0, 0]),
            Call::CapDelete { slot } => (12, [s(slot), 0, 0, 0, 0, 0]),
            Call::CapRevoke { slot } => (13, [s(slot), 0, 0, 0, 0, 0]),
            Call::CapInfo { slot } => (14, [s(slot), 0, 0, 0, 0, 0]),
            Call::DomainCreate { quota_pages } => (20, [quota_pages, 0, 0, 0, 0, 0]),
            Call::DomainDestroy { domain } => (21, [s(domain), 0, 0, 0, 0, 0]),
            Call::DomainWait { block } => (22, [u64::from(block), 0, 0, 0, 0, 0]),
            Call::DomainInfo { domain } => (23, [s(domain), 0, 0, 0, 0, 0]),
            Call::GuestCreate { quota_pages } => (24, [quota_pages, 0, 0, 0, 0, 0]),
            Call::VcpuCreate { guest, exit, entry, arg, sipi, cpu } => (
                41,
                [
                    s(guest),
                    s(exit),
                    entry,
                    arg,
                    sipi.map_or(NO_SIPI, u64::from),
                    cpu.map_or(ANY_CPU, u64::from),
                ],
            ),
            Call::VirqCreate { guest, vector } => (42, [s(guest), u64::from(vector), 0, 0, 0, 0]),
            Call::VirqRaise { virq } => (43, [s(virq), 0, 0, 0, 0, 0]),
            Call::VcpuInterrupt { vcpu, vector } => (45, [s(vcpu), u64::from(vector), 0, 0, 0, 0]),
            Call::NotificationBind { ntfn } => (101, [s(ntfn), 0, 0, 0, 0, 0]),
            Call::DoorbellCreate { guest, port, ntfn, bits } => {
                (44, [s(guest), u64::from(port), s(ntfn), bits, 0, 0])
            }
            Call::MemoryCreate { domain, pages } => (30, [s(domain), pages, 0, 0, 0, 0]),
            Call::MemoryMap { memory, domain, va, rights } => {
                (31, [s(memory), s(domain), va.get(), r(rights), 0, 0])
            }
            Call::MemoryUnmap { memory, domain, va } => (32, [s(memory), s(domain), va.get(), 0, 0, 0]),
            Call::ThreadCreate { domain, entry, stack, arg, cpu } => {
                (40, [s(domain), entry.get(), stack.get(), arg, cpu.map_or(ANY_CPU, u64::from), 0])
            }
            Call::IoPortRead { ports, port, width } => {
                (50, [s(ports), u64::from(port), width as u64, 0, 0, 0])
            }
            Call::IoPortWrite { ports, port, width, value } => {
                (51, [s(ports), u64::from(port), width as u64, u64::from(value), 0, 0])
            }
            Call::IoPortsCreate { ports, base, count } => {
                (52, [s(ports), u64::from(base), u64::from(count), 0, 0, 0])
            }
            Call::IrqWait { irq } => (60, [s(irq), 0, 0, 0, 0, 0]),
            Call::Stats => (70, [0; 6]),
            Call::EndpointCreate { domain } => (90, [s(domain), 0, 0, 0, 0, 0]),
            Call::NotificationCreate { domain } => (91, [s(domain), 0, 0, 0, 0, 0]),
            Call::Signal { ntfn, bits } => (92, [s(ntfn), bits, 0, 0, 0, 0]),
            Call::Wait { ntfn } => (93, [s(ntfn), 0, 0, 0, 0, 0]),
            Call::Poll { ntfn } => (94, [s(ntfn), 0, 0, 0, 0, 0]),
            Call::IrqBind { irq, ntfn, bits } => (95, [s(irq), s(ntfn), bits, 0, 0, 0]),
            Call::CapMint { slot, rights, badge } => (96, [s(slot), r(rights), badge, 0, 0, 0]),
            Call::SchedSet { domain, weight, cap_percent } => {
                (97, [s(domain), u64::from(weight), u64::from(cap_percent), 0, 0, 0])
            }
            Call::ThreadSetCpu { thread, cpu } => (98, [s(thread), u64::from(cpu), 0, 0, 0, 0]),
            Call::DomainNotify { domain, ntfn, bits } => (99, [s(domain), s(ntfn), bits, 0, 0, 0]),
            Call::TimerSet { ntfn, bits, delay_us, period_us } => {
                (100, [s(ntfn), bits, delay_us, period_us, 0, 0])
            }
            Call::DomainPause { domain, paused } => (102, [s(domain), u64::from(paused), 0, 0, 0, 0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bad_arguments_name_the_argument() {
        assert_eq!(Call::decode(1, [1, 0, 10, 0, 0, 0]), Err((Error::InvalidArgument, 2)), "null page");
        assert_eq!(Call::decode(1, [1, 0x1000, 5000, 0, 0, 0]), Err((Error::InvalidArgument, 2)), "too long");
        assert_eq!(
            Call::decode(1, [1, USER_END - 4, 8, 0, 0, 0]),
            Err((Error::InvalidArgument, 2)),
            "crosses"
        );
        assert_eq!(Call::decode(1, [1, u64::MAX - 2, 8, 0, 0, 0]), Err((Error::InvalidArgument, 2)), "wraps");
        assert_eq!(Call::decode(10, [1 << 40, 0, 0, 0, 0, 0]), Err((Error::InvalidArgument, 1)));
        assert_eq!(Call::decode(10, [1, 1 << 9, 0, 0, 0, 0]), Err((Error::InvalidArgument, 2)));
        assert_eq!(Call::decode(30, [1, 0, 0, 0, 0, 0]), Err((Error::InvalidArgument, 2)));
        assert_eq!(Call::decode(52, [1, 0xfff0, 0x11, 0, 0, 0]), Err((Error::InvalidArgument, 3)));
        assert_eq!(Call::decode(52, [1, 0x3f8, 0, 0, 0, 0]), Err((Error::InvalidArgument, 3)));
        assert_eq!(Call::decode(31, [1, 2, 0x1001, 1, 0, 0]), Err((Error::InvalidArgument, 3)));
        assert_eq!(
            Call::decode(31, [1, 2, 0xffff_8000_0000_0000, 1, 0, 0]),
            Err((Error::InvalidArgument, 3))
        );
        assert_eq!(Call::decode(31, [1, 2, 0x1000, 0b111, 0, 0]), Err((Error::InvalidArgument, 4)), "W+X");
        assert_eq!(Call::decode(31, [1, 2, 0x1000, 0, 0, 0]), Err((Error::InvalidArgument, 4)), "no rights");
        assert_eq!(Call::decode(31, [1, 2, 0x1000, 0b10, 0, 0]), Err((Error::InvalidArgument, 4)), "no READ");
        assert_eq!(
            Call::decode(31, [1, 2, 0x1000, 0b100, 0, 0]),
            Err((Error::InvalidArgument, 4)),
            "EXEC only"
        );
        assert!(matches!(Call::decode(31, [1, 2, 0x1000, 0b101, 0, 0]), Ok(Call::MemoryMap { .. })), "R+X");
        assert_eq!(Call::decode(96, [1, 2, 0, 0, 0, 0]), Err((Error::InvalidArgument, 3)), "badge 0");
        assert_eq!(Call::decode(31, [1, 2, 0x1000, 0b1000, 0, 0]), Err((Error::InvalidArgument, 4)), "GRANT");
        assert_eq!(Call::decode(40, [1, 0x1000, 0x2008, 0, 0, 0]), Err((Error::InvalidArgument, 3)));
        assert_eq!(
            Call::decode(40, [1, 0x1000, 0x2000, 0, 1 << 16, 0]),
            Err((Error::InvalidArgument, 5)),
            "cpu"
        );
        assert!(matches!(
            Call::decode(40, [1, 0x1000, 0x2000, 0, ANY_CPU, 0]),
            Ok(Call::ThreadCreate { cpu: None, .. })
        ));
        assert!(matches!(
            Call::decode(40, [1, 0x1000, 0x2000, 0, 1, 0]),
            Ok(Call::ThreadCreate { cpu: Some(1), .. })
        ));
        assert_eq!(
            Call::decode(45, [1, 31, 0, 0, 0, 0]),
            Err((Error::InvalidArgument, 2)),
            "an exception vector"
        );
        assert_eq!(Call::decode(45, [1, 0x140, 0, 0, 0, 0]), Err((Error::InvalidArgument, 2)));
        assert_eq!(
            Call::decode(45, [1, 0x40, 0, 0, 0, 0]),
            Ok(Call::VcpuInterrupt { vcpu: CapSlot(1), vector: 0x40 })
        );
        let vcpu = |a: [u64; 6]| Call::decode(41, a);
        assert_eq!(
            vcpu([1, 2, 0x10_0000, 0x9000, NO_SIPI, ANY_CPU]),
            Ok(Call::VcpuCreate {
                guest: CapSlot(1),
                exit: CapSlot(2),
                entry: 0x10_0000,
                arg: 0x9000,
                sipi: None,
                cpu: None
            })
        );
        assert!(matches!(vcpu([1, 2, 0, 0, 8, 1]), Ok(Call::VcpuCreate { sipi: Some(8), cpu: Some(1), .. })));
        assert_eq!(vcpu([1, 2, 0x10_0000, 0, 8, 1]), Err((Error::InvalidArgument, 3)), "a SIPI has no entry");
        assert_eq!(vcpu([1, 2, 0, 7, 8, 1]), Err((Error::InvalidArgument, 4)), "nor an argument");
        assert_eq!(vcpu([1, 2, 0, 0, 0x100, 1]), Err((Error::InvalidArgument, 5)), "vectors are bytes");
        assert_eq!(vcpu([1, 2, 0, 0, 8, 1 << 16]), Err((Error::InvalidArgument, 6)), "cpu");
        assert_eq!(vcpu([1, 2, 1 << 32, 0, NO_SIPI, 0]), Err((Error::InvalidArgument, 3)));
        assert_eq!(Call::decode(51, [1, 0x3f8, 3, 0, 0, 0]), Err((Error::InvalidArgument, 3)));
        assert_eq!(Call::decode(51, [1, 0x3f8, 1, 0x100, 0, 0]), Err((Error::InvalidArgument, 4)));
        assert_eq!(Call::decode(50, [1, 0x10000, 1, 0, 0, 0]), Err((Error::InvalidArgument, 2)));
        assert_eq!(Call::decode(22, [2, 0, 0, 0, 0, 0]), Err((Error::InvalidArgument, 1)));
        assert_eq!(Call::decode(97, [1, 0, 0, 0, 0, 0]), Err((Error::InvalidArgument, 2)), "weight 0");
        assert_eq!(Call::decode(97, [1, 1, 101, 0, 0, 0]), Err((Error::InvalidArgument, 3)), "cap > 100%");
        assert_eq!(Call::decode(95, [1, 2, 0, 0, 0, 0]), Err((Error::InvalidArgument, 3)), "no bits");
        assert_eq!(
            Call::decode(102, [1, 2, 0, 0, 0, 0]),
            Err((Error::InvalidArgument, 2)),
            "paused is 0 or 1"
        );
        assert_eq!(
            Call::decode(102, [1, 1, 0, 0, 0, 0]),
            Ok(Call::DomainPause { domain: CapSlot(1), paused: true })
        );
        assert_eq!(Call::decode(0, [0; 6]), Err((Error::UnknownSyscall, 0)));
        assert_eq!(Call::decode(999, [0; 6]), Err((Error::UnknownSyscall, 0)));
    }

    /// `Nr::ALL` lists every number `decode` knows, and no other: a syscall
    /// added without it would be missed by `hostile`'s fuzzer.
    #[test]
    fn all_lists_every_syscall() {
        let listed: Vec<u64> = Nr::ALL.iter().map(|&n| n as u64).collect();
        assert!(listed.windows(2).all(|w| w[0] < w[1]), "in number order, once each");
        for nr in 0..1024u64 {
            // Some arguments decode for every call but for no unknown number.
            let known = [[0; 6], [1, 0x1000, 0x2000, 1, 1, 1], [1, 1, 1, 1, NO_SIPI, ANY_CPU]]
                .iter()
                .any(|a| Call::decode(nr, *a) != Err((Error::UnknownSyscall, 0)));
            assert_eq!(known, listed.contains(&nr), "syscall {nr}");
        }
    }

    proptest! {
        /// Whatever a domain puts in the registers, decoding answers, and
        /// what decodes re-encodes to a call that decodes the same.
        #[test]
        fn decode_is_total_and_round_trips(nr in 0u64..110, a in any::<[u64; 6]>()) {
            if let Ok(call) = Call::decode(nr, a) {
                let (nr2, a2) = call.encode();
                prop_assert_eq!(nr2, nr);
                prop_assert_eq!(Call::decode(nr2, a2), Ok(call));
            }
        }

        #[test]
        fn decoded_buffers_stay_in_user_space(addr in any::<u64>(), len in any::<u64>()) {
            if let Ok(Call::ConsoleWrite { buf, .. }) = Call::decode(1, [0, addr, len, 0, 0, 0]) {
                prop_assert!(buf.addr.get() >= USER_MIN);
                prop_assert!(buf.addr.get() + buf.len <= USER_END);
            }
        }
    }
}
