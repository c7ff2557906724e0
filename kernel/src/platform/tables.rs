//! ACPI discovery through the `acpi` crate: the MADT (CPUs, local and I/O
//! APICs), the MCFG (PCIe ECAM) and the IOMMU tables (DMAR, IVRS). The tables
//! are read through the direct map.

use core::ptr::NonNull;

use acpi::madt::{Madt, MadtEntry};
use acpi::mcfg::Mcfg;
use acpi::sdt::{SdtHeader, Signature};
use acpi::{AcpiHandler, AcpiTable, AcpiTables, PhysicalMapping};
use x86_64::PhysAddr;

use super::iommu::{self, Units};
use super::MAX_CPUS;
use crate::mem::kspace::phys_to_virt;

/// ACPI tables are read in place through the direct map.
#[derive(Clone, Copy, Debug)]
struct DirectMap;

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, pa: usize, size: usize) -> PhysicalMapping<Self, T> {
        let va = phys_to_virt(PhysAddr::new(pa as u64)).as_mut_ptr::<T>();
        // SAFETY: the direct map covers every region of the memory map, where
        // firmware keeps its tables; `va` is not null (it is in the upper half).
        unsafe { PhysicalMapping::new(pa, NonNull::new_unchecked(va), size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// A table known only by its header, whose bytes the kernel parses itself.
macro_rules! raw_table {
    ($name:ident, $sig:expr) => {
        #[repr(C, packed)]
        struct $name {
            header: SdtHeader,
        }

        // SAFETY: the type is exactly an SDT header, as `AcpiTable` requires,
        // and its signature is the one it is looked up by.
        unsafe impl AcpiTable for $name {
            const SIGNATURE: Signature = $sig;
            fn header(&self) -> &SdtHeader {
                &self.header
            }
        }
    };
}

raw_table!(Dmar, Signature::DMAR);
raw_table!(Ivrs, Signature::IVRS);

/// The IOMMU the firmware describes.
#[derive(Debug, Default)]
pub enum Iommu {
    #[default]
    None,
    /// Intel VT-d: the DRHD register bases.
    Dmar(Units),
    /// AMD-Vi: the IOMMU register bases.
    Ivrs(Units),
    /// A table is present but malformed.
    Malformed(&'static str, iommu::TableError),
}

/// A PCIe ECAM window.
#[derive(Clone, Copy, Debug)]
pub struct Ecam {
    pub base: u64,
    pub segment: u16,
    pub buses: (u8, u8),
}

/// What the kernel learns from ACPI.
#[derive(Debug, Default)]
pub struct Platform {
    pub lapic_base: u64,
    /// Local APIC ids of the CPUs that are enabled, in MADT order.
    pub cpus: heapless::Vec<u32, MAX_CPUS>,
    /// Enabled CPUs beyond `MAX_CPUS`, left offline.
    pub cpus_ignored: usize,
    /// I/O APICs: (id, register base, first GSI).
    pub io_apics: heapless::Vec<(u8, u64, u32), 8>,
    pub ecam: heapless::Vec<Ecam, 4>,
    /// ISA interrupt source overrides: (ISA irq, GSI, MPS INTI flags).
    pub overrides: heapless::Vec<(u8, u32, u16), 16>,
    pub iommu: Iommu,
}

impl Platform {
    /// How GSI `gsi` is triggered: (level, active low). ISA lines are edge
    /// and active high unless overridden; lines from 16 up are PCI's, level
    /// and active low (ACPI 6.5 5.2.12.5).
    pub fn trigger(&self, gsi: u32) -> (bool, bool) {
        match self.overrides.iter().find(|o| o.1 == gsi) {
            // The MPS INTI flags: trigger mode (3:2) and polarity (1:0),
            // 0b11 meaning level and active low.
            Some(&(_, _, flags)) => ((flags >> 2) & 0b11 == 0b11, flags & 0b11 == 0b11),
            None => (gsi >= 16, gsi >= 16),
        }
    }
}

/// Why ACPI could not be read.
#[derive(Debug)]
pub enum AcpiError {
    NoRsdp,
    Tables(acpi::AcpiError),
}

/// Reads the tables, from the RSDP the boot loader found (`rsdt` with the
/// ACPI revision), else by scanning the BIOS areas.
pub fn discover(rsdt: Option<(u8, u64)>) -> Result<Platform, AcpiError> {
    // SAFETY: the RSDT/XSDT address comes from an RSDP whose checksum the boot
    // loader verified; the BIOS scan reads only the direct-mapped first MiB.
    let tables = unsafe {
        match rsdt {
            Some((rev, addr)) => AcpiTables::from_rsdt(DirectMap, rev, addr as usize),
            None => AcpiTables::search_for_rsdp_bios(DirectMap),
        }
    }
    .map_err(AcpiError::Tables)?;
    let madt = tables.find_table::<Madt>().map_err(AcpiError::Tables)?;
    let mut p = Platform { lapic_base: u64::from(madt.get().local_apic_address), ..Platform::default() };
    for entry in madt.get().entries() {
        let cpu = match entry {
            // Bit 0: enabled; bit 1: online capable (ACPI 6.3 5.2.12.2).
            MadtEntry::LocalApic(e) if e.flags & 0b11 != 0 => Some(u32::from(e.apic_id)),
            MadtEntry::LocalX2Apic(e) if e.flags & 0b11 != 0 => Some(e.x2apic_id),
            MadtEntry::IoApic(e) => {
                let (id, base) = (e.io_apic_id, u64::from(e.io_apic_address));
                let _ = p.io_apics.push((id, base, e.global_system_interrupt_base));
                None
            }
            MadtEntry::InterruptSourceOverride(e) if e.bus == 0 => {
                let _ = p.overrides.push((e.irq, e.global_system_interrupt, e.flags));
                None
            }
            MadtEntry::LocalApicAddressOverride(e) => {
                p.lapic_base = e.local_apic_address;
                None
            }
            _ => None,
        };
        if let Some(id) = cpu {
            if !p.cpus.contains(&id) && p.cpus.push(id).is_err() {
                p.cpus_ignored += 1;
            }
        }
    }
    if let Ok(mcfg) = tables.find_table::<Mcfg>() {
        for e in mcfg.entries() {
            let (base, segment) = (e.base_address, e.pci_segment_group);
            let _ = p.ecam.push(Ecam { base, segment, buses: (e.bus_number_start, e.bus_number_end) });
        }
    }
    p.iommu = if let Ok(t) = tables.find_table::<Dmar>() {
        iommu::parse_dmar(bytes(&t)).map_or_else(|e| Iommu::Malformed("DMAR", e), Iommu::Dmar)
    } else if let Ok(t) = tables.find_table::<Ivrs>() {
        iommu::parse_ivrs(bytes(&t)).map_or_else(|e| Iommu::Malformed("IVRS", e), Iommu::Ivrs)
    } else {
        Iommu::None
    };
    Ok(p)
}

/// A whole table as bytes, as long as its header says.
fn bytes<T: AcpiTable>(t: &PhysicalMapping<DirectMap, T>) -> &[u8] {
    // SAFETY: `find_table` validated the header through this mapping.
    let len = unsafe { t.virtual_start().as_ref() }.header().length as usize;
    // SAFETY: `find_table` validated the header (signature, checksum over
    // `length` bytes), so `length` bytes are mapped at the table's address.
    unsafe { core::slice::from_raw_parts(t.virtual_start().as_ptr().cast::<u8>(), len) }
}
