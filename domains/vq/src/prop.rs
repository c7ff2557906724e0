//! Property tests: random descriptor tables and rings never make the queue
//! panic or touch memory outside what it was given, and every well-formed
//! chain comes back as it was written.

use std::ops::Range;

use proptest::prelude::*;

use crate::mock::{Buf, Driver, MockMemory};
use crate::{GuestMemory, Queue, F_EVENT_IDX, F_INDIRECT_DESC};

const BASE: u64 = 0x4000;
const LEN: usize = 0x4000;
/// Where the property tests' buffers and indirect tables go.
const DATA: u64 = BASE + 0x2000;

/// Addresses worth trying: inside, at the edges, outside, near the top.
fn addr() -> impl Strategy<Value = u64> {
    prop_oneof![
        DATA..BASE + LEN as u64,
        Just(BASE + LEN as u64 - 1),
        Just(BASE - 1),
        0..BASE,
        u64::MAX - 0x20..=u64::MAX,
        any::<u64>(),
    ]
}

fn len() -> impl Strategy<Value = u32> {
    prop_oneof![0..0x100u32, Just(0), Just(16), Just(32), Just(u32::MAX), any::<u32>()]
}

/// A raw descriptor: address, length, flags, next.
fn raw_desc(size: u16) -> impl Strategy<Value = (u64, u32, u16, u16)> {
    (addr(), len(), 0u16..8, prop_oneof![0..size + 2, any::<u16>()])
}

/// What a writable buffer was filled with.
const FILL: u8 = 0xA5;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Hostile tables, indirect tables and rings: no panic, no access
    /// outside memory, and the device writes only its used ring and the
    /// writable buffers of chains it accepted.
    #[test]
    fn hostile_chains(
        shift in 0u32..6,
        features in prop_oneof![Just(0), Just(F_INDIRECT_DESC), Just(F_EVENT_IDX | F_INDIRECT_DESC)],
        descs in proptest::collection::vec(raw_desc(32), 32),
        indirect in proptest::collection::vec(raw_desc(8), 8),
        heads in proptest::collection::vec(prop_oneof![0u16..34, any::<u16>()], 32),
        avail_idx in prop_oneof![0u16..40, any::<u16>()],
    ) {
        let size = 1u16 << shift;
        let mem = MockMemory::new(BASE, LEN);
        let mut drv = Driver::new(&mem, size);
        let mut q = Queue::new(drv.layout, features, &mem).unwrap();
        for (i, &(a, l, f, n)) in descs.iter().take(usize::from(size)).enumerate() {
            Driver::set_desc(&mem, drv.layout.desc, i as u16, a, l, f, n);
        }
        for (i, &(a, l, f, n)) in indirect.iter().enumerate() {
            Driver::set_desc(&mem, DATA, i as u16, a, l, f, n);
        }
        for (i, &h) in heads.iter().take(usize::from(size)).enumerate() {
            mem.poke(drv.layout.avail + 4 + 2 * i as u64, &h.to_le_bytes());
        }
        drv.set_avail_idx(&mem, avail_idx);
        let used = drv.layout.used..drv.end();
        let _ = mem.writes();
        for _ in 0..64 {
            match q.pop::<8>(&mem) {
                Ok(Some((head, chain))) => {
                    let allowed: Vec<Range<u64>> = chain
                        .writable()
                        .iter()
                        .map(|s| s.addr..s.addr + u64::from(s.len))
                        .collect();
                    for s in chain.readable().iter().chain(chain.writable()) {
                        prop_assert!(s.len > 0 && mem.contains(s.addr, u64::from(s.len)));
                    }
                    let fill = vec![FILL; chain.writable_bytes().min(0x4000) as usize];
                    let n = chain.write(&mem, 0, &fill).unwrap();
                    prop_assert_eq!(n as u32, chain.writable_bytes());
                    let mut back = vec![0; chain.readable_bytes().min(0x4000) as usize];
                    prop_assert_eq!(chain.read(&mem, 0, &mut back).unwrap(), back.len());
                    q.push(&mem, head, n as u32).unwrap();
                    for w in mem.writes() {
                        let inside = |r: &Range<u64>| r.start <= w.start && w.end <= r.end;
                        prop_assert!(inside(&used) || allowed.iter().any(inside), "{:x?}", w);
                    }
                }
                Ok(None) => break,
                Err(e) => match e.head {
                    Some(head) => q.push(&mem, head, 0).unwrap(),
                    None => {
                        prop_assert!(q.broken().is_some());
                        break;
                    }
                },
            }
            let _ = q.needs_interrupt(&mem);
        }
        for w in mem.writes() {
            prop_assert!(used.start <= w.start && w.end <= used.end, "{:x?}", w);
        }
        prop_assert_eq!(mem.strays(), 0);
    }

    /// Well-formed chains (direct or indirect, readable then writable, of
    /// any lengths inside memory) come back segment for segment, and their
    /// used entries reach the driver in order.
    #[test]
    fn good_chains_round_trip(
        chains in proptest::collection::vec(
            (
                proptest::collection::vec((0u64..0x1000, 1u32..0x400), 1..6),
                0usize..6,
                any::<bool>(),
            ),
            1..24,
        ),
        event_idx in any::<bool>(),
    ) {
        let mem = MockMemory::new(BASE, LEN);
        let features = F_INDIRECT_DESC | if event_idx { F_EVENT_IDX } else { 0 };
        let mut drv = Driver::new(&mem, 8);
        let mut q = Queue::new(drv.layout, features, &mem).unwrap();
        let mut tables = 0u64;
        for (bufs, readable, indirect) in chains {
            let bufs: Vec<Buf> = bufs
                .iter()
                .enumerate()
                .map(|(i, &(off, len))| (DATA + off, len, i >= readable))
                .collect();
            let head = if indirect {
                let table = DATA + 0x1800 + 0x80 * (tables % 16);
                tables += 1;
                drv.indirect(&mem, table, &bufs)
            } else {
                drv.chain(&mem, &bufs)
            };
            drv.publish(&mem, head);
            let (h, chain) = q.pop::<8>(&mem).unwrap().expect("the chain");
            prop_assert_eq!(h.index(), head);
            let got: Vec<Buf> = chain
                .readable()
                .iter()
                .map(|s| (s.addr, s.len, false))
                .chain(chain.writable().iter().map(|s| (s.addr, s.len, true)))
                .collect();
            prop_assert_eq!(&got, &bufs);
            let len = chain.writable_bytes();
            q.push(&mem, h, len).unwrap();
            prop_assert_eq!(drv.used(&mem), vec![(u32::from(head), len)]);
            prop_assert!(q.pop::<8>(&mem).unwrap().is_none());
        }
        prop_assert_eq!(mem.strays(), 0);
    }
}
