//! The pure logic of `mgmt`, the root domain, kept apart from its syscalls
//! so that it is tested on the host (`cargo test -p ryokan-mgmt --lib`):
//! what to give each domain of the manifest ([`plan`]), when to restart one
//! ([`policy`], [`tracker`]), and the exact lines `mgmt` logs ([`report`]),
//! which the system tests read, and the run's verdict from its guests
//! ([`verdict`]), what each guest's console said lately ([`history`]), and
//! the checks of an image uploaded over the control channel ([`upload`]).
//!
//! The binary (`main.rs` and its modules) does the rest with syscalls: it
//! maps the manifest, loads images, grants capabilities, starts threads and
//! waits for the kernel's events.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod clock;
pub mod history;
pub mod plan;
pub mod policy;
pub mod report;
pub mod tracker;
pub mod upload;
pub mod verdict;
