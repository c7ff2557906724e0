//! Small kernel files of each format the VMM boots, for tests here and in
//! the build tool (`features = ["samples"]`): shaped like the real ones
//! (a test guest; Debian bookworm's bzImage), scaled down.

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use crate::bzimage::{hdr, BOOT_FLAG, HEADER_MAGIC, KERNEL_INFO_MAGIC, LOADED_HIGH};
use crate::le::{put16, put32, put64};
use crate::multiboot::MAGIC;

const MIB: u64 = 1 << 20;
/// The sample bzImage's setup code: three setup sectors after the boot sector.
pub const BZ_SETUP: usize = 4 * 512;
/// The sample bzImage's protected-mode kernel size.
pub const BZ_KERNEL: usize = 0x1000;

fn put32_at(f: &mut [u8], o: usize, v: u32) {
    f[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64_at(f: &mut [u8], o: usize, v: u64) {
    f[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// A kernel like the test guests: text (R+X) at 1 MiB from file offset
/// 0x1000 with the Multiboot header first, data (R+W) at 1 MiB + 4 KiB.
pub fn multiboot(flags: u32) -> Vec<u8> {
    let mut f = vec![0u8; 0x3000];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4..8].copy_from_slice(&[2, 1, 1, 0]);
    f[16..18].copy_from_slice(&2u16.to_le_bytes());
    f[18..20].copy_from_slice(&62u16.to_le_bytes());
    put64_at(&mut f, 24, MIB + 0x10);
    put64_at(&mut f, 32, 64);
    f[54..56].copy_from_slice(&56u16.to_le_bytes());
    f[56..58].copy_from_slice(&2u16.to_le_bytes());
    for (i, (flags, off, va, filesz, memsz)) in
        [(5u32, 0x1000u64, MIB, 0x100u64, 0x100u64), (6, 0x2000, MIB + 0x1000, 0x10, 0x5000)]
            .into_iter()
            .enumerate()
    {
        let o = 64 + i * 56;
        put32_at(&mut f, o, 1);
        put32_at(&mut f, o + 4, flags);
        put64_at(&mut f, o + 8, off);
        put64_at(&mut f, o + 16, va);
        put64_at(&mut f, o + 24, va);
        put64_at(&mut f, o + 32, filesz);
        put64_at(&mut f, o + 40, memsz);
    }
    put32_at(&mut f, 0x1000, MAGIC);
    put32_at(&mut f, 0x1004, flags);
    put32_at(&mut f, 0x1008, 0u32.wrapping_sub(MAGIC).wrapping_sub(flags));
    f
}

/// A bzImage like bookworm's, scaled down: setup code, a 4 KiB kernel
/// (the payload at 0x100, `kernel_info` at 0x800), and 64 bytes of
/// "signature" after it.
pub fn bzimage() -> Vec<u8> {
    let mut f = vec![0u8; BZ_SETUP + BZ_KERNEL + 64];
    f[hdr::SETUP_SECTS] = 3;
    put32(&mut f, hdr::SYSSIZE, (BZ_KERNEL / 16) as u32);
    put16(&mut f, hdr::VID_MODE, 0xFFFF);
    put16(&mut f, hdr::BOOT_FLAG, BOOT_FLAG);
    f[hdr::JUMP] = 0xEB;
    f[hdr::JUMP + 1] = (hdr::END_2_15 - hdr::HEADER) as u8;
    put32(&mut f, hdr::HEADER, HEADER_MAGIC);
    put16(&mut f, hdr::VERSION, 0x020F);
    put16(&mut f, hdr::KERNEL_VERSION, 0x400 - 0x200);
    f[0x400..0x40B].copy_from_slice(b"6.1.0-test\0");
    f[hdr::LOADFLAGS] = LOADED_HIGH;
    put32(&mut f, hdr::CODE32_START, 0x10_0000);
    put32(&mut f, hdr::INITRD_ADDR_MAX, 0x7FFF_FFFF);
    put32(&mut f, hdr::KERNEL_ALIGNMENT, 0x20_0000);
    f[hdr::RELOCATABLE_KERNEL] = 1;
    f[hdr::RELOCATABLE_KERNEL + 1] = 21;
    put16(&mut f, hdr::XLOADFLAGS, 0x7F);
    put32(&mut f, hdr::CMDLINE_SIZE, 2047);
    put32(&mut f, hdr::PAYLOAD_OFFSET, 0x100);
    put32(&mut f, hdr::PAYLOAD_LENGTH, 0x600);
    put64(&mut f, hdr::PREF_ADDRESS, 0x100_0000);
    put32(&mut f, hdr::INIT_SIZE, 0x30_0000);
    put32(&mut f, hdr::KERNEL_INFO_OFFSET, 0x800);
    f[BZ_SETUP + 0x800..BZ_SETUP + 0x804].copy_from_slice(KERNEL_INFO_MAGIC);
    put32(&mut f, BZ_SETUP + 0x804, 16);
    f[BZ_SETUP + 0x200] = 0x64; // a byte at the 64-bit entry, to find it again
    f
}
