//! x86-64 hardware: boot, descriptor tables, traps, the local APIC, timers,
//! SMP start-up, the serial port and power. The only place (with `virt/`)
//! where `asm!` may appear.

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod entry;
pub mod gdt;
pub mod idt;
pub mod ioapic;
pub mod pit;
pub mod power;
pub mod serial;
pub mod smp;
pub mod trap;
