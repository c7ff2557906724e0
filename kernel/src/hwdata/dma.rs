//! A request of a device that the IOMMU blocked, as its unit recorded it
//! (VT-d's fault records, §7.2; AMD-Vi's event log, §2.5), whichever the
//! vendor: what the machine's `poll_faults` reads at the tick and the core
//! charges to the domain holding the device (`state::faults`).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaFault {
    /// The requester, `bus << 8 | device << 3 | function`.
    pub bdf: u16,
    /// The page a DMA asked for; of an interrupt request, its handle
    /// (VT-d) or address (AMD-Vi).
    pub addr: u64,
    /// An interrupt request (else DMA).
    pub irq: bool,
    /// A write (else a read).
    pub write: bool,
    /// The unit's reason (VT-d's fault reason, AMD-Vi's event code).
    pub reason: u8,
}
