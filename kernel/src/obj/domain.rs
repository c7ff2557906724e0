//! A domain: an address space, a capability table, a memory quota, and the
//! domain that supervises it.

use ipc::event::{DomainId, Event};

use super::pool::Ref;
use crate::cap::CapTable;

/// Pages of memory a domain may hold, and holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub used: u64,
}

impl Quota {
    pub const fn free(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Charges `pages`, if they fit.
    pub fn charge(&mut self, pages: u64) -> Result<(), ipc::Error> {
        if pages > self.free() {
            return Err(ipc::Error::QuotaExceeded);
        }
        self.used += pages;
        Ok(())
    }

    pub fn release(&mut self, pages: u64) {
        self.used = self.used.saturating_sub(pages);
    }
}

/// Whether a domain runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainState {
    Running,
    /// Exited or faulted: its threads are stopped, its resources held until
    /// its supervisor destroys it.
    Dead,
}

pub struct Domain {
    /// The root of its address space (PML4).
    pub root: x86_64::PhysAddr,
    pub caps: CapTable,
    pub quota: Quota,
    /// `None` for the root domain, supervised by the kernel.
    pub supervisor: Option<Ref>,
    pub state: DomainState,
    /// Its death, until its supervisor collects it (`DomainWait`). Kept on
    /// the dead domain itself, not in a queue of the supervisor's: no
    /// number of deaths at once can lose one.
    pub death: Option<Event>,
    /// Its thread blocked in `DomainWait`, if any.
    pub waiter: Option<Ref>,
    /// Bumped whenever a mapping is removed: a CPU that last loaded this
    /// address space at an older epoch flushes its TLB before running it.
    pub tlb_epoch: u64,
    /// CPU weight (share under contention).
    pub weight: u16,
    /// Most of one CPU it may use, in percent; 0 for no cap.
    pub cap_percent: u8,
    /// What is left of this cap period's budget, in microseconds.
    pub budget: i64,
    /// When the current cap period ends (TSC).
    pub period_end: u64,
    /// Signalled (notification, bits) when it exits or faults.
    pub notify: Option<(Ref, u64)>,
    /// CPU time its threads have used, in microseconds.
    pub runtime_us: u64,
    /// A guest: `root` is its second-level table (EPT), it has vCPUs, not
    /// threads.
    pub guest: bool,
    /// A guest's interrupt vectors raised and not yet delivered.
    pub pending_irqs: [u64; 4],
    /// Not run until resumed (`DomainPause`, syscall/pause.rs).
    pub paused: bool,
    /// A guest's first doorbell (`obj::virq`), or `Ref::NONE`.
    pub bells: Ref,
    /// Requests of the devices it holds that the IOMMU blocked.
    pub dma_faults: u64,
}

impl Domain {
    pub fn new(root: x86_64::PhysAddr, quota_pages: u64, supervisor: Option<Ref>) -> Self {
        Self {
            root,
            caps: CapTable::new(),
            quota: Quota { limit: quota_pages, used: 0 },
            supervisor,
            state: DomainState::Running,
            death: None,
            waiter: None,
            tlb_epoch: 0,
            weight: crate::policy::DEFAULT_WEIGHT,
            cap_percent: 0,
            budget: 0,
            period_end: 0,
            notify: None,
            runtime_us: 0,
            guest: false,
            pending_irqs: [0; 4],
            paused: false,
            bells: Ref::NONE,
            dma_faults: 0,
        }
    }
}

/// The id a supervisor knows a domain by.
pub fn id(r: Ref) -> DomainId {
    DomainId::new(u32::from(r.index), r.generation)
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/obj/domain.rs"]
mod tests;
