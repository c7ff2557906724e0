//! virtio-blk requests over mock memory: each kind, and hostile ones.

use crate::blk::*;
use crate::mock::{Buf, Driver, MockMemory};
use crate::Queue;

struct Ram {
    bytes: Vec<u8>,
    read_only: bool,
    flushes: u32,
}

impl Disk for Ram {
    fn sectors(&self) -> u64 {
        self.bytes.len() as u64 / SECTOR
    }
    fn read_only(&self) -> bool {
        self.read_only
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> bool {
        let at = (sector * SECTOR) as usize;
        buf.copy_from_slice(&self.bytes[at..at + buf.len()]);
        true
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> bool {
        let at = (sector * SECTOR) as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
        true
    }
    fn flush(&mut self) -> bool {
        self.flushes += 1;
        true
    }
    fn id(&self) -> &[u8] {
        b"ryokan-disk-0"
    }
}

const HDR: u64 = 0x8000;
const DATA: u64 = 0x9000;
const STATUS: u64 = 0xF000;

/// Runs one request of `kind` at `sector` with the chain `bufs` (after
/// the header); the used length and the status byte.
fn run(disk: &mut Ram, kind: u32, sector: u64, bufs: &[Buf]) -> (u32, u8, MockMemory) {
    let mem = MockMemory::new(0, 0x10000);
    let mut drv = Driver::new(&mem, 8);
    let mut q = Queue::new(drv.layout, 0, &mem).unwrap();
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(&kind.to_le_bytes());
    h[8..].copy_from_slice(&sector.to_le_bytes());
    mem.poke(HDR, &h);
    mem.poke(STATUS, &[0xEE]);
    let mut all = vec![(HDR, 16, false)];
    all.extend_from_slice(bufs);
    let head = drv.chain(&mem, &all);
    drv.publish(&mem, head);
    let (head, chain) = q.pop::<8>(&mem).unwrap().unwrap();
    let used = serve(&chain, &mem, disk);
    q.push(&mem, head, used).unwrap();
    let status = mem.peek(STATUS, 1)[0];
    assert_eq!(mem.strays(), 0);
    (used, status, mem)
}

fn disk() -> Ram {
    Ram { bytes: (0..8 * 512).map(|i| (i / 512) as u8 + 1).collect(), read_only: false, flushes: 0 }
}

#[test]
fn reads_writes_flushes_and_ids() {
    let mut d = disk();
    let (used, status, mem) = run(&mut d, T_IN, 2, &[(DATA, 1024, true), (STATUS, 1, true)]);
    assert_eq!((used, status), (1025, S_OK));
    assert_eq!(mem.peek(DATA, 1024), [vec![3; 512], vec![4; 512]].concat());

    let mut d = disk();
    // A write from two buffers: the bytes poked at DATA are 0, so sectors 5–6 become 0.
    let (used, status, _) =
        run(&mut d, T_OUT, 5, &[(DATA, 512, false), (DATA + 512, 512, false), (STATUS, 1, true)]);
    assert_eq!((used, status), (1, S_OK));
    assert_eq!(d.bytes[5 * 512..7 * 512], [0; 1024]);
    assert_eq!(d.bytes[7 * 512], 8, "the next sector untouched");

    let (_, status, _) = run(&mut d, T_FLUSH, 0, &[(STATUS, 1, true)]);
    assert_eq!((status, d.flushes), (S_OK, 1));
    let (used, status, mem) = run(&mut d, T_GET_ID, 0, &[(DATA, 20, true), (STATUS, 1, true)]);
    assert_eq!((used, status), (14, S_OK));
    assert_eq!(mem.peek(DATA, 13), b"ryokan-disk-0");
}

#[test]
fn hostile_requests_get_errors() {
    let mut d = disk();
    let before = d.bytes.clone();
    let cases: [(u32, u64, &[Buf], u8, &str); 7] = [
        (T_IN, 7, &[(DATA, 1024, true), (STATUS, 1, true)], S_IOERR, "past the end"),
        (T_IN, u64::MAX, &[(DATA, 512, true), (STATUS, 1, true)], S_IOERR, "sector overflow"),
        (T_IN, 0, &[(DATA, 100, true), (STATUS, 1, true)], S_IOERR, "a partial sector"),
        (T_OUT, 8, &[(DATA, 512, false), (STATUS, 1, true)], S_IOERR, "a write past the end"),
        (99, 0, &[(STATUS, 1, true)], S_UNSUPP, "unknown type"),
        (T_IN, 0, &[(DATA, 512, false), (STATUS, 1, true)], S_IOERR, "read into a read-only buffer"),
        (T_OUT, 0, &[(DATA, 512, true), (STATUS, 1, true)], S_IOERR, "write from a writable buffer"),
    ];
    for (kind, sector, bufs, want, why) in cases {
        let (_, status, mem) = run(&mut d, kind, sector, bufs);
        assert_eq!(status, want, "{why}");
        assert_eq!(mem.peek(DATA, 16), [0; 16], "{why}: nothing read into memory");
    }
    assert_eq!(d.bytes, before, "nothing written");
    d.read_only = true;
    let (_, status, _) = run(&mut d, T_OUT, 0, &[(DATA, 512, false), (STATUS, 1, true)]);
    assert_eq!(status, S_IOERR, "read-only disk");
    assert_eq!(d.bytes, before);
    // No writable byte: nowhere for a status, nothing done.
    let (used, status, _) = run(&mut d, T_IN, 0, &[(DATA, 512, false)]);
    assert_eq!((used, status), (0, 0xEE));
}

#[test]
fn a_short_header_is_an_error() {
    let mem = MockMemory::new(0, 0x10000);
    let mut drv = Driver::new(&mem, 8);
    let mut q = Queue::new(drv.layout, 0, &mem).unwrap();
    let head = drv.chain(&mem, &[(HDR, 8, false), (STATUS, 1, true)]);
    drv.publish(&mem, head);
    let (_, chain) = q.pop::<8>(&mem).unwrap().unwrap();
    assert_eq!(serve(&chain, &mem, &mut disk()), 1);
    assert_eq!(mem.peek(STATUS, 1), [S_IOERR]);
}

proptest::proptest! {
    /// Random headers and chain shapes: no panic (the disk's slices would
    /// panic past its end), nothing outside memory, a status always
    /// written where there is a writable byte, and a read-only disk
    /// never written.
    #[test]
    fn hostile_requests_never_escape(
        kind in proptest::prop_oneof![0u32..10, proptest::prelude::any::<u32>()],
        sector in proptest::prop_oneof![0u64..10, proptest::prelude::any::<u64>()],
        bufs in proptest::collection::vec((0u64..0x5000, 0u32..0x1000, proptest::prelude::any::<bool>()), 0..5),
        read_only in proptest::prelude::any::<bool>(),
    ) {
        let mut d = disk();
        d.read_only = read_only;
        let before = d.bytes.clone();
        let mut chain: Vec<Buf> = bufs.iter().map(|&(a, l, w)| (DATA + a, l, w)).collect();
        chain.sort_by_key(|b| b.2); // readable first, as the queue insists
        chain.push((STATUS, 1, true));
        let (used, status, _) = run(&mut d, kind, sector, &chain);
        proptest::prop_assert!(used >= 1);
        proptest::prop_assert!([S_OK, S_IOERR, S_UNSUPP].contains(&status));
        if read_only {
            proptest::prop_assert_eq!(d.bytes, before);
        }
    }
}
