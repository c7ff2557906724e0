//! The ACPI tables a Linux guest boots with (ACPI 6.5, chapter 5), built
//! with the `acpi_tables` crate (rust-vmm; `no_std` with `alloc`: the VMM
//! needs a heap of a few KiB to build them): an RSDP (revision 2) →
//! XSDT → FADT and MADT, the FADT → DSDT.
//!
//! - FADT: hardware-reduced ACPI (DESIGN.md §5: Linux then uses no PIT,
//!   HPET or 8259, and needs no SCI, PM1 or GPE blocks), no 8042 and no
//!   VGA (`iapc_boot_arch`: Linux then probes neither), a CMOS RTC whose
//!   century is CMOS byte 0x32 (`CENTURY`, [`crate::rtc::CENTURY`]); the
//!   ACPI PM timer at 0x608 (`PM_TMR_BLK` and `X_PM_TMR_BLK`, 32 bits:
//!   `TMR_VAL_EXT`; [`crate::pmtimer`]), which Linux reads in a
//!   hardware-reduced FADT too: it is the continuous clock its clocksource
//!   watchdog checks the TSC against. Without it the watchdog is
//!   `refined-jiffies`, so the TSC is never valid for high-resolution
//!   timers, the tick stays periodic, and a tick that comes later than
//!   the next one was due (a guest's timer interrupt delayed on the host
//!   by a few ms) is dropped from jiffies: `linux_boot_one` saw 512 ms of
//!   jiffies in 640 ms of TSC, and Linux marked the TSC unstable; the
//!   sleep control and status registers at [`SLEEP_CONTROL_PORT`] and
//!   [`SLEEP_STATUS_PORT`] (how a hardware-reduced guest powers off:
//!   writing `SLP_TYP` = [`S5_SLP_TYP`] << 2 | `SLP_EN` (bit 5), ACPI 6.5
//!   4.8.3.7), and the reset register a PC has (0xCF9, value 6).
//! - DSDT: `Name (\_S5, Package { 5 })`, the sleep type of soft-off, and
//!   under `\_SB` the ISA devices a hardware-reduced guest can learn of only
//!   from here: `COM1`, the 16550 (`PNP0501`: ports 0x3F8–0x3FF, ISA IRQ 4
//!   edge-triggered active-high, [`UART_IRQ`]) and `RTC`, the CMOS clock
//!   (`PNP0B00`: ports 0x70–0x71, ISA IRQ 8 edge-triggered active-high,
//!   [`RTC_IRQ`]), without which Linux's `rtc_cmos` finds no PNP device,
//!   registers a platform device whose probe fails (-22), and reads no
//!   wall clock.
//!   Without the 8259 (no legacy IRQs: Linux makes no descriptors for IRQs
//!   0–15 and maps none of them to the I/O APIC) an interrupt a driver uses
//!   must be named by a device's `_CRS`, from which Linux maps its GSI:
//!   the 8250 driver's `request_irq` of an ISA port's fixed IRQ 4 fails
//!   otherwise and the console takes no writes from user space. A guest
//!   with disks ([`with_pci`]) also has the PCI host bridge `PCI0`, in a
//!   second `\_SB` scope after these, so that the tables of a guest
//!   without one are as they were.
//! - MADT: the local APIC at 0xFEE0_0000, one processor entry per vCPU
//!   (a Local APIC structure for APIC IDs below 255 and a Local x2APIC
//!   structure from 255, ACPI 6.5 5.2.12.12), the I/O APIC (ID
//!   [`IOAPIC_ID`], at 0xFEC0_0000, GSIs from 0), the interrupt source
//!   override a PC has (ISA IRQ 0, the PIT, on GSI 2) and the NMI on every
//!   processor's LINT1. No PCAT_COMPAT flag: there is no 8259.
//!
//! They lie at [`ACPI_GPA`] in the reserved BIOS area (below 1 MiB, where
//! a kernel also finds the RSDP by scanning 0xE0000–0xFFFFF), the RSDP
//! first, each table 16-byte aligned; the zero page's `acpi_rsdp_addr`
//! points at the RSDP too.

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

use acpi_tables::aml::{
    AddressSpace as Window, AddressSpaceCacheable, Device, EISAName, Interrupt, Name, Package, Path,
    ResourceTemplate, Scope, IO,
};
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{EnabledStatus, IoApic, LocalInterruptController, ProcessorLocalApic, MADT};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use acpi_tables::{Aml, AmlSink};
use zerocopy::{Immutable, IntoBytes};

/// Where the tables go in guest RAM, and the room they have (to 1 MiB).
pub const ACPI_GPA: u64 = 0xE_0000;
pub const ACPI_ROOM: usize = 0x2_0000;
pub const OEM_ID: [u8; 6] = *b"RYOKAN";
pub const OEM_TABLE_ID: [u8; 8] = *b"RYOKANVM";
const OEM_REVISION: u32 = 1;
/// The most vCPUs the tables describe (as [`crate::apic::MAX_VCPUS`]).
pub const MAX_VCPUS: u32 = crate::apic::MAX_VCPUS as u32;

pub const LOCAL_APIC_GPA: u32 = 0xFEE0_0000;
pub const IOAPIC_GPA: u32 = 0xFEC0_0000;
/// The I/O APIC's ID: above every vCPU's APIC ID.
pub const IOAPIC_ID: u8 = MAX_VCPUS as u8;
/// The sleep control and status registers (one byte each, I/O space).
pub const SLEEP_CONTROL_PORT: u16 = 0x600;
pub const SLEEP_STATUS_PORT: u16 = 0x601;
/// The UART's ISA IRQ (GSI, no override) as the DSDT's `COM1` names it.
pub const UART_IRQ: u32 = 4;
/// The CMOS clock's ISA IRQ (GSI, no override) as the DSDT's `RTC` names it.
pub const RTC_IRQ: u32 = 8;
/// The sleep type of S5 (soft-off) in `\_S5`, which the guest writes to
/// the sleep control register's bits 2..=4.
pub const S5_SLP_TYP: u8 = 5;
/// The PC's reset control register and the value that resets (ACPI 6.5
/// 4.8.3.6; PCI's 0xCF9 "hard reset").
pub const RESET_PORT: u16 = 0xCF9;
pub const RESET_VALUE: u8 = 6;
/// `iapc_boot_arch` bit 2: VGA not present (ACPI 6.5 table 5.11). Bits 0
/// (legacy devices) and 1 (8042) stay clear, as does 5 (no CMOS RTC).
pub const BOOT_ARCH_VGA_NOT_PRESENT: u16 = 1 << 2;
/// Tables are 16-byte aligned in the blob.
const ALIGN: usize = 16;

/// MADT structure types (ACPI 6.5 table 5.21).
const MADT_INTERRUPT_OVERRIDE: u8 = 2;
const MADT_LOCAL_APIC_NMI: u8 = 4;
const MADT_LOCAL_X2APIC: u8 = 9;
/// The first APIC ID a Local APIC structure cannot hold (0xFF means all).
const X2APIC_FROM: u32 = 0xFF;

/// The tables as one blob for [`ACPI_GPA`], and where each one is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    pub bytes: Vec<u8>,
    pub rsdp: u64,
    pub xsdt: u64,
    pub fadt: u64,
    pub madt: u64,
    pub dsdt: u64,
}

/// The number of vCPUs is not one the tables can describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadVcpus {
    pub vcpus: u32,
}

impl fmt::Display for BadVcpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} vCPUs: the ACPI tables describe 1 to {MAX_VCPUS}", self.vcpus)
    }
}

/// An Interrupt Source Override (ACPI 6.5 5.2.12.5).
#[repr(C, packed)]
#[derive(Clone, Copy, IntoBytes, Immutable)]
struct InterruptOverride {
    kind: u8,
    length: u8,
    bus: u8,
    source: u8,
    gsi: u32,
    flags: u16,
}

/// A Local APIC NMI structure (ACPI 6.5 5.2.12.7).
#[repr(C, packed)]
#[derive(Clone, Copy, IntoBytes, Immutable)]
struct LocalApicNmi {
    kind: u8,
    length: u8,
    processor_uid: u8,
    flags: u16,
    lint: u8,
}

/// A Processor Local x2APIC structure (ACPI 6.5 5.2.12.12).
#[repr(C, packed)]
#[derive(Clone, Copy, IntoBytes, Immutable)]
struct LocalX2Apic {
    kind: u8,
    length: u8,
    reserved: u16,
    x2apic_id: u32,
    flags: u32,
    processor_uid: u32,
}

macro_rules! aml_as_bytes {
    ($t:ty) => {
        impl Aml for $t {
            fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
                sink.vec(self.as_bytes());
            }
        }
    };
}
aml_as_bytes!(InterruptOverride);
aml_as_bytes!(LocalApicNmi);
aml_as_bytes!(LocalX2Apic);

/// The processor entry for the vCPU with APIC ID (and ACPI UID) `id`.
fn add_processor(madt: &mut MADT, id: u32) {
    match u8::try_from(id) {
        Ok(id8) if id < X2APIC_FROM => {
            madt.add_structure(ProcessorLocalApic::new(id8, id8, EnabledStatus::Enabled))
        }
        _ => madt.add_structure(LocalX2Apic {
            kind: MADT_LOCAL_X2APIC,
            length: 16,
            reserved: 0,
            x2apic_id: id,
            flags: EnabledStatus::Enabled as u32,
            processor_uid: id,
        }),
    }
}

fn madt(vcpus: u32) -> MADT {
    let mut madt =
        MADT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION, LocalInterruptController::Address(LOCAL_APIC_GPA));
    for id in 0..vcpus {
        add_processor(&mut madt, id);
    }
    madt.add_structure(IoApic::new(IOAPIC_ID, IOAPIC_GPA, 0));
    // ISA IRQ 0 (the PIT) on GSI 2; polarity and trigger as the ISA bus's.
    madt.add_structure(InterruptOverride {
        kind: MADT_INTERRUPT_OVERRIDE,
        length: 10,
        bus: 0,
        source: 0,
        gsi: 2,
        flags: 0,
    });
    // NMIs on LINT1 of every processor (UID 0xFF), as the bus conforms.
    madt.add_structure(LocalApicNmi {
        kind: MADT_LOCAL_APIC_NMI,
        length: 6,
        processor_uid: 0xFF,
        flags: 0,
        lint: 1,
    });
    madt
}

/// The PCI host bridge (`PCI0`, [`with_pci`]): bus 0 only, its
/// configuration ports, and the I/O and memory windows its BARs decode in.
fn write_pci0(aml: &mut Vec<u8>) {
    let (io, mem) = (crate::pci::IO_WINDOW, crate::pci::MMIO_WINDOW);
    let buses = Window::<u16>::new_bus_number(0, 0);
    let config = IO::new(crate::pci::CONFIG_ADDRESS, crate::pci::CONFIG_ADDRESS, 1, 8);
    let io_window = Window::<u16>::new_io(io.start as u16, (io.end - 1) as u16, None);
    let mem_window = Window::<u32>::new_memory(
        AddressSpaceCacheable::NotCacheable,
        true,
        mem.start as u32,
        (mem.end - 1) as u32,
        None,
    );
    let crs = ResourceTemplate::new(alloc::vec![&buses, &config, &io_window, &mem_window]);
    let (hid, cid, seg, bbn, uid, crs) = (
        Name::new(Path::new("_HID"), &EISAName::new("PNP0A08")),
        Name::new(Path::new("_CID"), &EISAName::new("PNP0A03")),
        Name::new(Path::new("_SEG"), &0u8),
        Name::new(Path::new("_BBN"), &0u8),
        Name::new(Path::new("_UID"), &0u8),
        Name::new(Path::new("_CRS"), &crs),
    );
    let pci0 = Device::new(Path::new("PCI0"), alloc::vec![&hid, &cid, &seg, &bbn, &uid, &crs]);
    Scope::new(Path::new("\\_SB_"), alloc::vec![&pci0]).to_aml_bytes(aml);
}

fn dsdt(pci: bool) -> Sdt {
    let mut dsdt = Sdt::new(*b"DSDT", 36, 2, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    let mut aml = Vec::new();
    Name::new(Path::new("_S5_"), &Package::new(alloc::vec![&S5_SLP_TYP])).to_aml_bytes(&mut aml);
    let uart_io = IO::new(crate::uart::BASE, crate::uart::BASE, 1, crate::uart::PORTS as u8);
    let uart_irq = Interrupt::new(true, true, false, false, UART_IRQ);
    let crs = ResourceTemplate::new(alloc::vec![&uart_io, &uart_irq]);
    let (hid, uid, crs) = (
        Name::new(Path::new("_HID"), &EISAName::new("PNP0501")),
        Name::new(Path::new("_UID"), &0u8),
        Name::new(Path::new("_CRS"), &crs),
    );
    let com1 = Device::new(Path::new("COM1"), alloc::vec![&hid, &uid, &crs]);
    let rtc_io = IO::new(crate::rtc::INDEX, crate::rtc::INDEX, 1, 2);
    let rtc_irq = Interrupt::new(true, true, false, false, RTC_IRQ);
    let rtc_crs = ResourceTemplate::new(alloc::vec![&rtc_io, &rtc_irq]);
    let (rtc_hid, rtc_crs) =
        (Name::new(Path::new("_HID"), &EISAName::new("PNP0B00")), Name::new(Path::new("_CRS"), &rtc_crs));
    let rtc = Device::new(Path::new("RTC_"), alloc::vec![&rtc_hid, &rtc_crs]);
    Scope::new(Path::new("\\_SB_"), alloc::vec![&com1, &rtc]).to_aml_bytes(&mut aml);
    if pci {
        write_pci0(&mut aml);
    }
    dsdt.append_slice(&aml);
    dsdt
}

fn fadt(dsdt: u64) -> impl Aml {
    let io8 = |port: u16| GAS::new(AddressSpace::SystemIo, 8, 0, AccessSize::ByteAccess, u64::from(port));
    let mut fadt = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::ResetRegSup)
        .flag(Flags::TmrValExt)
        .dsdt_64(dsdt);
    fadt.iapc_boot_arch = BOOT_ARCH_VGA_NOT_PRESENT.into();
    fadt.reset_reg = io8(RESET_PORT);
    fadt.reset_value = RESET_VALUE;
    fadt.sleep_control_reg = io8(SLEEP_CONTROL_PORT);
    fadt.sleep_status_reg = io8(SLEEP_STATUS_PORT);
    fadt.century = crate::rtc::CENTURY;
    let pm_timer = crate::pmtimer::PORT;
    fadt.pm_tmr_blk = u32::from(pm_timer).into();
    fadt.pm_tmr_len = crate::pmtimer::PORTS as u8;
    fadt.x_pm_tmr_blk = GAS::new(AddressSpace::SystemIo, 32, 0, AccessSize::DwordAccess, u64::from(pm_timer));
    fadt.finalize()
}

/// Appends `table` to `blob` at the next aligned offset; its address.
fn place(blob: &mut Vec<u8>, table: &dyn Aml) -> u64 {
    blob.resize(blob.len().next_multiple_of(ALIGN), 0);
    let at = ACPI_GPA + blob.len() as u64;
    table.to_aml_bytes(blob);
    at
}

/// The tables of a guest with `vcpus` vCPUs (APIC IDs 0, 1, …).
pub fn build(vcpus: u32) -> Result<Tables, BadVcpus> {
    tables(vcpus, false)
}

/// The tables of a guest with `vcpus` vCPUs and a PCI bus
/// ([`crate::pci`]): the DSDT also has `\_SB.PCI0`, a PCI Express host
/// bridge (`PNP0A08`, compatible with `PNP0A03`) of segment 0 and bus 0
/// whose `_CRS` names bus 0, the configuration ports 0xCF8–0xCFF, and the
/// I/O and memory windows [`crate::pci::IO_WINDOW`] and
/// [`crate::pci::MMIO_WINDOW`]. No MCFG: Linux reaches the configuration
/// space through the ports (the functions have nothing past 0x100).
pub fn with_pci(vcpus: u32) -> Result<Tables, BadVcpus> {
    tables(vcpus, true)
}

fn tables(vcpus: u32, pci: bool) -> Result<Tables, BadVcpus> {
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(BadVcpus { vcpus });
    }
    // Each table's address is known before it is written: the RSDP and the
    // XSDT (two entries) first, then the DSDT, the FADT and the MADT.
    let mut blob = Vec::new();
    let rsdp_at = ACPI_GPA;
    let xsdt_at = rsdp_at + Rsdp::len().next_multiple_of(ALIGN) as u64;
    blob.resize((xsdt_at - ACPI_GPA) as usize + 36 + 2 * 8, 0);
    let dsdt = place(&mut blob, &dsdt(pci));
    let fadt = place(&mut blob, &fadt(dsdt));
    let madt = place(&mut blob, &madt(vcpus));
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    xsdt.add_entry(fadt);
    xsdt.add_entry(madt);
    let mut head = Vec::new();
    Rsdp::new(OEM_ID, xsdt_at).to_aml_bytes(&mut head);
    head.resize((xsdt_at - ACPI_GPA) as usize, 0);
    xsdt.to_aml_bytes(&mut head);
    blob[..head.len()].copy_from_slice(&head);
    // 16 vCPUs take under 1 KiB; the room is 128 KiB.
    debug_assert!(blob.len() <= ACPI_ROOM);
    Ok(Tables { bytes: blob, rsdp: rsdp_at, xsdt: xsdt_at, fadt, madt, dsdt })
}

#[cfg(test)]
mod tests;
