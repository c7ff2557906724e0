//! Kernel objects, one file each, kept in fixed pools.

pub mod domain;
pub mod ioports;
pub mod irq;
pub mod memory;
pub mod pool;
pub mod thread;
