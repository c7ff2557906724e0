//! A thread: a user register context in a native domain.

use super::pool::Ref;

/// The user registers of a thread, as saved on kernel entry.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Context {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rsp: u64,
    pub rflags: u64,
}

impl Context {
    /// A fresh context at `entry` on `stack`, `arg` in rdi, interrupts on.
    pub fn start(entry: u64, stack: u64, arg: u64) -> Self {
        Self { rip: entry, rsp: stack, rdi: arg, rflags: 0x202, ..Self::default() }
    }

    /// Sets a syscall's outcome: `rax` = 0 or the error code, results after.
    pub fn set_result(&mut self, code: u64, results: [u64; 4]) {
        self.rax = code;
        self.rdi = results[0];
        self.rsi = results[1];
        self.rdx = results[2];
        self.r10 = results[3];
    }
}

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// In the run queue.
    Runnable,
    /// On this CPU.
    Running(usize),
    /// In `DomainWait`.
    WaitingForEvent,
    /// In `IrqWait` on this Irq object.
    WaitingForIrq(Ref),
    /// Stopped for good; freed once no CPU runs it.
    Dead,
}

pub struct Thread {
    pub domain: Ref,
    pub ctx: Context,
    pub state: ThreadState,
}
