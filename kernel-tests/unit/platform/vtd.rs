//! Host tests of `platform::vtd` (not the kernel: `kernel/src/platform/vtd.rs` includes them).

use super::*;

/// QEMU 7.2's intel-iommu with its defaults: 39-bit (SAGAW bit 1), 16-bit
/// domain ids (ND 6), fault records at 0x220 (FRO 0x22), one of them
/// (NFR 0), IOTLB registers at 0x200 (IRO 0x20), queued invalidation
/// (QI); `intremap=on` adds IR.
const QEMU_CAP: u64 = 0x0000_0000_0000_0206 | 0x22 << 24 | 0x26 << 16;
const QEMU_ECAP: u64 = 0x20 << 8 | 0b10;

#[test]
fn capabilities_name_levels_domains_and_registers() {
    let c = Caps::decode(QEMU_CAP, QEMU_ECAP).unwrap();
    assert_eq!(c, Caps { levels: 3, domains: 1 << 16, faults: (0x220, 1), remaps: false });
    assert!(Caps::decode(QEMU_CAP, QEMU_ECAP | 0b1000).unwrap().remaps, "intremap=on: ECAP.IR");
    assert_eq!(Caps::decode(QEMU_CAP, QEMU_ECAP & !0b10), None, "no queued invalidation");
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

#[test]
fn an_ir_fault_names_the_handle_not_a_page() {
    let hi = 1 << 63 | 0x26 << 32 | 0x0020;
    assert_eq!(fault(0x00d8_0000_0000_0000, hi), Some((0x20, 0xd8, 0x26, false)), "source-id check failed");
    assert_eq!(
        fault(0, 1 << 63 | 0x25 << 32 | 0x0020),
        Some((0x20, 0, 0x25, false)),
        "compatibility blocked"
    );
    assert_eq!(
        fault(0xfee0_0abc, 1 << 63 | 0x1f << 32).map(|f| f.1),
        Some(0xfee0_0000),
        "a DMA fault's page"
    );
}

#[test]
fn a_remapping_entry_delivers_its_vector_to_one_cpu_for_one_requester() {
    let [lo, hi] = irte(0x50, 3, false, Some(0x0020));
    assert_eq!(lo & 1, 1, "present");
    assert_eq!(lo >> 1 & 0x7f, 0, "faults recorded, physical, no hint, edge, fixed");
    assert_eq!(lo >> 15 & 1, 0, "remapped, not posted");
    assert_eq!(lo >> 16 & 0xff, 0x50);
    assert_eq!(lo >> 32, 3 << 8, "xAPIC destination at bits 15:8");
    assert_eq!(lo & 0xff00_7f00, 0, "reserved and available bits clear");
    assert_eq!(hi, 0x0020 | 1 << 18, "SVT 01: every bit of 00:04.0's requester id");
    assert_eq!(
        irte(0x31, 0x1ff, true, None),
        [1 | 1 << 4 | 0x31 << 16 | 0xff << 40, 0],
        "level; any requester"
    );
}

#[test]
fn remappable_messages_name_a_handle() {
    assert_eq!(msi_address(0), 0xfee0_0010);
    assert_eq!(msi_address(0x50), 0xfee0_0000 | 0x50 << 5 | 1 << 4);
    assert_eq!(msi_address(0x50) & 1 << 3, 0, "no subhandle: the data is not added");
    assert_eq!(msi_address(0x8001), 0xfee0_0000 | 1 << 5 | 1 << 4 | 1 << 2, "handle[15] at bit 2");
    assert_eq!(ioapic_handle(0x31), 0x31 << 49 | 1 << 48);
    assert_eq!(ioapic_handle(0x8000), 1 << 48 | 1 << 11);
}

#[test]
fn invalidation_descriptors_say_what_to_forget() {
    assert_eq!(QI_CONTEXT, [0x11, 0], "context cache, global");
    assert_eq!(qi_iotlb(Some(7)), [2 | 2 << 4 | 3 << 6 | 7 << 16, 0], "IOTLB of domain 7, drained");
    assert_eq!(qi_iotlb(None)[0] & 0x30, 1 << 4, "global");
    assert_eq!(qi_iec(None), [4, 0], "interrupt entry cache, global");
    assert_eq!(qi_iec(Some(0x50)), [4 | 1 << 4 | 0x50 << 32, 0], "one entry");
    assert_eq!(qi_wait(0x1234_5678), [5 | 1 << 5 | 1 << 32, 0x1234_5678], "status 1 written");
    assert_eq!(PERSISTENT & (SIRTP | SRTP | 1 << 23), 0, "one-shot commands and CFI never written back");
    assert_eq!(PERSISTENT & (TE | QIE | IRE), TE | QIE | IRE);
}
