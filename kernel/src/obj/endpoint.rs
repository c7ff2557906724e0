//! An endpoint: where callers and servers meet for synchronous messages.
//! Threads blocked on it wait in two queues; a message never waits in the
//! kernel without its sender.

use super::pool::Ref;

/// Threads that may wait on one endpoint at once, per direction.
pub const QUEUE: usize = 32;

pub struct Endpoint {
    pub owner: Ref,
    /// Its owner died: no thread waits on it again (calls and receives
    /// fail with `PeerDead`; `syscall::msg::enqueue`, the fast path).
    pub dead: bool,
    /// Callers waiting for a server (their messages in their registers).
    pub senders: heapless::Deque<Ref, QUEUE>,
    /// Servers waiting for a caller.
    pub receivers: heapless::Deque<Ref, QUEUE>,
}

impl Endpoint {
    pub const fn new(owner: Ref) -> Self {
        Self { owner, dead: false, senders: heapless::Deque::new(), receivers: heapless::Deque::new() }
    }
}
