//! A virtio-pci function's common configuration (virtio 1.2 §4.1.4.3):
//! feature negotiation, the device status, and each queue's registers,
//! with what the driver writes checked.
//!
//! - Fields are read at any width and offset (a snapshot of the structure's
//!   bytes); they are written only at their own width, the 64-bit queue
//!   addresses also as two 32-bit halves (§4.1.3.1); other writes are
//!   ignored.
//! - `driver_feature` is fixed once FEATURES_OK is set; FEATURES_OK is set
//!   only if the driver took nothing that was not offered and took
//!   `VIRTIO_F_VERSION_1` (there is no legacy interface, §7.2.2), which
//!   the driver finds by reading it back (§3.1.1).
//! - A status write that would clear a bit the driver set (other than by
//!   writing 0, the reset) is ignored; DEVICE_NEEDS_RESET is the device's
//!   alone; DRIVER_OK is taken only after FEATURES_OK. Design choice (the
//!   spec asks the driver, not the device): these are refused rather than
//!   breaking the device, since refusing leaves nothing inconsistent.
//! - A queue's registers are fixed while it is enabled; enabling it
//!   (only after FEATURES_OK) checks its layout against guest RAM and the
//!   device's maximum size (`vq::Layout::check`): a bad one leaves the
//!   queue disabled and sets DEVICE_NEEDS_RESET (§2.1.2), which the driver
//!   learns of by a configuration interrupt.
//! - A vector the MSI-X table lacks reads back as `NO_VECTOR` (§4.1.4.3.2).

use vq::{GuestMemory, Layout};

/// The most queues a function has here.
pub const MAX_QUEUES: usize = 4;
/// The bytes of the structure (without `queue_notify_data`/`queue_reset`,
/// whose features are not offered).
pub const LEN: usize = 0x38;
/// `VIRTIO_MSI_NO_VECTOR`.
pub const NO_VECTOR: u16 = 0xFFFF;
/// `VIRTIO_F_VERSION_1`.
pub const F_VERSION_1: u64 = 1 << 32;

/// Device status bits (§2.1).
pub mod status {
    pub const ACKNOWLEDGE: u8 = 1;
    pub const DRIVER: u8 = 2;
    pub const DRIVER_OK: u8 = 4;
    pub const FEATURES_OK: u8 = 8;
    pub const NEEDS_RESET: u8 = 64;
    pub const FAILED: u8 = 128;
}

/// One queue's registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueRegs {
    pub size: u16,
    pub vector: u16,
    pub enabled: bool,
    pub desc: u64,
    pub driver: u64,
    pub device: u64,
}

impl QueueRegs {
    pub fn layout(&self) -> Layout {
        Layout { size: self.size, desc: self.desc, avail: self.driver, used: self.device }
    }
}

/// What a write changed that the VMM acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The driver wrote 0 to the status: the device is as after power-on.
    Reset,
    /// The driver set DRIVER_OK: the enabled queues are live.
    Live,
    /// Queue `queue` was enabled with this layout (checked).
    QueueEnabled { queue: u16 },
    /// Queue `queue` could not be enabled; the device needs a reset.
    QueueRefused { queue: u16, why: Refused },
}

/// Why a queue was not enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Before FEATURES_OK (§3.1.1: queues are set up after it).
    BeforeFeatures,
    /// A size above the device's maximum.
    TooLarge,
    /// Its layout (`vq::Layout::check`).
    Layout(vq::Fault),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Common {
    offered: u64,
    driver: u64,
    device_select: u32,
    driver_select: u32,
    config_vector: u16,
    status: u8,
    generation: u8,
    select: u16,
    queues: heapless::Vec<QueueRegs, MAX_QUEUES>,
    max_size: u16,
    /// The MSI-X table's entries (vectors below it are accepted).
    vectors: u16,
}

impl Common {
    /// A function offering `offered` features, with `queues` queues of at
    /// most `max_size` entries and `vectors` MSI-X entries.
    pub fn new(offered: u64, queues: usize, max_size: u16, vectors: u16) -> Self {
        let mut q = heapless::Vec::new();
        for _ in 0..queues.min(MAX_QUEUES) {
            let _ = q.push(QueueRegs { size: max_size, vector: NO_VECTOR, ..Default::default() });
        }
        Common {
            offered: offered | F_VERSION_1,
            driver: 0,
            device_select: 0,
            driver_select: 0,
            config_vector: NO_VECTOR,
            status: 0,
            generation: 0,
            select: 0,
            queues: q,
            max_size,
            vectors,
        }
    }

    /// Back to the state after power-on (§2.4), keeping what was offered.
    pub fn reset(&mut self) {
        *self = Common::new(self.offered, self.queues.len(), self.max_size, self.vectors);
    }

    pub fn status(&self) -> u8 {
        self.status
    }

    /// The features negotiated (meaningful once FEATURES_OK is set).
    pub fn features(&self) -> u64 {
        self.driver
    }

    pub fn queue(&self, q: u16) -> Option<&QueueRegs> {
        self.queues.get(usize::from(q))
    }

    pub fn config_vector(&self) -> u16 {
        self.config_vector
    }

    /// The device found it cannot go on (§2.1.2): DEVICE_NEEDS_RESET is
    /// set; the caller sends the configuration interrupt.
    pub fn needs_reset(&mut self) {
        self.status |= status::NEEDS_RESET;
    }

    fn snapshot(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        let feature = |f: u64, sel: u32| match sel {
            0 => f as u32,
            1 => (f >> 32) as u32,
            _ => 0,
        };
        let q = self
            .queues
            .get(usize::from(self.select))
            .copied()
            .unwrap_or(QueueRegs { vector: NO_VECTOR, ..Default::default() });
        let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
        put(0x00, &self.device_select.to_le_bytes());
        put(0x04, &feature(self.offered, self.device_select).to_le_bytes());
        put(0x08, &self.driver_select.to_le_bytes());
        put(0x0C, &feature(self.driver, self.driver_select).to_le_bytes());
        put(0x10, &self.config_vector.to_le_bytes());
        put(0x12, &(self.queues.len() as u16).to_le_bytes());
        put(0x14, &[self.status, self.generation]);
        put(0x16, &self.select.to_le_bytes());
        // A queue that does not exist reads size 0 (§4.1.4.3.2).
        put(0x18, &q.size.to_le_bytes());
        put(0x1A, &q.vector.to_le_bytes());
        put(0x1C, &u16::from(q.enabled).to_le_bytes());
        put(0x1E, &self.select.to_le_bytes()); // queue_notify_off: the queue's index
        put(0x20, &q.desc.to_le_bytes());
        put(0x28, &q.driver.to_le_bytes());
        put(0x30, &q.device.to_le_bytes());
        b
    }

    /// A read of `size` bytes at `offset` (bytes past the structure read 0).
    pub fn read(&self, offset: u64, size: u8) -> u64 {
        let b = self.snapshot();
        (0..u64::from(size.min(8))).fold(0, |v, i| {
            let byte = offset.checked_add(i).and_then(|o| b.get(o as usize)).copied().unwrap_or(0);
            v | u64::from(byte) << (8 * i)
        })
    }

    fn vector(&self, v: u16) -> u16 {
        if v < self.vectors {
            v
        } else {
            NO_VECTOR
        }
    }

    /// A write of `size` bytes of `value` at `offset`.
    pub fn write(&mut self, offset: u64, size: u8, value: u64, ram: &impl GuestMemory) -> Option<Event> {
        let (v16, v32) = (value as u16, value as u32);
        match (offset, size) {
            (0x00, 4) => self.device_select = v32,
            (0x08, 4) => self.driver_select = v32,
            (0x0C, 4) if self.status & status::FEATURES_OK == 0 => match self.driver_select {
                0 => self.driver = self.driver & !0xFFFF_FFFF | u64::from(v32),
                1 => self.driver = self.driver & 0xFFFF_FFFF | u64::from(v32) << 32,
                _ => {}
            },
            (0x10, 2) => self.config_vector = self.vector(v16),
            (0x14, 1) => return self.write_status(value as u8),
            (0x16, 2) => self.select = v16,
            (0x18..=0x37, _) => return self.write_queue(offset, size, value, ram),
            _ => {}
        }
        None
    }

    fn write_status(&mut self, value: u8) -> Option<Event> {
        use status::*;
        if value == 0 {
            self.reset();
            return Some(Event::Reset);
        }
        let old = self.status;
        let mut new = value & !NEEDS_RESET | old & NEEDS_RESET;
        if old & !new != 0 {
            return None; // clears a bit: refused
        }
        if new & FEATURES_OK != 0 && old & FEATURES_OK == 0 {
            let good = self.driver & !self.offered == 0 && self.driver & F_VERSION_1 != 0;
            if !good {
                new &= !FEATURES_OK;
            }
        }
        if new & DRIVER_OK != 0 && new & FEATURES_OK == 0 {
            new &= !DRIVER_OK;
        }
        self.status = new;
        (new & DRIVER_OK != 0 && old & DRIVER_OK == 0).then_some(Event::Live)
    }

    fn write_queue(&mut self, offset: u64, size: u8, value: u64, ram: &impl GuestMemory) -> Option<Event> {
        let select = self.select;
        let vector = self.vector(value as u16);
        let (features_ok, max) = (self.status & status::FEATURES_OK != 0, self.max_size);
        let q = self.queues.get_mut(usize::from(select))?;
        if q.enabled {
            return None; // fixed while enabled (§4.1.4.3.2)
        }
        let half = |field: u64, at: u64| match (at, size) {
            (0, 8) => Some(value),
            (0, 4) => Some(field & !0xFFFF_FFFF | value & 0xFFFF_FFFF),
            (4, 4) => Some(field & 0xFFFF_FFFF | value << 32),
            _ => None,
        };
        match offset {
            0x18 if size == 2 => q.size = value as u16,
            0x1A if size == 2 => q.vector = vector,
            0x1C if size == 2 && value as u16 == 1 => {
                let why = if !features_ok {
                    Some(Refused::BeforeFeatures)
                } else if q.size > max {
                    Some(Refused::TooLarge)
                } else {
                    q.layout().check(ram).err().map(Refused::Layout)
                };
                return Some(match why {
                    None => {
                        q.enabled = true;
                        Event::QueueEnabled { queue: select }
                    }
                    Some(why) => {
                        self.status |= status::NEEDS_RESET;
                        Event::QueueRefused { queue: select, why }
                    }
                });
            }
            0x20..=0x27 => q.desc = half(q.desc, offset - 0x20)?,
            0x28..=0x2F => q.driver = half(q.driver, offset - 0x28)?,
            0x30..=0x37 => q.device = half(q.device, offset - 0x30)?,
            _ => {}
        }
        None
    }
}
