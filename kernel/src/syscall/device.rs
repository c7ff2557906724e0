//! Device verbs: a PCI function assigned, its configuration space read and written through the kernel.

use ipc::syscall::{UserAddr, Width, MEMORY_MAX_PAGES};
use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::cap::Cap;
use crate::hw;
use crate::hw::trap::vector::{MSI_BASE, MSI_COUNT};
use crate::mem::paging::{MapError, MapFlags};
use crate::obj::device::{self, Device, DmaSpace};
use crate::obj::ioports::IoPorts;
use crate::obj::pool::Ref;
use crate::state::Kernel;

/// PCI Local Bus 3.0 §6.2.1: no function answers with vendor ID FFFFh;
/// the header type's low 7 bits say the layout (0: a function, 1: a bridge).
const ABSENT: u32 = 0xffff;
const HEADER_TYPE: u16 = 0x0e;

pub fn create(
    k: &mut Kernel,
    c: Caller,
    pci: CapSlot,
    domain: CapSlot,
    function: u16,
    dma: bool,
) -> Result<Next, Error> {
    let seg = k.cap(c.domain, pci, ObjectType::Device, Rights::CONTROL)?.obj.at;
    if k.devices.get(seg).ok_or(Error::StaleCapability)?.function.is_some() {
        return Err(Error::InsufficientRights);
    }
    let owner = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    k.living(owner)?;
    if k.devices.find(|d| d.function == Some(function)).is_some() {
        return Err(Error::Busy);
    }
    let read = |offset| hw::pci::read(function, offset, Width::Byte);
    if hw::pci::read(function, 0, Width::Word) == ABSENT || read(HEADER_TYPE) & 0x7f != 0 {
        return Err(Error::NotSupported);
    }
    hw::pci::stop_dma(function);
    let bars =
        device::size_bars(|o, w| hw::pci::read(function, o, w), |o, w, v| hw::pci::write(function, o, w, v));
    let dev = k.add_device(Device::function(function, owner, dma, read).with_bars(bars))?;
    if dma {
        // Its own DMA space where an IOMMU translates, its domain id its place.
        let did = dev.index + 1;
        let space = hw::iommu::attach(function, did).inspect_err(|_| k.destroy_device(dev))?;
        if let Some((root, frames)) = space {
            k.domain_mut(owner)?.quota.used += frames;
            k.devices.get_mut(dev).ok_or(Error::StaleCapability)?.space =
                Some(DmaSpace { root, did, next: device::IOVA_BASE, maps: heapless::Vec::new() });
        }
    }
    let s = k.give_or(
        c.domain,
        Cap::new(ObjectType::Device, dev, Rights::READ | Rights::WRITE | Rights::GRANT),
        |k| k.destroy_device(dev),
    )?;
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

/// The device `slot` names, a function (not the segment), with `rights`:
/// its place, the function, the Device.
fn function(k: &Kernel, c: Caller, slot: CapSlot, rights: Rights) -> Result<(Ref, u16, &Device), Error> {
    let at = k.cap(c.domain, slot, ObjectType::Device, rights)?.obj.at;
    let dev = k.devices.get(at).ok_or(Error::StaleCapability)?;
    Ok((at, dev.function.ok_or(Error::InsufficientRights)?, dev))
}

pub fn config_read(
    k: &mut Kernel,
    c: Caller,
    dev: CapSlot,
    offset: u16,
    width: Width,
) -> Result<Next, Error> {
    let (_, f, _) = function(k, c, dev, Rights::READ)?;
    Ok(Next::Return([u64::from(hw::pci::read(f, offset, width)), 0, 0, 0]))
}

pub fn config_write(
    k: &mut Kernel,
    c: Caller,
    dev: CapSlot,
    offset: u16,
    width: Width,
    value: u32,
) -> Result<Next, Error> {
    let (_, f, d) = function(k, c, dev, Rights::WRITE)?;
    if !d.writable(offset, width as u16) {
        return Err(Error::InsufficientRights);
    }
    hw::pci::write(f, offset, width, d.filtered(offset, width as u16, value));
    Ok(Next::Return([0; 4]))
}

/// The function `slot` names (READ and WRITE), its holder the caller: the
/// Device's owner, whose death ends the Device and its mappings together.
fn held(k: &Kernel, c: Caller, slot: CapSlot) -> Result<(Ref, u16, &Device), Error> {
    let held = function(k, c, slot, Rights::READ | Rights::WRITE)?;
    if held.2.owner != c.domain {
        return Err(Error::InsufficientRights);
    }
    Ok(held)
}

pub fn map(k: &mut Kernel, c: Caller, dev: CapSlot, bar: u8, va: UserAddr) -> Result<Next, Error> {
    let (_, _, d) = held(k, c, dev)?;
    let (b, msix) = (d.bars[usize::from(bar)], d.msix);
    device::placement(&b)?;
    if b.size / 4096 > MEMORY_MAX_PAGES {
        return Err(Error::NotSupported);
    }
    if hw::frames::names_memory(b.base, b.base + b.size) {
        return Err(Error::BadAddress);
    }
    let kernels = |page: u64| msix.is_some_and(|m| m.covers(bar, page * 4096));
    let flags = MapFlags::WRITE | MapFlags::UNCACHED;
    let base = x86_64::PhysAddr::new(b.base);
    k.map_pages(c.domain, va.get(), base, b.size / 4096, flags, kernels).map_err(|(e, _)| e)?;
    Ok(Next::Return([b.size, 0, 0, 0]))
}

/// The lowest port an I/O BAR may take: below are the ISA devices, the
/// kernel's serial port, PIT and PICs among them.
const FIRST_PORT: u64 = 0x1000;

pub fn ports(k: &mut Kernel, c: Caller, dev: CapSlot, bar: u8) -> Result<Next, Error> {
    let b = held(k, c, dev)?.2.bars[usize::from(bar)];
    if b.size == 0 || !b.io {
        return Err(Error::NotSupported);
    }
    if b.base < FIRST_PORT || b.base + b.size > 0x1_0000 {
        return Err(Error::BadAddress);
    }
    let p = k.add_ioports(IoPorts { base: b.base as u16, count: b.size as u16, owner: c.domain })?;
    let s = k.give_or(c.domain, Cap::new(ObjectType::IoPorts, p, Rights::READ | Rights::WRITE), |k| {
        k.destroy_ioports(p)
    })?;
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

pub fn irq_bind(
    k: &mut Kernel,
    c: Caller,
    dev: CapSlot,
    entry: u16,
    ntfn: CapSlot,
    bits: u64,
) -> Result<Next, Error> {
    let n = k.cap(c.domain, ntfn, ObjectType::Notification, Rights::WRITE)?.obj.at;
    let (at, f, d) = held(k, c, dev)?;
    let m = d.msix.ok_or(Error::NotSupported)?;
    let pa = m.entry(&d.bars, entry).ok_or(Error::NotSupported)?;
    let table = d.bars[usize::from(m.table.0)];
    device::placement(&table)?;
    if hw::frames::names_memory(table.base, table.base + table.size) {
        return Err(Error::NotSupported);
    }
    if d.bound.iter().any(|b| b.0 == entry) {
        return Err(Error::Busy);
    }
    if d.bound.is_full() {
        return Err(Error::OutOfObjects);
    }
    let used = |v: u8| k.devices.iter().any(|(_, x)| x.bound.iter().any(|b| b.1 == v));
    let vector = (MSI_BASE..MSI_BASE + MSI_COUNT).find(|&v| !used(v)).ok_or(Error::OutOfObjects)?;
    let message = hw::irq::msi_message(vector, f).ok_or(Error::OutOfObjects)?;
    if !hw::pci::msix_write(pa, message) {
        hw::irq::msi_unroute(vector);
        return Err(Error::OutOfObjects);
    }
    let d = k.devices.get_mut(at).ok_or(Error::StaleCapability)?;
    let _ = d.bound.push((entry, vector, n, bits)); // checked not full above
    let control = m.cap + 2;
    let on = device::msix_control(hw::pci::read(f, control, Width::Word), true);
    hw::pci::write(f, control, Width::Word, on);
    Ok(Next::Return([0; 4]))
}

/// Lets the device reach memory `memory` of its owner: at the IOVA the
/// kernel picks in its DMA space under the IOMMU (the unit told to forget
/// what it cached), or, with no IOMMU, at its physical address (a device
/// given `unconfined_dma`).
pub fn dma(k: &mut Kernel, c: Caller, dev: CapSlot, memory: CapSlot) -> Result<Next, Error> {
    let m = k.cap(c.domain, memory, ObjectType::Memory, Rights::WRITE)?.obj.at;
    let (at, f, d) = held(k, c, dev)?;
    let mem = k.memory.get(m).ok_or(Error::StaleCapability)?;
    if !d.dma || mem.owner != c.domain || mem.backing != crate::obj::memory::Backing::Allocated {
        return Err(Error::InsufficientRights);
    }
    let (base, pages) = (mem.base, mem.pages);
    let Some(space) = &d.space else { return Ok(Next::Return([base.as_u64(), pages * 4096, 0, 0])) };
    let (root, did, iova) = (space.root, space.did, space.place(m, pages)?);
    // Worst case for the tables this may add.
    if k.domain(c.domain)?.quota.free() < 3 + pages.div_ceil(512) + pages.div_ceil(512 * 512) {
        return Err(Error::QuotaExceeded);
    }
    let map = |n, p| Ok::<_, MapError>(n + hw::iommu::map(root, iova + p * 4096, base + p * 4096)?);
    let Ok(taken) = (0..pages).try_fold(0, map) else {
        // Out of frames for tables: none of it was reachable yet.
        (0..pages).for_each(|p| hw::iommu::unmap(root, iova + p * 4096));
        return Err(Error::QuotaExceeded);
    };
    k.domain_mut(c.domain)?.quota.used += taken;
    let _ = hw::iommu::flush(f, did); // a unit may cache absent entries (CAP.CM)
    let space = k.devices.get_mut(at).and_then(|d| d.space.as_mut()).ok_or(Error::StaleCapability)?;
    space.next = iova + (pages + 1) * 4096;
    let _ = space.maps.push((m, iova, pages)); // `place` checked there is room
    Ok(Next::Return([iova, pages * 4096, 0, 0]))
}
