//! A thread: a user register context in a native domain, with its place in
//! the scheduler and in message passing.

use super::pool::Ref;

registers!(
    /// The user registers of a thread, as saved on kernel entry.
    Context { rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15, rip, rsp, rflags }
);

impl Context {
    /// A fresh context at `entry` on `stack`, `arg` in rdi, interrupts on.
    pub fn start(entry: u64, stack: u64, arg: u64) -> Self {
        Self { rip: entry, rsp: stack, rdi: arg, rflags: 0x202, ..Self::default() }
    }

    /// Sets a syscall's outcome: `rax` = 0 or the error code, results after.
    pub fn set_result(&mut self, code: u64, [a, b, c, d]: [u64; 4]) {
        [self.rax, self.rdi, self.rsi, self.rdx, self.r10] = [code, a, b, c, d];
    }

    /// The message registers (see `ipc::msg`).
    pub fn msg_regs(&self) -> [u64; ipc::msg::REGS] {
        [
            self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9, self.r12, self.r13, self.r14, self.r15,
            self.rbx,
        ]
    }

    /// Sets the message registers and `rax` = 0.
    pub fn set_msg_regs(&mut self, r: &[u64; ipc::msg::REGS]) {
        self.rax = 0;
        [
            self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9, self.r12, self.r13, self.r14, self.r15,
            self.rbx,
        ] = *r;
    }
}

/// What a thread is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// Made, not yet started.
    Created,
    /// In its CPU's run queue.
    Runnable,
    /// On this CPU.
    Running(usize),
    /// In `DomainWait`.
    WaitingForEvent,
    /// In `IrqWait` on this Irq object.
    WaitingForIrq(Ref),
    /// In `Wait` on this notification.
    WaitingForSignal(Ref),
    /// Calling: queued on this endpoint with its message.
    Sending(Ref),
    /// Receiving on this endpoint.
    Receiving(Ref),
    /// Called this server thread and waits for its reply.
    AwaitingReply(Ref),
    /// A vCPU in HLT with interrupts on, until one is raised on it.
    Halted,
    /// Stopped for good; freed once no CPU runs it.
    Dead,
}

/// A thread's place in a run queue (`state::runq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub prev: Ref,
    pub next: Ref,
    /// The CPU whose queue it is in, if any.
    pub queue: Option<usize>,
}

impl Link {
    pub const NONE: Link = Link { prev: Ref::NONE, next: Ref::NONE, queue: None };
}

pub struct Thread {
    pub domain: Ref,
    pub ctx: Context,
    pub state: ThreadState,
    /// The CPU whose run queue it belongs to.
    pub cpu: usize,
    /// Scheduler credit, in microseconds (see `crate::policy`).
    pub credit: i64,
    /// The caller waiting for this thread's reply (one reply, once).
    pub reply_to: Option<Ref>,
    /// The badge of the endpoint capability its queued call came through.
    pub badge: u64,
    /// Its bound notification (`NotificationBind`): a signal ends its
    /// receives.
    pub bound: Option<Ref>,
    /// For a virtual CPU: its guest state (the thread's domain is the guest).
    pub vcpu: Option<super::vcpu::Vcpu>,
    /// Its place in a run queue.
    pub link: Link,
}

impl Thread {
    pub fn new(domain: Ref, ctx: Context, cpu: usize) -> Self {
        Self {
            domain,
            ctx,
            state: ThreadState::Created,
            cpu,
            credit: crate::policy::CREDIT_INIT,
            reply_to: None,
            badge: 0,
            vcpu: None,
            bound: None,
            link: Link::NONE,
        }
    }
}
