//! x86-64 hardware: boot, descriptor tables, traps, the local APIC, timers,
//! SMP start-up, the serial port and power. The only place (with `virt/`)
//! where `asm!` may appear.
//!
//! Two layers: `entry` holds the machine's entry points (every CPU's boot,
//! the interrupt and exception stubs and their dispatch, the syscall
//! entry), the top of the kernel, which call the core; the rest is below
//! the core, which reaches it through `hw`, and never names `entry`.

pub mod amdvi;
pub mod apic;
pub mod cpu;
pub mod ecam;
pub mod entry;
pub mod gdt;
pub mod ioapic;
pub mod iommu;
pub mod pit;
pub mod power;
pub mod serial;
pub mod smp;
pub mod trap;
pub mod vtd;
