//! Checking an ELF64 executable before anything of it is trusted (System V
//! gABI, x86-64 psABI). Whoever loads a domain — the kernel for `mgmt`,
//! `mgmt` for the rest — loads only what [`parse`] accepted: loadable
//! segments inside the file and inside the allowed address range, none
//! overlapping, none both writable and executable, and an entry point in an
//! executable segment.

use core::ops::Range;

/// The most loadable segments an image may have.
pub const MAX_SEGMENTS: usize = 8;

const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const PAGE: u64 = 4096;

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    TooShort,
    BadMagic,
    /// Not ELF64, little-endian, System V/GNU, version 1.
    WrongClass,
    /// Not an executable (`ET_EXEC`).
    NotExecutable,
    /// Not x86-64.
    WrongMachine,
    /// The program header table is malformed or outside the file.
    BadHeaderTable,
    TooManySegments,
    NoSegments,
    /// A segment's file bytes lie outside the file.
    SegmentOutsideFile,
    /// A segment has more file bytes than memory bytes.
    FileLargerThanMemory,
    /// A segment lies (partly) outside the allowed address range, or wraps.
    SegmentOutOfRange,
    /// A segment's address and file offset disagree modulo the page size.
    Misaligned,
    /// Two segments share a page.
    SegmentsOverlap,
    WritableAndExecutable,
    /// The entry point is not in an executable segment.
    BadEntry,
}

/// Access a segment asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

/// One loadable segment, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub vaddr: u64,
    pub memsz: u64,
    pub offset: u64,
    pub filesz: u64,
    pub access: Access,
}

impl Segment {
    /// The pages the segment occupies.
    pub fn pages(&self) -> Range<u64> {
        let start = self.vaddr & !(PAGE - 1);
        let end = (self.vaddr + self.memsz).next_multiple_of(PAGE);
        start..end
    }
}

/// A checked image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub entry: u64,
    pub segments: heapless::Vec<Segment, MAX_SEGMENTS>,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o.checked_add(2)?)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o.checked_add(8)?)?.try_into().ok()?))
}

/// Checks `file` as an executable whose segments must lie within `range`.
pub fn parse(file: &[u8], range: Range<u64>) -> Result<Image, ElfError> {
    if file.len() < 64 {
        return Err(ElfError::TooShort);
    }
    if file[..4] != *b"\x7fELF" {
        return Err(ElfError::BadMagic);
    }
    // Class 64, little endian, version 1, OS ABI System V (0) or GNU (3).
    if file[4] != 2 || file[5] != 1 || file[6] != 1 || !matches!(file[7], 0 | 3) {
        return Err(ElfError::WrongClass);
    }
    let field = |v: Option<u64>| v.ok_or(ElfError::TooShort);
    if u16_at(file, 16) != Some(2) {
        return Err(ElfError::NotExecutable);
    }
    if u16_at(file, 18) != Some(62) {
        return Err(ElfError::WrongMachine);
    }
    let entry = field(u64_at(file, 24))?;
    let phoff = field(u64_at(file, 32))?;
    let phentsize = u64::from(u16_at(file, 54).ok_or(ElfError::TooShort)?);
    let phnum = u64::from(u16_at(file, 56).ok_or(ElfError::TooShort)?);
    if phentsize < 56 {
        return Err(ElfError::BadHeaderTable);
    }
    let table_end = phnum.checked_mul(phentsize).and_then(|n| n.checked_add(phoff));
    if table_end.is_none_or(|e| e > file.len() as u64) {
        return Err(ElfError::BadHeaderTable);
    }
    let mut segments = heapless::Vec::<Segment, MAX_SEGMENTS>::new();
    for i in 0..phnum {
        let o = (phoff + i * phentsize) as usize;
        let h = |off: usize| u64_at(file, o + off).ok_or(ElfError::BadHeaderTable);
        if u32_at(file, o) != Some(PT_LOAD) {
            continue;
        }
        let flags = u32_at(file, o + 4).ok_or(ElfError::BadHeaderTable)?;
        let seg = Segment {
            offset: h(8)?,
            vaddr: h(16)?,
            filesz: h(32)?,
            memsz: h(40)?,
            access: Access { read: flags & PF_R != 0, write: flags & PF_W != 0, exec: flags & PF_X != 0 },
        };
        if seg.memsz == 0 {
            continue;
        }
        check_segment(&seg, file.len() as u64, &range)?;
        if segments.iter().any(|s| s.pages().start < seg.pages().end && seg.pages().start < s.pages().end) {
            return Err(ElfError::SegmentsOverlap);
        }
        segments.push(seg).map_err(|_| ElfError::TooManySegments)?;
    }
    if segments.is_empty() {
        return Err(ElfError::NoSegments);
    }
    if !segments.iter().any(|s| s.access.exec && s.vaddr <= entry && entry < s.vaddr + s.memsz) {
        return Err(ElfError::BadEntry);
    }
    Ok(Image { entry, segments })
}

fn check_segment(s: &Segment, file_len: u64, range: &Range<u64>) -> Result<(), ElfError> {
    if s.filesz > s.memsz {
        return Err(ElfError::FileLargerThanMemory);
    }
    if s.offset.checked_add(s.filesz).is_none_or(|e| e > file_len) {
        return Err(ElfError::SegmentOutsideFile);
    }
    let end = s.vaddr.checked_add(s.memsz).and_then(|e| e.checked_add(PAGE - 1));
    if s.vaddr < range.start || end.is_none_or(|e| e & !(PAGE - 1) > range.end) {
        return Err(ElfError::SegmentOutOfRange);
    }
    if s.vaddr % PAGE != s.offset % PAGE {
        return Err(ElfError::Misaligned);
    }
    if s.access.write && s.access.exec {
        return Err(ElfError::WritableAndExecutable);
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    const RANGE: Range<u64> = 0x1000..0x7F00_0000_0000;

    /// A minimal executable: text at 0x40_1000 (R+X), data at 0x40_2000 (R+W).
    pub fn sample() -> Vec<u8> {
        let mut f = vec![0u8; 0x3000];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4..8].copy_from_slice(&[2, 1, 1, 0]);
        f[16..18].copy_from_slice(&2u16.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[24..32].copy_from_slice(&0x40_1000u64.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&2u16.to_le_bytes());
        let mut ph = |i: usize, flags: u32, off: u64, va: u64, filesz: u64, memsz: u64| {
            let o = 64 + i * 56;
            f[o..o + 4].copy_from_slice(&1u32.to_le_bytes());
            f[o + 4..o + 8].copy_from_slice(&flags.to_le_bytes());
            f[o + 8..o + 16].copy_from_slice(&off.to_le_bytes());
            f[o + 16..o + 24].copy_from_slice(&va.to_le_bytes());
            f[o + 32..o + 40].copy_from_slice(&filesz.to_le_bytes());
            f[o + 40..o + 48].copy_from_slice(&memsz.to_le_bytes());
        };
        ph(0, PF_R | PF_X, 0x1000, 0x40_1000, 0x100, 0x100);
        ph(1, PF_R | PF_W, 0x2000, 0x40_2000, 0x10, 0x3000);
        f
    }

    fn set_u64(f: &mut [u8], o: usize, v: u64) {
        f[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn accepts_a_good_image() {
        let img = parse(&sample(), RANGE).unwrap();
        assert_eq!(img.entry, 0x40_1000);
        assert_eq!(img.segments.len(), 2);
        assert_eq!(img.segments[1].pages(), 0x40_2000..0x40_5000);
    }

    #[test]
    fn refuses_hostile_images() {
        type Corrupt = fn(&mut Vec<u8>);
        let cases: [(Corrupt, ElfError); 11] = [
            (|f| f[0] = 0, ElfError::BadMagic),
            (|f| f[4] = 1, ElfError::WrongClass),
            (|f| f[16] = 3, ElfError::NotExecutable),
            (|f| f[18] = 3, ElfError::WrongMachine),
            (|f| set_u64(f, 32, u64::MAX - 8), ElfError::BadHeaderTable),
            (|f| set_u64(f, 64 + 8, 0x2fff), ElfError::SegmentOutsideFile),
            (|f| set_u64(f, 64 + 16, 0xffff_8000_0000_1000), ElfError::SegmentOutOfRange),
            (|f| set_u64(f, 64 + 56 + 40, u64::MAX - 0x40_2000), ElfError::SegmentOutOfRange),
            (|f| set_u64(f, 64 + 56 + 16, 0x40_1000), ElfError::SegmentsOverlap),
            (|f| f[64 + 4] = (PF_W | PF_X) as u8, ElfError::WritableAndExecutable),
            (|f| set_u64(f, 24, 0x40_2000), ElfError::BadEntry),
        ];
        for (i, (corrupt, want)) in cases.iter().enumerate() {
            let mut f = sample();
            corrupt(&mut f);
            assert_eq!(parse(&f, RANGE), Err(*want), "case {i}");
        }
        assert_eq!(parse(&sample()[..40], RANGE), Err(ElfError::TooShort));
        let mut f = sample();
        set_u64(&mut f, 64 + 32, 0x200); // filesz > memsz
        assert_eq!(parse(&f, RANGE), Err(ElfError::FileLargerThanMemory));
        let mut f = sample();
        set_u64(&mut f, 64 + 16, 0x40_1001);
        assert_eq!(parse(&f, RANGE), Err(ElfError::Misaligned));
    }

    proptest! {
        #[test]
        fn random_corruption_never_panics_and_never_escapes(pos in 0usize..0x200, val in any::<u8>(), n in 1usize..8) {
            let mut f = sample();
            for k in 0..n {
                let p = (pos * (k + 1) * 7) % 0x200;
                f[p] = val.wrapping_add(k as u8);
            }
            if let Ok(img) = parse(&f, RANGE) {
                for s in &img.segments {
                    prop_assert!(s.vaddr >= RANGE.start && s.pages().end <= RANGE.end);
                    prop_assert!(s.offset + s.filesz <= f.len() as u64);
                    prop_assert!(!(s.access.write && s.access.exec));
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse(&bytes, RANGE);
        }
    }
}
