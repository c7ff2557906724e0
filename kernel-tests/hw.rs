//! The hardware interface (`kernel/src/hw/mod.rs`) on the host: its
//! shared data as on the machine, and the fake where the machine has
//! `machine.rs`.

#[path = "../kernel/src/hw/guest.rs"]
pub mod guest;
#[path = "../kernel/src/hw/trap.rs"]
pub mod trap;

#[path = "fake.rs"]
pub mod fake;
pub use fake::{console, cpu, frames, io, irq, kernel, power, space, vm, window};
