//! Timers (`obj::timer`): set, cancelled, fired. All of them are on one
//! list in the order they are due, so that a tick looks only at those
//! that are due; and `Kernel::timer_due` is the first's time, so that a
//! tick with none due looks at no timer. Setting one walks the list to its
//! place (no fast path sets timers); a periodic timer that fired goes back
//! in the same way.

use ipc::Error;

use super::{make, refund, Kernel};
use crate::hw;
use crate::obj::pool::Ref;
use crate::obj::timer::Timer;

impl Kernel {
    /// Sets domain `d`'s timer on notification `n` and `bits` to fire at
    /// `due` (TSC), then every `period` ticks (0: once), in place of one it
    /// had on them; made from `d`'s quota.
    pub fn set_timer(&mut self, d: Ref, n: Ref, bits: u64, due: u64, period: u64) -> Result<(), Error> {
        self.cancel_timers(|t| t.owner == d && t.ntfn == n && t.bits == bits);
        self.living(d)?;
        let timer = Timer { owner: d, ntfn: n, bits, due, period, next: Ref::NONE };
        let t = make(&mut self.timers, &mut self.domains, d, timer)?;
        self.enqueue_timer(t);
        Ok(())
    }

    /// Destroys every timer that satisfies `pred`, giving their owners
    /// back what that freed.
    pub fn cancel_timers(&mut self, pred: impl Fn(&Timer) -> bool) {
        let (mut prev, mut at) = (Ref::NONE, self.timer_list);
        while let Some(&t) = self.timers.get(at) {
            if pred(&t) {
                self.link(prev, t.next);
                refund(&mut self.domains, self.timers.remove(at));
            } else {
                prev = at;
            }
            at = t.next;
        }
    }

    /// Fires the timers due at TSC `now`; and, as every timer interrupt
    /// comes here, takes the faults the IOMMU's units recorded at the tick
    /// (`state::faults`).
    #[inline(always)]
    pub fn fire_timers(&mut self, now: u64) {
        if now >= self.timer_due {
            self.fire_due(now);
        }
        if hw::iommu::faulted() {
            self.charge_faults();
        }
    }

    fn fire_due(&mut self, now: u64) {
        while let Some(&t) = self.timers.get(self.timer_list).filter(|t| t.due <= now) {
            let at = self.timer_list;
            self.link(Ref::NONE, t.next);
            let live = self.notifications.get(t.ntfn).is_some();
            if live {
                self.signal(t.ntfn, t.bits);
            }
            match t.after(now).filter(|_| live) {
                Some(due) => {
                    if let Some(x) = self.timers.get_mut(at) {
                        x.due = due;
                    }
                    self.enqueue_timer(at);
                }
                None => {
                    refund(&mut self.domains, self.timers.remove(at));
                }
            }
        }
        self.timer_due = self.timers.get(self.timer_list).map_or(u64::MAX, |t| t.due);
    }

    /// Links unlinked timer `t` into the list, after those due before it
    /// or at its time.
    fn enqueue_timer(&mut self, t: Ref) {
        let Some(due) = self.timers.get(t).map(|x| x.due) else { return };
        let (mut prev, mut at) = (Ref::NONE, self.timer_list);
        while let Some(x) = self.timers.get(at).filter(|x| x.due <= due) {
            prev = at;
            at = x.next;
        }
        if let Some(x) = self.timers.get_mut(t) {
            x.next = at;
        }
        self.link(prev, t);
    }

    /// Makes `to` follow `prev` (`Ref::NONE`: the head of the list).
    fn link(&mut self, prev: Ref, to: Ref) {
        match self.timers.get_mut(prev) {
            Some(p) => p.next = to,
            None => self.timer_list = to,
        }
        self.timer_due = self.timers.get(self.timer_list).map_or(u64::MAX, |t| t.due);
        crate::hw::cpu::timer_due(self.timer_due);
    }
}
