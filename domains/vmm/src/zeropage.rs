//! The zero page (`struct boot_params`) a Linux kernel finds at `%esi` /
//! `%rsi` when the VMM enters it at its 32- or 64-bit entry
//! (`Documentation/arch/x86/zero-page.rst`, and boot.rst "Details of
//! Header Fields" for what a boot loader writes), and the command line it
//! points to.
//!
//! The page is all zeros but for: the setup header copied from the image
//! ([`crate::bzimage::BzImage::setup_header`]) with the loader's fields
//! set over it (type_of_loader 0xFF, an undefined loader; vid_mode
//! "normal"; code32_start the load address; the command line at
//! [`CMDLINE_GPA`]; the initrd; heap_end_ptr and CAN_USE_HEAP as a
//! loader of a modern bzImage sets them, although with the 32/64-bit
//! entries no real-mode code runs to use the heap; no setup_data and the
//! PC subarchitecture whatever the image said), the RSDP's address
//! (`acpi_rsdp_addr`, protocol 2.14), `alt_mem_k`, and the e820 memory
//! map ([`memory_map`]). The sentinel at 0x1EF stays 0, so the kernel
//! trusts the fields (zero-page.rst, `sentinel`).
//!
//! Where things go below 1 MiB, in RAM the kernel reuses once it copied
//! them: the zero page at [`ZERO_PAGE_GPA`], the command line at
//! [`CMDLINE_GPA`] (at most [`CMDLINE_ROOM`] bytes with its NUL); the
//! ACPI tables go in the reserved BIOS area ([`crate::acpi`]).

use core::fmt;
use core::ops::Range;

use crate::bzimage::{hdr, BzImage, Placement, CAN_USE_HEAP};
use crate::le::{put16, put32, put64};
use crate::ram::{PAGE, RAM_START};

/// Where the zero page goes in guest RAM.
pub const ZERO_PAGE_GPA: u64 = 0x7000;
/// Where the command line goes, and the room for it (with its NUL).
pub const CMDLINE_GPA: u64 = 0x2_0000;
pub const CMDLINE_ROOM: usize = 0x1000;

/// Offsets of `boot_params` fields outside the setup header
/// (zero-page.rst).
pub mod bp {
    pub const ACPI_RSDP_ADDR: usize = 0x070;
    pub const EXT_RAMDISK_IMAGE: usize = 0x0C0;
    pub const EXT_RAMDISK_SIZE: usize = 0x0C4;
    pub const EXT_CMD_LINE_PTR: usize = 0x0C8;
    pub const ALT_MEM_K: usize = 0x1E0;
    pub const E820_ENTRIES: usize = 0x1E8;
    pub const SENTINEL: usize = 0x1EF;
    /// The setup header's room ends where `edd_mbr_sig_buffer` starts.
    pub const HDR_END: usize = 0x290;
    pub const E820_TABLE: usize = 0x2D0;
    /// `E820_MAX_ENTRIES_ZEROPAGE`.
    pub const E820_MAX: usize = 128;
    /// addr (u64), size (u64), type (u32), packed.
    pub const E820_ENTRY: usize = 20;
}
const _: () = assert!(bp::E820_TABLE + bp::E820_MAX * bp::E820_ENTRY <= 0xD00);

/// The loader's id: 0xFF, "undefined" (boot.rst, `type_of_loader`).
pub const LOADER_UNDEFINED: u8 = 0xFF;
/// vid_mode "normal" (boot.rst, "Special Command Line Options").
pub const VID_MODE_NORMAL: u16 = 0xFFFF;
/// The end of setup's heap a loader of a 2.02+ bzImage gives, and the
/// field's value: that end less 0x200 (boot.rst, "Sample Boot Configuration").
pub const HEAP_END: u16 = 0xE000;
pub const HEAP_END_PTR: u16 = HEAP_END - 0x200;

/// e820 entry types (ACPI 6.5, 15.1 "Address Range Types").
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

/// The end of conventional memory (639 KiB; the EBDA's KiB above it).
pub const LOW_END: u64 = 0x9_FC00;
const MIB: u64 = 1 << 20;
const FOUR_GIB: u64 = 1 << 32;

/// An e820 entry: `size` bytes from `addr` of type `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// What the kernel is told besides its own header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootInfo<'a> {
    /// Guest RAM is `[RAM_START, ram_end)` ([`crate::ram`]).
    pub ram_end: u64,
    pub cmdline: &'a str,
    /// Where the initrd lies, if there is one ([`crate::initrd::place`]).
    pub initrd: Option<Range<u64>>,
    /// The RSDP's guest-physical address ([`crate::acpi`]); 0 for none.
    pub rsdp: u64,
}

/// Why the zero page cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroPageError {
    /// The command line is longer than the kernel's `cmdline_size` or
    /// the VMM's room for it (cut, it could mean something else).
    CmdlineTooLong {
        len: usize,
        max: usize,
    },
    CmdlineHasNul {
        at: usize,
    },
    /// Guest RAM must reach past 1 MiB (the kernel lives there) and end
    /// at or below 4 GiB (the 32-bit fields hold every address).
    BadRamEnd {
        ram_end: u64,
    },
    /// The placement given does not lie in guest RAM.
    KernelOutsideRam {
        end: u64,
        ram_end: u64,
    },
    TooManyE820 {
        count: usize,
    },
    /// The initrd is not in RAM above 1 MiB and below the kernel's
    /// `initrd_addr_max`, or is empty.
    BadInitrd {
        start: u64,
        end: u64,
    },
}

impl fmt::Display for ZeroPageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ZeroPageError::CmdlineTooLong { len, max } => {
                write!(f, "the command line's {len} bytes are more than the kernel takes ({max})")
            }
            ZeroPageError::CmdlineHasNul { at } => write!(f, "the command line has a NUL at byte {at}"),
            ZeroPageError::BadRamEnd { ram_end } => {
                write!(f, "guest RAM ending at {ram_end:#x} does not end between 1 MiB and 4 GiB")
            }
            ZeroPageError::KernelOutsideRam { end, ram_end } => {
                write!(f, "the kernel ends at {end:#x}, past the end of RAM {ram_end:#x}")
            }
            ZeroPageError::TooManyE820 { count } => {
                write!(f, "{count} memory map entries are more than the zero page holds ({})", bp::E820_MAX)
            }
            ZeroPageError::BadInitrd { start, end } => write!(
                f,
                "an initrd at [{start:#x}, {end:#x}) is not in RAM above 1 MiB and below the kernel's initrd_addr_max"
            ),
        }
    }
}

/// The memory map of a guest whose RAM is `[RAM_START, ram_end)`, as a
/// PC's: RAM below 639 KiB, the EBDA, video memory, option ROMs and BIOS
/// area (where the ACPI tables are) reserved up to 1 MiB, RAM from 1 MiB.
pub fn memory_map(ram_end: u64) -> Result<[E820Entry; 3], ZeroPageError> {
    if ram_end <= MIB || ram_end > FOUR_GIB {
        return Err(ZeroPageError::BadRamEnd { ram_end });
    }
    Ok([
        E820Entry { addr: RAM_START, size: LOW_END - RAM_START, kind: E820_RAM },
        E820Entry { addr: LOW_END, size: MIB - LOW_END, kind: E820_RESERVED },
        E820Entry { addr: MIB, size: ram_end - MIB, kind: E820_RAM },
    ])
}

/// Writes `entries` as the zero page's e820 table and count.
pub fn write_e820(page: &mut [u8; PAGE as usize], entries: &[E820Entry]) -> Result<(), ZeroPageError> {
    if entries.len() > bp::E820_MAX {
        return Err(ZeroPageError::TooManyE820 { count: entries.len() });
    }
    for (i, e) in entries.iter().enumerate() {
        let o = bp::E820_TABLE + i * bp::E820_ENTRY;
        put64(page, o, e.addr);
        put64(page, o + 8, e.size);
        put32(page, o + 16, e.kind);
    }
    page[bp::E820_ENTRIES] = entries.len() as u8;
    Ok(())
}

/// The bytes to write at [`CMDLINE_GPA`] (then a NUL): `cmdline` if it
/// fits in both the kernel's `cmdline_size` and [`CMDLINE_ROOM`].
pub fn command_line<'a>(cmdline: &'a str, image: &BzImage<'_>) -> Result<&'a [u8], ZeroPageError> {
    let b = cmdline.as_bytes();
    if let Some(at) = b.iter().position(|&c| c == 0) {
        return Err(ZeroPageError::CmdlineHasNul { at });
    }
    let max = (image.cmdline_size as usize).min(CMDLINE_ROOM - 1);
    if b.len() > max {
        return Err(ZeroPageError::CmdlineTooLong { len: b.len(), max });
    }
    Ok(b)
}

/// Fills `page` (to be copied to [`ZERO_PAGE_GPA`]) for `image` placed at
/// `placement`; returns the command line's bytes for [`CMDLINE_GPA`].
pub fn build<'a>(
    page: &mut [u8; PAGE as usize],
    image: &BzImage<'_>,
    placement: &Placement,
    info: &BootInfo<'a>,
) -> Result<&'a [u8], ZeroPageError> {
    let cmdline = command_line(info.cmdline, image)?;
    let map = memory_map(info.ram_end)?;
    if placement.loaded.end > info.ram_end || placement.runtime.end > info.ram_end {
        let end = placement.loaded.end.max(placement.runtime.end);
        return Err(ZeroPageError::KernelOutsideRam { end, ram_end: info.ram_end });
    }
    if let Some(r) = &info.initrd {
        let max = u64::from(image.initrd_addr_max);
        if r.start >= r.end || r.start < MIB || r.end > info.ram_end || r.end - 1 > max {
            return Err(ZeroPageError::BadInitrd { start: r.start, end: r.end });
        }
    }
    page.fill(0);
    let header = image.setup_header();
    let header = &header[..header.len().min(bp::HDR_END - hdr::START)];
    page[hdr::START..hdr::START + header.len()].copy_from_slice(header);

    page[hdr::TYPE_OF_LOADER] = LOADER_UNDEFINED;
    page[hdr::EXT_LOADER_VER] = 0;
    page[hdr::EXT_LOADER_TYPE] = 0;
    put16(page, hdr::VID_MODE, VID_MODE_NORMAL);
    page[hdr::LOADFLAGS] |= CAN_USE_HEAP;
    put16(page, hdr::HEAP_END_PTR, HEAP_END_PTR);
    // Guest RAM ends at or below 4 GiB (checked; ipc::guest's
    // MAX_GUEST_MEMORY_KIB keeps it below 3 GiB) and the kernel and initrd
    // were checked to lie in it: the 32-bit fields hold every address, and
    // the ext_ fields stay 0.
    put32(page, hdr::CODE32_START, placement.entry32 as u32);
    put32(page, hdr::CMD_LINE_PTR, CMDLINE_GPA as u32);
    let initrd = info.initrd.clone().unwrap_or(0..0);
    put32(page, hdr::RAMDISK_IMAGE, initrd.start as u32);
    put32(page, hdr::RAMDISK_SIZE, (initrd.end - initrd.start) as u32);
    // Pointers the kernel would follow: the loader's to set, never the image's.
    put64(page, hdr::SETUP_DATA, 0);
    put32(page, hdr::HARDWARE_SUBARCH, 0);
    put64(page, hdr::HARDWARE_SUBARCH_DATA, 0);

    put64(page, bp::ACPI_RSDP_ADDR, info.rsdp);
    put32(page, bp::ALT_MEM_K, ((info.ram_end - MIB) / 1024) as u32);
    write_e820(page, &map)?;
    Ok(cmdline)
}

#[cfg(test)]
mod tests;
