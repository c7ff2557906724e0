//! Host tests of the kernel's core (`state`, `syscall`, `sched`,
//! `fastpath`, `vm`) against the fake hardware (`crate::hw::fake`): every
//! syscall through the real entry (`sched::from_user`: the fast path, then
//! decode and invoke), its success and its error paths (`syscalls`,
//! `guests`), and millions of random calls from hostile domains with the
//! kernel's invariants checked after each (`random`). Not part of the
//! kernel: `cargo xtask sizes` does not count them.

mod devices;
mod fixture;
mod guests;
mod invariants;
mod random;
mod sim;
mod syscalls;
