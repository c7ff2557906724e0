//! Host tests of `obj::ioports` (not the kernel: `kernel/src/obj/ioports.rs` includes them).

use super::*;

#[test]
fn covers_only_its_range() {
    let r = IoPorts { base: 0x3f8, count: 8, owner: Ref { index: 0, generation: 0 } };
    assert!(r.covers(0x3f8, 1) && r.covers(0x3fc, 4));
    assert!(!r.covers(0x3fd, 4) && !r.covers(0x3f7, 1) && !r.covers(0xffff, 4));
}
