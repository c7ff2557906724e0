//! The virtio-pci function driven as Linux's virtio_pci_modern drives it,
//! and by a hostile driver.

use super::common::{status::*, Event, Refused, F_VERSION_1, NO_VECTOR};
use super::*;
use vq::mock::{Driver, MockMemory};

const RAM: usize = 0x10_0000;

fn blk() -> VirtioPci {
    VirtioPci::blk(Disk { sectors: 2048, read_only: false })
}

fn w(f: &mut VirtioPci, mem: &MockMemory, at: u64, size: u8, v: u64) -> Effect {
    f.bar0_write(at, size, v, mem)
}

/// The capability list as a driver walks it: (cap id, its offset).
fn walk(f: &VirtioPci) -> Vec<(u8, u8, [u8; 20])> {
    let byte = |o: u8| (f.config_read(o) >> (8 * (o % 4))) as u8;
    assert!(f.config_read(4) >> 16 & 0x10 != 0, "status: capability list");
    let mut out = Vec::new();
    let mut at = byte(0x34);
    while at != 0 {
        let mut raw = [0u8; 20];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = byte(at.wrapping_add(i as u8));
        }
        out.push((raw[0], at, raw));
        at = raw[1];
        assert!(out.len() < 16, "the list ends");
    }
    out
}

#[test]
fn capabilities_describe_the_bars() {
    let f = blk();
    let caps = walk(&f);
    assert_eq!(caps.iter().map(|c| c.0).collect::<Vec<_>>(), [0x11, 9, 9, 9, 9]);
    // cfg_type, bar, offset, length of each virtio capability.
    let virtio: Vec<_> = caps[1..]
        .iter()
        .map(|(_, _, r)| {
            let le = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
            (r[3], r[4], le(8), le(12))
        })
        .collect();
    assert_eq!(virtio, [(1, 0, 0, 0x38), (3, 0, 0x1000, 4), (4, 0, 0x2000, 0x40), (2, 1, 0, BAR1_SIZE)]);
    let notify = caps[4].2;
    assert_eq!((notify[2], u32::from_le_bytes([notify[16], notify[17], notify[18], notify[19]])), (20, 2));
    // MSI-X: 2 entries, the table and PBA in BAR 0.
    let m = caps[0].2;
    assert_eq!(u16::from_le_bytes([m[2], m[3]]) & 0x7FF, 1);
    assert_eq!(u32::from_le_bytes([m[4], m[5], m[6], m[7]]), 0x3000);
    assert_eq!(u32::from_le_bytes([m[8], m[9], m[10], m[11]]), 0x3800);
    assert_eq!(f.config_read(0), 0x1042_1af4);
    assert_eq!(f.config_read(0x2C), 0x0002_1af4);
}

/// Negotiates `features`, as a driver does; the status read back.
fn negotiate(f: &mut VirtioPci, mem: &MockMemory, features: u64) -> u8 {
    w(f, mem, 0x14, 1, u64::from(ACKNOWLEDGE));
    w(f, mem, 0x14, 1, u64::from(ACKNOWLEDGE | DRIVER));
    w(f, mem, 0x08, 4, 0);
    w(f, mem, 0x0C, 4, features & 0xFFFF_FFFF);
    w(f, mem, 0x08, 4, 1);
    w(f, mem, 0x0C, 4, features >> 32);
    w(f, mem, 0x14, 1, u64::from(ACKNOWLEDGE | DRIVER | FEATURES_OK));
    f.bar0_read(0x14, 1) as u8
}

fn offered(f: &mut VirtioPci, mem: &MockMemory) -> u64 {
    w(f, mem, 0, 4, 0);
    let lo = f.bar0_read(4, 4);
    w(f, mem, 0, 4, 1);
    lo | f.bar0_read(4, 4) << 32
}

#[test]
fn a_driver_brings_the_device_up() {
    let mem = MockMemory::new(0, RAM);
    let mut f = blk();
    let features = offered(&mut f, &mem);
    assert_eq!(features & F_VERSION_1, F_VERSION_1);
    assert!(features & vq::F_EVENT_IDX != 0 && features & crate::virtio_blk::F_FLUSH != 0);
    assert_eq!(negotiate(&mut f, &mem, features), ACKNOWLEDGE | DRIVER | FEATURES_OK);
    assert_eq!(f.common().features(), features);
    // Queue 0: the size is the device's most until the driver writes it.
    assert_eq!(f.bar0_read(0x12, 2), 1, "one queue");
    assert_eq!(f.bar0_read(0x18, 2), 256);
    let drv = Driver::new(&mem, 128);
    let l = drv.layout;
    w(&mut f, &mem, 0x18, 2, 128);
    w(&mut f, &mem, 0x1A, 2, 1);
    w(&mut f, &mem, 0x10, 2, 0);
    w(&mut f, &mem, 0x20, 4, l.desc);
    w(&mut f, &mem, 0x24, 4, 0);
    w(&mut f, &mem, 0x28, 8, l.avail);
    w(&mut f, &mem, 0x30, 4, l.used);
    assert_eq!(f.bar0_read(0x1A, 2), 1);
    assert_eq!(f.bar0_read(0x1E, 2), 0, "notify offset");
    assert_eq!(w(&mut f, &mem, 0x1C, 2, 1).event, Some(Event::QueueEnabled { queue: 0 }));
    assert_eq!(f.common().queue(0).map(|q| q.layout()), Some(l));
    w(&mut f, &mem, 0x18, 2, 64);
    assert_eq!(f.bar0_read(0x18, 2), 128, "fixed while enabled");
    assert_eq!(f.notify(0, 2), None, "not live yet");
    let e = w(&mut f, &mem, 0x14, 1, u64::from(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK));
    assert_eq!(e.event, Some(Event::Live));
    assert_eq!(f.notify(0, 2), Some(0));
    assert_eq!(f.notify(2, 2), None, "no queue 1");
    assert_eq!(f.notify(0, 1), None, "16-bit writes only");
    // Device configuration: 2048 sectors.
    assert_eq!(f.bar0_read(DEVICE_AT, 8), 2048);
    assert_eq!(f.bar0_read(DEVICE_AT + 20, 4), 512);
    // The queue's interrupt: MSI-X entry 1 once enabled and unmasked.
    assert_eq!(f.queue_interrupt(0), None, "MSI-X off: pending");
    assert_eq!(f.bar0_read(ISR_AT, 1), 1);
    assert_eq!(f.bar0_read(ISR_AT, 1), 0, "read clears");
    f.config_write(0x40, u32::from(crate::msix::ENABLE) << 16);
    w(&mut f, &mem, MSIX_TABLE_AT + 16, 4, 0xFEE0_1000);
    w(&mut f, &mem, MSIX_TABLE_AT + 24, 4, 0x31);
    assert_eq!(f.bar0_read(MSIX_PBA_AT, 4), 2);
    let e = w(&mut f, &mem, MSIX_TABLE_AT + 28, 4, 0);
    assert_eq!(e.irqs.iter().map(|m| (m.dest, m.vector)).collect::<Vec<_>>(), [(1, 0x31)]);
    assert_eq!(f.queue_interrupt(0).map(|m| m.vector), Some(0x31));
    // Reset: everything back, the queue disabled.
    assert_eq!(w(&mut f, &mem, 0x14, 1, 0).event, Some(Event::Reset));
    assert_eq!(f.bar0_read(0x14, 1), 0);
    assert_eq!(f.bar0_read(0x1C, 2), 0);
    assert_eq!(f.bar0_read(0x1A, 2), u64::from(NO_VECTOR));
}

#[test]
fn hostile_negotiation_is_refused() {
    let mem = MockMemory::new(0, RAM);
    let mut f = blk();
    let all = offered(&mut f, &mem);
    assert_eq!(negotiate(&mut f, &mem, all | 1 << 40), ACKNOWLEDGE | DRIVER, "not offered");
    w(&mut f, &mem, 0x14, 1, 0);
    assert_eq!(negotiate(&mut f, &mem, all & !F_VERSION_1), ACKNOWLEDGE | DRIVER, "legacy");
    w(&mut f, &mem, 0x14, 1, 0);
    assert_eq!(negotiate(&mut f, &mem, F_VERSION_1), ACKNOWLEDGE | DRIVER | FEATURES_OK);
    // Features fixed after FEATURES_OK.
    w(&mut f, &mem, 0x08, 4, 0);
    w(&mut f, &mem, 0x0C, 4, 0xFFFF_FFFF);
    assert_eq!(f.common().features(), F_VERSION_1);
    // A status write clearing bits, and NEEDS_RESET from the driver, are refused.
    w(&mut f, &mem, 0x14, 1, u64::from(ACKNOWLEDGE));
    assert_eq!(f.bar0_read(0x14, 1) as u8, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    w(&mut f, &mem, 0x14, 1, u64::from(ACKNOWLEDGE | DRIVER | FEATURES_OK | NEEDS_RESET));
    assert_eq!(f.bar0_read(0x14, 1) as u8 & NEEDS_RESET, 0);
    // DRIVER_OK before FEATURES_OK is dropped.
    w(&mut f, &mem, 0x14, 1, 0);
    w(&mut f, &mem, 0x14, 1, u64::from(ACKNOWLEDGE | DRIVER | DRIVER_OK));
    assert_eq!(f.bar0_read(0x14, 1) as u8, ACKNOWLEDGE | DRIVER);
    // Vectors the table lacks read back NO_VECTOR; odd-width writes do nothing.
    w(&mut f, &mem, 0x10, 2, 2);
    assert_eq!(f.bar0_read(0x10, 2), u64::from(NO_VECTOR));
    w(&mut f, &mem, 0x16, 4, 0);
    w(&mut f, &mem, 0x18, 4, 16);
    assert_eq!(f.bar0_read(0x18, 2), 256);
    // Read-only places stay.
    w(&mut f, &mem, DEVICE_AT, 8, 0);
    assert_eq!(f.bar0_read(DEVICE_AT, 8), 2048);
    w(&mut f, &mem, 0x12, 2, 9);
    assert_eq!(f.bar0_read(0x12, 2), 1);
    assert_eq!(f.bar0_read(0x3000_0000, 8), 0, "outside everything");
    f.config_write(0x4C, 0xFFFF_FFFF);
    assert_eq!(walk(&f).len(), 5, "the list is read-only");
}

#[test]
fn hostile_queues_need_a_reset() {
    let mem = MockMemory::new(0, RAM);
    let enable = |f: &mut VirtioPci, size: u64, desc: u64| {
        w(f, &mem, 0x18, 2, size);
        w(f, &mem, 0x20, 8, desc);
        w(f, &mem, 0x28, 8, 0x8000);
        w(f, &mem, 0x30, 8, 0x9000);
        w(f, &mem, 0x1C, 2, 1).event
    };
    let cases = [
        (false, 16, 0x1000, Refused::BeforeFeatures),
        (true, 512, 0x1000, Refused::TooLarge),
        (true, 24, 0x1000, Refused::Layout(vq::Fault::BadSize)),
        (true, 16, 0x1008, Refused::Layout(vq::Fault::Misaligned)),
        (true, 16, RAM as u64 - 0x80, Refused::Layout(vq::Fault::RingOutsideMemory)),
        (true, 16, u64::MAX - 0xF, Refused::Layout(vq::Fault::RingOutsideMemory)),
    ];
    for (features, size, desc, why) in cases {
        let mut f = blk();
        if features {
            negotiate(&mut f, &mem, F_VERSION_1);
        }
        f.config_write(0x40, u32::from(crate::msix::ENABLE) << 16);
        w(&mut f, &mem, MSIX_TABLE_AT, 4, 0xFEE0_0000);
        w(&mut f, &mem, MSIX_TABLE_AT + 8, 4, 0x40);
        w(&mut f, &mem, MSIX_TABLE_AT + 12, 4, 0);
        w(&mut f, &mem, 0x10, 2, 0);
        let e = w(&mut f, &mem, 0x18, 2, size);
        assert_eq!(e, Effect::default());
        assert_eq!(
            enable(&mut f, size, desc),
            Some(Event::QueueRefused { queue: 0, why }),
            "{size} {desc:x}"
        );
        assert_eq!(f.bar0_read(0x1C, 2), 0, "still disabled");
        assert!(f.bar0_read(0x14, 1) as u8 & NEEDS_RESET != 0);
        assert_eq!(f.bar0_read(ISR_AT, 1), 2, "a configuration change");
        // The refusal sent the configuration interrupt (vector 0).
        let mut g = f.clone();
        assert_eq!(g.needs_reset().map(|m| m.vector), Some(0x40));
        assert_eq!(w(&mut f, &mem, 0x14, 1, 0).event, Some(Event::Reset));
        assert_eq!(f.bar0_read(0x14, 1), 0, "a reset clears it");
    }
}
