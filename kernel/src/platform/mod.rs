//! What the firmware says about the machine: ACPI tables (CPUs, interrupt
//! controllers, PCIe configuration space, IOMMUs).

/// The most CPUs this kernel drives; more in the MADT are left offline.
pub const MAX_CPUS: usize = 64;

pub mod amdvi;
pub mod iommu;
pub mod vtd;

#[cfg(target_os = "none")]
pub mod tables;
