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
//! The pure logic (memory map, frame allocator, page tables, pools,
//! capability tables) builds on the host too. The core (`state`, `syscall`,
//! `sched`, `fastpath`, `vm`: objects, capabilities, every syscall, IPC,
//! scheduling, domain death) builds only for the machine here; the host
//! tests (`kernel-tests/`, outside this crate, run by
//! `cargo test -p ryokan-kernel`) build it again on the host from these
//! sources over a fake of the hardware interface (`hw`).

#![no_std]
#![cfg_attr(target_os = "none", deny(clippy::unwrap_used))]

pub mod cap;
pub mod hw;
pub mod hwdata;
pub mod mem;
pub mod obj;
pub mod platform;
pub mod policy;

#[cfg(target_os = "none")]
pub mod arch;
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
