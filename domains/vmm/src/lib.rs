//! The pure logic of the VMM, kept apart from its syscalls so that it is
//! tested on the host (`cargo test -p ryokan-vmm --lib`): which kernel
//! images it loads and where ([`multiboot`]), the Multiboot information it
//! hands them ([`info`]), how guest RAM is laid out ([`ram`]), what CPUID
//! tells a guest ([`cpuid`]), the serial port ([`uart`]), the local APICs
//! that start a guest's other vCPUs ([`apic`], and their xAPIC page,
//! [`xapic`]), the I/O APIC ([`ioapic`]), the PIT ([`pit`]), the CMOS RTC
//! ([`rtc`]), the ACPI PM timer ([`pmtimer`]), a reboot's restart and its
//! bound ([`reboot`]), MMIO instruction decoding
//! ([`mmio`], with [`bus`] for access sizes), the PCI bus ([`pci`]) with
//! a virtio-blk function per disk ([`virtio_pci`], [`virtio_blk`],
//! [`msix`]) and their queues ([`disks`]), and what each VM
//! exit gets ([`platform`]), with the exit codes the VMM ends with
//! ([`status`]).
//!
//! For Linux guests (not wired into the binary yet): the bzImage's setup
//! header and where its kernel goes ([`bzimage`]), the zero page with its
//! e820 map and command line ([`zeropage`]), where the initrd goes
//! ([`initrd`]) and the ACPI tables ([`acpi`]). Which of the two kinds a
//! kernel file is, for the build and the VMM alike: [`kernel`]; small
//! samples of both for tests (here and, with feature `samples`, the
//! build tool's): [`samples`].
//!
//! The binary (`main.rs` and its modules) does the rest with syscalls: it
//! creates the guest and its RAM, loads the image, starts the vCPU and
//! answers its exits.

#![cfg_attr(not(test), no_std)]

pub mod acpi;
pub mod apic;
pub mod bus;
pub mod bzimage;
pub mod console_link;
pub mod cpuid;
pub mod disks;
pub mod emulate;
pub mod info;
pub mod initrd;
pub mod ioapic;
pub mod kernel;
mod le;
pub mod linux;
pub mod mmio;
pub mod msix;
pub mod msr;
pub mod multiboot;
pub mod pci;
pub mod pit;
pub mod platform;
pub mod pmtimer;
pub mod ram;
pub mod reboot;
pub mod rtc;
#[cfg(any(test, feature = "samples"))]
pub mod samples;
pub mod uart;
pub mod virtio_blk;
pub mod virtio_pci;
pub mod xapic;
pub mod zeropage;

/// What the VMM's exit code tells its supervisor about the guest: the
/// contract is `ipc::guest::status`, which `mgmt` judges runs by.
pub use ipc::guest::status;
