//! Host tests of `platform::iommu` (not the kernel: `kernel/src/platform/iommu.rs` includes them).

use super::*;

fn table(sig: &[u8; 4], structs: &[&[u8]]) -> Vec<u8> {
    let mut t = vec![0u8; 48];
    t[..4].copy_from_slice(sig);
    for s in structs {
        t.extend_from_slice(s);
    }
    let len = t.len() as u32;
    t[4..8].copy_from_slice(&len.to_le_bytes());
    t
}

fn drhd(base: u64) -> Vec<u8> {
    let mut s = vec![0u8; 16];
    s[2..4].copy_from_slice(&16u16.to_le_bytes());
    s[8..16].copy_from_slice(&base.to_le_bytes());
    s
}

fn ivhd(ty: u8, base: u64) -> Vec<u8> {
    let mut s = vec![0u8; 24];
    s[0] = ty;
    s[2..4].copy_from_slice(&24u16.to_le_bytes());
    s[8..16].copy_from_slice(&base.to_le_bytes());
    s
}

#[test]
fn dmar_units_are_found() {
    let rmrr = {
        let mut s = vec![0u8; 24];
        s[0] = 1;
        s[2..4].copy_from_slice(&24u16.to_le_bytes());
        s
    };
    let t = table(b"DMAR", &[&drhd(0xfed9_0000), &rmrr, &drhd(0xfed9_1000)]);
    let bases: Vec<u64> = parse_dmar(&t).unwrap().iter().map(|u| u.base).collect();
    assert_eq!(bases, [0xfed9_0000, 0xfed9_1000]);
}

/// A DRHD at `base` with `flags` and device scopes `scopes` (type, bus,
/// path as (device, function) steps).
type Scope<'a> = (u8, u8, &'a [(u8, u8)]);

fn drhd_with(base: u64, flags: u8, scopes: &[Scope]) -> Vec<u8> {
    let mut s = drhd(base);
    s[4] = flags;
    for &(ty, bus, path) in scopes {
        let mut d = vec![ty, 6 + 2 * path.len() as u8, 0, 0, 0, bus];
        for &(dev, func) in path {
            d.extend_from_slice(&[dev, func]);
        }
        s.extend_from_slice(&d);
    }
    let len = s.len() as u16;
    s[2..4].copy_from_slice(&len.to_le_bytes());
    s
}

#[test]
fn a_function_is_translated_by_the_unit_whose_scope_names_it() {
    let gpu = drhd_with(0xfed9_0000, 0, &[(1, 0, &[(2, 0)]), (2, 0, &[(1, 0)]), (1, 0, &[(1, 0), (0, 1)])]);
    let rest = drhd_with(0xfed9_1000, 1, &[]);
    let units = parse_dmar(&table(b"DMAR", &[&gpu, &rest])).unwrap();
    assert_eq!(
        units[0].scope.as_slice(),
        &[0x10],
        "the endpoint 00:02.0; not the bridge, nor a path of two steps"
    );
    assert!(!units[0].all && units[1].all);
    assert_eq!(units[0].ioapic, None, "no I/O APIC named");
    assert_eq!(unit_of(&units, 0x10), Some(0));
    assert_eq!(unit_of(&units, 0x20), Some(1), "the rest: INCLUDE_PCI_ALL");
    assert_eq!(unit_of(&units[..1], 0x20), None, "covered by no unit");
    let mut cut = drhd_with(0xfed9_0000, 0, &[(1, 0, &[(2, 0)])]);
    cut[17] = 60; // a scope longer than its unit
    let units = parse_dmar(&table(b"DMAR", &[&cut])).unwrap();
    assert!(units[0].scope.is_empty(), "a scope past its unit's end is not read");
}

#[test]
fn the_io_apic_a_unit_names_is_found_with_its_requester_id() {
    // QEMU's q35: I/O APIC 0 at ff:00.0 (a pseudo-bus).
    let qemu = drhd_with(0xfed9_0000, 1, &[(3, 0xff, &[(0, 0)])]);
    let units = parse_dmar(&table(b"DMAR", &[&qemu])).unwrap();
    assert_eq!(units[0].ioapic, Some((0, 0xff00)));
    assert!(units[0].scope.is_empty(), "an I/O APIC is no endpoint");
    // One by a path of two steps is not followed; the next is taken, the
    // one after it not.
    let mut two =
        drhd_with(0xfed9_0000, 1, &[(3, 0, &[(1, 0), (0, 0)]), (3, 0xfe, &[(1, 2)]), (3, 0, &[(3, 0)])]);
    two[16 + 10 + 4] = 2; // the second's enumeration id
    let units = parse_dmar(&table(b"DMAR", &[&two])).unwrap();
    assert_eq!(units[0].ioapic, Some((2, 0xfe0a)));
}

#[test]
fn ivrs_units_are_found_once() {
    let t = table(b"IVRS", &[&ivhd(0x10, 0xfeb8_0000), &ivhd(0x11, 0xfeb8_0000)]);
    let units = parse_ivrs(&t).unwrap();
    assert_eq!((units.len(), units[0].base), (1, 0xfeb8_0000));
}

/// An IVHD of type `ty` (0x10: 24-byte header, else 40) with device
/// entries `entries`.
fn ivhd_with(ty: u8, base: u64, entries: &[&[u8]]) -> Vec<u8> {
    let mut s = ivhd(ty, base);
    s.resize(if ty == 0x10 { 24 } else { 40 }, 0);
    entries.iter().for_each(|e| s.extend_from_slice(e));
    let len = s.len() as u16;
    s[2..4].copy_from_slice(&len.to_le_bytes());
    s
}

#[test]
fn the_io_apic_an_ivhd_names_is_found_with_its_requester_id() {
    // QEMU's with intremap=on: a range of all (types 3 and 4), then the
    // special entry of I/O APIC 0 at 00:14.0 (type 48h, variety 1).
    let select = [3u8, 0, 0, 0];
    let end = [4u8, 0xff, 0xff, 0];
    let hpet = [0x48u8, 0, 0, 0, 0, 0xa8, 0, 2];
    let ioapic = [0x48u8, 0, 0, 0, 0, 0xa0, 0, 1];
    let t = table(b"IVRS", &[&ivhd_with(0x10, 0xfed8_0000, &[&select, &end, &hpet, &ioapic])]);
    assert_eq!(parse_ivrs(&t).unwrap()[0].ioapic, Some((0, 0x00a0)), "the I/O APIC, not the HPET");
    // Named in the second block of the same unit (type 11h); a variable
    // entry (type F0h) ends its block's walk.
    let late = table(b"IVRS", &[&ivhd(0x10, 0xfed8_0000), &ivhd_with(0x11, 0xfed8_0000, &[&ioapic])]);
    assert_eq!(parse_ivrs(&late).unwrap()[0].ioapic, Some((0, 0x00a0)));
    let hid = [0xf0u8, 0, 0, 0, 0, 0, 0, 0];
    let hidden = table(b"IVRS", &[&ivhd_with(0x10, 0xfed8_0000, &[&hid, &ioapic])]);
    assert_eq!(parse_ivrs(&hidden).unwrap()[0].ioapic, None);
    // An entry cut by its block's end is not read.
    let mut cut = ivhd_with(0x10, 0xfed8_0000, &[&ioapic]);
    cut[2] = 28;
    cut.truncate(28);
    let cut = table(b"IVRS", &[&cut]);
    assert_eq!(parse_ivrs(&cut).map(|u| u[0].ioapic), Ok(None));
}

#[test]
fn hostile_lengths_are_refused() {
    let mut zero = drhd(1);
    zero[2] = 0;
    assert_eq!(parse_dmar(&table(b"DMAR", &[&zero])), Err(TableError::BadLength));
    let mut long = drhd(1);
    long[2] = 200;
    assert_eq!(parse_dmar(&table(b"DMAR", &[&long])), Err(TableError::BadLength));
    let mut t = table(b"DMAR", &[&drhd(1)]);
    t[4] = 200; // header claims more than there is
    assert_eq!(parse_dmar(&t), Err(TableError::Truncated));
    assert_eq!(parse_ivrs(&[0u8; 10]), Err(TableError::Truncated));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut x = 0x1234_5678u32;
    for _ in 0..2000 {
        let mut t = vec![0u8; 48 + (x % 64) as usize];
        for b in t.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        let _ = parse_dmar(&t);
        let _ = parse_ivrs(&t);
    }
}
