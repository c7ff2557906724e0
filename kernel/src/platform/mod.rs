//! What the firmware says about the machine: ACPI tables (CPUs, interrupt
//! controllers, PCIe configuration space, IOMMUs).

pub mod iommu;

#[cfg(target_os = "none")]
pub mod tables;
