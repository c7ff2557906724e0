//! The pure data the core and the machine (`arch`, `virt`) exchange
//! through the hardware interface (`hw`), below both: what an entry from
//! user mode saved (`trap`), a vCPU's entry and exit (`guest`), a device's
//! request the IOMMU blocked (`dma`).

pub mod dma;
pub mod guest;
pub mod trap;
