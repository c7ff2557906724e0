//! The IOMMU's faults (`hw::iommu`, read at the tick), each charged to
//! the domain that holds the device that made it (`Domain::dma_faults`,
//! which `DomainInfo` reports to its supervisor) and logged once with the
//! device, the address and that domain: a device's repeat of its last
//! fault (the same address and kind) is counted and not logged again, and
//! past its first few only those at powers of two are
//! (`policy::fault_logged`). A function no domain holds
//! is the segment's, so its faults are the root's.

use super::Kernel;
use crate::hw;
use crate::obj::domain;

impl Kernel {
    /// Takes every fault read since the last call.
    pub fn charge_faults(&mut self) {
        loop {
            let f = match hw::iommu::take_fault() {
                Ok(f) => f,
                Err(0) => return,
                Err(n) => {
                    return log::warn!("iommu: {n} faults came faster than they were read: not charged")
                }
            };
            let dev = self.devices.find(|d| d.function == Some(f.bdf));
            let Some(d) = dev.or_else(|| self.devices.find(|d| d.function.is_none())) else { continue };
            let Some(d) = self.devices.get_mut(d) else { continue };
            let last = d.faults.1.replace((f.addr, f.irq, f.write));
            d.faults.0 = d.faults.0.saturating_add(1);
            let (owner, n) = (d.owner, d.faults.0);
            if let Some(dom) = self.domains.get_mut(owner) {
                dom.dma_faults = dom.dma_faults.saturating_add(1);
            }
            if crate::policy::fault_logged(n) && last != d.faults.1 {
                let (kind, what) = match (f.irq, f.write) {
                    (true, _) => ("interrupt", "request for"),
                    (false, true) => ("DMA", "write at"),
                    (false, false) => ("DMA", "read at"),
                };
                let (bus, dev, func, addr, why) =
                    (f.bdf >> 8, f.bdf >> 3 & 0x1f, f.bdf & 7, f.addr, f.reason);
                let id = domain::id(owner).0;
                log::warn!(
                    "iommu: {kind} fault: device {bus:02x}:{dev:02x}.{func} {what} {addr:#x} blocked \
                    (reason {why:#x}), charged to domain {id:#x} (the device's fault {n})"
                );
            }
        }
    }
}
