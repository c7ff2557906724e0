//! Which kernel images the VMM boots, and where their bytes go: a Multiboot
//! (v1) kernel (Multiboot Specification 0.6.96, section 3.1) in an ELF64
//! x86-64 executable, loaded at its segments' physical addresses.
//!
//! The rules, checked before anything is loaded (the build tool applies the
//! same ones to the test guests): a Multiboot header, 4-byte aligned in the
//! file's first 8 KiB, with a good checksum and no requirement the VMM
//! cannot meet (flag bits 2..=15: video mode and unknown ones); an ELF
//! image that `ipc::elf::parse` accepts for the guest's RAM (segments in
//! the file and in RAM, none overlapping, none writable and executable, the
//! entry in an executable one); segments whose physical and virtual
//! addresses agree (the kernel starts with paging off), and none over the
//! page the Multiboot information goes to ([`crate::info::INFO_GPA`]).

use core::fmt;
use core::ops::Range;

use ipc::elf::{self, ElfError, Segment, MAX_SEGMENTS};

use crate::info::INFO_GPA;
use crate::ram::PAGE;

pub const MAGIC: u32 = 0x1BAD_B002;
/// The header lies within this many bytes of the file's start.
pub const SEARCH: usize = 8192;
/// Header flags the VMM honours: page-aligned modules (it always aligns
/// them) and memory information (it always gives it). Bits 2..=15 are requirements it
/// cannot meet; bits 16..=31 are optional (bit 16, the a.out addresses, is
/// ignored: the ELF headers say where things go).
const REQUIRED_MASK: u32 = 0xFFFF;
const SUPPORTED: u32 = 0b11;

/// A kernel the VMM can boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// Where the header is in the file.
    pub header: usize,
    pub flags: u32,
    /// The entry point (a guest-physical address).
    pub entry: u64,
    /// The segments: copy `filesz` bytes from `offset` to `vaddr`; the rest
    /// of `memsz` is zero (fresh guest RAM is).
    pub segments: heapless::Vec<Segment, MAX_SEGMENTS>,
}

/// Why an image is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    NoHeader,
    /// The header's magic + flags + checksum is not 0.
    BadChecksum {
        at: usize,
    },
    /// The header requires what the VMM does not offer.
    Unsupported {
        flags: u32,
    },
    /// A segment lies (partly) outside guest RAM.
    OutsideRam {
        start: u64,
        end: u64,
        ram: (u64, u64),
    },
    /// A segment's physical address differs from its virtual one.
    PhysicalDiffers {
        vaddr: u64,
        paddr: u64,
    },
    /// A segment covers the page of the Multiboot information.
    OverInfo {
        start: u64,
        end: u64,
    },
    Elf(ElfError),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ImageError::NoHeader => write!(f, "no Multiboot header (magic {MAGIC:#x}) in its first {SEARCH} bytes"),
            ImageError::BadChecksum { at } => write!(f, "the Multiboot header at offset {at:#x} has a bad checksum"),
            ImageError::Unsupported { flags } => write!(
                f,
                "the Multiboot header asks for features this VMM lacks (flags {flags:#x}; it offers {SUPPORTED:#x})"
            ),
            ImageError::OutsideRam { start, end, ram } => write!(
                f,
                "a segment at [{start:#x}, {end:#x}) lies outside guest RAM [{:#x}, {:#x})",
                ram.0, ram.1
            ),
            ImageError::PhysicalDiffers { vaddr, paddr } => write!(
                f,
                "a segment's physical address {paddr:#x} differs from its virtual address {vaddr:#x}"
            ),
            ImageError::OverInfo { start, end } => write!(
                f,
                "a segment at [{start:#x}, {end:#x}) covers the Multiboot information page {INFO_GPA:#x}"
            ),
            ImageError::Elf(e) => write!(f, "not a loadable ELF64 x86-64 executable: {e:?}"),
        }
    }
}

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o.checked_add(8)?)?.try_into().ok()?))
}

/// The Multiboot header: its offset and flags.
pub fn header(file: &[u8]) -> Result<(usize, u32), ImageError> {
    let at = (0..SEARCH.min(file.len())).step_by(4).find(|&o| u32_at(file, o) == Some(MAGIC));
    let at = at.ok_or(ImageError::NoHeader)?;
    let (flags, checksum) = match (u32_at(file, at + 4), u32_at(file, at + 8)) {
        (Some(f), Some(c)) => (f, c),
        _ => return Err(ImageError::BadChecksum { at }),
    };
    if MAGIC.wrapping_add(flags).wrapping_add(checksum) != 0 {
        return Err(ImageError::BadChecksum { at });
    }
    if flags & REQUIRED_MASK & !SUPPORTED != 0 {
        return Err(ImageError::Unsupported { flags });
    }
    Ok((at, flags))
}

/// The program headers' (vaddr, paddr, memsz) of every loadable segment;
/// only called on a file whose header table `elf::parse` found in bounds.
fn loads(file: &[u8]) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
    let phoff = u64_at(file, 32).unwrap_or(0) as usize;
    let entsize = file.get(54..56).map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
    let count = file.get(56..58).map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
    (0..count).filter_map(move |i| {
        let o = phoff.checked_add(i.checked_mul(entsize)?)?;
        if u32_at(file, o)? != 1 {
            return None;
        }
        Some((u64_at(file, o + 16)?, u64_at(file, o + 24)?, u64_at(file, o + 40)?))
    })
}

/// Checks `file` as a kernel for a guest whose RAM is `ram`.
pub fn check(file: &[u8], ram: Range<u64>) -> Result<Kernel, ImageError> {
    let (header, flags) = header(file)?;
    let image = match elf::parse(file, ram.clone()) {
        Ok(image) => image,
        Err(ElfError::SegmentOutOfRange) => {
            let outside =
                loads(file).find(|&(v, _, m)| m > 0 && (v < ram.start || v.saturating_add(m) > ram.end));
            return Err(match outside {
                Some((v, _, m)) => {
                    ImageError::OutsideRam { start: v, end: v.saturating_add(m), ram: (ram.start, ram.end) }
                }
                None => ImageError::Elf(ElfError::SegmentOutOfRange),
            });
        }
        Err(e) => return Err(ImageError::Elf(e)),
    };
    if let Some((vaddr, paddr, _)) = loads(file).find(|&(v, p, m)| m > 0 && v != p) {
        return Err(ImageError::PhysicalDiffers { vaddr, paddr });
    }
    let info = INFO_GPA..INFO_GPA + PAGE;
    if let Some(s) = image.segments.iter().find(|s| s.pages().start < info.end && info.start < s.pages().end)
    {
        return Err(ImageError::OverInfo { start: s.vaddr, end: s.vaddr + s.memsz });
    }
    Ok(Kernel { header, flags, entry: image.entry, segments: image.segments })
}

#[cfg(test)]
mod tests;
