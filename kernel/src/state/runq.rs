//! Each CPU's run queue: its runnable threads, in the order they became
//! so, linked through the threads themselves (`Thread::link`). A thread is
//! in one queue at most, once; queueing and unqueueing it cost the same
//! whatever the number of threads, and no number of them can overflow a
//! queue (a fixed array of references per CPU could, once threads were
//! made from quotas instead of a pool of 256).
//!
//! A thread that stops being runnable while queued (it died) stays linked
//! until the scheduler passes it (`sched::pick`) or it is destroyed
//! ([`Kernel::remove_thread`] unlinks it first): a link never names a
//! destroyed thread, so a walk never loses the rest of its queue.

use super::Kernel;
use crate::obj::pool::Ref;
use crate::obj::thread::{Link, ThreadState};

/// A queue's ends, `Ref::NONE` when empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunQueue {
    pub head: Ref,
    pub tail: Ref,
}

impl RunQueue {
    pub const EMPTY: RunQueue = RunQueue { head: Ref::NONE, tail: Ref::NONE };
}

impl Kernel {
    /// Puts thread `t` at the back of CPU `c`'s queue (taking it out of
    /// the one it was in, if any), runnable.
    #[inline(always)]
    pub fn enqueue(&mut self, c: usize, t: Ref) {
        if c >= self.runqs.len() {
            return;
        }
        let Some(mut th) = self.threads.get_mut(t) else { return };
        if th.link.queue.is_some() {
            self.dequeue(t);
            let Some(x) = self.threads.get_mut(t) else { return };
            th = x;
        }
        th.state = ThreadState::Runnable;
        let q = self.runqs[c];
        th.link = Link { prev: q.tail, next: Ref::NONE, queue: Some(c) };
        match self.threads.get_mut(q.tail) {
            Some(p) => p.link.next = t,
            None => self.runqs[c].head = t,
        }
        self.runqs[c].tail = t;
    }

    /// Takes thread `t` out of its run queue, if it is in one.
    #[inline(always)]
    pub fn dequeue(&mut self, t: Ref) {
        self.unlink(t, None);
    }

    /// [`Self::dequeue`], setting its state (if `state`) on the same
    /// lookup: a picked thread is taken to run (`sched::pick`).
    #[inline(always)]
    pub fn unlink(&mut self, t: Ref, state: Option<ThreadState>) {
        let Some(th) = self.threads.get_mut(t) else { return };
        th.state = state.unwrap_or(th.state);
        let Link { prev, next, queue } = core::mem::replace(&mut th.link, Link::NONE);
        let Some(q) = queue.and_then(|c| self.runqs.get_mut(c)) else { return };
        if q.head == t {
            q.head = next;
        }
        if q.tail == t {
            q.tail = prev;
        }
        if let Some(p) = self.threads.get_mut(prev) {
            p.link.next = next;
        }
        if let Some(n) = self.threads.get_mut(next) {
            n.link.prev = prev;
        }
    }

    /// The threads in CPU `c`'s queue, front first.
    pub fn queued(&self, c: usize) -> impl Iterator<Item = Ref> + '_ {
        let head = self.runqs.get(c).map_or(Ref::NONE, |q| q.head);
        core::iter::successors(Some(head), |&t| self.threads.get(t).map(|th| th.link.next))
            .take_while(|&t| self.threads.get(t).is_some())
    }
}
