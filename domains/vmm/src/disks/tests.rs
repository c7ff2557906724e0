//! A guest's disk brought up and used as Linux does, through the bus's
//! ports and BAR 0, and broken by a hostile driver.

use super::*;
use crate::virtio_pci::common::status::*;
use crate::virtio_pci::{ISR_AT, MSIX_TABLE_AT};
use vq::blk::{S_IOERR, S_OK, T_IN};
use vq::mock::{Driver, MockMemory};

const BAR0: u64 = 0xC000_0000;
const NOTIFY: u16 = 0xC000;

struct Ram(Vec<u8>);

impl vq::blk::Disk for Ram {
    fn sectors(&self) -> u64 {
        self.0.len() as u64 / 512
    }
    fn read_only(&self) -> bool {
        false
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> bool {
        let at = sector as usize * 512;
        buf.copy_from_slice(&self.0[at..at + buf.len()]);
        true
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> bool {
        let at = sector as usize * 512;
        self.0[at..at + data.len()].copy_from_slice(data);
        true
    }
    fn flush(&mut self) -> bool {
        true
    }
    fn id(&self) -> &[u8] {
        b"vda"
    }
}

/// A disk of 16 sectors, each filled with its number, brought up with
/// a queue of 16 (features: all offered) and MSI-X vector 1 = 0x51 on APIC 0.
fn up() -> (Disks, MockMemory, Driver, Ram) {
    let mem = MockMemory::new(0, 0x10_0000);
    let mut d = Disks::new(&[Disk { sectors: 16, read_only: false }]);
    let w = |d: &mut Disks, at: u64, size: u8, v: u64| d.mmio_write(BAR0 + at, size, v, &mem);
    w(&mut d, 0x14, 1, u64::from(ACKNOWLEDGE | DRIVER));
    let features = [0u64, 1].map(|sel| {
        w(&mut d, 0, 4, sel);
        d.mmio_read(BAR0 + 4, 4) << (32 * sel)
    });
    for (sel, f) in features.iter().enumerate() {
        w(&mut d, 8, 4, sel as u64);
        w(&mut d, 0xC, 4, f >> (32 * sel));
    }
    w(&mut d, 0x14, 1, u64::from(ACKNOWLEDGE | DRIVER | FEATURES_OK));
    let drv = Driver::new(&mem, 16);
    let l = drv.layout;
    for (at, v) in [(0x20, l.desc), (0x28, l.avail), (0x30, l.used)] {
        w(&mut d, at, 8, v);
    }
    w(&mut d, 0x18, 2, 16);
    w(&mut d, 0x1A, 2, 1);
    w(&mut d, 0x10, 2, 0);
    w(&mut d, 0x1C, 2, 1);
    // MSI-X on (Linux enables it through the capability's message control).
    d.bus().port_write(crate::pci::CONFIG_ADDRESS, 4, 0x8000_0840);
    d.bus().port_write(crate::pci::CONFIG_DATA + 2, 2, u32::from(crate::msix::ENABLE));
    for (entry, vector) in [(0u64, 0x50u64), (1, 0x51)] {
        w(&mut d, MSIX_TABLE_AT + 16 * entry, 4, 0xFEE0_0000);
        w(&mut d, MSIX_TABLE_AT + 16 * entry + 8, 4, vector);
        w(&mut d, MSIX_TABLE_AT + 16 * entry + 12, 4, 0);
    }
    w(&mut d, 0x14, 1, u64::from(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK));
    let disk = Ram((0..16 * 512).map(|i| (i / 512) as u8).collect());
    (d, mem, drv, disk)
}

/// Adds a read of `sectors` from `sector` into 0x8000; its head.
fn read(mem: &MockMemory, drv: &mut Driver, sector: u64, sectors: u32) -> u16 {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&T_IN.to_le_bytes());
    h[8..].copy_from_slice(&sector.to_le_bytes());
    mem.poke(0x7000, &h);
    mem.poke(0x7F00, &[0xEE]);
    let head = drv.chain(mem, &[(0x7000, 16, false), (0x8000, 512 * sectors, true), (0x7F00, 1, true)]);
    drv.publish(mem, head);
    head
}

#[test]
fn a_read_is_served_and_interrupts() {
    let (mut d, mem, mut drv, mut disk) = up();
    assert!(d.owns_port(NOTIFY) && d.owns_gpa(BAR0) && !d.owns_gpa(BAR0 + 0x4000));
    let head = read(&mem, &mut drv, 3, 2);
    let (irqs, kick) = d.port_out(NOTIFY, 2, 0);
    assert!(irqs.is_empty());
    assert_eq!(kick, Some((0, 0)));
    let s = d.serve(0, 0, &mem, &mut disk);
    assert_eq!(s.chains, 1);
    assert_eq!(s.irq.map(|m| (m.dest, m.vector)), Some((0, 0x51)));
    assert_eq!(drv.used(&mem), [(u32::from(head), 1025)]);
    assert_eq!(mem.peek(0x7F00, 1), [S_OK]);
    assert_eq!(mem.peek(0x8000, 1024), [vec![3; 512], vec![4; 512]].concat());
    // Past the end: an I/O error, and the queue goes on.
    read(&mem, &mut drv, 15, 2);
    assert_eq!(d.serve(0, 0, &mem, &mut disk).chains, 1);
    assert_eq!(mem.peek(0x7F00, 1), [S_IOERR]);
    // Nothing new: no interrupt.
    assert_eq!(d.serve(0, 0, &mem, &mut disk), Served::default());
    assert_eq!(mem.strays(), 0);
}

#[test]
fn hostile_queues_break_and_reset() {
    let (mut d, mem, mut drv, mut disk) = up();
    // A chain that loops: completed with length 0, the queue goes on.
    Driver::set_desc(&mem, drv.layout.desc, 5, 0x8000, 16, 1, 5);
    drv.publish(&mem, 5);
    let s = d.serve(0, 0, &mem, &mut disk);
    assert_eq!((s.chains, drv.used(&mem)), (1, vec![(5, 0)]));
    // The available index jumps: DEVICE_NEEDS_RESET and the configuration interrupt.
    drv.set_avail_idx(&mem, 100);
    let s = d.serve(0, 0, &mem, &mut disk);
    assert_eq!(s.irq.map(|m| m.vector), Some(0x50));
    assert!(d.mmio_read(BAR0 + 0x14, 1) as u8 & NEEDS_RESET != 0);
    assert_eq!(d.mmio_read(BAR0 + ISR_AT, 1) & 2, 2, "a configuration change");
    assert_eq!(d.serve(0, 0, &mem, &mut disk), Served::default(), "the queue is gone");
    // The driver resets and brings it up again: served again.
    d.mmio_write(BAR0 + 0x14, 1, 0, &mem);
    assert_eq!(d.port_out(NOTIFY, 2, 0).1, None, "no kicks while reset");
    let (mut d, mem, mut drv, mut disk) = up();
    read(&mem, &mut drv, 0, 1);
    assert_eq!(d.serve(0, 0, &mem, &mut disk).chains, 1);
    // Kicks of other queues or functions serve nothing.
    assert_eq!(d.serve(0, 1, &mem, &mut disk), Served::default());
    assert_eq!(d.serve(7, 0, &mem, &mut disk), Served::default());
    assert_eq!(d.serve(99, 0, &mem, &mut disk), Served::default());
    assert_eq!(mem.strays(), 0);
}

#[test]
fn one_kick_serves_at_most_a_queue_of_chains() {
    let (mut d, mem, mut drv, mut disk) = up();
    for _ in 0..16 {
        read(&mem, &mut drv, 0, 1);
    }
    assert_eq!(d.serve(0, 0, &mem, &mut disk).chains, 16);
    assert_eq!(drv.used(&mem).len(), 16);
}
