//! Kernel objects, one file each, kept in fixed pools (`pool`) or in pools
//! backed by their owners' quotas (`window`).

pub mod device;
pub mod domain;
pub mod endpoint;
pub mod ioports;
pub mod irq;
pub mod memory;
pub mod notification;
pub mod pool;
pub mod thread;
pub mod timer;
pub mod vcpu;
pub mod virq;
pub mod window;
