//! What the kernel says of a domain's CPU use (`DomainInfo`), for the
//! scheduling judges.

use ipc::{CapSlot, Error};
use user::{sys, time};

/// A domain's CPU use and share, as the kernel reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuUse {
    /// CPU time used so far, in microseconds.
    pub cpu_us: u64,
    pub weight: u64,
    /// The cap in percent of one CPU; 0 for none.
    pub cap_percent: u64,
}

/// The CPU use of `domain` (a capability with CONTROL).
pub fn cpu_use(domain: CapSlot) -> Result<CpuUse, Error> {
    let i = sys::domain_info(domain)?;
    Ok(CpuUse { cpu_us: i.cpu_us, weight: u64::from(i.weight), cap_percent: u64::from(i.cap_percent) })
}

/// Yields until `domain` has used some CPU time (it has started); false if
/// `patience_ms` passed first.
pub fn wait_started(domain: CapSlot, patience_ms: u64) -> Result<bool, Error> {
    let deadline = time::deadline_ms(patience_ms);
    while cpu_use(domain)?.cpu_us == 0 {
        if time::passed(deadline) {
            return Ok(false);
        }
        sys::yield_now();
    }
    Ok(true)
}
