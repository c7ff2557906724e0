//! A Linux bzImage: its setup header checked, and where its protected-mode
//! kernel goes in guest RAM (the Linux/x86 boot protocol,
//! `Documentation/arch/x86/boot.rst`, "The Real-Mode Kernel Header" and
//! "Details of Header Fields").
//!
//! A bzImage is the real-mode setup code, `setup_sects + 1` sectors of 512
//! bytes whose first holds the setup header at 0x1F1, followed by the
//! protected-mode kernel (`syssize` paragraphs of 16 bytes; a signed image
//! has its signature after them). The VMM never runs the real-mode code:
//! it copies the protected-mode kernel to [`Placement::load`] and enters
//! it at its 32-bit entry (flat protected mode, `%esi` = the zero page) or
//! its 64-bit entry (load + 0x200, long mode, `%rsi` = the zero page).
//!
//! Rules, all checked before anything is loaded, every length and offset
//! the image gives checked against the file: the boot sector's 0xAA55,
//! "HdrS", protocol 2.12 or later (Debian bookworm's 6.1 says 2.15), a
//! setup header that ends inside the setup code, a protected-mode kernel
//! inside the file, LOADED_HIGH (a bzImage, loaded at 1 MiB or above),
//! XLF_KERNEL_64 (Ryokan's guests are 64-bit: a kernel without the 64-bit
//! entry is refused at build time rather than booted half-way), a
//! power-of-two `kernel_alignment` if relocatable, an `init_size` at least
//! the kernel's own size, and the compressed payload, the kernel version
//! string and `kernel_info` (2.15) where the header says, inside the file.

use core::fmt;
use core::ops::Range;

use crate::le::{u16_at, u32_at, u64_at, u8_at};

/// Offsets of the setup header's fields, the same in the file and in
/// `boot_params` (boot.rst, "The Real-Mode Kernel Header").
pub mod hdr {
    /// The setup header starts here (and is copied from here).
    pub const START: usize = 0x1F1;
    pub const SETUP_SECTS: usize = 0x1F1;
    pub const SYSSIZE: usize = 0x1F4;
    pub const VID_MODE: usize = 0x1FA;
    pub const BOOT_FLAG: usize = 0x1FE;
    /// The jump instruction; its second byte + 0x202 is the header's end.
    pub const JUMP: usize = 0x200;
    pub const HEADER: usize = 0x202;
    pub const VERSION: usize = 0x206;
    pub const KERNEL_VERSION: usize = 0x20E;
    pub const TYPE_OF_LOADER: usize = 0x210;
    pub const LOADFLAGS: usize = 0x211;
    pub const CODE32_START: usize = 0x214;
    pub const RAMDISK_IMAGE: usize = 0x218;
    pub const RAMDISK_SIZE: usize = 0x21C;
    pub const HEAP_END_PTR: usize = 0x224;
    pub const EXT_LOADER_VER: usize = 0x226;
    pub const EXT_LOADER_TYPE: usize = 0x227;
    pub const CMD_LINE_PTR: usize = 0x228;
    pub const INITRD_ADDR_MAX: usize = 0x22C;
    pub const KERNEL_ALIGNMENT: usize = 0x230;
    pub const RELOCATABLE_KERNEL: usize = 0x234;
    pub const XLOADFLAGS: usize = 0x236;
    pub const CMDLINE_SIZE: usize = 0x238;
    pub const HARDWARE_SUBARCH: usize = 0x23C;
    pub const HARDWARE_SUBARCH_DATA: usize = 0x240;
    pub const PAYLOAD_OFFSET: usize = 0x248;
    pub const PAYLOAD_LENGTH: usize = 0x24C;
    pub const SETUP_DATA: usize = 0x250;
    pub const PREF_ADDRESS: usize = 0x258;
    pub const INIT_SIZE: usize = 0x260;
    pub const KERNEL_INFO_OFFSET: usize = 0x268;
    /// The end of the header of protocol 2.12 (after `handover_offset`)
    /// and of 2.15 (after `kernel_info_offset`).
    pub const END_2_12: usize = 0x268;
    pub const END_2_15: usize = 0x26C;
}

/// The boot sector's signature.
pub const BOOT_FLAG: u16 = 0xAA55;
/// "HdrS", little-endian.
pub const HEADER_MAGIC: u32 = 0x5372_6448;
/// The oldest protocol the VMM boots: 2.12 has `pref_address`,
/// `init_size` and `xloadflags`, which it needs to place the kernel.
pub const MIN_VERSION: u16 = 0x020C;
pub const VERSION_2_15: u16 = 0x020F;
/// loadflags bit 0: the protected-mode code is loaded at 0x100000.
pub const LOADED_HIGH: u8 = 1 << 0;
/// loadflags bit 7: `heap_end_ptr` is valid.
pub const CAN_USE_HEAP: u8 = 1 << 7;
/// xloadflags bit 0: the kernel has the 64-bit entry at load + 0x200.
pub const XLF_KERNEL_64: u16 = 1 << 0;
/// The 64-bit entry's offset from the load address (boot.rst, "64-bit
/// Boot Protocol").
pub const ENTRY64_OFFSET: u64 = 0x200;
/// Where a bzImage's protected-mode code traditionally loads.
pub const HIGH_LOAD: u64 = 0x10_0000;
/// `setup_sects` 0 means 4 (boot.rst, "Details of Header Fields").
const DEFAULT_SETUP_SECTS: usize = 4;
const SECTOR: usize = 512;
/// The longest kernel version string read.
pub const VERSION_STRING_MAX: usize = 256;
/// The magic that opens `kernel_info` (2.15; boot.rst, "The kernel_info").
pub const KERNEL_INFO_MAGIC: &[u8; 4] = b"LToP";

/// A bzImage whose header passed every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BzImage<'a> {
    file: &'a [u8],
    /// The boot protocol version (0x020F is 2.15).
    pub version: u16,
    /// Bytes of real-mode setup code: the protected-mode kernel's offset.
    pub setup_size: usize,
    /// The end of the setup header in the file (0x202 + the jump's offset).
    pub header_end: usize,
    pub loadflags: u8,
    pub xloadflags: u16,
    pub relocatable: bool,
    pub kernel_alignment: u64,
    pub pref_address: u64,
    pub init_size: u64,
    /// The longest command line, without its NUL.
    pub cmdline_size: u32,
    /// The highest address the initrd may occupy (inclusive).
    pub initrd_addr_max: u32,
}

/// Why an image is not a bzImage the VMM boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BzError {
    /// The file ends before the setup header does.
    TooShort {
        len: usize,
    },
    NoBootFlag {
        found: u16,
    },
    NoHeader,
    OldProtocol {
        version: u16,
    },
    /// The setup header ends past its setup code, or before the fields of
    /// its own protocol version.
    BadHeaderEnd {
        end: usize,
        setup_size: usize,
        needed: usize,
    },
    /// The setup code or the protected-mode kernel reaches past the file.
    KernelOutsideFile {
        start: usize,
        len: u64,
        file: usize,
    },
    NotLoadedHigh {
        loadflags: u8,
    },
    Not64Bit {
        xloadflags: u16,
    },
    BadAlignment {
        alignment: u32,
    },
    /// A kernel that is not relocatable must run at `pref_address`, which
    /// must then be at 1 MiB or above.
    PrefAddressLow {
        pref_address: u64,
    },
    /// `init_size` is smaller than the kernel it must hold.
    InitSizeTooSmall {
        init_size: u32,
        kernel: usize,
    },
    /// A field points (partly) outside the part of the file it is into.
    FieldOutside {
        field: &'static str,
        offset: u64,
        len: u64,
        within: usize,
    },
    /// `kernel_info` does not start with its magic.
    BadKernelInfo,
}

impl fmt::Display for BzError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BzError::TooShort { len } => {
                write!(f, "{len} bytes is too short for a bzImage's setup header (0x{:x})", hdr::END_2_12)
            }
            BzError::NoBootFlag { found } => {
                write!(f, "no boot sector signature {BOOT_FLAG:#x} at 0x1fe (found {found:#x})")
            }
            BzError::NoHeader => write!(f, "no setup header (\"HdrS\" at 0x202)"),
            BzError::OldProtocol { version } => write!(
                f,
                "boot protocol {}.{:02} is older than the {}.{} this VMM needs",
                version >> 8,
                version & 0xFF,
                MIN_VERSION >> 8,
                MIN_VERSION & 0xFF
            ),
            BzError::BadHeaderEnd { end, setup_size, needed } => write!(
                f,
                "the setup header ends at {end:#x}: it must end at or after {needed:#x} and within the \
                 {setup_size:#x} bytes of setup code"
            ),
            BzError::KernelOutsideFile { start, len, file } => write!(
                f,
                "the kernel's {len:#x} bytes from offset {start:#x} reach past the file's end ({file:#x} bytes)"
            ),
            BzError::NotLoadedHigh { loadflags } => {
                write!(f, "not a bzImage: loadflags {loadflags:#x} lack LOADED_HIGH")
            }
            BzError::Not64Bit { xloadflags } => {
                write!(f, "not a 64-bit kernel: xloadflags {xloadflags:#x} lack XLF_KERNEL_64")
            }
            BzError::BadAlignment { alignment } => {
                write!(f, "kernel_alignment {alignment:#x} of a relocatable kernel is not a power of two")
            }
            BzError::PrefAddressLow { pref_address } => write!(
                f,
                "a kernel that is not relocatable wants to run at {pref_address:#x}, below 1 MiB"
            ),
            BzError::InitSizeTooSmall { init_size, kernel } => {
                write!(f, "init_size {init_size:#x} is smaller than the kernel's {kernel:#x} bytes")
            }
            BzError::FieldOutside { field, offset, len, within } => write!(
                f,
                "{field} says {len:#x} bytes at offset {offset:#x}, outside the {within:#x} bytes it points into"
            ),
            BzError::BadKernelInfo => write!(f, "kernel_info lacks its \"LToP\" magic"),
        }
    }
}

/// Where a kernel goes in guest RAM and where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Where the protected-mode kernel's bytes are copied.
    pub load: u64,
    /// The 32-bit entry (the load address; `code32_start` in the zero page).
    pub entry32: u64,
    /// The 64-bit entry (load + 0x200).
    pub entry64: u64,
    /// The protected-mode kernel as copied: `[load, load + its size)`.
    pub loaded: Range<u64>,
    /// What the kernel uses before it reads its memory map: `init_size`
    /// bytes from its runtime start (boot.rst, `init_size`). For a
    /// relocatable kernel it starts at `load`; a fixed one moves itself to
    /// `pref_address`.
    pub runtime: Range<u64>,
}

/// The kernel does not fit in guest RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelTooBig {
    pub start: u64,
    pub end: u64,
    pub ram_end: u64,
}

impl fmt::Display for KernelTooBig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the kernel needs guest RAM [{:#x}, {:#x}), past the end of RAM {:#x}",
            self.start, self.end, self.ram_end
        )
    }
}

/// Whether `file` starts like a bzImage (its boot flag and "HdrS"), to
/// tell it from other kernels before [`parse`] says what is wrong with it.
pub fn looks_like(file: &[u8]) -> bool {
    u16_at(file, hdr::BOOT_FLAG) == Some(BOOT_FLAG) && u32_at(file, hdr::HEADER) == Some(HEADER_MAGIC)
}

/// `len` bytes at `offset` inside `within` bytes, or why not.
fn inside(field: &'static str, offset: u64, len: u64, within: usize) -> Result<(), BzError> {
    match offset.checked_add(len) {
        Some(end) if end <= within as u64 => Ok(()),
        _ => Err(BzError::FieldOutside { field, offset, len, within }),
    }
}

/// Checks `file` as a bzImage (the rules in this module's documentation).
pub fn parse(file: &[u8]) -> Result<BzImage<'_>, BzError> {
    let short = BzError::TooShort { len: file.len() };
    if file.len() < hdr::END_2_12 {
        return Err(short);
    }
    let boot_flag = u16_at(file, hdr::BOOT_FLAG).ok_or(short)?;
    if boot_flag != BOOT_FLAG {
        return Err(BzError::NoBootFlag { found: boot_flag });
    }
    if u32_at(file, hdr::HEADER) != Some(HEADER_MAGIC) {
        return Err(BzError::NoHeader);
    }
    let version = u16_at(file, hdr::VERSION).ok_or(short)?;
    if version < MIN_VERSION {
        return Err(BzError::OldProtocol { version });
    }
    let sects = match u8_at(file, hdr::SETUP_SECTS).ok_or(short)? {
        0 => DEFAULT_SETUP_SECTS,
        n => usize::from(n),
    };
    let setup_size = (sects + 1) * SECTOR;
    let header_end = hdr::HEADER + usize::from(u8_at(file, hdr::JUMP + 1).ok_or(short)?);
    let needed = if version >= VERSION_2_15 { hdr::END_2_15 } else { hdr::END_2_12 };
    if header_end < needed || header_end > setup_size {
        return Err(BzError::BadHeaderEnd { end: header_end, setup_size, needed });
    }
    // Every field below lies before `needed` <= header_end <= setup_size;
    // the file must hold the setup code and then the kernel.
    let kernel_len = u64::from(u32_at(file, hdr::SYSSIZE).ok_or(short)?) * 16;
    let outside = BzError::KernelOutsideFile { start: setup_size, len: kernel_len, file: file.len() };
    if setup_size as u64 + kernel_len > file.len() as u64 || kernel_len == 0 {
        return Err(outside);
    }
    let field32 = |o: usize| u32_at(file, o).ok_or(short);
    let loadflags = u8_at(file, hdr::LOADFLAGS).ok_or(short)?;
    if loadflags & LOADED_HIGH == 0 {
        return Err(BzError::NotLoadedHigh { loadflags });
    }
    let xloadflags = u16_at(file, hdr::XLOADFLAGS).ok_or(short)?;
    if xloadflags & XLF_KERNEL_64 == 0 {
        return Err(BzError::Not64Bit { xloadflags });
    }
    let relocatable = u8_at(file, hdr::RELOCATABLE_KERNEL).ok_or(short)? != 0;
    let alignment = field32(hdr::KERNEL_ALIGNMENT)?;
    if relocatable && !alignment.is_power_of_two() {
        return Err(BzError::BadAlignment { alignment });
    }
    let pref_address = u64_at(file, hdr::PREF_ADDRESS).ok_or(short)?;
    if !relocatable && pref_address < HIGH_LOAD {
        return Err(BzError::PrefAddressLow { pref_address });
    }
    let init_size = field32(hdr::INIT_SIZE)?;
    if u64::from(init_size) < kernel_len {
        return Err(BzError::InitSizeTooSmall { init_size, kernel: kernel_len as usize });
    }
    let kernel_len = kernel_len as usize;
    let payload = (u64::from(field32(hdr::PAYLOAD_OFFSET)?), u64::from(field32(hdr::PAYLOAD_LENGTH)?));
    inside("payload_offset/payload_length", payload.0, payload.1, kernel_len)?;
    let image = BzImage {
        file,
        version,
        setup_size,
        header_end,
        loadflags,
        xloadflags,
        relocatable,
        kernel_alignment: u64::from(alignment),
        pref_address,
        init_size: u64::from(init_size),
        cmdline_size: field32(hdr::CMDLINE_SIZE)?,
        initrd_addr_max: field32(hdr::INITRD_ADDR_MAX)?,
    };
    image.version_string()?;
    if version >= VERSION_2_15 {
        let offset = u64::from(field32(hdr::KERNEL_INFO_OFFSET)?);
        inside("kernel_info_offset", offset, 8, kernel_len)?;
        let at = setup_size + offset as usize;
        let info = &image.kernel()[offset as usize..];
        // kernel_info: magic, then its size (which must fit in the kernel).
        if &info[..4] != KERNEL_INFO_MAGIC {
            return Err(BzError::BadKernelInfo);
        }
        let size = u64::from(u32_at(file, at + 4).ok_or(short)?);
        inside("kernel_info's size", offset, size.max(8), kernel_len)?;
    }
    Ok(image)
}

impl<'a> BzImage<'a> {
    /// The setup header as the image has it, `[0x1F1, header_end)`: what
    /// a loader copies into `boot_params` before setting its own fields.
    pub fn setup_header(&self) -> &'a [u8] {
        &self.file[hdr::START..self.header_end]
    }

    /// The protected-mode kernel: what is copied to [`Placement::load`].
    pub fn kernel(&self) -> &'a [u8] {
        let len = u32_at(self.file, hdr::SYSSIZE).map_or(0, |p| p as usize * 16);
        &self.file[self.setup_size..self.setup_size + len]
    }

    /// The kernel's version string (`kernel_version` + 0x200 in the setup
    /// code, up to its NUL; at most [`VERSION_STRING_MAX`] bytes), or
    /// `None` if the field is 0 or the bytes are not UTF-8.
    pub fn version_string(&self) -> Result<Option<&'a str>, BzError> {
        let field = u16_at(self.file, hdr::KERNEL_VERSION).unwrap_or(0);
        if field == 0 {
            return Ok(None);
        }
        let at = usize::from(field) + 0x200;
        let outside = BzError::FieldOutside {
            field: "kernel_version",
            offset: at as u64,
            len: 1,
            within: self.setup_size,
        };
        let setup = &self.file[..self.setup_size];
        let rest = setup.get(at..).filter(|r| !r.is_empty()).ok_or(outside)?;
        let rest = &rest[..rest.len().min(VERSION_STRING_MAX)];
        let Some(len) = rest.iter().position(|&b| b == 0) else {
            return Err(BzError::FieldOutside {
                field: "kernel_version (no NUL)",
                offset: at as u64,
                len: rest.len() as u64,
                within: self.setup_size,
            });
        };
        Ok(core::str::from_utf8(&rest[..len]).ok())
    }

    /// Where the kernel goes in a guest whose RAM is `[0, ram_end)`: a
    /// relocatable kernel at `pref_address` rounded up to
    /// `kernel_alignment` (and not below 1 MiB), where it also runs (so it
    /// never moves itself); a fixed one at 1 MiB, running at
    /// `pref_address`. Everything it occupies must lie in RAM.
    pub fn placement(&self, ram_end: u64) -> Result<Placement, KernelTooBig> {
        let len = self.kernel().len() as u64;
        let (load, runtime_start) = if self.relocatable {
            let at = self.pref_address.max(HIGH_LOAD).checked_next_multiple_of(self.kernel_alignment);
            let at = at.unwrap_or(u64::MAX);
            (at, at)
        } else {
            (HIGH_LOAD, self.pref_address)
        };
        let too_big = |start: u64, end: u64| KernelTooBig { start, end, ram_end };
        let loaded_end = load.checked_add(len).ok_or(too_big(load, u64::MAX))?;
        let runtime_end =
            runtime_start.checked_add(self.init_size).ok_or(too_big(runtime_start, u64::MAX))?;
        if loaded_end > ram_end {
            return Err(too_big(load, loaded_end));
        }
        if runtime_end > ram_end {
            return Err(too_big(runtime_start, runtime_end));
        }
        Ok(Placement {
            load,
            entry32: load,
            entry64: load + ENTRY64_OFFSET,
            loaded: load..loaded_end,
            runtime: runtime_start..runtime_end,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
