//! Typed syscalls over [`ipc::syscall::Call`]: one [`syscall`] that makes any
//! call, and a small function per verb that returns what the call returns;
//! and the message verbs of [`crate::msg`] ([`ipc_call`], [`recv`],
//! [`reply_recv`], [`reply`]).

use ipc::event::{DomainId, Event};
use ipc::syscall::{Call, UserAddr, UserBuf, Width, CONSOLE_MAX};
use ipc::{CapSlot, Error, ObjectType, Rights};

pub use crate::arch::syscall_raw;
pub use crate::msg::{ipc_call, recv, recv_any, reply, reply_recv, reply_recv_any, Incoming};

/// Makes `call`: the four result words, or the error with, for
/// `InvalidArgument`, the 1-based index of the argument at fault.
///
/// # Safety
///
/// As for [`syscall_raw`]: the call must not unmap memory in use, nor start
/// a thread in this domain at arbitrary code.
pub unsafe fn syscall(call: &Call) -> Result<[u64; 4], (Error, u64)> {
    let (nr, args) = call.encode();
    // SAFETY: the caller's contract.
    let (rax, r) = unsafe { syscall_raw(nr, args) };
    match Error::from_code(rax) {
        Ok(()) => Ok(r),
        Err(e) => Err((e, r[0])),
    }
}

/// A call the functions below make: none of them unmaps memory or starts a
/// thread in this domain (those are the `unsafe` ones).
fn call(call: Call) -> Result<[u64; 4], Error> {
    // SAFETY: only calls that leave this domain's own memory and threads
    // alone come here.
    unsafe { syscall(&call) }.map_err(|(e, _)| e)
}

fn addr(va: u64) -> Result<UserAddr, Error> {
    UserAddr::new(va).ok_or(Error::InvalidArgument)
}

/// A mapping address: page 0 too (a guest's RAM starts there; the kernel
/// refuses it for a native domain).
fn map_page(va: u64) -> Result<UserAddr, Error> {
    UserAddr::page_or_zero(va).ok_or(Error::InvalidArgument)
}

fn slot(word: u64) -> CapSlot {
    CapSlot(word as u32)
}

/// Writes `bytes` to the debug console, in calls of at most `CONSOLE_MAX`
/// bytes (each call is atomic: send whole lines).
pub fn console_write(console: CapSlot, bytes: &[u8]) -> Result<(), Error> {
    for chunk in bytes.chunks(CONSOLE_MAX as usize) {
        let buf = UserBuf { addr: addr(chunk.as_ptr() as u64)?, len: chunk.len() as u64 };
        call(Call::ConsoleWrite { console, buf })?;
    }
    Ok(())
}

/// Ends this domain; its supervisor learns `code`.
pub fn exit(code: u64) -> ! {
    let _ = call(Call::Exit { code });
    // Exit does not return. Should it, fault so that the supervisor hears.
    // SAFETY: `ud2` raises #UD and touches nothing.
    unsafe { core::arch::asm!("ud2", options(noreturn, nomem, nostack)) }
}

/// Gives up the rest of the time slice.
///
/// Callers mostly yield while polling, so this PAUSEs too: a hint to the CPU
/// (and its SMT sibling) on real hardware, and under QEMU's deterministic
/// single-threaded emulation what lets a halted CPU be woken at all while
/// this one polls (its timer and IPIs wait for a turn that a CPU never
/// pausing or halting does not give up; seen with sched_latency).
pub fn yield_now() {
    core::hint::spin_loop();
    let _ = call(Call::Yield);
}

/// A copy of `slot` with `rights` (a subset) in this domain's table.
pub fn cap_derive(slot: CapSlot, rights: Rights) -> Result<CapSlot, Error> {
    call(Call::CapDerive { slot, rights }).map(|r| self::slot(r[0]))
}

/// A copy of `slot` with `rights` in `domain`'s table; returns its slot there.
pub fn cap_grant(domain: CapSlot, slot: CapSlot, rights: Rights) -> Result<CapSlot, Error> {
    call(Call::CapGrant { domain, slot, rights }).map(|r| self::slot(r[0]))
}

/// Empties `slot`.
pub fn cap_delete(slot: CapSlot) -> Result<(), Error> {
    call(Call::CapDelete { slot }).map(drop)
}

/// Invalidates every copy granted or derived from the object of `slot` and
/// removes its mappings outside this domain.
pub fn cap_revoke(slot: CapSlot) -> Result<(), Error> {
    call(Call::CapRevoke { slot }).map(drop)
}

/// What a capability is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapInfo {
    /// `None` for a type this runtime does not know.
    pub kind: Option<ObjectType>,
    pub rights: Rights,
    /// For memory and port ranges: their size, as the kernel reports it.
    pub size: u64,
}

pub fn cap_info(slot: CapSlot) -> Result<CapInfo, Error> {
    let r = call(Call::CapInfo { slot })?;
    let rights = Rights::from_u64(r[1]).unwrap_or(Rights::empty());
    Ok(CapInfo { kind: ObjectType::from_u64(r[0]), rights, size: r[2] })
}

/// A new domain, supervised by this one, with `quota_pages` of our quota.
pub fn domain_create(quota_pages: u64) -> Result<(CapSlot, DomainId), Error> {
    call(Call::DomainCreate { quota_pages }).map(|r| (slot(r[0]), DomainId(r[1])))
}

/// Destroys a domain this one supervises, and all it owns.
pub fn domain_destroy(domain: CapSlot) -> Result<(), Error> {
    call(Call::DomainDestroy { domain }).map(drop)
}

/// The next event of a supervised domain; with `block == false`,
/// `WouldBlock` if there is none.
pub fn domain_wait(block: bool) -> Result<Event, Error> {
    let r = call(Call::DomainWait { block })?;
    Event::decode(r).ok_or(Error::Malformed)
}

/// A new guest (a virtual machine), supervised by this domain, with
/// `quota_pages` of our quota: its slot (CONTROL|GRANT) and id.
/// `NotSupported` on a machine without VT-x or AMD-V.
pub fn guest_create(quota_pages: u64) -> Result<(CapSlot, DomainId), Error> {
    call(Call::GuestCreate { quota_pages }).map(|r| (slot(r[0]), DomainId(r[1])))
}

/// A vCPU of `guest` entering at `entry` with ebx = `arg` (the Multiboot
/// hand-off), its exits calls on endpoint `exit`; returns its thread.
pub fn vcpu_create(guest: CapSlot, exit: CapSlot, entry: u64, arg: u64) -> Result<CapSlot, Error> {
    call(Call::VcpuCreate { guest, exit, entry, arg, sipi: None, cpu: None }).map(|r| slot(r[0]))
}

/// Binds notification `ntfn` to this thread: while it receives (with
/// [`recv_any`] or [`reply_recv_any`]), a signal ends the wait.
pub fn notification_bind(ntfn: CapSlot) -> Result<(), Error> {
    call(Call::NotificationBind { ntfn }).map(drop)
}

/// Raises interrupt `vector` (32..=255) on the vCPU whose thread `vcpu`
/// names; it is delivered when that vCPU can take it.
pub fn vcpu_interrupt(vcpu: CapSlot, vector: u8) -> Result<(), Error> {
    call(Call::VcpuInterrupt { vcpu, vector }).map(drop)
}

/// The state of the vCPU whose thread `vcpu` names, which is in an exit
/// (see `ipc::syscall::Call::VcpuStateRead`).
pub fn vcpu_state_read(vcpu: CapSlot) -> Result<ipc::vstate::State, Error> {
    let mut bytes = [0u8; ipc::vstate::STATE_BYTES as usize];
    let buf = UserBuf { addr: addr(bytes.as_mut_ptr() as u64)?, len: ipc::vstate::STATE_BYTES };
    call(Call::VcpuStateRead { vcpu, buf })?;
    Ok(ipc::vstate::State::from_bytes(&bytes))
}

/// Changes what `write` asks of the vCPU `vcpu` names, in an exit or not
/// yet run, at its next entry (see `ipc::syscall::Call::VcpuStateWrite`).
pub fn vcpu_state_write(vcpu: CapSlot, write: &ipc::vstate::Write) -> Result<(), Error> {
    vcpu_state_write_raw(vcpu, &write.to_bytes())
}

/// [`vcpu_state_write`] of a buffer as it is, checked by the kernel alone
/// (what a hostile VMM sends).
pub fn vcpu_state_write_raw(
    vcpu: CapSlot,
    bytes: &[u8; ipc::vstate::WRITE_BYTES as usize],
) -> Result<(), Error> {
    let buf = UserBuf { addr: addr(bytes.as_ptr() as u64)?, len: ipc::vstate::WRITE_BYTES };
    call(Call::VcpuStateWrite { vcpu, buf }).map(drop)
}

/// A vCPU of `guest` that starts as an application processor after INIT
/// and a start-up IPI with `vector`: in real mode at 0x1000 × `vector`, on
/// `cpu` (None: this thread's). Its exits are calls on `exit`.
pub fn vcpu_create_ap(guest: CapSlot, exit: CapSlot, vector: u8, cpu: Option<u16>) -> Result<CapSlot, Error> {
    call(Call::VcpuCreate { guest, exit, entry: 0, arg: 0, sipi: Some(vector), cpu }).map(|r| slot(r[0]))
}

/// A new memory object of `pages` zeroed pages owned by `domain`.
pub fn memory_create(domain: CapSlot, pages: u64) -> Result<CapSlot, Error> {
    call(Call::MemoryCreate { domain, pages }).map(|r| slot(r[0]))
}

/// Maps all of `memory` into `domain` at the page-aligned `va`.
pub fn memory_map(memory: CapSlot, domain: CapSlot, va: u64, rights: Rights) -> Result<(), Error> {
    call(Call::MemoryMap { memory, domain, va: map_page(va)?, rights }).map(drop)
}

/// Removes the mapping of `memory` at `va` from `domain`.
///
/// # Safety
///
/// If `domain` is this domain, nothing may refer to the mapping any more.
pub unsafe fn memory_unmap(memory: CapSlot, domain: CapSlot, va: u64) -> Result<(), Error> {
    let unmap = Call::MemoryUnmap { memory, domain, va: map_page(va)? };
    // SAFETY: the caller's contract.
    unsafe { syscall(&unmap) }.map(drop).map_err(|(e, _)| e)
}

/// Starts a thread in `domain` at `entry` with `stack` (16-byte aligned) and
/// `arg` in rdi, on CPU `cpu` (`None`: where the kernel chooses); returns
/// the thread's capability.
///
/// # Safety
///
/// If `domain` is this domain, the thread runs alongside ours: `entry` must
/// be code that is sound to run so, on a stack no one else uses.
pub unsafe fn thread_create(
    domain: CapSlot,
    entry: u64,
    stack: u64,
    arg: u64,
    cpu: Option<u16>,
) -> Result<CapSlot, Error> {
    let create = Call::ThreadCreate { domain, entry: addr(entry)?, stack: addr(stack)?, arg, cpu };
    // SAFETY: the caller's contract.
    unsafe { syscall(&create) }.map(|r| slot(r[0])).map_err(|(e, _)| e)
}

pub fn ioport_read(ports: CapSlot, port: u16, width: Width) -> Result<u32, Error> {
    call(Call::IoPortRead { ports, port, width }).map(|r| r[0] as u32)
}

pub fn ioport_write(ports: CapSlot, port: u16, width: Width, value: u32) -> Result<(), Error> {
    call(Call::IoPortWrite { ports, port, width, value }).map(drop)
}

/// A capability for ports `base..base + count` within those of `ports`.
pub fn ioports_create(ports: CapSlot, base: u16, count: u16) -> Result<CapSlot, Error> {
    call(Call::IoPortsCreate { ports, base, count }).map(|r| slot(r[0]))
}

/// A Device capability for PCI function `function` (`bus << 8 | device
/// << 3 | function`), owned by `domain`, from the segment capability `pci`.
pub fn device_create(pci: CapSlot, domain: CapSlot, function: u16, dma: bool) -> Result<CapSlot, Error> {
    call(Call::DeviceCreate { pci, domain, function, dma }).map(|r| slot(r[0]))
}

/// Reads `width` bytes at `offset` of the configuration space of `dev`'s function.
pub fn device_config_read(dev: CapSlot, offset: u16, width: Width) -> Result<u32, Error> {
    call(Call::DeviceConfigRead { dev, width, offset }).map(|r| r[0] as u32)
}

/// Writes `width` bytes at `offset` there, where the kernel lets the holder.
pub fn device_config_write(dev: CapSlot, offset: u16, width: Width, value: u32) -> Result<(), Error> {
    call(Call::DeviceConfigWrite { dev, width, offset, value }).map(drop)
}

/// Writes the `buf` the caller names as it is, wherever it lies (a test's
/// hostile write; `console_write` is the one to use).
pub fn raw_console_write(console: CapSlot, buf: UserBuf) -> Result<(), Error> {
    call(Call::ConsoleWrite { console, buf }).map(drop)
}

/// Maps memory BAR `bar` of `dev`'s function (the caller its owner) at
/// `va`, uncached, but for the MSI-X table's pages; returns its size.
pub fn device_map(dev: CapSlot, bar: u8, va: u64) -> Result<u64, Error> {
    let va = ipc::syscall::UserAddr::page(va).ok_or(Error::InvalidArgument)?;
    call(Call::DeviceMap { dev, bar, va }).map(|r| r[0])
}

/// The ports of I/O BAR `bar` of `dev`'s function, as a capability.
pub fn device_ports(dev: CapSlot, bar: u8) -> Result<CapSlot, Error> {
    call(Call::DevicePorts { dev, bar }).map(|r| slot(r[0]))
}

/// Delivers MSI-X entry `entry` of `dev`'s function as `bits` on `ntfn`.
pub fn device_irq_bind(dev: CapSlot, entry: u16, ntfn: CapSlot, bits: u64) -> Result<(), Error> {
    call(Call::DeviceIrqBind { dev, entry, ntfn, bits }).map(drop)
}

/// The device address of `memory` for `dev`'s function, and its bytes.
pub fn device_dma(dev: CapSlot, memory: CapSlot) -> Result<(u64, u64), Error> {
    call(Call::DeviceDma { dev, memory }).map(|r| (r[0], r[1]))
}

/// Waits for the interrupt line of `irq`.
pub fn irq_wait(irq: CapSlot) -> Result<(), Error> {
    call(Call::IrqWait { irq }).map(drop)
}

/// Kernel-wide counts and this domain's quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    pub free_frames: u64,
    pub objects: u64,
    pub quota_limit: u64,
    pub quota_used: u64,
}

pub fn stats() -> Result<Stats, Error> {
    let r = call(Call::Stats)?;
    Ok(Stats { free_frames: r[0], objects: r[1], quota_limit: r[2], quota_used: r[3] })
}

/// A new endpoint owned by `domain` (this one's, or one it controls);
/// returns a capability with READ|WRITE|GRANT.
pub fn endpoint_create(domain: CapSlot) -> Result<CapSlot, Error> {
    call(Call::EndpointCreate { domain }).map(|r| slot(r[0]))
}

/// A new notification owned by `domain`; returns a capability with
/// READ|WRITE|GRANT.
/// A doorbell on `port` of `guest` (CONTROL): the guest's writes there
/// signal `bits` on `ntfn` (WRITE) inside the kernel, without an exit.
pub fn doorbell_create(guest: CapSlot, port: u16, ntfn: CapSlot, bits: u64) -> Result<CapSlot, Error> {
    call(Call::DoorbellCreate { guest, port, ntfn, bits }).map(|r| slot(r[0]))
}

pub fn notification_create(domain: CapSlot) -> Result<CapSlot, Error> {
    call(Call::NotificationCreate { domain }).map(|r| slot(r[0]))
}

/// ORs `bits` into the notification (needs WRITE) and wakes its waiter.
pub fn signal(ntfn: CapSlot, bits: u64) -> Result<(), Error> {
    call(Call::Signal { ntfn, bits }).map(drop)
}

/// Waits until the notification's word is non-zero (needs READ); returns
/// the word, now cleared.
pub fn wait(ntfn: CapSlot) -> Result<u64, Error> {
    call(Call::Wait { ntfn }).map(|r| r[0])
}

/// The notification's word, cleared, without waiting (needs READ): 0 if
/// nothing was signalled.
pub fn poll(ntfn: CapSlot) -> Result<u64, Error> {
    call(Call::Poll { ntfn }).map(|r| r[0])
}

/// Delivers the interrupt line of `irq` as `bits` (non-zero) on `ntfn`
/// instead of to [`irq_wait`]; acknowledge each interrupt with `irq_wait`.
pub fn irq_bind(irq: CapSlot, ntfn: CapSlot, bits: u64) -> Result<(), Error> {
    call(Call::IrqBind { irq, ntfn, bits }).map(drop)
}

/// A copy of an endpoint or notification capability in this domain's
/// table, with `rights` (a subset) and `badge`, which a receiver sees with
/// every message sent through the copy.
pub fn cap_mint(slot: CapSlot, rights: Rights, badge: u64) -> Result<CapSlot, Error> {
    call(Call::CapMint { slot, rights, badge }).map(|r| self::slot(r[0]))
}

/// Sets a supervised domain's CPU weight (1..=65535; 256 at creation) and
/// cap (percent of one CPU, 1..=100, or 0 for none).
pub fn sched_set(domain: CapSlot, weight: u16, cap_percent: u8) -> Result<(), Error> {
    call(Call::SchedSet { domain, weight, cap_percent }).map(drop)
}

/// Moves a thread (CONTROL on the capability `thread_create` returned) to
/// CPU `cpu`; `NotSupported` if that CPU is not online.
pub fn thread_set_cpu(thread: CapSlot, cpu: u16) -> Result<(), Error> {
    call(Call::ThreadSetCpu { thread, cpu }).map(drop)
}

/// Signals `bits` (non-zero) on `ntfn` when the supervised `domain` exits or
/// faults; the event itself is then read with `domain_wait(false)`.
pub fn domain_notify(domain: CapSlot, ntfn: CapSlot, bits: u64) -> Result<(), Error> {
    call(Call::DomainNotify { domain, ntfn, bits }).map(drop)
}

/// What the kernel knows of a domain: [`domain_info`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomainInfo {
    /// CPU time its threads have used, in microseconds.
    pub cpu_us: u64,
    pub weight: u16,
    /// 0 for no cap.
    pub cap_percent: u8,
    pub running: bool,
    /// Requests of the devices it holds that the IOMMU blocked.
    pub dma_faults: u64,
}

/// CPU time, weight, cap, state and IOMMU faults of a domain this one controls.
pub fn domain_info(domain: CapSlot) -> Result<DomainInfo, Error> {
    let r = call(Call::DomainInfo { domain })?;
    Ok(DomainInfo {
        cpu_us: r[0],
        weight: u16::try_from(r[1]).unwrap_or(u16::MAX),
        cap_percent: u8::try_from(r[2]).unwrap_or(u8::MAX),
        running: r[3] & 1 != 0,
        dma_faults: r[3] >> 1,
    })
}

/// How many exits of each reason guest `guest` (CONTROL) has made, by
/// `ipc::vcpu::ExitReason::index`.
pub fn guest_exits(guest: CapSlot) -> Result<[u64; ipc::vcpu::EXIT_REASONS], Error> {
    let mut all = [0u64; ipc::vcpu::EXIT_REASONS];
    for (i, chunk) in all.chunks_mut(4).enumerate() {
        let r = call(Call::GuestExits { guest, first: 1 + 4 * i as u64 })?;
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    Ok(all)
}

/// Signals `bits` on `ntfn` after `delay_us`, then every `period_us` (0:
/// once); `delay_us` = 0 cancels.
pub fn timer_set(ntfn: CapSlot, bits: u64, delay_us: u64, period_us: u64) -> Result<(), Error> {
    call(Call::TimerSet { ntfn, bits, delay_us, period_us }).map(drop)
}

/// Pauses (`paused`) or resumes a domain this one is above (its supervisor,
/// or its supervisor's, …): a paused domain's threads and vCPUs do not run.
pub fn domain_pause(domain: CapSlot, paused: bool) -> Result<(), Error> {
    call(Call::DomainPause { domain, paused }).map(drop)
}
