//! Host tests of the loading rules, on small ELF64 kernels made here.

use super::*;

const MIB: u64 = 1 << 20;
const RAM: Range<u64> = 0..16 * MIB;

fn put32(f: &mut [u8], o: usize, v: u32) {
    f[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(f: &mut [u8], o: usize, v: u64) {
    f[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

pub(crate) use crate::samples::multiboot as kernel;

#[test]
fn a_test_guest_is_accepted() {
    let k = check(&kernel(3), RAM).expect("accepted");
    assert_eq!((k.header, k.flags, k.entry), (0x1000, 3, MIB + 0x10));
    assert_eq!(k.segments.len(), 2);
    assert_eq!(
        (k.segments[1].vaddr, k.segments[1].filesz, k.segments[1].memsz),
        (MIB + 0x1000, 0x10, 0x5000)
    );
    assert!(check(&kernel(1 << 16 | 3), RAM).is_ok(), "optional flags are fine");
}

#[test]
fn the_header_must_be_found_whole_and_sound() {
    let mut f = kernel(3);
    put32(&mut f, 0x1008, 0);
    assert_eq!(check(&f, RAM), Err(ImageError::BadChecksum { at: 0x1000 }));
    assert_eq!(check(&kernel(1 << 2 | 3), RAM), Err(ImageError::Unsupported { flags: 7 }), "video mode");
    let mut f = kernel(3);
    put32(&mut f, 0x1000, 0);
    assert_eq!(check(&f, RAM), Err(ImageError::NoHeader));
    // Beyond the first 8 KiB it does not count.
    let mut f = kernel(3);
    let bytes: Vec<u8> = f[0x1000..0x100c].to_vec();
    f[0x1000..0x100c].fill(0);
    f[0x2000..0x200c].copy_from_slice(&bytes);
    assert_eq!(header(&f), Err(ImageError::NoHeader));
    // Unaligned magic does not count either.
    let mut f = kernel(3);
    f.copy_within(0x1000..0x100c, 0x1002);
    assert_eq!(header(&f[..0x100e]), Err(ImageError::NoHeader));
    assert_eq!(header(&[0x02, 0xb0, 0xad, 0x1b]), Err(ImageError::BadChecksum { at: 0 }), "truncated");
}

#[test]
fn segments_must_fit_in_ram_and_where_they_say() {
    let small = 0x1000..MIB + 0x2000;
    assert_eq!(
        check(&kernel(3), small),
        Err(ImageError::OutsideRam { start: MIB + 0x1000, end: MIB + 0x6000, ram: (0x1000, MIB + 0x2000) })
    );
    let mut f = kernel(3);
    put64(&mut f, 64 + 24, 0x20_0000);
    assert_eq!(check(&f, RAM), Err(ImageError::PhysicalDiffers { vaddr: MIB, paddr: 0x20_0000 }));
    let mut f = kernel(3);
    put64(&mut f, 64 + 16, 0x9000);
    put64(&mut f, 64 + 24, 0x9000);
    put64(&mut f, 24, 0x9010);
    assert_eq!(check(&f, RAM), Err(ImageError::OverInfo { start: 0x9000, end: 0x9100 }));
    let mut f = kernel(3);
    f[18] = 3;
    assert_eq!(check(&f, RAM), Err(ImageError::Elf(ElfError::WrongMachine)));
}

#[test]
fn refusals_read_well() {
    let e = ImageError::OutsideRam { start: 0x4000_0000, end: 0x4000_1000, ram: (0x1000, 0x80_0000) };
    assert_eq!(
        e.to_string(),
        "a segment at [0x40000000, 0x40001000) lies outside guest RAM [0x1000, 0x800000)"
    );
    assert_eq!(
        ImageError::NoHeader.to_string(),
        "no Multiboot header (magic 0x1badb002) in its first 8192 bytes"
    );
}

#[test]
fn hostile_bytes_never_panic() {
    let base = kernel(3);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2000 {
        let mut f = base.clone();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % 0x110;
            f[i] = (seed >> 32) as u8;
        }
        if let Ok(k) = check(&f, RAM) {
            assert!(k.segments.iter().all(|s| s.vaddr + s.memsz <= RAM.end));
        }
    }
}
