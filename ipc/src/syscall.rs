//! The syscalls: numbers, the registers they use, and their decoding.
//!
//! Registers (System V order, with r10 for rcx, which `syscall` clobbers):
//! `rax` = number; `rdi, rsi, rdx, r10, r8, r9` = arguments 0..6.
//! On return `rax` = 0 or an [`Error`] code, and `rdi, rsi, rdx, r10` carry
//! results; on `InvalidArgument`, `rdi` = the 1-based index of the argument.
//!
//! A memory object, port range, endpoint, notification or VirqLine (whose
//! owner is its guest) is kept in kernel
//! memory paid for from its owner's memory quota (a page for every few of
//! one kind, taken when the owner's pages of that kind are full, given back
//! when one empties): past the quota the verb fails with `QuotaExceeded`.
//! Every verb that makes another kernel object (a domain, guest, thread,
//! vCPU, doorbell or timer) charges it to an *account*: the
//! caller's (or the owner's) ancestor that the root domain supervises, so a
//! domain and all it made share one. An account holds at most a quarter of
//! the kernel's pool of each such kind; past that the verb fails with
//! `QuotaExceeded`, and an object destroyed (with its domain, or a timer
//! cancelled) gives its place back. The root is limited by the pools and
//! its quota alone (`OutOfObjects`, `QuotaExceeded`).
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

crate::wire_enum! {
    /// Port I/O access width; on the wire, its size in bytes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Width: u8 {
        Byte = 1,
        Word = 2,
        Dword = 4,
    }
}

impl Width {
    /// The largest value a port of this width takes.
    pub const fn max(self) -> u32 {
        match self {
            Width::Byte => 0xff,
            Width::Word => 0xffff,
            Width::Dword => 0xffff_ffff,
        }
    }
}

/// The syscalls, each written once: its name, its number, and each field
/// with the argument registers that carry it (0-based, `rdi` first) and
/// the [`Arg`] that checks and writes it. From this one table come [`Nr`]
/// (with `Nr::ALL` and `Nr::from_u64`), [`Call`], [`Call::decode`] and
/// [`Call::encode`], so a number cannot drift between the kernel's half and
/// the user's.
///
/// Fields are decoded in the order written, and the first that fails is
/// the one reported (its first register's 1-based index); a field's `Arg`
/// may use the fields before it (a port value is checked against the
/// width before it). Registers no field names are ignored by `decode` and
/// zero from `encode`. The table is in number order (a test checks it).
macro_rules! syscalls {
    ($(
        $(#[$doc:meta])*
        $name:ident = $nr:literal $({
            $($field:ident @ $reg:literal $(, $more:literal)* : $ty:ty = $arg:expr),* $(,)?
        })?
    ),* $(,)?) => {
        crate::wire_enum! {
            /// Syscall numbers (the message verbs are in [`crate::msg::nr`]).
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub enum Nr: u64 {
                $($(#[$doc])* $name = $nr,)*
            }
        }

        /// A decoded, checked syscall.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Call {
            $($(#[$doc])* $name $({ $($field: $ty),* })?,)*
        }

        impl Call {
            /// Checks a syscall's number and arguments. On failure: the error
            /// and, for `InvalidArgument`, which argument (1-based).
            pub fn decode(nr: u64, a: [u64; 6]) -> Result<Call, (Error, u64)> {
                Ok(match nr {
                    $($nr => {
                        $($(let $field: $ty = field($arg, [a[$reg] $(, a[$more])*], $reg + 1)?;)*)?
                        Call::$name { $($($field),*)? }
                    })*
                    _ => return Err((Error::UnknownSyscall, 0)),
                })
            }

            /// The number and arguments that make this call.
            pub fn encode(&self) -> (u64, [u64; 6]) {
                #[allow(unused_mut)]
                let mut w = [0u64; 6];
                match *self {
                    $(Call::$name { $($($field),*)? } => {
                        $($(put(&mut w, [$reg $(, $more)*], $arg, $field);)*)?
                        (Nr::$name as u64, w)
                    })*
                }
            }

            /// This call's number.
            pub const fn nr(&self) -> Nr {
                match self {
                    $(Call::$name { .. } => Nr::$name,)*
                }
            }
        }
    };
}

syscalls! {
    /// Writes `buf` to the debug console (`console` needs WRITE).
    ConsoleWrite = 1 { console @ 0: CapSlot = Slot, buf @ 1, 2: UserBuf = Buf(CONSOLE_MAX) },
    /// Ends the calling domain; its supervisor learns `code`.
    Exit = 2 { code @ 0: u64 = Word },
    /// Gives up the rest of the time slice.
    Yield = 3,
    /// A copy of `slot` in the caller's table with `rights` (a subset).
    /// Returns the new slot.
    CapDerive = 10 { slot @ 0: CapSlot = Slot, rights @ 1: Rights = AnyRights },
    /// A copy of `slot` (which needs GRANT) with `rights` into the table of
    /// `domain` (which needs CONTROL). Returns the slot there.
    CapGrant = 11 { domain @ 0: CapSlot = Slot, slot @ 1: CapSlot = Slot, rights @ 2: Rights = AnyRights },
    /// Empties `slot`.
    CapDelete = 12 { slot @ 0: CapSlot = Slot },
    /// Invalidates every copy granted from the object of `slot` (which needs
    /// REVOKE), and unmaps what they mapped; `slot` itself stays valid.
    CapRevoke = 13 { slot @ 0: CapSlot = Slot },
    /// The type and rights of `slot`, and its size: bytes for memory, ports
    /// for a port range, 0 otherwise.
    CapInfo = 14 { slot @ 0: CapSlot = Slot },
    /// A new, empty domain supervised by the caller, with `quota_pages` of
    /// the caller's quota moved to it. Returns its slot and its id.
    DomainCreate = 20 { quota_pages @ 0: u64 = Word },
    /// Destroys a domain the caller supervises and everything it owns; its
    /// quota returns to the caller.
    DomainDestroy = 21 { domain @ 0: CapSlot = Slot },
    /// Waits for an event of a supervised domain (see [`crate::event`]).
    /// Returns `WouldBlock` when there is none and `block` is false, or when
    /// the caller supervises no domain (the wait could never end).
    DomainWait = 22 { block @ 0: bool = Flag },
    /// What the kernel knows of a domain the caller controls: [CPU time used
    /// in microseconds, weight, cap percent, state]; state's bit 0 is 1 if
    /// it runs, its bits 63:1 count the requests of the devices it holds
    /// that the IOMMU blocked (saturating).
    DomainInfo = 23 { domain @ 0: CapSlot = Slot },
    /// A new, empty guest (a virtual machine) supervised by the caller, with
    /// `quota_pages` of the caller's quota. Memory mapped into it lands in its
    /// second-level page tables (EPT or NPT): `READ` maps readable and
    /// executable (a guest runs code from its RAM), `WRITE` adds writable.
    /// Returns its slot and id. `NotSupported` without VT-x or AMD-V.
    GuestCreate = 24 { quota_pages @ 0: u64 = Word },
    /// How many exits of each reason a guest's vCPUs made, the guest's
    /// domain capability needing CONTROL: the counts of reasons `first`
    /// to `first + 3` (`ipc::vcpu::ExitReason` numbers; 0 past the last),
    /// summed over its vCPUs as they are (a destroyed vCPU's go with it).
    /// Every exit is counted, those the kernel answers itself (an idle
    /// `HLT`, a doorbell's `OUT`) too. `WrongType` for a native domain.
    GuestExits = 25 { guest @ 0: CapSlot = Slot, first @ 1: u64 = Checked(crate::vcpu::ExitReason::known) },
    /// A new memory object of `pages` zeroed, physically contiguous pages,
    /// owned by and charged to `domain` (the caller's own or one it
    /// controls); destroyed with that domain.
    MemoryCreate = 30 {
        domain @ 0: CapSlot = Slot,
        pages @ 1: u64 = Checked(|p| p > 0 && p <= MEMORY_MAX_PAGES),
    },
    /// Maps all of `memory` into `domain` at `va` with `rights`: READ and
    /// any of WRITE and EXEC (never both), each of which the memory
    /// capability must have.
    MemoryMap = 31 {
        memory @ 0: CapSlot = Slot,
        domain @ 1: CapSlot = Slot,
        va @ 2: UserAddr = PageOrZero,
        rights @ 3: Rights = MapRights,
    },
    /// Removes the mapping of `memory` at `va` from `domain`.
    MemoryUnmap = 32 { memory @ 0: CapSlot = Slot, domain @ 1: CapSlot = Slot, va @ 2: UserAddr = PageOrZero },
    /// A thread in `domain` starting at `entry` with `stack` and `arg` in rdi,
    /// on CPU `cpu` (`None`: the least loaded one). Placing it at creation,
    /// not after, means it never runs anywhere else (and a vCPU it makes
    /// lands on that CPU too). `WrongType` for a guest, which runs vCPUs
    /// only (`VcpuCreate`).
    ThreadCreate = 40 {
        domain @ 0: CapSlot = Slot,
        entry @ 1: UserAddr = Addr,
        stack @ 2: UserAddr = Stack,
        arg @ 3: u64 = Word,
        cpu @ 4: Option<u16> = OrNone(ANY_CPU),
    },
    /// A virtual CPU of `guest` (CONTROL). With `sipi` None it starts in
    /// 32-bit protected mode without paging at `entry` with ebx = `arg` and
    /// eax = 0x2BADB002 (the Multiboot hand-off); with `sipi` = Some(v) it
    /// starts as an application processor does after INIT and a start-up
    /// IPI of vector v: in real mode at v:0000, that is 0x1000·v (`entry`
    /// and `arg` must be 0). It runs on `cpu` (None: the caller's), where it
    /// stays once started. Its exits are calls on endpoint `exit` (WRITE;
    /// see [`crate::vcpu`]). Returns its slot.
    VcpuCreate = 41 {
        sipi @ 4: Option<u8> = OrNone(NO_SIPI),
        guest @ 0: CapSlot = Slot,
        exit @ 1: CapSlot = Slot,
        entry @ 2: u64 = StartWord(sipi),
        arg @ 3: u64 = StartWord(sipi),
        cpu @ 5: Option<u16> = OrNone(ANY_CPU),
    },
    /// The right to inject interrupt `vector` (32..=255) into `guest`
    /// (CONTROL): a VirqLine capability (WRITE|GRANT), to hand to whoever
    /// raises it (a device backend).
    VirqCreate = 42 { guest @ 0: CapSlot = Slot, vector @ 1: u8 = Vector },
    /// Raises the line: the vector is delivered to the guest's first vCPU as
    /// soon as it can take interrupts (needs WRITE).
    VirqRaise = 43 { virq @ 0: CapSlot = Slot },
    /// A doorbell: the guest's `OUT` to `port` signals `bits` on `ntfn`
    /// without an exit reaching the VMM (the ioeventfd). Returns its slot.
    DoorbellCreate = 44 {
        guest @ 0: CapSlot = Slot,
        port @ 1: u16 = Narrow,
        ntfn @ 2: CapSlot = Slot,
        bits @ 3: u64 = NonZero,
    },
    /// Raises interrupt `vector` (32..=255) on the one vCPU `vcpu` names
    /// (its thread capability, CONTROL): delivered as soon as that vCPU can
    /// take it, kicking its CPU if it runs a guest there (the interprocessor
    /// interrupts a VMM's local APIC model sends).
    VcpuInterrupt = 45 { vcpu @ 0: CapSlot = Slot, vector @ 1: u8 = Vector },
    /// Copies the state of the vCPU `vcpu` names (its thread capability,
    /// CONTROL) into the caller's buffer at `buf`
    /// (`ipc::vstate::STATE_BYTES` long, user-writable; see
    /// [`crate::vstate::State`]), with the writes not yet entered
    /// (`VcpuStateWrite`) applied. The vCPU must be in an exit: its call to
    /// the VMM queued or waiting for the reply; else `Busy` (running, idle,
    /// not yet run, or stopped by a failed entry, after which its hardware
    /// state may hold the host's). On VT-x a vCPU's VMCS is its CPU's to
    /// read: from a thread on another CPU, `Busy` too. `BadAddress` if the
    /// buffer is not mapped writable, and nothing is written.
    VcpuStateRead = 46 { vcpu @ 0: CapSlot = Slot, buf @ 1: UserBuf = Fixed(crate::vstate::STATE_BYTES) },
    /// Changes the state of the vCPU `vcpu` names (CONTROL) as the
    /// [`crate::vstate::Write`] in the caller's buffer at `buf`
    /// (`ipc::vstate::WRITE_BYTES` long) asks: general registers, rip,
    /// rflags. The vCPU must be in an exit, or not yet run (a VMM sets its
    /// first registers), else `Busy`. A value the buffer holds that the
    /// write refuses is `Malformed` (not `InvalidArgument`: it is no
    /// argument); nothing changes then. Applied at the vCPU's next entry,
    /// before the reply to its exit (whose `ADVANCE` then moves on from a
    /// rip written here); several writes before one entry add up.
    VcpuStateWrite = 47 { vcpu @ 0: CapSlot = Slot, buf @ 1: UserBuf = Fixed(crate::vstate::WRITE_BYTES) },
    /// Reads a port of the range `ports` covers.
    IoPortRead = 50 { ports @ 0: CapSlot = Slot, port @ 1: u16 = Narrow, width @ 2: Width = PortWidth },
    /// Writes a port of the range `ports` covers.
    IoPortWrite = 51 {
        ports @ 0: CapSlot = Slot,
        port @ 1: u16 = Narrow,
        width @ 2: Width = PortWidth,
        value @ 3: u32 = PortValue(width),
    },
    /// A new port range `base..base + count` inside the one `ports` covers,
    /// owned by the caller, with at most the rights of `ports`.
    IoPortsCreate = 52 { base @ 1: u16 = Narrow, ports @ 0: CapSlot = Slot, count @ 2: u16 = PortCount(base) },
    /// Acknowledges the last interrupt of the line of `irq` (unmasks it) and
    /// blocks until the next, or returns at once if it fired meanwhile. The
    /// line stays masked from an interrupt until this call. For a line bound
    /// to a notification (`IrqBind`) it only acknowledges, without waiting.
    IrqWait = 60 { irq @ 0: CapSlot = Slot },
    /// Kernel-wide counts: free frames, objects in use, the caller's quota.
    Stats = 70,
    /// A new endpoint owned by `domain` (see [`crate::msg`]). Returns its slot.
    EndpointCreate = 90 { domain @ 0: CapSlot = Slot },
    /// A new notification (a word of signal bits) owned by `domain`.
    NotificationCreate = 91 { domain @ 0: CapSlot = Slot },
    /// ORs `bits` into the notification (needs WRITE); wakes its waiter.
    Signal = 92 { ntfn @ 0: CapSlot = Slot, bits @ 1: u64 = Word },
    /// Waits until the word is non-zero (needs READ); returns and clears it.
    Wait = 93 { ntfn @ 0: CapSlot = Slot },
    /// Returns and clears the word without waiting (needs READ).
    Poll = 94 { ntfn @ 0: CapSlot = Slot },
    /// Delivers the interrupt line of `irq` as `bits` on `ntfn` instead of to
    /// `IrqWait`; after handling each interrupt, acknowledge it with
    /// `IrqWait` (which then returns at once).
    IrqBind = 95 { irq @ 0: CapSlot = Slot, ntfn @ 1: CapSlot = Slot, bits @ 2: u64 = NonZero },
    /// A copy of `slot` (an unbadged endpoint or notification with CONTROL)
    /// with `rights` (less CONTROL) and `badge` (not 0, which means
    /// unbadged), which the receiver sees with every message sent through
    /// it. A badged copy can never be badged again.
    CapMint = 96 { slot @ 0: CapSlot = Slot, rights @ 1: Rights = AnyRights, badge @ 2: u64 = NonZero },
    /// Sets a domain's CPU weight (1..=65535, default 256) and cap (percent
    /// of one CPU, 1..=100, or 0 for none). Needs CONTROL.
    SchedSet = 97 {
        domain @ 0: CapSlot = Slot,
        weight @ 1: u16 = Fits(|w: u16| w > 0),
        cap_percent @ 2: u8 = Fits(|c: u8| c <= 100),
    },
    /// Moves a thread to CPU `cpu` (needs CONTROL on the thread).
    ThreadSetCpu = 98 { thread @ 0: CapSlot = Slot, cpu @ 1: u16 = Narrow },
    /// Signals `bits` on `ntfn` when supervised `domain` exits or faults (the
    /// event itself is then read with a non-blocking `DomainWait`).
    DomainNotify = 99 { domain @ 0: CapSlot = Slot, ntfn @ 1: CapSlot = Slot, bits @ 2: u64 = NonZero },
    /// Signals `bits` on `ntfn` (WRITE) after `delay_us` microseconds, then
    /// every `period_us` if that is not 0. Setting the same notification and
    /// bits again replaces the timer; `delay_us` = 0 cancels it. Timers are
    /// charged to the caller's account (see above) and end with the caller.
    TimerSet = 100 {
        ntfn @ 0: CapSlot = Slot,
        bits @ 1: u64 = NonZero,
        delay_us @ 2: u64 = Checked(|d| d <= TIMER_MAX_US),
        period_us @ 3: u64 = Checked(|p| p == 0 || (TIMER_MIN_PERIOD_US..=TIMER_MAX_US).contains(&p)),
    },
    /// Binds notification `ntfn` (READ) to the calling thread: while it
    /// receives on any endpoint, a signal ends the receive with the word
    /// (`ipc::msg::NOTIFIED`); a word already signalled is returned by the
    /// next receive, before any call. One thread per notification, one
    /// notification per thread (a new bind replaces the thread's old one).
    NotificationBind = 101 { ntfn @ 0: CapSlot = Slot },
    /// Pauses (`paused`) or resumes `domain` (CONTROL) and every domain
    /// below it (a VMM and its guest), which the caller must be above: its
    /// supervisor, or its supervisor's, and so on. A paused domain's threads
    /// and vCPUs are not run; one running stops at its CPU's next tick (the
    /// CPU is kicked at once). Calls, signals and timers still reach it and
    /// wait.
    DomainPause = 102 { domain @ 0: CapSlot = Slot, paused @ 1: bool = Flag },
    /// A Device capability, in the caller's table, for the PCI function
    /// `function` (bus << 8 | device << 3 | function, segment 0), made
    /// from `pci`, the root's capability to the whole segment (CONTROL),
    /// owned by `domain` (CONTROL) and paid for from its quota: destroyed
    /// with it, bus mastering off first. `NotSupported` if nothing answers
    /// there or it is no type 0 function (a bridge); `Busy` if a Device
    /// object for that function exists already: a function has one
    /// holder. `dma`: its holder may turn on bus mastering (while no IOMMU
    /// confines DMA, only for what the system file says `unconfined_dma`).
    /// Bus mastering is off when it is made.
    DeviceCreate = 110 {
        pci @ 0: CapSlot = Slot,
        domain @ 1: CapSlot = Slot,
        function @ 2: u16 = Narrow,
        dma @ 3: bool = Flag,
    },
    /// Reads `width` bytes at `offset` (below 4096, aligned to the width)
    /// of the configuration space of the function `dev` names (READ).
    DeviceConfigRead = 111 { dev @ 0: CapSlot = Slot, width @ 1: Width = PortWidth, offset @ 2: u16 = ConfigOffset(width) },
    /// Writes `value` there (WRITE), where that is the holder's to write:
    /// the command register (bus mastering only if the device was made
    /// with `dma`; else that bit is written 0), the status register,
    /// cache line size, latency timer and interrupt line, and the bodies of
    /// vendor-specific capabilities (virtio's); nothing else (the BARs,
    /// the expansion ROM, MSI and MSI-X, the PCIe and power capabilities,
    /// extended space are the kernel's): `InsufficientRights` then, and
    /// nothing is written.
    DeviceConfigWrite = 112 {
        dev @ 0: CapSlot = Slot,
        width @ 1: Width = PortWidth,
        offset @ 2: u16 = ConfigOffset(width),
        value @ 3: u32 = PortValue(width),
    },
    /// Maps memory BAR `bar` (0..6; a 64-bit BAR by its lower number) of
    /// the function `dev` names (READ and WRITE) into the caller's own
    /// address space at `va`: writable, not executable, uncached (device
    /// registers). Only the Device's owner, its holder, may map it (so no
    /// mapping outlives the Device); where the firmware placed the BAR,
    /// which nobody may move. The pages that hold the MSI-X table or its
    /// pending bits are the kernel's and left unmapped (a hole). Returns
    /// the BAR's size in bytes. `NotSupported`: no such BAR, or an I/O
    /// BAR (`DevicePorts`); `Misaligned`: not whole pages;
    /// `BadAddress`: it lies over memory the firmware's map names (RAM,
    /// the kernel's, ACPI's, reserved) or the interrupt window
    /// (0xFEC0_0000..0xFF00_0000), and nothing is mapped. Mappings last as
    /// long as the caller.
    DeviceMap = 113 { dev @ 0: CapSlot = Slot, bar @ 1: u8 = Fits(|b: u8| b < 6), va @ 2: UserAddr = Page },
    /// An IoPorts capability (READ|WRITE) for I/O BAR `bar` of the
    /// function `dev` names (READ and WRITE), owned by the caller, who
    /// must be the Device's owner. `NotSupported`: no such BAR, or a
    /// memory BAR; `BadAddress`: it reaches below port 0x1000 (the ISA
    /// ports, the kernel's own devices among them). Returns its slot.
    DevicePorts = 114 { dev @ 0: CapSlot = Slot, bar @ 1: u8 = Fits(|b: u8| b < 6) },
    /// Delivers the function's MSI-X vector `entry` (an index into its
    /// MSI-X table) as `bits` on `ntfn` (WRITE): the kernel picks a free
    /// interrupt vector, writes the table's entry (the holder may not:
    /// its page is never mapped, the capability never writable) and turns
    /// MSI-X on. `dev` needs READ and WRITE, and the caller must be its
    /// owner. `NotSupported`: the function has no MSI-X, `entry` is past
    /// its table, or the table lies where no BAR may; `Busy`: the entry is
    /// bound already; `OutOfObjects`: no vector is free. The interrupt is
    /// an edge: each one signals once. Unbound, masked and MSI-X off with
    /// the Device.
    DeviceIrqBind = 115 {
        dev @ 0: CapSlot = Slot,
        entry @ 1: u16 = Fits(|e: u16| e < 2048),
        ntfn @ 2: CapSlot = Slot,
        bits @ 3: u64 = NonZero,
    },
    /// The device address of `memory` (WRITE) for the function `dev` names
    /// (READ and WRITE, made with `dma`, else `InsufficientRights`): where
    /// the device reaches its first byte (the rest follows, contiguous).
    /// The memory must be the caller's own and the caller the Device's
    /// owner, so that the memory is freed only after the device's DMA
    /// has stopped (the Device goes first when its owner dies). While no
    /// IOMMU is programmed the address is the physical one and the device
    /// reaches all memory (`unconfined_dma`); with one, only what was
    /// given here. Returns the address and the bytes.
    DeviceDma = 116 { dev @ 0: CapSlot = Slot, memory @ 1: CapSlot = Slot },
}

impl Nr {
    /// The calls whose first result, on success, is a new slot in the
    /// caller's own table. (`CapGrant`'s is in the receiving domain's.)
    pub const MAKE_SLOT: [Nr; 14] = [
        Nr::DeviceCreate,
        Nr::DevicePorts,
        Nr::CapDerive,
        Nr::CapMint,
        Nr::DomainCreate,
        Nr::GuestCreate,
        Nr::MemoryCreate,
        Nr::ThreadCreate,
        Nr::VcpuCreate,
        Nr::VirqCreate,
        Nr::DoorbellCreate,
        Nr::IoPortsCreate,
        Nr::EndpointCreate,
        Nr::NotificationCreate,
    ];
}

/// The longest timer delay or period (about 12.7 days).
const TIMER_MAX_US: u64 = 1 << 40;
/// The shortest timer period (a shorter one is refused): a timer fires
/// with an interrupt of its own when it is due, so this bounds the
/// interrupts one timer costs to 10,000 a second.
pub const TIMER_MIN_PERIOD_US: u64 = 100;

/// How one field of a call travels in `N` argument registers: what
/// `decode` accepts there (`None`: the argument is invalid), and what
/// `encode` puts there. `encode` of a value `decode` gave back yields
/// registers that decode to the same value (the tests check every call).
trait Arg<T, const N: usize> {
    fn decode(&self, w: [u64; N]) -> Option<T>;
    fn encode(&self, v: T) -> [u64; N];
}

/// Decodes a field from its registers; `reg` names the first of them.
#[inline(always)]
fn field<T, const N: usize>(arg: impl Arg<T, N>, w: [u64; N], reg: u64) -> Result<T, (Error, u64)> {
    arg.decode(w).ok_or((Error::InvalidArgument, reg))
}

/// Writes a field into registers `at`.
#[inline(always)]
fn put<T, const N: usize>(w: &mut [u64; 6], at: [usize; N], arg: impl Arg<T, N>, v: T) {
    for (i, x) in at.into_iter().zip(arg.encode(v)) {
        w[i] = x;
    }
}

/// A capability slot: any 32-bit value (the kernel checks it in the table).
struct Slot;
impl Arg<CapSlot, 1> for Slot {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<CapSlot> {
        u32::try_from(w).ok().map(CapSlot)
    }
    fn encode(&self, v: CapSlot) -> [u64; 1] {
        [u64::from(v.0)]
    }
}

/// Rights, refusing unknown bits.
struct AnyRights;
impl Arg<Rights, 1> for AnyRights {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<Rights> {
        Rights::from_u64(w)
    }
    fn encode(&self, v: Rights) -> [u64; 1] {
        [u64::from(v.bits())]
    }
}

/// The rights of a mapping. Every mapping is readable (x86 has no write-
/// or execute-only pages): READ is always asked for, so the capability
/// must have it too; WRITE and EXEC are never both.
struct MapRights;
impl Arg<Rights, 1> for MapRights {
    #[inline(always)]
    fn decode(&self, w: [u64; 1]) -> Option<Rights> {
        AnyRights
            .decode(w)
            .filter(|r| (Rights::READ | Rights::WRITE | Rights::EXEC).contains(*r))
            .filter(|r| r.contains(Rights::READ))
            .filter(|r| !r.contains(Rights::WRITE | Rights::EXEC))
    }
    fn encode(&self, v: Rights) -> [u64; 1] {
        AnyRights.encode(v)
    }
}

/// Any word.
struct Word;
impl Arg<u64, 1> for Word {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<u64> {
        Some(w)
    }
    fn encode(&self, v: u64) -> [u64; 1] {
        [v]
    }
}

/// A word that is not 0 (signal bits, a badge).
struct NonZero;
impl Arg<u64, 1> for NonZero {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<u64> {
        Some(w).filter(|&w| w != 0)
    }
    fn encode(&self, v: u64) -> [u64; 1] {
        [v]
    }
}

/// A word the function accepts.
struct Checked<F: Fn(u64) -> bool>(F);
impl<F: Fn(u64) -> bool> Arg<u64, 1> for Checked<F> {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<u64> {
        Some(w).filter(|&w| (self.0)(w))
    }
    fn encode(&self, v: u64) -> [u64; 1] {
        [v]
    }
}

/// A flag: 0 or 1.
struct Flag;
impl Arg<bool, 1> for Flag {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<bool> {
        match w {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn encode(&self, v: bool) -> [u64; 1] {
        [u64::from(v)]
    }
}

/// A narrower integer (a port, a CPU), whole.
struct Narrow;
impl<T: TryFrom<u64> + Into<u64>> Arg<T, 1> for Narrow {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<T> {
        T::try_from(w).ok()
    }
    fn encode(&self, v: T) -> [u64; 1] {
        [v.into()]
    }
}

/// A narrower integer the function accepts.
struct Fits<F>(F);
impl<T: TryFrom<u64> + Into<u64> + Copy, F: Fn(T) -> bool> Arg<T, 1> for Fits<F> {
    #[inline(always)]
    fn decode(&self, w: [u64; 1]) -> Option<T> {
        Narrow.decode(w).filter(|&v| (self.0)(v))
    }
    fn encode(&self, v: T) -> [u64; 1] {
        [v.into()]
    }
}

/// An interrupt vector a guest takes from a device: 32..=255 (0..=31 are
/// exceptions).
struct Vector;
impl Arg<u8, 1> for Vector {
    #[inline(always)]
    fn decode(&self, w: [u64; 1]) -> Option<u8> {
        Fits(|v: u8| v >= 32).decode(w)
    }
    fn encode(&self, v: u8) -> [u64; 1] {
        [u64::from(v)]
    }
}

/// `None` as the given word ([`ANY_CPU`], [`NO_SIPI`]), else a narrower
/// integer.
struct OrNone(u64);
impl<T: TryFrom<u64> + Into<u64>> Arg<Option<T>, 1> for OrNone {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<Option<T>> {
        if w == self.0 {
            Some(None)
        } else {
            T::try_from(w).ok().map(Some)
        }
    }
    fn encode(&self, v: Option<T>) -> [u64; 1] {
        [v.map_or(self.0, Into::into)]
    }
}

/// A user address ([`UserAddr::new`]).
struct Addr;
impl Arg<UserAddr, 1> for Addr {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<UserAddr> {
        UserAddr::new(w)
    }
    fn encode(&self, v: UserAddr) -> [u64; 1] {
        [v.get()]
    }
}

/// A page address, page 0 included ([`UserAddr::page_or_zero`]).
struct PageOrZero;
impl Arg<UserAddr, 1> for PageOrZero {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<UserAddr> {
        UserAddr::page_or_zero(w)
    }
    fn encode(&self, v: UserAddr) -> [u64; 1] {
        [v.get()]
    }
}

/// A page-aligned user address ([`UserAddr::page`]).
struct Page;
impl Arg<UserAddr, 1> for Page {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<UserAddr> {
        UserAddr::page(w)
    }
    fn encode(&self, v: UserAddr) -> [u64; 1] {
        [v.get()]
    }
}

/// A stack pointer: a user address aligned to 16 bytes (the System V ABI's).
struct Stack;
impl Arg<UserAddr, 1> for Stack {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<UserAddr> {
        UserAddr::new(w).filter(|s| s.get() % 16 == 0)
    }
    fn encode(&self, v: UserAddr) -> [u64; 1] {
        [v.get()]
    }
}

/// A user buffer of at most the given bytes, in two registers: address
/// and length.
struct Buf(u64);
impl Arg<UserBuf, 2> for Buf {
    #[inline(always)]
    fn decode(&self, [addr, len]: [u64; 2]) -> Option<UserBuf> {
        UserBuf::new(addr, len, self.0)
    }
    fn encode(&self, v: UserBuf) -> [u64; 2] {
        [v.addr.get(), v.len]
    }
}

/// A user buffer of exactly the given bytes, in one register: its address
/// (the length is the call's own).
struct Fixed(u64);
impl Arg<UserBuf, 1> for Fixed {
    #[inline(always)]
    fn decode(&self, [addr]: [u64; 1]) -> Option<UserBuf> {
        UserBuf::new(addr, self.0, self.0)
    }
    fn encode(&self, v: UserBuf) -> [u64; 1] {
        [v.addr.get()]
    }
}

/// A port access width.
struct PortWidth;
impl Arg<Width, 1> for PortWidth {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<Width> {
        Width::from_u64(w)
    }
    fn encode(&self, v: Width) -> [u64; 1] {
        [v as u64]
    }
}

/// A value a port of the given width takes.
struct PortValue(Width);
impl Arg<u32, 1> for PortValue {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<u32> {
        Some(w).filter(|&v| v <= u64::from(self.0.max())).map(|v| v as u32)
    }
    fn encode(&self, v: u32) -> [u64; 1] {
        [u64::from(v)]
    }
}

/// An offset into a PCI function's configuration space (4 KiB under
/// ECAM) where an access of the given width is aligned.
struct ConfigOffset(Width);
impl Arg<u16, 1> for ConfigOffset {
    #[inline(always)]
    fn decode(&self, w: [u64; 1]) -> Option<u16> {
        let width = self.0 as u16;
        Fits(|o: u16| o < 4096 && o % width == 0).decode(w)
    }
    fn encode(&self, v: u16) -> [u64; 1] {
        [u64::from(v)]
    }
}

/// The length of a port range from the given base: at least one port,
/// none past 0xffff.
struct PortCount(u16);
impl Arg<u16, 1> for PortCount {
    #[inline(always)]
    fn decode(&self, w: [u64; 1]) -> Option<u16> {
        let base = u32::from(self.0);
        Fits(|c: u16| c > 0 && base + u32::from(c) <= 0x1_0000).decode(w)
    }
    fn encode(&self, v: u16) -> [u64; 1] {
        [u64::from(v)]
    }
}

/// A vCPU's entry or argument word: 32 bits, and 0 if it starts from a
/// start-up IPI (given), which says where to start itself.
struct StartWord(Option<u8>);
impl Arg<u64, 1> for StartWord {
    #[inline(always)]
    fn decode(&self, [w]: [u64; 1]) -> Option<u64> {
        Some(w).filter(|&v| v < 1 << 32 && (self.0.is_none() || v == 0))
    }
    fn encode(&self, v: u64) -> [u64; 1] {
        [v]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::nr;
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
        assert_eq!(Call::decode(25, [1, 0, 0, 0, 0, 0]), Err((Error::InvalidArgument, 2)), "no reason 0");
        assert_eq!(Call::decode(25, [1, 13, 0, 0, 0, 0]), Err((Error::InvalidArgument, 2)), "past the last");
        assert_eq!(
            Call::decode(25, [1, 12, 0, 0, 0, 0]),
            Ok(Call::GuestExits { guest: CapSlot(1), first: 12 })
        );
        let state = crate::vstate::STATE_BYTES;
        assert_eq!(Call::decode(46, [1, 0, 0, 0, 0, 0]), Err((Error::InvalidArgument, 2)), "null buffer");
        assert_eq!(
            Call::decode(46, [1, USER_END - state + 8, 0, 0, 0, 0]),
            Err((Error::InvalidArgument, 2)),
            "past the user range"
        );
        assert_eq!(
            Call::decode(46, [1, USER_END - state, 0, 0, 0, 0]),
            Ok(Call::VcpuStateRead {
                vcpu: CapSlot(1),
                buf: UserBuf { addr: UserAddr(USER_END - state), len: state }
            })
        );
        assert_eq!(
            Call::decode(47, [1, u64::MAX - 8, 0, 0, 0, 0]),
            Err((Error::InvalidArgument, 2)),
            "wraps"
        );
        assert!(matches!(
            Call::decode(47, [1, 0x1001, 0, 0, 0, 0]),
            Ok(Call::VcpuStateWrite { buf: UserBuf { len: crate::vstate::WRITE_BYTES, .. }, .. })
        ));
        assert_eq!(Call::decode(0, [0; 6]), Err((Error::UnknownSyscall, 0)));
        assert_eq!(Call::decode(999, [0; 6]), Err((Error::UnknownSyscall, 0)));
    }

    /// The syscall numbers as released, written out here a second time on
    /// purpose: the table may be reordered or rewritten, but a number that
    /// changes breaks every domain built before, so this fails.
    #[test]
    fn numbers_are_as_released() {
        let released = [
            (Nr::ConsoleWrite, 1),
            (Nr::Exit, 2),
            (Nr::Yield, 3),
            (Nr::CapDerive, 10),
            (Nr::CapGrant, 11),
            (Nr::CapDelete, 12),
            (Nr::CapRevoke, 13),
            (Nr::CapInfo, 14),
            (Nr::DomainCreate, 20),
            (Nr::DomainDestroy, 21),
            (Nr::DomainWait, 22),
            (Nr::DomainInfo, 23),
            (Nr::GuestCreate, 24),
            (Nr::GuestExits, 25),
            (Nr::MemoryCreate, 30),
            (Nr::MemoryMap, 31),
            (Nr::MemoryUnmap, 32),
            (Nr::ThreadCreate, 40),
            (Nr::VcpuCreate, 41),
            (Nr::VirqCreate, 42),
            (Nr::VirqRaise, 43),
            (Nr::DoorbellCreate, 44),
            (Nr::VcpuInterrupt, 45),
            (Nr::VcpuStateRead, 46),
            (Nr::VcpuStateWrite, 47),
            (Nr::IoPortRead, 50),
            (Nr::IoPortWrite, 51),
            (Nr::IoPortsCreate, 52),
            (Nr::IrqWait, 60),
            (Nr::Stats, 70),
            (Nr::EndpointCreate, 90),
            (Nr::NotificationCreate, 91),
            (Nr::Signal, 92),
            (Nr::Wait, 93),
            (Nr::Poll, 94),
            (Nr::IrqBind, 95),
            (Nr::CapMint, 96),
            (Nr::SchedSet, 97),
            (Nr::ThreadSetCpu, 98),
            (Nr::DomainNotify, 99),
            (Nr::TimerSet, 100),
            (Nr::NotificationBind, 101),
            (Nr::DomainPause, 102),
            (Nr::DeviceCreate, 110),
            (Nr::DeviceConfigRead, 111),
            (Nr::DeviceConfigWrite, 112),
            (Nr::DeviceMap, 113),
            (Nr::DevicePorts, 114),
            (Nr::DeviceIrqBind, 115),
            (Nr::DeviceDma, 116),
        ];
        assert_eq!(released.len(), Nr::ALL.len(), "a syscall added or lost");
        for (nr, value) in released {
            assert_eq!(nr as u64, value, "{nr:?}");
        }
        let msg = [(crate::msg::nr::CALL, 80), (nr::REPLY_RECV, 81), (nr::RECV, 82), (nr::REPLY, 83)];
        for (nr, value) in msg {
            assert_eq!(nr, value);
        }
    }

    /// Every number is one call's, the message verbs' included: the enum
    /// refuses a repeated value at compile time, this checks the two
    /// namespaces together (the kernel tells the verbs apart by number
    /// first: `nr::CALL..=nr::REPLY`).
    #[test]
    fn numbers_are_unique() {
        let mut all: Vec<u64> = Nr::ALL.iter().map(|&n| n as u64).collect();
        assert!(all.windows(2).all(|w| w[0] < w[1]), "the table is in number order, each once");
        let verbs = [nr::CALL, nr::REPLY_RECV, nr::RECV, nr::REPLY];
        assert_eq!((nr::CALL..=nr::REPLY).count(), verbs.len(), "the verbs' range holds them alone");
        all.extend(verbs);
        all.sort_unstable();
        let n = all.len();
        all.dedup();
        assert_eq!(all.len(), n, "a number taken twice");
        for nr in Nr::ALL {
            assert!(!(nr::CALL..=nr::REPLY).contains(&(nr as u64)), "{nr:?} in the verbs' range");
        }
    }

    /// `Nr::ALL` lists every number `decode` knows, and no other: a syscall
    /// added without it would be missed by `hostile`'s fuzzer.
    #[test]
    fn all_lists_every_syscall() {
        for nr in 0..1024u64 {
            let listed = Nr::ALL.iter().any(|&n| n as u64 == nr);
            assert_eq!(Nr::from_u64(nr).is_some(), listed, "syscall {nr}");
            // Some arguments decode for every call but for no unknown number.
            let known = [[0; 6], [1, 0x1000, 0x2000, 1, 1, 1], [1, 1, 1, 1, NO_SIPI, ANY_CPU]]
                .iter()
                .any(|a| Call::decode(nr, *a) != Err((Error::UnknownSyscall, 0)));
            assert_eq!(known, listed, "syscall {nr}");
        }
    }

    /// A word as a domain might put it in a register, made from a random
    /// `seed`: biased towards the values calls accept (small slots, user
    /// addresses, sentinels, port widths and vectors) and the edges of
    /// what they refuse, or any word at all. (A plain function of the seed,
    /// not a tree of strategies: a hundred thousand of them take a moment.)
    fn word(seed: u64) -> u64 {
        let v = seed >> 4;
        match seed & 15 {
            0 => v % 8,
            1 => v & 0xffff_ffff,
            2 => 1 << (v % 64),
            3 => (1 << (v % 64)) - 1,
            4 => u64::MAX - v % 2, // ANY_CPU, NO_SIPI; NOTIFIED, NO_CAP
            5 => (USER_MIN + v % (USER_END - USER_MIN)) & !0xfff,
            6 => (USER_MIN + v % (USER_END - USER_MIN)) & !0xf,
            7 => USER_END - 0x2000 + v % 0x2010,
            8 => v % 0x200,
            9 => 0xff00 + v % 0x110,
            10 => v % (CONSOLE_MAX + 2),
            11 => ((v % 8) << 12) | (v % 8), // a slot of a later generation
            12 => (1u64 << (v % 64)) | 1,
            13 => 0,
            _ => seed,
        }
    }

    /// A stream of well-spread words from `seed` (splitmix64).
    fn stream(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let z = (seed ^ (seed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    /// Arguments for syscall `nr` from `seed`: six words drawn, then each
    /// argument `decode` names as invalid drawn again, until the call
    /// decodes (or 200 draws are spent). So every call, however narrow its
    /// arguments, is reached with each field drawn over what it accepts,
    /// without a second description of the fields here.
    fn guided(nr: u64, seed: u64) -> [u64; 6] {
        let mut next = stream(seed);
        let mut a = [0; 6].map(|_: u64| word(next()));
        for _ in 0..200 {
            let Err((Error::InvalidArgument, i)) = Call::decode(nr, a) else { break };
            let (i, s) = (i as usize - 1, next());
            a[i] = word(s);
            // A field may span two registers (a buffer): now and then draw
            // the next one too.
            if s >> 63 == 1 && i < 5 {
                a[i + 1] = word(next());
            }
        }
        a
    }

    /// A syscall as a domain might make it: mostly a known number, now and
    /// then any other; mostly guided arguments, now and then raw words.
    fn syscall() -> impl Strategy<Value = (u64, [u64; 6])> {
        (any::<u64>(), any::<u64>()).prop_map(|(n, seed)| {
            let nr = if n % 8 == 0 { n >> 3 } else { Nr::ALL[(n >> 3) as usize % Nr::ALL.len()] as u64 };
            if n % 8 == 1 {
                let mut next = stream(seed);
                (nr, [0; 6].map(|_: u64| word(next())))
            } else {
                (nr, guided(nr, seed))
            }
        })
    }

    /// The round trip below is no empty check: every call decodes from
    /// nearly every guided draw (a call none of whose arguments could ever
    /// decode, or one that no draw reaches, fails here).
    #[test]
    fn every_call_decodes_from_guided_draws() {
        for nr in Nr::ALL {
            let decoded =
                (0..1000).filter(|&seed| Call::decode(nr as u64, guided(nr as u64, seed)).is_ok()).count();
            assert!(decoded >= 990, "{nr:?} decoded from {decoded} of 1000 guided draws");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Whatever a domain puts in the registers, decoding answers; what
        /// decodes is the call of that number, encodes back to that number,
        /// and decodes again to the same call (encode, then decode, is the
        /// identity on every call `decode` can make). The encoded registers
        /// differ from the drawn ones only where the call reads none.
        #[test]
        fn every_call_round_trips((nr, a) in syscall()) {
            if let Ok(call) = Call::decode(nr, a) {
                prop_assert_eq!(call.nr() as u64, nr);
                let (nr2, a2) = call.encode();
                prop_assert_eq!(nr2, nr);
                prop_assert_eq!(Call::decode(nr2, a2), Ok(call));
                for i in 0..6 {
                    if a2[i] != a[i] {
                        // The register is unused: anything there decodes the same.
                        prop_assert_eq!(a2[i], 0, "register {} of {:?}", i, call);
                        let mut b = a;
                        b[i] = !a[i];
                        prop_assert_eq!(Call::decode(nr, b), Ok(call), "register {} of {:?}", i, call);
                    }
                }
            }
        }

        /// A number no call has is refused, whatever the arguments.
        #[test]
        fn unknown_numbers_are_refused(nr in any::<u64>(), a in any::<[u64; 6]>()) {
            let known = Nr::ALL.iter().any(|&n| n as u64 == nr);
            prop_assert_eq!(Nr::from_u64(nr).is_some(), known);
            if !known {
                prop_assert_eq!(Call::decode(nr, a), Err((Error::UnknownSyscall, 0)));
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
