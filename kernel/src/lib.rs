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
//! The pure logic (memory map, frame allocator, page tables) builds on the host
//! and is tested there; the rest exists only on the bare-metal target.

#![cfg_attr(not(test), no_std)]
#![cfg_attr(target_os = "none", deny(clippy::unwrap_used))]

pub mod cap;
#[cfg(target_os = "none")]
pub mod hw;
pub mod mem;
pub mod obj;
pub mod platform;
pub mod policy;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod fastpath;
#[cfg(target_os = "none")]
pub mod klog;
#[cfg(target_os = "none")]
pub mod loader;
#[cfg(target_os = "none")]
pub mod sched;
#[cfg(target_os = "none")]
pub mod state;
#[cfg(target_os = "none")]
pub mod syscall;
#[cfg(target_os = "none")]
pub mod virt;
#[cfg(target_os = "none")]
pub mod vm;
