//! The hardware interface (`kernel/src/hw/mod.rs`) on the host: its
//! shared data as on the machine, and the fake where the machine has
//! `machine.rs`.

pub use crate::hwdata::{dma, guest, trap};

#[path = "fake.rs"]
pub mod fake;
pub use fake::{console, cpu, frames, io, iommu, irq, kernel, pci, power, space, vm, window};
