//! Syscalls: decode (in `ipc`), then invoke. Every verb has one shape,
//! `fn(&mut Kernel, Caller, …) -> Result<Next, Error>`, and runs only on
//! arguments `ipc::syscall::Call::decode` has checked.

mod cap;
mod device;
mod domain;
mod guest;
mod io;
mod memory;
pub(crate) mod msg;
mod notify;
mod pause;
mod sched;
mod thread;
mod vstate;

use ipc::syscall::Call;
use ipc::Error;

use crate::hw::trap::TrapFrame;
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;
use crate::state::Kernel;

/// The online CPU a caller named, or `NotSupported`.
pub fn online(n: u16) -> Result<usize, Error> {
    Some(usize::from(n)).filter(|&i| crate::hw::cpu::is_online(i)).ok_or(Error::NotSupported)
}

/// Who is calling.
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub thread: Ref,
    pub domain: Ref,
    pub cpu: usize,
}

/// What happens to the caller after a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Success with these results; the caller continues.
    Return([u64; 4]),
    /// Success; the caller goes to the back of the run queue.
    Yield,
    /// The caller waits; whoever wakes it sets its results.
    Block,
    /// The caller is gone (its domain exited).
    Gone,
    /// Success; the results are already in the caller's registers.
    Done,
}

/// Handles the syscall of the thread running on `cpu`, whose registers are
/// in `frame`. Returns true if that thread goes on with its results written
/// into `frame` (the common case: nothing else is copied); false if it
/// blocked, yielded or ended, its context then saved in the thread.
pub fn handle(k: &mut Kernel, cpu: usize, frame: &mut TrapFrame) -> bool {
    let Some(thread) = k.current[cpu] else { return false };
    // A thread whose domain was just stopped by another CPU makes no calls.
    let Some(th) = k.threads.get_mut(thread).filter(|th| th.state == ThreadState::Running(cpu)) else {
        return false;
    };
    let domain = th.domain;
    let caller = Caller { thread, domain, cpu };
    if (ipc::msg::nr::CALL..=ipc::msg::nr::REPLY).contains(&frame.rax) {
        // Messages move between the threads' saved registers.
        th.ctx = crate::state::sched::save(frame);
        handle_ipc(k, caller, frame);
        return false;
    }
    let args = [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9];
    let result = match Call::decode(frame.rax, args) {
        Err((e, arg)) => Err((e, arg)),
        Ok(call) => invoke(k, caller, call).map_err(|e| (e, 0)),
    };
    let set = |f: &mut TrapFrame, code: u64, r: [u64; 4]| {
        f.rax = code;
        [f.rdi, f.rsi, f.rdx, f.r10] = r;
    };
    match result {
        Ok(Next::Return(r)) => {
            set(frame, 0, r);
            true
        }
        Err((e, arg)) => {
            set(frame, e.code(), [arg, 0, 0, 0]);
            true
        }
        Ok(Next::Yield) => {
            let Some(th) = k.threads.get_mut(thread) else { return false };
            th.ctx = crate::state::sched::save(frame);
            th.ctx.set_result(0, [0; 4]);
            let home = th.cpu;
            k.current[cpu] = None;
            k.enqueue(home, thread);
            // It gives way for one choice, keeping its credit: a thread that
            // waits by yielding neither hogs its CPU nor loses its share.
            k.yielded[home] = Some(thread);
            false
        }
        Ok(Next::Block) | Ok(Next::Done) => {
            // Whoever ends the wait sets the results in the saved context.
            if let Some(th) = k.threads.get_mut(thread) {
                th.ctx = crate::state::sched::save(frame);
            }
            false
        }
        Ok(Next::Gone) => false,
    }
}

/// A message syscall, its registers (in `frame`) already saved: decoded
/// from the frame, not from a copy of the saved context.
fn handle_ipc(k: &mut Kernel, caller: Caller, f: &TrapFrame) {
    let regs = [f.rdi, f.rsi, f.rdx, f.r10, f.r8, f.r9, f.r12, f.r13, f.r14, f.r15, f.rbx];
    let result = match ipc::msg::IpcCall::decode(f.rax, &regs) {
        Some(Ok(call)) => invoke_ipc(k, caller, call).map_err(|e| (e, 0)),
        Some(Err(e)) => Err(e),
        None => Err((Error::UnknownSyscall, 0)),
    };
    let Some(th) = k.threads.get_mut(caller.thread) else { return };
    match result {
        Ok(Next::Return(r)) => th.ctx.set_result(0, r),
        Ok(Next::Yield) | Ok(Next::Block) | Ok(Next::Gone) | Ok(Next::Done) => {}
        Err((e, arg)) => th.ctx.set_result(e.code(), [arg, 0, 0, 0]),
    }
}

fn invoke_ipc(k: &mut Kernel, c: Caller, call: ipc::msg::IpcCall) -> Result<Next, Error> {
    use ipc::msg::IpcCall;
    match call {
        IpcCall::Call { ep, msg } => msg::call(k, c, ep, msg),
        IpcCall::Recv { ep } => msg::recv(k, c, ep),
        IpcCall::ReplyRecv { ep, msg } => msg::reply_recv(k, c, ep, msg),
        IpcCall::Reply { msg } => msg::reply(k, c, msg),
    }
}

fn invoke(k: &mut Kernel, c: Caller, call: Call) -> Result<Next, Error> {
    match call {
        Call::ConsoleWrite { console, buf } => io::console_write(k, c, console, buf),
        Call::Exit { code } => domain::exit(k, c, code),
        Call::Yield => Ok(Next::Yield),
        Call::CapDerive { slot, rights } => cap::derive(k, c, slot, rights),
        Call::CapGrant { domain, slot, rights } => cap::grant(k, c, domain, slot, rights),
        Call::CapDelete { slot } => cap::delete(k, c, slot),
        Call::CapRevoke { slot } => cap::revoke(k, c, slot),
        Call::CapInfo { slot } => cap::info(k, c, slot),
        Call::DomainCreate { quota_pages } => domain::create(k, c, quota_pages),
        Call::DomainDestroy { domain } => domain::destroy(k, c, domain),
        Call::DomainWait { block } => domain::wait(k, c, block),
        Call::DomainInfo { domain } => domain::info(k, c, domain),
        Call::GuestCreate { quota_pages } => guest::guest_create(k, c, quota_pages),
        Call::GuestExits { guest, first } => guest::guest_exits(k, c, guest, first),
        Call::VcpuCreate { guest, exit, entry, arg, sipi, cpu } => {
            guest::vcpu_create(k, c, guest, exit, guest::Start { entry, arg, sipi }, cpu)
        }
        Call::VirqCreate { guest, vector } => guest::virq_create(k, c, guest, vector),
        Call::VirqRaise { virq } => guest::virq_raise(k, c, virq),
        Call::VcpuInterrupt { vcpu, vector } => guest::vcpu_interrupt(k, c, vcpu, vector),
        Call::VcpuStateRead { vcpu, buf } => vstate::vcpu_state_read(k, c, vcpu, buf),
        Call::VcpuStateWrite { vcpu, buf } => vstate::vcpu_state_write(k, c, vcpu, buf),
        Call::NotificationBind { ntfn } => notify::notification_bind(k, c, ntfn),
        Call::DoorbellCreate { guest, port, ntfn, bits } => {
            guest::doorbell_create(k, c, guest, port, ntfn, bits)
        }
        Call::MemoryCreate { domain, pages } => memory::create(k, c, domain, pages),
        Call::MemoryMap { memory, domain, va, rights } => memory::map(k, c, memory, domain, va, rights),
        Call::MemoryUnmap { memory, domain, va } => memory::unmap(k, c, memory, domain, va),
        Call::ThreadCreate { domain, entry, stack, arg, cpu } => {
            thread::create(k, c, domain, entry, stack, arg, cpu)
        }
        Call::IoPortRead { ports, port, width } => io::port_read(k, c, ports, port, width),
        Call::IoPortWrite { ports, port, width, value } => io::port_write(k, c, ports, port, width, value),
        Call::IoPortsCreate { ports, base, count } => io::ports_create(k, c, ports, base, count),
        Call::IrqWait { irq } => io::irq_wait(k, c, irq),
        Call::Stats => io::stats(k, c),
        Call::EndpointCreate { domain } => notify::endpoint_create(k, c, domain),
        Call::NotificationCreate { domain } => notify::notification_create(k, c, domain),
        Call::Signal { ntfn, bits } => notify::signal(k, c, ntfn, bits),
        Call::Wait { ntfn } => notify::wait(k, c, ntfn, true),
        Call::Poll { ntfn } => notify::wait(k, c, ntfn, false),
        Call::IrqBind { irq, ntfn, bits } => notify::irq_bind(k, c, irq, ntfn, bits),
        Call::CapMint { slot, rights, badge } => cap::mint(k, c, slot, rights, badge),
        Call::SchedSet { domain, weight, cap_percent } => sched::sched_set(k, c, domain, weight, cap_percent),
        Call::ThreadSetCpu { thread, cpu } => sched::thread_set_cpu(k, c, thread, cpu),
        Call::DomainNotify { domain, ntfn, bits } => notify::domain_notify(k, c, domain, ntfn, bits),
        Call::TimerSet { ntfn, bits, delay_us, period_us } => {
            notify::timer_set(k, c, ntfn, bits, delay_us, period_us)
        }
        Call::DomainPause { domain, paused } => pause::domain_pause(k, c, domain, paused),
        Call::DeviceCreate { pci, domain, function, dma } => device::create(k, c, pci, domain, function, dma),
        Call::DeviceConfigRead { dev, width, offset } => device::config_read(k, c, dev, offset, width),
        Call::DeviceConfigWrite { dev, width, offset, value } => {
            device::config_write(k, c, dev, offset, width, value)
        }
        Call::DeviceMap { dev, bar, va } => device::map(k, c, dev, bar, va),
        Call::DevicePorts { dev, bar } => device::ports(k, c, dev, bar),
        Call::DeviceIrqBind { dev, entry, ntfn, bits } => device::irq_bind(k, c, dev, entry, ntfn, bits),
        Call::DeviceDma { dev, memory } => device::dma(k, c, dev, memory),
    }
}
