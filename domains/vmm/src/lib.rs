//! The pure logic of the VMM, kept apart from its syscalls so that it is
//! tested on the host (`cargo test -p ryokan-vmm --lib`): which kernel
//! images it loads and where ([`multiboot`]), the Multiboot information it
//! hands them ([`info`]), how guest RAM is laid out ([`ram`]), what CPUID
//! tells a guest ([`cpuid`]), the serial port ([`uart`]), the local APICs
//! that start a guest's other vCPUs ([`apic`], and their xAPIC page,
//! [`xapic`]), the I/O APIC ([`ioapic`]), the PIT ([`pit`]), the CMOS RTC
//! ([`rtc`]), the ACPI PM timer ([`pmtimer`]), MMIO instruction decoding
//! ([`mmio`], with [`bus`] for access sizes), and what each VM
//! exit gets ([`platform`]), with the exit codes the VMM ends with
//! ([`status`]).
//!
//! For Linux guests (not wired into the binary yet): the bzImage's setup
//! header and where its kernel goes ([`bzimage`]), the zero page with its
//! e820 map and command line ([`zeropage`]), where the initrd goes
//! ([`initrd`]) and the ACPI tables ([`acpi`]).
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
pub mod info;
pub mod initrd;
pub mod ioapic;
mod le;
pub mod mmio;
pub mod multiboot;
pub mod pit;
pub mod platform;
pub mod pmtimer;
pub mod ram;
pub mod rtc;
pub mod uart;
pub mod xapic;
pub mod zeropage;

/// What the VMM's exit code tells its supervisor about the guest.
pub mod status {
    /// The guest reported success on the exit port (value 0x10).
    pub const PASSED: u64 = 0;
    /// The guest wrote another value to the exit port.
    pub const FAILED: u64 = 1;
    /// The guest halted (HLT with nothing to wake it).
    pub const HALTED: u64 = 2;
    /// The guest touched guest-physical memory nothing maps.
    pub const UNMAPPED: u64 = 3;
    /// The guest triple-faulted.
    pub const TRIPLE_FAULT: u64 = 4;
    /// The hardware would not enter the guest, or an exit the VMM does not
    /// know (or the exit endpoint failed).
    pub const UNHANDLED: u64 = 5;
    /// The guest could not be set up: bad configuration or image, or a
    /// syscall failed.
    pub const SETUP: u64 = 6;
    /// The kernel accepted a reply it must refuse (`hostile-vmm` mode).
    pub const HOSTILE_ACCEPTED: u64 = 7;
    /// The guest can never run again: an exception faults in its own
    /// delivery (`ExitReason::ExceptionLoop`).
    pub const STUCK: u64 = 8;
}
