//! Syscalls: decode (in `ipc`), then invoke. Every verb has one shape,
//! `fn(&mut Kernel, Caller, …) -> Result<Next, Error>`, and runs only on
//! arguments `ipc::syscall::Call::decode` has checked.

mod cap;
mod domain;
mod io;
mod memory;
mod thread;

use ipc::syscall::Call;
use ipc::Error;

use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;
use crate::state::Kernel;

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
}

/// Handles the syscall of the thread running on `cpu`.
pub fn handle(k: &mut Kernel, cpu: usize) {
    let Some(thread) = k.current[cpu] else { return };
    // A thread whose domain was just stopped by another CPU makes no calls.
    let Some(th) = k.threads.get(thread).filter(|th| th.state == ThreadState::Running(cpu)) else { return };
    let (domain, ctx) = (th.domain, th.ctx);
    let caller = Caller { thread, domain, cpu };
    let args = [ctx.rdi, ctx.rsi, ctx.rdx, ctx.r10, ctx.r8, ctx.r9];
    let result = match Call::decode(ctx.rax, args) {
        Err((e, arg)) => Err((e, arg)),
        Ok(call) => invoke(k, caller, call).map_err(|e| (e, 0)),
    };
    let Some(th) = k.threads.get_mut(thread) else { return };
    match result {
        Ok(Next::Return(r)) => th.ctx.set_result(0, r),
        Ok(Next::Yield) => {
            th.ctx.set_result(0, [0; 4]);
            th.state = ThreadState::Runnable;
            k.current[cpu] = None;
            // Every thread is in the queue at most once: cannot overflow.
            let _ = k.runq.push_back(thread);
        }
        Ok(Next::Block) | Ok(Next::Gone) => {}
        Err((e, arg)) => th.ctx.set_result(e.code(), [arg, 0, 0, 0]),
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
        Call::MemoryCreate { domain, pages } => memory::create(k, c, domain, pages),
        Call::MemoryMap { memory, domain, va, rights } => memory::map(k, c, memory, domain, va, rights),
        Call::MemoryUnmap { memory, domain, va } => memory::unmap(k, c, memory, domain, va),
        Call::ThreadCreate { domain, entry, stack, arg } => thread::create(k, c, domain, entry, stack, arg),
        Call::IoPortRead { ports, port, width } => io::port_read(k, c, ports, port, width),
        Call::IoPortWrite { ports, port, width, value } => io::port_write(k, c, ports, port, width, value),
        Call::IoPortsCreate { ports, base, count } => io::ports_create(k, c, ports, base, count),
        Call::IrqWait { irq } => io::irq_wait(k, c, irq),
        Call::Stats => io::stats(k, c),
    }
}
