//! A VirqLine: the right to inject one interrupt vector into one guest (the
//! `irqfd` of this system), and a Doorbell: a guest port whose writes signal
//! a notification without an exit reaching the VMM (the `ioeventfd`).
//!
//! Doorbells are I/O ports for now, not guest-physical addresses: a port
//! write's exit carries the instruction length, so the kernel can resume the
//! guest itself; an MMIO write's does not (the kernel would have to decode
//! the instruction). Legacy virtio notifies through a port; MMIO doorbells
//! come with the virtio transport.

use super::pool::Ref;

pub struct VirqLine {
    pub guest: Ref,
    pub vector: u8,
}

/// A doorbell, made from its guest's quota (`obj::window`) and dying with
/// it; on its guest's list (`Domain::bells`, linked through `next`), which
/// an exit walks rather than every guest's doorbells.
pub struct Doorbell {
    pub guest: Ref,
    pub port: u16,
    pub ntfn: Ref,
    pub bits: u64,
    /// The next doorbell of its guest, or [`Ref::NONE`].
    pub next: Ref,
}
