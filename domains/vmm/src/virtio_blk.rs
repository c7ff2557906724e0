//! What a guest's virtio-blk device offers (virtio 1.2 §5.2): its
//! features and its configuration space, from the disk the system file
//! gives the guest.
//!
//! Offered: `VIRTIO_BLK_F_SEG_MAX` (at most [`SEG_MAX`] data segments a
//! request, so a request's chain has at most [`SEG_MAX`] + 2 descriptors:
//! header and status), `VIRTIO_BLK_F_BLK_SIZE` (512), `VIRTIO_BLK_F_FLUSH`
//! (a flush is honoured: the backend completes it only when what came
//! before is on the disk), `VIRTIO_BLK_F_RO` for a read-only disk, and the
//! ring's `VIRTIO_RING_F_INDIRECT_DESC` and `VIRTIO_RING_F_EVENT_IDX`
//! (which `vq` checks and honours). Not offered: geometry, topology,
//! multiple queues, discard, write zeroes, a writeback toggle.

/// The sectors a disk's size is counted in (§5.2.4: always 512 bytes).
pub const SECTOR: u64 = 512;
/// The most data segments in one request.
pub const SEG_MAX: u32 = 126;
/// The bytes of the configuration space shown (`struct virtio_blk_config`
/// up to `write_zeroes_may_unmap` and its padding, 60, rounded up).
pub const CONFIG_LEN: usize = 0x40;
/// The PCI device ID of a modern virtio-blk function (0x1040 + 2, §4.1.2.1).
pub const PCI_DEVICE: u16 = 0x1042;
/// The queue's most entries.
pub const QUEUE_SIZE: u16 = 256;

pub const F_SEG_MAX: u64 = 1 << 2;
pub const F_RO: u64 = 1 << 5;
pub const F_BLK_SIZE: u64 = 1 << 6;
pub const F_FLUSH: u64 = 1 << 9;

/// A guest's disk as its device shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disk {
    pub sectors: u64,
    pub read_only: bool,
}

impl Disk {
    /// The features the device offers (besides `VIRTIO_F_VERSION_1`).
    pub fn features(self) -> u64 {
        let ro = if self.read_only { F_RO } else { 0 };
        F_SEG_MAX | F_BLK_SIZE | F_FLUSH | ro | vq::F_INDIRECT_DESC | vq::F_EVENT_IDX
    }

    /// The configuration space: capacity, seg_max, blk_size; the rest 0.
    pub fn config(self) -> [u8; CONFIG_LEN] {
        let mut c = [0u8; CONFIG_LEN];
        c[0..8].copy_from_slice(&self.sectors.to_le_bytes());
        c[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        c[20..24].copy_from_slice(&(SECTOR as u32).to_le_bytes());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_and_features() {
        let d = Disk { sectors: 0x1_0000_0002, read_only: true };
        let c = d.config();
        assert_eq!(c[..8], [2, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(c[12..16], [126, 0, 0, 0]);
        assert_eq!(c[20..24], [0, 2, 0, 0]);
        assert!(d.features() & F_RO != 0);
        assert_eq!(Disk { read_only: false, ..d }.features() & F_RO, 0);
    }
}
