//! The kernel's host tests: not the kernel. This crate builds the kernel's
//! sources (`kernel/src`, by `#[path]`, module for module as `lib.rs` does)
//! on the host, with a fake of the hardware interface (`fake.rs`) in place
//! of `hw/machine.rs`, and tests them: the pure modules' unit tests
//! (`unit/`, each included by its module as `mod tests`) and the core's
//! tests (`core_tests/`: every syscall through the real entry, and random calls
//! from hostile domains with the invariants checked after each).
//!
//! It is the integration test `host` of `ryokan-kernel`, so
//! `cargo test -p ryokan-kernel` runs it; `cargo xtask sizes` counts the
//! kernel's files (`kernel/`), not these.

// The kernel's items this build does not use (those of the machine) are
// not dead code on the machine.
#![allow(dead_code)]

#[path = "../kernel/src/cap/mod.rs"]
pub mod cap;
#[path = "../kernel/src/fastpath.rs"]
pub mod fastpath;
#[path = "../kernel/src/hwdata/mod.rs"]
pub mod hwdata;
#[path = "../kernel/src/mem/mod.rs"]
pub mod mem;
#[path = "../kernel/src/obj/mod.rs"]
pub mod obj;
#[path = "../kernel/src/platform/mod.rs"]
pub mod platform;
#[path = "../kernel/src/policy.rs"]
pub mod policy;
#[path = "../kernel/src/sched.rs"]
pub mod sched;
#[path = "../kernel/src/state/mod.rs"]
pub mod state;
#[path = "../kernel/src/syscall/mod.rs"]
pub mod syscall;
#[path = "../kernel/src/vm.rs"]
pub mod vm;

/// The hardware interface, with the fake in place of the machine's.
pub mod hw;

mod core_tests;
