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
    assert_eq!(parse_dmar(&t).unwrap().as_slice(), &[0xfed9_0000, 0xfed9_1000]);
}

#[test]
fn ivrs_units_are_found_once() {
    let t = table(b"IVRS", &[&ivhd(0x10, 0xfeb8_0000), &ivhd(0x11, 0xfeb8_0000)]);
    assert_eq!(parse_ivrs(&t).unwrap().as_slice(), &[0xfeb8_0000]);
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
