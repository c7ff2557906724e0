//! Where a split virtqueue's three parts are (virtio 1.2 §2.7), checked.

use crate::{Fault, GuestMemory};

/// The largest queue size (virtio 1.2 §2.7: "Queue Size ... maximum 32768").
pub const MAX_SIZE: u16 = 32768;

/// A queue as the driver set it up through the transport (for virtio-pci
/// the common configuration's `queue_size`, `queue_desc`, `queue_driver`,
/// `queue_device`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub size: u16,
    /// The descriptor table: `size` descriptors of 16 bytes, aligned to 16.
    pub desc: u64,
    /// The driver area (available ring): flags, idx, `size` entries and
    /// `used_event`, aligned to 2.
    pub avail: u64,
    /// The device area (used ring): flags, idx, `size` entries of 8 bytes and
    /// `avail_event`, aligned to 4.
    pub used: u64,
}

impl Layout {
    pub(crate) fn desc_bytes(self) -> u64 {
        16 * u64::from(self.size)
    }
    pub(crate) fn avail_bytes(self) -> u64 {
        6 + 2 * u64::from(self.size)
    }
    pub(crate) fn used_bytes(self) -> u64 {
        6 + 8 * u64::from(self.size)
    }
    /// Where `used_event` is (the last field of the driver area).
    pub(crate) fn used_event(self) -> u64 {
        self.avail + 4 + 2 * u64::from(self.size)
    }
    /// Where `avail_event` is (the last field of the device area).
    pub(crate) fn avail_event(self) -> u64 {
        self.used + 4 + 8 * u64::from(self.size)
    }

    /// Checks the layout against §2.7's rules and the memory.
    pub fn check(self, mem: &impl GuestMemory) -> Result<(), Fault> {
        if !self.size.is_power_of_two() || self.size > MAX_SIZE {
            return Err(Fault::BadSize);
        }
        if self.desc % 16 != 0 || self.avail % 2 != 0 || self.used % 4 != 0 {
            return Err(Fault::Misaligned);
        }
        let parts = [
            (self.desc, self.desc_bytes()),
            (self.avail, self.avail_bytes()),
            (self.used, self.used_bytes()),
        ];
        if parts.iter().all(|&(at, len)| mem.contains(at, len)) {
            Ok(())
        } else {
            Err(Fault::RingOutsideMemory)
        }
    }
}
