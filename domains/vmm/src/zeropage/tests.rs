//! Host tests of the zero page: every field a kernel reads is read back,
//! and what cannot be told truthfully is refused.

use super::*;
use crate::bzimage::{self, LOADED_HIGH};
use crate::le::{put32, put64, u16_at, u32_at, u64_at};

const MIB: u64 = 1 << 20;

fn built(info: &BootInfo<'_>) -> ([u8; 4096], Vec<u8>) {
    let file = bzimage::tests::image();
    let image = bzimage::parse(&file).unwrap();
    let placement = image.placement(info.ram_end).unwrap();
    let mut page = [0xAAu8; 4096];
    let cmdline = build(&mut page, &image, &placement, info).expect("built").to_vec();
    (page, cmdline)
}

fn info() -> BootInfo<'static> {
    BootInfo {
        ram_end: 256 * MIB,
        cmdline: "console=ttyS0 panic=-1",
        initrd: Some(255 * MIB..255 * MIB + 0x1234),
        rsdp: 0xE_0000,
    }
}

/// The e820 table as the kernel reads it.
fn e820(page: &[u8]) -> Vec<(u64, u64, u32)> {
    (0..page[bp::E820_ENTRIES] as usize)
        .map(|i| {
            let o = bp::E820_TABLE + i * bp::E820_ENTRY;
            (u64_at(page, o).unwrap(), u64_at(page, o + 8).unwrap(), u32_at(page, o + 16).unwrap())
        })
        .collect()
}

#[test]
fn a_kernel_reads_what_it_is_told() {
    let file = bzimage::tests::image();
    let (page, cmdline) = built(&info());
    let r32 = |o| u32_at(&page, o).unwrap();
    // The image's own header, where the loader sets nothing.
    assert_eq!(page[hdr::SETUP_SECTS], 3);
    assert_eq!(u16_at(&page, hdr::BOOT_FLAG), Some(0xAA55));
    assert_eq!(r32(hdr::HEADER), bzimage::HEADER_MAGIC);
    assert_eq!(u16_at(&page, hdr::VERSION), Some(0x020F));
    assert_eq!(r32(hdr::INITRD_ADDR_MAX), 0x7FFF_FFFF);
    assert_eq!(r32(hdr::KERNEL_ALIGNMENT), 0x20_0000);
    assert_eq!(page[hdr::RELOCATABLE_KERNEL], 1);
    assert_eq!(u16_at(&page, hdr::XLOADFLAGS), Some(0x7F));
    assert_eq!(r32(hdr::CMDLINE_SIZE), 2047);
    assert_eq!(u64_at(&page, hdr::PREF_ADDRESS), Some(0x100_0000));
    assert_eq!(r32(hdr::INIT_SIZE), 0x30_0000);
    assert_eq!(r32(hdr::KERNEL_INFO_OFFSET), 0x800);
    // The loader's fields.
    assert_eq!(page[hdr::TYPE_OF_LOADER], 0xFF);
    assert_eq!((page[hdr::EXT_LOADER_VER], page[hdr::EXT_LOADER_TYPE]), (0, 0));
    assert_eq!(u16_at(&page, hdr::VID_MODE), Some(0xFFFF));
    assert_eq!(page[hdr::LOADFLAGS], LOADED_HIGH | CAN_USE_HEAP);
    assert_eq!(u16_at(&page, hdr::HEAP_END_PTR), Some(0xDE00));
    assert_eq!(r32(hdr::CODE32_START), 0x100_0000, "the load address");
    assert_eq!(r32(hdr::CMD_LINE_PTR), 0x2_0000);
    assert_eq!((r32(hdr::RAMDISK_IMAGE), r32(hdr::RAMDISK_SIZE)), (255 << 20, 0x1234));
    assert_eq!(u64_at(&page, hdr::SETUP_DATA), Some(0));
    assert_eq!((r32(hdr::HARDWARE_SUBARCH), u64_at(&page, hdr::HARDWARE_SUBARCH_DATA)), (0, Some(0)));
    // The rest of boot_params.
    assert_eq!(u64_at(&page, bp::ACPI_RSDP_ADDR), Some(0xE_0000));
    assert_eq!(r32(bp::ALT_MEM_K), 255 * 1024);
    assert_eq!((r32(bp::EXT_RAMDISK_IMAGE), r32(bp::EXT_RAMDISK_SIZE), r32(bp::EXT_CMD_LINE_PTR)), (0, 0, 0));
    assert_eq!(page[bp::SENTINEL], 0, "the kernel must not think the loader copied garbage");
    assert_eq!(
        e820(&page),
        [(0, 0x9_FC00, E820_RAM), (0x9_FC00, 0x6_0400, E820_RESERVED), (MIB, 255 * MIB, E820_RAM)]
    );
    assert_eq!(cmdline, b"console=ttyS0 panic=-1");
    // Nothing else: every other byte is the image's header or zero.
    let loader = [
        bp::ACPI_RSDP_ADDR..bp::ACPI_RSDP_ADDR + 8,
        bp::ALT_MEM_K..bp::ALT_MEM_K + 4,
        bp::E820_ENTRIES..bp::E820_ENTRIES + 1,
        bp::E820_TABLE..bp::E820_TABLE + 3 * bp::E820_ENTRY,
        hdr::TYPE_OF_LOADER..hdr::LOADFLAGS + 1,
        hdr::VID_MODE..hdr::VID_MODE + 2,
        hdr::CODE32_START..hdr::CMD_LINE_PTR + 4,
    ];
    for i in (0..4096).filter(|i| !loader.iter().any(|r| r.contains(i))) {
        let want = if (0x1F1..0x26C).contains(&i) { file[i] } else { 0 };
        assert_eq!(page[i], want, "byte {i:#x}");
    }
}

#[test]
fn without_an_initrd_none_is_told() {
    let (page, _) = built(&BootInfo { initrd: None, ..info() });
    assert_eq!((u32_at(&page, hdr::RAMDISK_IMAGE), u32_at(&page, hdr::RAMDISK_SIZE)), (Some(0), Some(0)));
}

#[test]
fn the_image_cannot_plant_pointers_or_a_sentinel() {
    let mut file = bzimage::tests::image();
    put64(&mut file, hdr::SETUP_DATA, 0xDEAD_0000);
    put32(&mut file, hdr::HARDWARE_SUBARCH, 2);
    put64(&mut file, hdr::HARDWARE_SUBARCH_DATA, 0xBAD);
    file[hdr::TYPE_OF_LOADER] = 0x71;
    put32(&mut file, hdr::RAMDISK_IMAGE, 0x1234_5000);
    file[bp::SENTINEL] = 0xFF;
    let image = bzimage::parse(&file).unwrap();
    let placement = image.placement(256 * MIB).unwrap();
    let mut page = [0u8; 4096];
    build(&mut page, &image, &placement, &BootInfo { initrd: None, ..info() }).unwrap();
    assert_eq!(u64_at(&page, hdr::SETUP_DATA), Some(0));
    assert_eq!(u32_at(&page, hdr::HARDWARE_SUBARCH), Some(0));
    assert_eq!(u64_at(&page, hdr::HARDWARE_SUBARCH_DATA), Some(0));
    assert_eq!(u32_at(&page, hdr::RAMDISK_IMAGE), Some(0), "no initrd, whatever the image said");
    assert_eq!((page[hdr::TYPE_OF_LOADER], page[bp::SENTINEL]), (0xFF, 0));
}

#[test]
fn the_memory_map_is_a_pcs() {
    let map = memory_map(3 << 30).unwrap();
    assert_eq!(map[2], E820Entry { addr: MIB, size: (3 << 30) - MIB, kind: E820_RAM });
    for w in map.windows(2) {
        assert_eq!(w[0].addr + w[0].size, w[1].addr, "sorted, contiguous, no overlap");
    }
    assert_eq!(memory_map(MIB), Err(ZeroPageError::BadRamEnd { ram_end: MIB }));
    assert!(memory_map(MIB + 0x1000).is_ok());
    assert!(memory_map(1 << 32).is_ok());
    assert!(memory_map((1 << 32) + 1).is_err(), "the 32-bit fields could not say it");
}

#[test]
fn the_e820_count_is_bounded() {
    let mut page = [0u8; 4096];
    let e = E820Entry { addr: 0, size: 1, kind: E820_RAM };
    assert_eq!(write_e820(&mut page, &[e; 128]), Ok(()));
    assert_eq!(page[bp::E820_ENTRIES], 128);
    assert_eq!(u32_at(&page, bp::E820_TABLE + 127 * 20 + 16), Some(1), "the last entry");
    assert_eq!(page[0xD00], 0, "nothing past the table");
    assert_eq!(write_e820(&mut page, &[e; 129]), Err(ZeroPageError::TooManyE820 { count: 129 }));
}

#[test]
fn the_command_line_must_fit_whole() {
    let file = bzimage::tests::image();
    let image = bzimage::parse(&file).unwrap();
    let long = "x".repeat(2047);
    assert_eq!(command_line(&long, &image).map(<[u8]>::len), Ok(2047), "cmdline_size excludes the NUL");
    let longer = "x".repeat(2048);
    assert_eq!(command_line(&longer, &image), Err(ZeroPageError::CmdlineTooLong { len: 2048, max: 2047 }));
    assert_eq!(command_line("a\0b", &image), Err(ZeroPageError::CmdlineHasNul { at: 1 }));
    assert_eq!(command_line("", &image), Ok(&b""[..]));
    // A kernel that takes more than the VMM's room gets the room.
    let mut big = file.clone();
    put32(&mut big, hdr::CMDLINE_SIZE, u32::MAX);
    let image = bzimage::parse(&big).unwrap();
    let room = "y".repeat(CMDLINE_ROOM);
    assert_eq!(
        command_line(&room, &image),
        Err(ZeroPageError::CmdlineTooLong { len: CMDLINE_ROOM, max: CMDLINE_ROOM - 1 })
    );
}

#[test]
fn a_bad_initrd_or_placement_is_refused() {
    let file = bzimage::tests::image();
    let image = bzimage::parse(&file).unwrap();
    let placement = image.placement(256 * MIB).unwrap();
    let mut page = [0u8; 4096];
    let mut try_initrd = |r: Range<u64>| {
        build(&mut page, &image, &placement, &BootInfo { initrd: Some(r), ..info() }).map(|_| ())
    };
    let bad = |r: Range<u64>| Err(ZeroPageError::BadInitrd { start: r.start, end: r.end });
    assert_eq!(try_initrd(0x8_0000..0x9_0000), bad(0x8_0000..0x9_0000), "below 1 MiB");
    assert_eq!(try_initrd(255 * MIB..256 * MIB + 1), bad(255 * MIB..256 * MIB + 1), "past RAM");
    assert_eq!(try_initrd(2 * MIB..2 * MIB), bad(2 * MIB..2 * MIB), "empty");
    assert_eq!(try_initrd(255 * MIB..256 * MIB), Ok(()), "up to RAM's end");
    // initrd_addr_max is the highest byte the initrd may occupy.
    let mut low = file.clone();
    put32(&mut low, hdr::INITRD_ADDR_MAX, 0x0FF_FFFF);
    let image = bzimage::parse(&low).unwrap();
    let mut page = [0u8; 4096];
    let mut try_initrd = |r: Range<u64>| {
        build(&mut page, &image, &placement, &BootInfo { initrd: Some(r), ..info() }).map(|_| ())
    };
    assert_eq!(try_initrd(15 * MIB..16 * MIB), Ok(()));
    assert_eq!(try_initrd(15 * MIB..16 * MIB + 1), bad(15 * MIB..16 * MIB + 1));
    // A kernel placed for more RAM than this guest has.
    let image = bzimage::parse(&file).unwrap();
    let mut page = [0u8; 4096];
    let small = BootInfo { ram_end: 18 * MIB, initrd: None, ..info() };
    assert_eq!(
        build(&mut page, &image, &placement, &small),
        Err(ZeroPageError::KernelOutsideRam { end: 19 * MIB, ram_end: 18 * MIB })
    );
    assert_eq!(
        build(&mut page, &image, &placement, &BootInfo { cmdline: "a\0", ..info() }),
        Err(ZeroPageError::CmdlineHasNul { at: 1 })
    );
}
