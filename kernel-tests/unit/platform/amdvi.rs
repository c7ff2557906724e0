//! Host tests of `platform::amdvi` (not the kernel: `kernel/src/platform/amdvi.rs` includes them).

use super::*;

#[test]
fn device_table_entries_block_translate_and_remap() {
    // Blocked: valid and translated, no permission, no page table.
    assert_eq!(dte(None, 0, None), [0b11, 0, 0, 0]);
    assert_eq!(
        dte(None, 0, Some(None)),
        [0b11, 0, 1, 0],
        "interrupts remapped (IV) and aborted (IntCtl 00b)"
    );
    let [q0, q1, q2, q3] = dte(Some(0x1234_5000), 0x42, Some(Some(0x8_0000)));
    assert_eq!(q0, 0b11 | 4 << 9 | 0x1234_5000 | 1 << 61 | 1 << 62, "mode 4, the root, IR and IW");
    assert_eq!(q1, 0x42, "the domain id");
    assert_eq!(q2, 1 | 11 << 1 | 0x8_0000 | 2 << 60, "IV, 2^11 entries at the table, IntCtl 10b (remapped)");
    assert_eq!(q3, 0);
    assert_eq!(
        dte(Some(0x1234_5fff), 1, None)[0] & 0x000f_ffff_ffff_f000,
        0x1234_5000,
        "low bits are no address"
    );
    assert_eq!(dte(Some(1 << 60), 1, None)[0] >> 52 & 0x1ff, 0, "nor high ones");
    assert_eq!(
        dte(None, 0, Some(Some(0x8_0fff)))[2] & 0x000f_ffff_ffff_ffc0,
        0x8_0fc0,
        "64-byte aligned table"
    );
}

#[test]
fn remapping_entries_name_vector_and_destination() {
    assert_eq!(irte(0x41, 3), 1 | 3 << 8 | 0x41 << 16, "RemapEn, fixed, physical");
    assert_eq!(irte(0x41, 0x1_02), 1 | 2 << 8 | 0x41 << 16, "an 8-bit destination");
}

#[test]
fn commands_carry_their_opcode_and_operands() {
    assert_eq!(cmd_wait(0x7000_0008), [1 << 60 | 0x7000_0008 | 1, 1], "store 1 at the qword");
    assert_eq!(cmd_wait(0x7000_000f)[0] & 0xf, 0b1001, "the store address is 8-aligned: only S set below it");
    assert_eq!(cmd_for(DTE, 0x0020), [2 << 60 | 0x20, 0]);
    let [lo, hi] = cmd_pages(7);
    assert_eq!(lo, 3 << 60 | 7 << 32, "the domain id in the second dword");
    assert_eq!(hi & 0xfff, 0b11, "S and PDE: every page, and table entries");
    assert_eq!(hi & !0xfff, 0x7fff_ffff_ffff_f000, "the whole address space");
    assert_eq!(cmd_for(IRT, 0x00a0), [5 << 60 | 0xa0, 0]);
    assert_eq!(CMD_ALL, [8 << 60, 0]);
}

#[test]
fn a_unit_starts_off_with_its_tables_then_on() {
    let w = start(0x40_0000, 512);
    assert_eq!(w[0], (CONTROL, 0), "off first: the bases are written while it is");
    assert_eq!(w[1], (DEV_TABLE, 0x40_0000 | 511), "512 pages: every requester id");
    assert_eq!(w[2], (CMD_BASE, 0x60_0000 | 8 << 56), "the next page, 256 entries");
    assert_eq!(w[3], (EVT_BASE, 0x60_1000 | 8 << 56));
    assert_eq!(w[4], (CONTROL, 1 | 1 << 2 | 1 << 12), "on, with its event log and command buffer");
    assert_eq!(start(0x40_0fff, 1)[1], (DEV_TABLE, 0x40_0000), "no low bits of an address");
}

#[test]
fn events_are_decoded_as_the_spec_lays_them_out() {
    // An I/O page fault (code 2) of 00:04.0, domain 3, a write (RW, flag
    // bit 21 of the second dword) at 0x2000000.
    let fault = [2 << 60 | 1 << 53 | 3 << 32 | 0x20, 0x200_0000];
    assert_eq!(event(fault), (0x20, 0x200_0000, 2, true, false));
    assert_eq!(event([2 << 60 | 0x20, 0x10_0000]), (0x20, 0x10_0000, 2, false, false), "a read");
    assert!(event([2 << 60 | 1 << 51 | 0x20, 0xfee0_0000]).4, "flag I: an interrupt request");
    assert_eq!(event([1 << 60 | 0xa0, 0]).2, 1, "an illegal device table entry");
    assert_eq!(event([0xf << 60 | 0xffff, u64::MAX]), (0xffff, u64::MAX, 15, false, false));
}
