//! Host tests of `platform::vtd` (not the kernel: `kernel/src/platform/vtd.rs` includes them).

use super::*;

/// QEMU 7.2's intel-iommu with its defaults: 39-bit (SAGAW bit 1), 16-bit
/// domain ids (ND 6), fault records at 0x220 (FRO 0x22), one of them
/// (NFR 0), IOTLB registers at 0x200 (IRO 0x20).
const QEMU_CAP: u64 = 0x0000_0000_0000_0206 | 0x22 << 24 | 0x26 << 16;
const QEMU_ECAP: u64 = 0x20 << 8;

#[test]
fn capabilities_name_levels_domains_and_registers() {
    let c = Caps::decode(QEMU_CAP, QEMU_ECAP).unwrap();
    assert_eq!(c, Caps { levels: 3, domains: 1 << 16, faults: (0x220, 1), iotlb: 0x208 });
    let wide = Caps::decode(QEMU_CAP | 0b100 << 8 | 7 << 40, QEMU_ECAP).unwrap();
    assert_eq!((wide.levels, wide.faults.1), (4, 8), "4 levels where 48-bit is offered");
    assert_eq!(Caps::decode(QEMU_CAP & !(0x1f << 8), QEMU_ECAP), None, "no level the kernel builds");
}

#[test]
fn root_and_context_entries_point_at_their_tables() {
    assert_eq!(root_entry(0x1234_5000), [0x1234_5001, 0]);
    assert_eq!(root_entry(0x1234_5fff), [0x1234_5001, 0], "the low bits are not an address");
    let [lo, hi] = context_entry(0x7000, 3, 0x1234);
    assert_eq!(lo, 0x7001, "present, translated through the table, faults recorded");
    assert_eq!(hi, 1 | 0x1234 << 8, "39-bit width, domain id");
    assert_eq!(context_entry(0x7000, 4, 1)[1] & 7, 2, "48-bit width");
}

#[test]
fn the_iotlb_is_invalidated_for_one_domain_after_draining() {
    let v = iotlb_domain(7);
    assert_eq!(v >> 63, 1, "IVT: go");
    assert_eq!(v >> 60 & 3, 2, "domain-selective");
    assert_eq!(v >> 48 & 3, 3, "reads and writes drained");
    assert_eq!(v >> 32 & 0xffff, 7);
    assert_eq!(CCMD_GLOBAL >> 61, 0b101, "ICC, global");
}

#[test]
fn a_fault_record_names_requester_page_and_reason() {
    let hi = 1 << 63 | 1 << 62 | 6 << 32 | 0x0020;
    assert_eq!(fault(0x0010_0abc, hi), Some((0x20, 0x0010_0000, 6, true)));
    assert_eq!(fault(0x1000, hi & !(1 << 63)), None, "F clear: no fault held");
    assert_eq!(
        fault(0xfee0_0000, 1 << 63 | 5 << 32 | 0x0020),
        Some((0x20, 0xfee0_0000, 5, false)),
        "a write"
    );
}
