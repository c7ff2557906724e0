//! Host tests of `obj::device` (not the kernel: `kernel/src/obj/device.rs` includes them).

use super::*;

const OWNER: Ref = Ref { index: 1, generation: 0 };

/// A configuration space: a virtio-like header with a capability list of
/// a vendor-specific capability (length 16) at 0x40 and MSI-X at 0x50.
fn space() -> [u8; 256] {
    let mut s = [0u8; 256];
    s[0x06] = HAS_CAPS as u8;
    s[0x34] = 0x40;
    s[0x40..0x43].copy_from_slice(&[0x09, 0x50, 16]);
    s[0x50..0x52].copy_from_slice(&[0x11, 0x00]);
    s
}

fn device(s: &[u8; 256], dma: bool) -> Device {
    Device::function(0x20, OWNER, dma, |o| u32::from(s[usize::from(o)]))
}

#[test]
fn the_holder_writes_only_its_own_registers() {
    let d = device(&space(), false);
    assert_eq!(d.open.as_slice(), &[(0x43, 0x50)]);
    for (offset, width) in [(0x04, 2), (0x04, 4), (0x06, 2), (0x0c, 1), (0x0c, 2), (0x3c, 1), (0x44, 4)] {
        assert!(d.writable(offset, width), "{offset:#x}/{width}");
    }
    // BARs, the ROM, the capability list's links, MSI-X, the header's
    // read-only and identity bytes, extended space.
    for (offset, width) in [
        (0x10, 4),
        (0x24, 4),
        (0x30, 4),
        (0x40, 1),
        (0x42, 1),
        (0x50, 4),
        (0x00, 4),
        (0x0e, 1),
        (0x3c, 4),
        (0x100, 4),
    ] {
        assert!(!d.writable(offset, width), "{offset:#x}/{width}");
    }
    assert!(!Device::segment(OWNER).writable(0x04, 2), "the segment is no function");
}

#[test]
fn bus_mastering_is_written_only_where_dma_is_allowed() {
    let (no, yes) = (device(&space(), false), device(&space(), true));
    assert_eq!(no.filtered(0x04, 2, 0x0006), 0x0002);
    assert_eq!(no.filtered(0x04, 4, 0xffff_0007), 0xffff_0003);
    assert_eq!(no.filtered(0x06, 2, 0xffff), 0xffff, "the status register is no command");
    assert_eq!(no.filtered(0x3c, 1, 0x04), 0x04);
    assert_eq!(yes.filtered(0x04, 2, 0x0006), 0x0006);
}

#[test]
fn a_hostile_capability_list_is_walked_within_bounds() {
    let mut s = space();
    s[0x41] = 0x40; // a loop back to itself
    assert_eq!(device(&s, false).open.len(), 1);
    let mut s = space();
    s[0x42] = 0xff; // over MSI-X, and past the capabilities' space
    assert_eq!(device(&s, false).open.as_slice(), &[(0x43, 0x50)]);
    assert!(!device(&s, false).writable(0x50, 4));
    s[0x41] = 0; // alone: up to the end of the capabilities' space
    assert_eq!(device(&s, false).open.as_slice(), &[(0x43, 0x100)]);
    s[0x42] = 2; // shorter than its own header
    assert!(device(&s, false).open.is_empty());
    let mut s = space();
    s[0x34] = 0x10; // into the header
    assert!(device(&s, false).open.is_empty());
    s[0x06] = 0; // no list at all
    s[0x34] = 0x40;
    assert!(device(&s, false).open.is_empty());
}

/// A table entry is found only inside the table's BAR and 16-aligned: a
/// device whose table lies at an offset that is not would have an entry
/// straddle the page the kernel maps to write it.
#[test]
fn an_msix_entry_is_inside_its_bar_and_aligned() {
    let mut bars = [Bar { base: 0, size: 0, io: false }; BARS];
    bars[1] = Bar { base: 0xfe00_0000, size: 0x1000, io: false };
    let m = Msix { cap: 0x40, entries: 4, table: (1, 0), pba: (1, 0x800) };
    assert_eq!(m.entry(&bars, 0), Some(0xfe00_0000));
    assert_eq!(m.entry(&bars, 3), Some(0xfe00_0030));
    assert_eq!(m.entry(&bars, 4), None, "past the table");
    let odd = Msix { table: (1, 0xff8), ..m };
    assert_eq!(odd.entry(&bars, 0), None, "8-aligned: would straddle the page");
    let past = Msix { table: (1, 0xff0), ..m };
    assert_eq!(past.entry(&bars, 0), Some(0xfe00_0ff0));
    assert_eq!(past.entry(&bars, 1), None, "past the BAR");
    let io = Msix { table: (2, 0), ..m };
    assert_eq!(io.entry(&bars, 0), None, "no such BAR");
}
