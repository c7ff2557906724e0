//! Each rule of the queue, one hostile driver at a time, over mock memory.

use crate::mock::{Driver, MockMemory};
use crate::{Error, Fault, Layout, Queue, F_EVENT_IDX, F_INDIRECT_DESC};

const BASE: u64 = 0x10_0000;
const LEN: usize = 0x10000;

fn setup(size: u16, features: u64) -> (MockMemory, Driver, Queue) {
    let mem = MockMemory::new(BASE, LEN);
    let drv = Driver::new(&mem, size);
    let q = Queue::new(drv.layout, features, &mem).expect("a good layout");
    (mem, drv, q)
}

fn fault_of<T: core::fmt::Debug>(r: Result<T, Error>) -> (Fault, Option<u16>) {
    let e = r.expect_err("refused");
    (e.fault, e.head.map(|h| h.index()))
}

#[test]
fn a_request_round_trips() {
    let (mem, mut drv, mut q) = setup(8, 0);
    let data = drv.end() + 0x100;
    mem.poke(data, b"hello, device");
    let head = drv.chain(&mem, &[(data, 13, false), (data + 0x100, 4, true), (data + 0x200, 1, true)]);
    drv.publish(&mem, head);
    let (h, chain) = q.pop::<4>(&mem).unwrap().expect("a chain");
    assert_eq!(h.index(), head);
    assert_eq!(chain.readable_bytes(), 13);
    assert_eq!(chain.writable_bytes(), 5);
    let mut buf = [0u8; 16];
    assert_eq!(chain.read(&mem, 7, &mut buf).unwrap(), 6);
    assert_eq!(&buf[..6], b"device");
    assert_eq!(chain.write(&mem, 2, b"xyzw").unwrap(), 3, "the rest does not fit");
    assert_eq!(mem.peek(data + 0x102, 2), b"xy");
    assert_eq!(mem.peek(data + 0x200, 1), b"z");
    q.push(&mem, h, 5).unwrap();
    assert_eq!(drv.used(&mem), [(u32::from(head), 5)]);
    assert!(q.pop::<4>(&mem).unwrap().is_none());
    assert_eq!(mem.strays(), 0);
}

#[test]
fn layouts_are_checked() {
    let mem = MockMemory::new(BASE, LEN);
    let good = Layout { size: 16, desc: BASE, avail: BASE + 0x100, used: BASE + 0x200 };
    assert!(Queue::new(good, 0, &mem).is_ok());
    for size in [0, 3, 100, 0xFFFF] {
        assert_eq!(Queue::new(Layout { size, ..good }, 0, &mem).err(), Some(Fault::BadSize), "{size}");
    }
    let cases = [
        (Layout { desc: BASE + 8, ..good }, Fault::Misaligned),
        (Layout { avail: BASE + 0x101, ..good }, Fault::Misaligned),
        (Layout { used: BASE + 0x202, ..good }, Fault::Misaligned),
        (Layout { desc: BASE - 0x100, ..good }, Fault::RingOutsideMemory),
        (Layout { used: BASE + LEN as u64 - 0x80, ..good }, Fault::RingOutsideMemory),
        (Layout { avail: u64::MAX - 1, ..good }, Fault::RingOutsideMemory),
        (Layout { size: 32768, ..good }, Fault::RingOutsideMemory),
    ];
    for (l, f) in cases {
        assert_eq!(Queue::new(l, 0, &mem).err(), Some(f), "{l:x?}");
    }
    assert_eq!(mem.strays(), 0);
}

#[test]
fn index_jumps_and_bad_heads_break_the_queue() {
    let (mem, mut drv, mut q) = setup(8, 0);
    drv.set_avail_idx(&mem, 9);
    assert_eq!(fault_of(q.pop::<4>(&mem)), (Fault::AvailIndexJump, None));
    assert_eq!(q.broken(), Some(Fault::AvailIndexJump));
    drv.set_avail_idx(&mem, 0);
    assert_eq!(fault_of(q.pop::<4>(&mem)), (Fault::AvailIndexJump, None), "sticky until reset");

    let (mem, mut drv, mut q) = setup(8, 0);
    drv.set_avail_idx(&mem, 0xFFFF); // backwards
    assert_eq!(fault_of(q.pop::<4>(&mem)), (Fault::AvailIndexJump, None));

    let (mem, mut drv, mut q) = setup(8, 0);
    drv.publish(&mem, 8);
    assert_eq!(fault_of(q.pop::<4>(&mem)), (Fault::HeadOutOfRange, None));
    assert_eq!(q.push(&mem, crate::Head(0), 0), Err(Fault::HeadOutOfRange));
    assert_eq!(mem.strays(), 0);
}

#[test]
fn a_full_ring_is_not_a_jump() {
    let (mem, mut drv, mut q) = setup(4, 0);
    let data = drv.end();
    for _ in 0..4 {
        let h = drv.chain(&mem, &[(data, 1, true)]);
        drv.publish(&mem, h);
    }
    for _ in 0..4 {
        let (h, _) = q.pop::<1>(&mem).unwrap().unwrap();
        q.push(&mem, h, 1).unwrap();
    }
    assert!(q.pop::<1>(&mem).unwrap().is_none());
}

/// A descriptor as written: address, length, flags, next.
type RawDesc = (u64, u32, u16, u16);

#[test]
fn bad_chains_are_refused_with_their_head() {
    let (_, drv, _) = setup(8, 0);
    let (t, end) = (drv.layout.desc, drv.end());
    // Each case: the descriptors from index 2 on, and the fault.
    let cases: [(&[RawDesc], Fault); 7] = [
        (&[(end, 8, 1, 9)], Fault::NextOutOfRange),
        (&[(end, 8, 1, 3), (end, 8, 1, 2)], Fault::Loop),
        (&[(end, 8, 1, 2)], Fault::Loop),
        (&[(BASE + LEN as u64 - 4, 8, 0, 0)], Fault::BufferOutsideMemory),
        (&[(u64::MAX - 2, 8, 0, 0)], Fault::BufferOutsideMemory),
        (&[(end, 8, 3, 3), (end, 8, 0, 0)], Fault::ReadableAfterWritable),
        (&[(end, 8, 4, 0)], Fault::IndirectNotNegotiated),
    ];
    for (descs, fault) in cases {
        let (mem, mut drv, mut q) = setup(8, 0);
        for (i, &(addr, len, flags, next)) in descs.iter().enumerate() {
            Driver::set_desc(&mem, t, 2 + i as u16, addr, len, flags, next);
        }
        drv.publish(&mem, 2);
        let e = q.pop::<8>(&mem).expect_err("refused");
        assert_eq!(e.fault, fault, "{descs:x?}");
        let head = e.head.expect("a head to complete");
        assert_eq!(head.index(), 2);
        assert_eq!(q.broken(), None, "the queue goes on");
        q.push(&mem, head, 0).unwrap();
        assert_eq!(drv.used(&mem), [(2, 0)]);
        assert_eq!(mem.strays(), 0);
    }
}

#[test]
fn zero_length_buffers_carry_nothing() {
    let (mem, mut drv, mut q) = setup(8, 0);
    let d = drv.end();
    // A zero-length buffer at an address outside memory is harmless.
    let h = drv.chain(&mem, &[(u64::MAX, 0, false), (d, 4, false), (0, 0, true), (d + 8, 2, true)]);
    drv.publish(&mem, h);
    let (_, c) = q.pop::<2>(&mem).unwrap().unwrap();
    assert_eq!(c.readable().len(), 1);
    assert_eq!(c.writable().len(), 1);
    assert_eq!(c.writable_bytes(), 2);
    // A zero-length writable buffer still orders the chain.
    let h = drv.chain(&mem, &[(d, 0, true), (d, 4, false)]);
    drv.publish(&mem, h);
    assert_eq!(fault_of(q.pop::<2>(&mem)), (Fault::ReadableAfterWritable, Some(h)));
    assert_eq!(mem.strays(), 0);
}

#[test]
fn too_many_segments_and_too_many_bytes() {
    let (mem, mut drv, mut q) = setup(8, 0);
    let d = drv.end();
    let h = drv.chain(&mem, &[(d, 1, false), (d, 1, false), (d, 1, true)]);
    drv.publish(&mem, h);
    assert_eq!(fault_of(q.pop::<2>(&mem)), (Fault::TooManySegments, Some(h)));
    // Writable bytes past what a used entry can say: 2 × 3 GiB in a
    // memory of 8 GiB whose bytes above the rings are never touched.
    let big = Big(MockMemory::new(0, 0x1000));
    let mut drv = Driver::new(&big.0, 4);
    let mut q = Queue::new(drv.layout, 0, &big).unwrap();
    let h = drv.chain(&big.0, &[(1 << 32, 3 << 30, true), (1 << 32, 3 << 30, true)]);
    drv.publish(&big.0, h);
    assert_eq!(fault_of(q.pop::<4>(&big)), (Fault::TooLarge, Some(h)));
    let h = drv.chain(&big.0, &[(1 << 32, u32::MAX, true), (0, 1, false)]);
    drv.publish(&big.0, h);
    assert_eq!(fault_of(q.pop::<4>(&big)), (Fault::ReadableAfterWritable, Some(h)));
    assert_eq!(big.0.strays(), 0);
}

/// 8 GiB of memory of which only the first page is backed.
struct Big(MockMemory);

impl crate::GuestMemory for Big {
    fn contains(&self, gpa: u64, len: u64) -> bool {
        gpa.checked_add(len).is_some_and(|end| end <= 8 << 30)
    }
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        self.0.read(gpa, buf)
    }
    fn write(&self, gpa: u64, data: &[u8]) -> bool {
        self.0.write(gpa, data)
    }
}

#[test]
fn indirect_tables() {
    let (mem, mut drv, mut q) = setup(8, F_INDIRECT_DESC);
    let (table, d) = ((drv.end() + 0x10) & !0xF, drv.end() + 0x1000);
    let bufs: Vec<_> = (0..20).map(|i| (d + 0x10 * i, 0x10, i >= 12)).collect();
    let h = drv.indirect(&mem, table, &bufs);
    drv.publish(&mem, h);
    let (head, c) = q.pop::<32>(&mem).unwrap().unwrap();
    assert_eq!((head.index(), c.readable().len(), c.writable_bytes()), (h, 12, 8 * 0x10));
    q.push(&mem, head, 0x80).unwrap();

    let t = drv.layout.desc;
    let cases: [(u64, u32, u16, Fault); 6] = [
        (table, 0, 4, Fault::IndirectBadLength),
        (table, 24, 4, Fault::IndirectBadLength),
        (table, 16 * 32769, 4, Fault::IndirectBadLength),
        (table, 16, 5, Fault::IndirectWithNext),
        (BASE + LEN as u64 - 16, 32, 4, Fault::BufferOutsideMemory),
        (table, 32, 4, Fault::Loop), // the table's first entry points at itself
    ];
    for (addr, len, flags, fault) in cases {
        Driver::set_desc(&mem, table, 0, d, 4, 1, 0);
        Driver::set_desc(&mem, t, 5, addr, len, flags, 6);
        drv.publish(&mem, 5);
        assert_eq!(fault_of(q.pop::<32>(&mem)), (fault, Some(5)), "{addr:x} {len} {flags}");
    }
    // A nested table.
    Driver::set_desc(&mem, table, 0, table, 16, 4, 0);
    Driver::set_desc(&mem, t, 5, table, 16, 4, 0);
    drv.publish(&mem, 5);
    assert_eq!(fault_of(q.pop::<32>(&mem)), (Fault::IndirectNested, Some(5)));
    assert_eq!(mem.strays(), 0);
}

#[test]
fn interrupts_without_event_idx() {
    let (mem, mut drv, mut q) = setup(8, 0);
    let d = drv.end();
    assert!(!q.needs_interrupt(&mem).unwrap(), "nothing pushed");
    let h = drv.chain(&mem, &[(d, 1, true)]);
    drv.publish(&mem, h);
    let (h, _) = q.pop::<1>(&mem).unwrap().unwrap();
    q.push(&mem, h, 1).unwrap();
    assert!(q.needs_interrupt(&mem).unwrap());
    assert!(!q.needs_interrupt(&mem).unwrap(), "once");
    drv.set_avail_flags(&mem, 1);
    let h = drv.chain(&mem, &[(d, 1, true)]);
    drv.publish(&mem, h);
    let (h, _) = q.pop::<1>(&mem).unwrap().unwrap();
    q.push(&mem, h, 1).unwrap();
    assert!(!q.needs_interrupt(&mem).unwrap(), "NO_INTERRUPT");
}

#[test]
fn interrupts_and_kicks_with_event_idx() {
    let (mem, mut drv, mut q) = setup(8, F_EVENT_IDX);
    let d = drv.end();
    drv.set_avail_flags(&mem, 1); // ignored with EVENT_IDX
    drv.set_used_event(&mem, 2); // interrupt when entry 3 is used
    let mut wants = Vec::new();
    for _ in 0..5 {
        let h = drv.chain(&mem, &[(d, 1, true)]);
        drv.publish(&mem, h);
        let (h, _) = q.pop::<1>(&mem).unwrap().unwrap();
        q.push(&mem, h, 1).unwrap();
        wants.push(q.needs_interrupt(&mem).unwrap());
    }
    assert_eq!(wants, [false, false, true, false, false]);
    // Several pushes between checks: one interrupt covers them.
    drv.set_used_event(&mem, 5);
    for _ in 0..2 {
        let h = drv.chain(&mem, &[(d, 1, true)]);
        drv.publish(&mem, h);
        let (h, _) = q.pop::<1>(&mem).unwrap().unwrap();
        q.push(&mem, h, 1).unwrap();
    }
    assert!(q.needs_interrupt(&mem).unwrap());

    // Kicks: avail_event is where the device wants the next one.
    assert!(!q.enable_notifications(&mem).unwrap());
    assert_eq!(drv.avail_event(&mem), 7);
    let h = drv.chain(&mem, &[(d, 1, true)]);
    drv.publish(&mem, h);
    assert!(q.enable_notifications(&mem).unwrap(), "work arrived meanwhile");
    q.disable_notifications(&mem).unwrap();
    assert_eq!(drv.used_flags(&mem), 0, "EVENT_IDX never sets NO_NOTIFY");
}

#[test]
fn kicks_without_event_idx() {
    let (mem, drv, mut q) = setup(8, 0);
    q.disable_notifications(&mem).unwrap();
    assert_eq!(drv.used_flags(&mem), 1);
    assert!(!q.enable_notifications(&mem).unwrap());
    assert_eq!(drv.used_flags(&mem), 0);
}
