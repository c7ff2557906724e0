//! Pieces the sample domains share: faults made on purpose, the mailbox
//! `shm-a` and `shm-b` talk through, and a small PRNG for `hostile`.

#![cfg_attr(not(test), no_std)]

pub mod failure;
pub mod fault;
pub mod mailbox;
pub mod rng;

pub use failure::{Failure, OrFail};
