//! A VirqLine: the right to inject one interrupt vector into one guest (the
//! `irqfd` of this system), and a Doorbell: a guest port whose writes signal
//! a notification without an exit reaching the VMM (the `ioeventfd`).

use super::pool::Ref;

pub struct VirqLine {
    pub guest: Ref,
    pub vector: u8,
}

pub struct Doorbell {
    pub guest: Ref,
    pub port: u16,
    pub ntfn: Ref,
    pub bits: u64,
}
