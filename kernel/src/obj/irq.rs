//! An interrupt line, delivered to the thread waiting for it. The line is
//! masked from its arrival until the next wait (which acknowledges it), so a
//! level-triggered device cannot storm the kernel.

use super::pool::Ref;

pub struct Irq {
    /// The I/O APIC input (GSI).
    pub line: u8,
    /// Arrived and not yet collected.
    pub pending: bool,
    pub waiter: Option<Ref>,
    /// Delivered as (notification, bits) instead of to a waiter.
    pub bound: Option<(Ref, u64)>,
}
