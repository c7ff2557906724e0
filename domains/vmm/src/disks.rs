//! A guest's disks as its platform serves them: the PCI bus with one
//! virtio-blk function per disk ([`crate::pci`]), and, once the driver
//! set DRIVER_OK, each enabled queue as a `vq::Queue` that a kick has
//! served ([`Disks::serve`]).
//!
//! Who serves the queue, in this first slice (design choice, until the
//! blk domain serves guests' queues itself, issue 13): the VMM, from the
//! storage its caller passes ([`vq::blk::Disk`]), on the exit of the
//! guest's OUT to the queue's notify register. A queue that breaks
//! (an index jump, a head outside the table) sets DEVICE_NEEDS_RESET and
//! sends the configuration interrupt; a bad chain is completed with a used
//! length of 0 and the queue goes on. One kick serves at most a queue's
//! size of chains, then the guest's next kick (or, with EVENT_IDX, the
//! `avail_event` the device moved) brings the rest.

use crate::msix::Message;
use crate::pci::{Bus, MAX_FUNCTIONS};
use crate::virtio_blk::{Disk, SEG_MAX};
use crate::virtio_pci::Event;
use vq::GuestMemory;

/// The most segments of a request: header, data, status.
const SEGMENTS: usize = SEG_MAX as usize + 2;

/// What a kick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    /// Chains taken (good or bad).
    pub chains: u32,
    /// The interrupt to send, if the driver wants one.
    pub irq: Option<Message>,
}

#[derive(Clone, Debug)]
pub struct Disks {
    list: heapless::Vec<Disk, MAX_FUNCTIONS>,
    bus: Bus,
    /// Each function's live queue (one queue a function).
    queues: [Option<vq::Queue>; MAX_FUNCTIONS],
}

impl Disks {
    /// The disks of `disks` (at most [`MAX_FUNCTIONS`]; more are left off).
    pub fn new(disks: &[Disk]) -> Self {
        let list = disks.iter().take(MAX_FUNCTIONS).copied().collect();
        Disks { list, bus: Bus::new(disks), queues: Default::default() }
    }

    /// As after power-on (the machine's reset): BARs where firmware put
    /// them, every function reset, no queue live.
    pub fn reset(&mut self) {
        *self = Disks::new(&self.list);
    }

    pub fn bus(&mut self) -> &mut Bus {
        &mut self.bus
    }

    /// Whether `port` is the bus's: its configuration ports or a notify BAR.
    pub fn owns_port(&self, port: u16) -> bool {
        Bus::owns_port(port) || self.bus.io_target(port).is_some()
    }

    /// Whether guest-physical `gpa` is in a function's BAR 0.
    pub fn owns_gpa(&self, gpa: u64) -> bool {
        self.bus.mmio_target(gpa).is_some()
    }

    /// An IN (a notify register reads 0).
    pub fn port_in(&self, port: u16, size: u8) -> u32 {
        if Bus::owns_port(port) {
            self.bus.port_read(port, size)
        } else {
            0
        }
    }

    /// An OUT: the interrupts it sends, and the (function, queue) it kicks.
    pub fn port_out(
        &mut self,
        port: u16,
        size: u8,
        value: u32,
    ) -> (heapless::Vec<Message, 8>, Option<(usize, u16)>) {
        if Bus::owns_port(port) {
            return (self.bus.port_write(port, size, value).irqs, None);
        }
        (heapless::Vec::new(), self.bus.notify(port, size))
    }

    pub fn mmio_read(&mut self, gpa: u64, size: u8) -> u64 {
        self.bus.mmio_read(gpa, size)
    }

    /// A write to a BAR 0: the interrupts it sends. DRIVER_OK makes the
    /// enabled queue live, a reset drops it.
    pub fn mmio_write(
        &mut self,
        gpa: u64,
        size: u8,
        value: u64,
        ram: &impl GuestMemory,
    ) -> heapless::Vec<Message, 8> {
        let (f, e) = self.bus.mmio_write(gpa, size, value, ram);
        let Some(f) = f else { return e.irqs };
        match e.event {
            Some(Event::Live) => {
                let c = self.bus.functions()[f].common();
                let q = c.queue(0).filter(|q| q.enabled).map(|q| q.layout());
                // The layout was checked at enable; `new` checks it again.
                self.queues[f] = q.and_then(|l| vq::Queue::new(l, c.features(), ram).ok());
            }
            Some(Event::Reset) => self.queues[f] = None,
            _ => {}
        }
        e.irqs
    }

    /// Serves queue `q` of function `f` from `disk` after a kick.
    pub fn serve(
        &mut self,
        f: usize,
        q: u16,
        ram: &impl GuestMemory,
        disk: &mut impl vq::blk::Disk,
    ) -> Served {
        let mut served = Served::default();
        let Some(queue) = self.queues.get_mut(f).and_then(Option::as_mut).filter(|_| q == 0) else {
            return served;
        };
        let mut broken = false;
        let limit = u32::from(queue.layout().size);
        'kick: loop {
            while served.chains < limit {
                match queue.pop::<SEGMENTS>(ram) {
                    Ok(Some((head, chain))) => {
                        let len = vq::blk::serve(&chain, ram, disk);
                        broken |= queue.push(ram, head, len).is_err();
                    }
                    Ok(None) => break,
                    Err(vq::Error { head: Some(head), .. }) => broken |= queue.push(ram, head, 0).is_err(),
                    Err(vq::Error { head: None, .. }) => broken = true,
                }
                if broken {
                    break 'kick;
                }
                served.chains += 1;
            }
            // Ask for the next kick; if chains came meanwhile, serve them.
            match queue.enable_notifications(ram) {
                Ok(true) if served.chains < limit => continue,
                Ok(_) => break,
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        let function = &mut self.bus.functions()[f];
        if broken {
            served.irq = function.needs_reset();
            self.queues[f] = None;
        } else if queue.needs_interrupt(ram).unwrap_or(false) {
            served.irq = function.queue_interrupt(q);
        }
        served
    }
}

#[cfg(test)]
mod tests;
