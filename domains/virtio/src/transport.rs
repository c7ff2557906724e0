//! The virtio-pci transport with `VIRTIO_F_ACCESS_PLATFORM` (bit 33)
//! accepted when the device offers it: QEMU's devices with
//! `iommu_platform=on` (as the xtask makes them) refuse `FEATURES_OK`
//! without it, and a virtio-net device that never reached `DRIVER_OK`
//! sends nothing. `virtio-drivers` 0.13's drivers do not know the bit, so
//! this wrapper adds it to the features they accept, and notes whether the
//! device took them (`accepted`). Everything else is the inner transport's.

use core::sync::atomic::{AtomicBool, Ordering};

use virtio_drivers::transport::{DeviceStatus, DeviceType, InterruptStatus, Transport};
use virtio_drivers::{PhysAddr, Result};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// virtio 1.2 §6: the device's DMA goes through the platform's IOMMU.
const ACCESS_PLATFORM: u64 = 1 << 33;

/// Set when the device cleared `FEATURES_OK` after it was written.
static REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether the device accepted the features written (its `FEATURES_OK`
/// stayed set).
pub fn accepted() -> bool {
    !REFUSED.load(Ordering::Relaxed)
}

pub struct Platform<T> {
    inner: T,
    offered: u64,
}

impl<T> Platform<T> {
    pub fn new(inner: T) -> Self {
        Platform { inner, offered: 0 }
    }
}

impl<T: Transport> Transport for Platform<T> {
    fn device_type(&self) -> DeviceType {
        self.inner.device_type()
    }

    fn read_device_features(&mut self) -> u64 {
        self.offered = self.inner.read_device_features();
        self.offered
    }

    fn write_driver_features(&mut self, driver_features: u64) {
        self.inner.write_driver_features(driver_features | (self.offered & ACCESS_PLATFORM));
    }

    fn max_queue_size(&mut self, queue: u16) -> u32 {
        self.inner.max_queue_size(queue)
    }

    fn notify(&mut self, queue: u16) {
        self.inner.notify(queue)
    }

    fn get_status(&self) -> DeviceStatus {
        self.inner.get_status()
    }

    fn set_status(&mut self, status: DeviceStatus) {
        self.inner.set_status(status);
        if status.contains(DeviceStatus::FEATURES_OK)
            && !self.inner.get_status().contains(DeviceStatus::FEATURES_OK)
        {
            REFUSED.store(true, Ordering::Relaxed);
        }
    }

    fn set_guest_page_size(&mut self, guest_page_size: u32) {
        self.inner.set_guest_page_size(guest_page_size)
    }

    fn requires_legacy_layout(&self) -> bool {
        self.inner.requires_legacy_layout()
    }

    fn queue_set(
        &mut self,
        queue: u16,
        size: u32,
        descriptors: PhysAddr,
        driver: PhysAddr,
        device: PhysAddr,
    ) {
        self.inner.queue_set(queue, size, descriptors, driver, device)
    }

    fn queue_unset(&mut self, queue: u16) {
        self.inner.queue_unset(queue)
    }

    fn queue_used(&mut self, queue: u16) -> bool {
        self.inner.queue_used(queue)
    }

    fn ack_interrupt(&mut self) -> InterruptStatus {
        self.inner.ack_interrupt()
    }

    fn read_config_generation(&self) -> u32 {
        self.inner.read_config_generation()
    }

    fn read_config_space<V: FromBytes + IntoBytes>(&self, offset: usize) -> Result<V> {
        self.inner.read_config_space(offset)
    }

    fn write_config_space<V: IntoBytes + Immutable>(&mut self, offset: usize, value: V) -> Result<()> {
        self.inner.write_config_space(offset, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that offers `offered` and, as QEMU's with
    /// `iommu_platform=on` does, keeps `FEATURES_OK` clear unless the
    /// driver took `ACCESS_PLATFORM` when it was offered.
    struct Fake {
        offered: u64,
        taken: u64,
        status: DeviceStatus,
    }

    impl Transport for Fake {
        fn device_type(&self) -> DeviceType {
            DeviceType::Network
        }
        fn read_device_features(&mut self) -> u64 {
            self.offered
        }
        fn write_driver_features(&mut self, f: u64) {
            self.taken = f;
        }
        fn max_queue_size(&mut self, _: u16) -> u32 {
            16
        }
        fn notify(&mut self, _: u16) {}
        fn get_status(&self) -> DeviceStatus {
            self.status
        }
        fn set_status(&mut self, s: DeviceStatus) {
            let refuse = self.offered & ACCESS_PLATFORM != 0 && self.taken & ACCESS_PLATFORM == 0;
            self.status = if refuse { s - DeviceStatus::FEATURES_OK - DeviceStatus::DRIVER_OK } else { s };
        }
        fn set_guest_page_size(&mut self, _: u32) {}
        fn requires_legacy_layout(&self) -> bool {
            false
        }
        fn queue_set(&mut self, _: u16, _: u32, _: PhysAddr, _: PhysAddr, _: PhysAddr) {}
        fn queue_unset(&mut self, _: u16) {}
        fn queue_used(&mut self, _: u16) -> bool {
            false
        }
        fn ack_interrupt(&mut self) -> InterruptStatus {
            InterruptStatus::empty()
        }
        fn read_config_generation(&self) -> u32 {
            0
        }
        fn read_config_space<V: FromBytes + IntoBytes>(&self, _: usize) -> Result<V> {
            Err(virtio_drivers::Error::ConfigSpaceMissing)
        }
        fn write_config_space<V: IntoBytes + Immutable>(&mut self, _: usize, _: V) -> Result<()> {
            Err(virtio_drivers::Error::ConfigSpaceMissing)
        }
    }

    #[test]
    fn access_platform_is_taken_only_when_offered_and_a_refusal_is_seen() {
        let mac = 1 << 5;
        let mut t =
            Platform::new(Fake { offered: ACCESS_PLATFORM | mac, taken: 0, status: DeviceStatus::empty() });
        let _ = t.read_device_features();
        t.write_driver_features(mac);
        assert_eq!(t.inner.taken, ACCESS_PLATFORM | mac);
        t.finish_init();
        assert!(t.get_status().contains(DeviceStatus::DRIVER_OK));
        assert!(accepted());

        let mut t = Platform::new(Fake { offered: mac, taken: 0, status: DeviceStatus::empty() });
        let _ = t.read_device_features();
        t.write_driver_features(mac);
        assert_eq!(t.inner.taken, mac, "not offered: not taken");

        // A device that refuses (the bare transport, without the bit).
        let mut bare = Fake { offered: ACCESS_PLATFORM, taken: 0, status: DeviceStatus::empty() };
        bare.set_status(DeviceStatus::FEATURES_OK);
        assert!(!bare.get_status().contains(DeviceStatus::FEATURES_OK));
        let mut t = Platform::new(bare);
        t.set_status(DeviceStatus::FEATURES_OK);
        assert!(!accepted(), "the refusal is noted");
    }
}
