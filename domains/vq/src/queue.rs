//! A split virtqueue's device side (virtio 1.2 §2.7): the device's own
//! copies of the indices, popping available chains and pushing used
//! entries, and notification suppression both ways.

use core::sync::atomic::{fence, Ordering};

use crate::mem::{read_u16, write_u16};
use crate::{Chain, Error, Fault, GuestMemory, Layout, F_EVENT_IDX, F_INDIRECT_DESC};

/// `VIRTQ_AVAIL_F_NO_INTERRUPT`: the driver asks for no interrupts.
const NO_INTERRUPT: u16 = 1;
/// `VIRTQ_USED_F_NO_NOTIFY`: the device asks for no kicks.
const NO_NOTIFY: u16 = 1;

/// The head of a chain the device took and owes a used entry for. Not
/// `Clone`: each head is completed once, by [`Queue::push`].
#[derive(Debug, PartialEq, Eq)]
pub struct Head(pub(crate) u16);

impl Head {
    pub fn index(&self) -> u16 {
        self.0
    }
}

/// One queue, from the moment the driver enabled it (for virtio-pci,
/// `queue_enable`) until the device resets.
#[derive(Clone, Debug)]
pub struct Queue {
    layout: Layout,
    event_idx: bool,
    indirect: bool,
    /// The next available entry the device takes.
    next_avail: u16,
    /// The last available index read from the guest (entries before it
    /// were checked to be at most `size` ahead of `next_avail`).
    avail_idx: u16,
    /// The device's used index (only the device writes it).
    used_idx: u16,
    /// The used index when [`Queue::needs_interrupt`] was last asked.
    signalled: u16,
    /// Set by a fault the queue cannot recover from: every later call
    /// says it again, until the device resets.
    broken: Option<Fault>,
}

impl Queue {
    /// The queue the driver laid out as `layout`, with the negotiated
    /// `features` (only [`F_EVENT_IDX`] and [`F_INDIRECT_DESC`] matter here),
    /// its indices at 0 as after a reset.
    pub fn new(layout: Layout, features: u64, mem: &impl GuestMemory) -> Result<Self, Fault> {
        layout.check(mem)?;
        Ok(Queue {
            layout,
            event_idx: features & F_EVENT_IDX != 0,
            indirect: features & F_INDIRECT_DESC != 0,
            next_avail: 0,
            avail_idx: 0,
            used_idx: 0,
            signalled: 0,
            broken: None,
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The next available entry the device takes (what a restarted backend
    /// resumes from, beside the requests in flight).
    pub fn next_avail(&self) -> u16 {
        self.next_avail
    }

    pub fn used_idx(&self) -> u16 {
        self.used_idx
    }

    /// Why the queue needs a reset, if it does.
    pub fn broken(&self) -> Option<Fault> {
        self.broken
    }

    fn fail(&mut self, fault: Fault) -> Fault {
        self.broken = Some(fault);
        fault
    }

    /// Reads the available index once and checks it against the device's.
    fn read_avail_idx(&mut self, mem: &impl GuestMemory) -> Result<u16, Fault> {
        if let Some(f) = self.broken {
            return Err(f);
        }
        let Some(idx) = read_u16(mem, self.layout.avail + 2) else {
            return Err(self.fail(Fault::Memory));
        };
        if idx.wrapping_sub(self.next_avail) > self.layout.size {
            return Err(self.fail(Fault::AvailIndexJump));
        }
        self.avail_idx = idx;
        Ok(idx)
    }

    /// The next available chain, checked, if the driver made one
    /// available; `Ok(None)` if not. A chain with a valid head that breaks a
    /// rule is taken and refused with that head (the backend completes it);
    /// one without, and an index jump, break the queue.
    pub fn pop<const N: usize>(&mut self, mem: &impl GuestMemory) -> Result<Option<(Head, Chain<N>)>, Error> {
        if let Some(fault) = self.broken {
            return Err(Error { fault, head: None });
        }
        if self.next_avail == self.avail_idx {
            let idx = self.read_avail_idx(mem).map_err(|fault| Error { fault, head: None })?;
            if idx == self.next_avail {
                return Ok(None);
            }
        }
        // The entries the index covers are read only after it (§2.7.13.3).
        fence(Ordering::Acquire);
        let size = self.layout.size;
        let slot = self.layout.avail + 4 + 2 * u64::from(self.next_avail % size);
        let Some(head) = read_u16(mem, slot) else {
            return Err(Error { fault: self.fail(Fault::Memory), head: None });
        };
        self.next_avail = self.next_avail.wrapping_add(1);
        if head >= size {
            return Err(Error { fault: self.fail(Fault::HeadOutOfRange), head: None });
        }
        match Chain::walk(mem, self.layout.desc, size, head, self.indirect) {
            Ok(chain) => Ok(Some((Head(head), chain))),
            Err(fault) => Err(Error { fault, head: Some(Head(head)) }),
        }
    }

    /// Completes `head` with `len` bytes written into its chain (§2.7.8).
    pub fn push(&mut self, mem: &impl GuestMemory, head: Head, len: u32) -> Result<(), Fault> {
        if let Some(f) = self.broken {
            return Err(f);
        }
        let size = self.layout.size;
        let entry = self.layout.used + 4 + 8 * u64::from(self.used_idx % size);
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&u32::from(head.0).to_le_bytes());
        e[4..].copy_from_slice(&len.to_le_bytes());
        if !mem.write(entry, &e) {
            return Err(self.fail(Fault::Memory));
        }
        self.used_idx = self.used_idx.wrapping_add(1);
        // The entry is seen before the index that covers it (§2.7.13.3.1).
        fence(Ordering::Release);
        if !write_u16(mem, self.layout.used + 2, self.used_idx) {
            return Err(self.fail(Fault::Memory));
        }
        Ok(())
    }

    /// Whether the driver wants an interrupt for the entries pushed since
    /// the last time this was asked (§2.7.7.2, §2.7.10): with EVENT_IDX if
    /// the used index passed `used_event`, else unless the driver set
    /// NO_INTERRUPT. Never for nothing new.
    pub fn needs_interrupt(&mut self, mem: &impl GuestMemory) -> Result<bool, Fault> {
        if let Some(f) = self.broken {
            return Err(f);
        }
        // The used index is published before the driver's wish is read; the
        // driver writes its wish before it reads the used index.
        fence(Ordering::SeqCst);
        let (old, new) = (self.signalled, self.used_idx);
        if old == new {
            return Ok(false);
        }
        let want = if self.event_idx {
            let Some(event) = read_u16(mem, self.layout.used_event()) else {
                return Err(self.fail(Fault::Memory));
            };
            // vring_need_event: the entry after `event` is one of those
            // pushed since the last check (`event` in [old, new)).
            new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
        } else {
            let Some(flags) = read_u16(mem, self.layout.avail) else {
                return Err(self.fail(Fault::Memory));
            };
            flags & NO_INTERRUPT == 0
        };
        // Either way the driver's wish covered these entries: a suppressed
        // interrupt is not owed later (the driver polls, or asks again).
        self.signalled = new;
        Ok(want)
    }

    /// Asks the driver for a kick at the next available chain (§2.7.10:
    /// `avail_event` with EVENT_IDX, else NO_NOTIFY cleared); true if one is
    /// already available, so that the backend polls again instead of
    /// sleeping through it.
    pub fn enable_notifications(&mut self, mem: &impl GuestMemory) -> Result<bool, Fault> {
        if let Some(f) = self.broken {
            return Err(f);
        }
        let ok = if self.event_idx {
            write_u16(mem, self.layout.avail_event(), self.next_avail)
        } else {
            write_u16(mem, self.layout.used, 0)
        };
        if !ok {
            return Err(self.fail(Fault::Memory));
        }
        // The wish is published before the available index is read again;
        // the driver publishes its index before it reads the wish.
        fence(Ordering::SeqCst);
        Ok(self.read_avail_idx(mem)? != self.next_avail)
    }

    /// Tells the driver it need not kick while the backend polls (NO_NOTIFY;
    /// with EVENT_IDX `avail_event` is left behind, which asks for nothing
    /// until the device moves it again).
    pub fn disable_notifications(&mut self, mem: &impl GuestMemory) -> Result<(), Fault> {
        if let Some(f) = self.broken {
            return Err(f);
        }
        if !self.event_idx && !write_u16(mem, self.layout.used, NO_NOTIFY) {
            return Err(self.fail(Fault::Memory));
        }
        Ok(())
    }
}
