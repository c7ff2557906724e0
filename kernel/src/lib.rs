//! The Ryokan microhypervisor.
//!
//! Principles, in order:
//! - Mechanism only: what can run deprivileged, does.
//! - A strong preference for safe code; `unsafe` is rare, small and explained,
//!   and `asm!` lives only in `arch/` and `virt/`.
//! - Simple and clear algorithms over fast and clever ones.
//! - Whatever a less-trusted party wrote is input, checked before use; a guest
//!   or a domain can never crash the kernel. `panic!` is for the kernel's own
//!   broken invariants.
//!
//! The pure logic (memory map, frame allocator, page tables) and the core
//! (`state`, `syscall`, `sched`, `fastpath`, `vm`: objects, capabilities,
//! every syscall, IPC, scheduling, domain death) build on the host and are
//! tested there, the core against a fake of the hardware interface (`hw`,
//! `hw::fake`, in `kernel/host/` with the tests, `core_tests`); the rest exists only on the
//! bare-metal target.

#![cfg_attr(not(test), no_std)]
#![cfg_attr(target_os = "none", deny(clippy::unwrap_used))]

pub mod cap;
pub mod hw;
pub mod mem;
pub mod obj;
pub mod platform;
pub mod policy;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod boot;
#[cfg(any(target_os = "none", test))]
pub mod fastpath;
#[cfg(target_os = "none")]
pub mod klog;
#[cfg(target_os = "none")]
pub mod loader;
#[cfg(any(target_os = "none", test))]
pub mod sched;
#[cfg(any(target_os = "none", test))]
pub mod state;
#[cfg(any(target_os = "none", test))]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod virt;
#[cfg(any(target_os = "none", test))]
pub mod vm;

// The core's host tests, beside the crate's sources: they are not the
// kernel (`cargo xtask sizes` does not count them).
#[cfg(test)]
#[path = "../host/core_tests/mod.rs"]
mod core_tests;
