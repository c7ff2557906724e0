//! Pieces the sample domains share: faults made on purpose, the mailbox
//! `shm-a` and `shm-b` talk through, a small PRNG and a syscall argument generator for `hostile`, shared
//! words and rings with doorbells for the IPC and scheduling samples, and
//! the labels of the sample servers' protocols.

#![cfg_attr(not(test), no_std)]

pub mod block;
pub mod failure;
pub mod fault;
pub mod fuzz;
pub mod link;
pub mod mailbox;
pub mod proto;
pub mod rng;
pub mod sched;
pub mod words;

pub use failure::{Failure, OrFail};
