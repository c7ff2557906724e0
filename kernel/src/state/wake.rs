//! Waking threads: run queues, notifications, interrupt lines, and the
//! waits that end when a peer dies.

use ipc::Error;

use super::{kick, HandOver, Kernel};
use crate::hw::{self, cpu::MAX_CPUS};
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;

impl Kernel {
    /// Makes thread `t` runnable.
    pub fn wake(&mut self, t: Ref) {
        let Some(th) = self.threads.get(t) else { return };
        if matches!(th.state, ThreadState::Dead | ThreadState::Runnable | ThreadState::Running(_)) {
            return;
        }
        let c = th.cpu;
        // By the credit each is scheduled by (a server's is its caller's),
        // on the lookup above.
        let credit = super::sched::payer_of(self, t, th).map_or(0, |p| p.credit);
        self.enqueue(c, t);
        let busy = self.current[c].and_then(|r| super::sched::credit_of(self, r));
        if busy.is_none_or(|cur| credit > cur) {
            self.resched[c] = true;
            kick(c);
        }
    }

    /// The online CPU with the fewest threads (new threads go there).
    pub fn least_loaded_cpu(&self) -> usize {
        let mut load = [0usize; MAX_CPUS];
        for (_, t) in self.threads.iter() {
            load[t.cpu.min(MAX_CPUS - 1)] += 1;
        }
        (0..MAX_CPUS).filter(|&c| hw::cpu::is_online(c)).min_by_key(|&c| load[c]).unwrap_or(0)
    }

    /// ORs `bits` into notification `n`, waking its waiter with the word,
    /// or ending the receive of the thread it is bound to. Out of line, with
    /// [`Self::deliver`] in it: a doorbell's exit costs what it did before
    /// the split (inlined, 8 instructions more).
    #[inline(never)]
    pub fn signal(&mut self, n: Ref, bits: u64) {
        if let Some(t) = self.deliver(n, bits) {
            self.wake(t);
        }
    }

    /// [`Self::signal`] up to the wake-up: the thread whose wait the signal
    /// ends, its results set, still to be woken.
    #[inline(always)]
    pub fn deliver(&mut self, n: Ref, bits: u64) -> Option<Ref> {
        let x = self.notifications.get_mut(n)?;
        if let Some(t) = x.bound {
            if let Some(ThreadState::Receiving(ep)) = self.threads.get(t).map(|th| th.state) {
                let word = core::mem::take(&mut x.word) | bits;
                if let Some(e) = self.endpoints.get_mut(ep) {
                    e.receivers.retain(|r| *r != t);
                }
                self.threads.get_mut(t)?.ctx.set_msg_regs(&ipc::msg::notified_regs(word));
                return Some(t);
            }
        }
        let (t, word) = self.notifications.get_mut(n)?.signal(bits)?;
        self.threads.get_mut(t)?.ctx.set_result(0, [word, 0, 0, 0]);
        Some(t)
    }

    /// Wakes thread `t`, whose wait thread `by`, running on CPU `c`, ended
    /// (its signal): on `c` too, it runs at once in `by`'s place (`by` goes
    /// to the run queue), unless its payer's domain is over its cap; on
    /// another CPU, as [`Self::wake`] does. See `sched`'s docs on hand-over.
    pub fn wake_by(&mut self, t: Ref, by: Ref, c: usize) {
        let waits = |s| !matches!(s, ThreadState::Dead | ThreadState::Runnable | ThreadState::Running(_));
        let Some(th) = self.threads.get(t) else { return };
        if th.cpu != c || !waits(th.state) || self.current[c] != Some(by) {
            return self.wake(t);
        }
        // Whether it may run ([`super::sched::may_run`]), on the lookup above.
        let own = th.domain;
        let Some(d) = super::sched::payer_of(self, t, th).map(|p| p.domain) else { return self.wake(t) };
        if !super::sched::eligible(self, own, d) {
            return self.wake(t);
        }
        if !self.threads.get(by).is_some_and(|th| th.state == ThreadState::Running(c)) {
            return self.wake(t);
        }
        self.enqueue(c, by);
        let Some(th) = self.threads.get_mut(t) else { return };
        th.state = ThreadState::Running(c);
        self.handed[c] = Some(HandOver { to: t, by, rip: th.ctx.rip, rsp: th.ctx.rsp });
        self.current[c] = Some(t);
    }

    /// Ends thread `t`'s wait with `err` (its peer is gone).
    pub fn fail_wait(&mut self, t: Ref, err: Error) {
        if let Some(th) = self.threads.get_mut(t) {
            th.ctx.set_msg_regs(&[0; ipc::msg::REGS]);
            th.ctx.set_result(err.code(), [0; 4]);
        }
        self.wake(t);
    }

    /// Wakes, with `PeerDead`, every thread of another domain whose wait
    /// depends on domain `d`: callers of its threads, callers queued on its
    /// endpoints, waiters on its notifications.
    pub(super) fn release_waiters_of(&mut self, d: Ref) {
        // By slot, acting at each: no list of them on the kernel stack.
        let mut from = 0;
        while let Some(t) = self.threads.next_live(from) {
            from = usize::from(t.index) + 1;
            let Some(th) = self.threads.get(t) else { continue };
            let victim = if th.domain == d {
                th.reply_to // a caller of its thread
            } else {
                let stuck = match th.state {
                    ThreadState::Sending(ep) | ThreadState::Receiving(ep) => {
                        self.endpoints.get(ep).is_some_and(|e| e.owner == d)
                    }
                    ThreadState::AwaitingReply(server) => {
                        self.threads.get(server).is_none_or(|s| s.domain == d)
                    }
                    ThreadState::WaitingForSignal(n) => {
                        self.notifications.get(n).is_some_and(|x| x.owner == d)
                    }
                    _ => false,
                };
                stuck.then_some(t)
            };
            let waiting = victim.and_then(|v| self.threads.get(v)).is_some_and(|th| {
                th.domain != d
                    && matches!(
                        th.state,
                        ThreadState::AwaitingReply(_)
                            | ThreadState::Sending(_)
                            | ThreadState::Receiving(_)
                            | ThreadState::WaitingForSignal(_)
                    )
            });
            if let Some(v) = victim.filter(|_| waiting) {
                self.unqueue(v);
                self.fail_wait(v, Error::PeerDead);
            }
        }
    }

    /// Takes thread `t` out of any endpoint or notification it waits on.
    pub fn unqueue(&mut self, t: Ref) {
        let Some(state) = self.threads.get(t).map(|th| th.state) else { return };
        match state {
            ThreadState::Sending(ep) | ThreadState::Receiving(ep) => {
                if let Some(e) = self.endpoints.get_mut(ep) {
                    e.senders.retain(|x| *x != t);
                    e.receivers.retain(|x| *x != t);
                }
            }
            ThreadState::WaitingForSignal(n) => {
                if let Some(x) = self.notifications.get_mut(n) {
                    x.waiter = x.waiter.filter(|w| *w != t);
                }
            }
            _ => {}
        }
    }

    /// Interrupt line `gsi` fired: mask it until the next wait, and hand it
    /// to the waiting thread or leave it pending.
    pub fn irq_fired(&mut self, gsi: u32) {
        hw::irq::set_masked(gsi, true);
        hw::irq::eoi();
        let Some((_, irq)) = self.irqs.iter_mut().find(|(_, i)| u32::from(i.line) == gsi) else { return };
        if let Some((n, bits)) = irq.bound {
            irq.pending = true;
            self.signal(n, bits);
            return;
        }
        match irq.waiter.take() {
            Some(t) => {
                if let Some(th) = self.threads.get_mut(t) {
                    th.ctx.set_result(0, [0; 4]);
                }
                self.wake(t);
            }
            None => irq.pending = true,
        }
    }

    /// A device's MSI-X vector `vector` arrived: its notification is
    /// signalled (an edge: nothing to mask or acknowledge).
    pub fn msi_fired(&mut self, vector: u8) {
        hw::irq::eoi();
        let to =
            self.devices.iter().find_map(|(_, d)| d.bound.iter().find(|b| b.1 == vector).map(|b| (b.2, b.3)));
        if let Some((n, bits)) = to {
            self.signal(n, bits);
        }
    }
}
