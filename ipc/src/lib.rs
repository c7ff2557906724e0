//! Ryokan's ABI, defined once and shared by the kernel, every domain and the
//! host tools: syscall numbers and their arguments, capability slots and
//! rights, the one error enum, what the kernel tells a supervisor, the boot
//! hand-off to the root domain, the system manifest, and the checks every
//! loader applies to an ELF image.
//!
//! `no_std`, no allocation, host-tested.

#![cfg_attr(not(test), no_std)]

pub mod boot;
pub mod cap;
pub mod control;
pub mod elf;
pub mod error;
pub mod event;
pub mod guest;
pub mod manifest;
pub mod msg;
pub mod ring;
pub mod syscall;
pub mod vcpu;

pub use cap::{CapSlot, ObjectType, Rights};
pub use error::Error;
