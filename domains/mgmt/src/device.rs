//! Handing a PCI function to the domain the system file names: a Device
//! object made from `mgmt`'s `pci` for that domain (so that it dies with
//! it, its DMA stopped), its IDs checked against the file's `model`.

use ipc::manifest::PciAddress;
use ipc::syscall::Width;
use ipc::Rights;
use user::{sys, CapSlot, Caps};

use crate::spawn::{failed, Env, Failure, Instance};

/// PCI Local Bus 3.0 §6.2.1: vendor ID at 0, device ID at 2.
const IDS: u16 = 0x00;

/// Makes function `pci` the instance's, granted to it; returns the slot
/// in its table. Says in the log what it gave, and whether its DMA is
/// confined (not yet: no IOMMU is programmed).
pub fn give(
    env: &Env,
    inst: &mut Instance,
    name: &str,
    pci: PciAddress,
    ids: Option<(u16, u16)>,
    dma: bool,
) -> Result<CapSlot, Failure> {
    let segment = env.start.slot("pci").ok_or(Failure::Unavailable("PCI configuration space (no ECAM)"))?;
    let function = u16::from(pci.bus) << 8 | u16::from(pci.device) << 3 | u16::from(pci.function);
    let dev = sys::device_create(segment, inst.domain, function, dma).map_err(failed("making a device"))?;
    inst.hold(dev);
    let found = sys::device_config_read(dev, IDS, Width::Dword).map_err(failed("reading a device's IDs"))?;
    let (vendor, device) = (found as u16, (found >> 16) as u16);
    if ids.is_some_and(|want| want != (vendor, device)) {
        log::warn!("{name}: device {pci} is {vendor:04x}:{device:04x}, not the model the system file says");
        return Err(Failure::Unavailable("the device the system file names"));
    }
    if dma {
        log::info!("{name}: device {pci} ({vendor:04x}:{device:04x}) given with DMA (confined where the kernel programs an IOMMU; unconfined_dma: even where it does not)");
    } else {
        log::info!("{name}: device {pci} ({vendor:04x}:{device:04x}) given without DMA (no IOMMU confines it; unconfined_dma = true allows it)");
    }
    sys::cap_grant(inst.domain, dev, Rights::READ | Rights::WRITE).map_err(failed("granting a device"))
}
