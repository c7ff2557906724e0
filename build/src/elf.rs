//! Just enough of ELF64 (little-endian) to list a binary's sections and their sizes.

use anyhow::{bail, Context, Result};

/// `SHF_ALLOC`: the section occupies memory at run time.
const SHF_ALLOC: u64 = 0x2;
/// `SHT_NOBITS`: the section takes no room in the file (`.bss`).
const SHT_NOBITS: u32 = 8;

/// One section header, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub size: u64,
    /// Loaded into memory (SHF_ALLOC).
    pub alloc: bool,
    /// Zero-filled at load, not stored in the file.
    pub nobits: bool,
}

fn u16_at(b: &[u8], off: usize) -> Result<u16> {
    let s = b.get(off..off + 2).context("ELF truncated")?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn u32_at(b: &[u8], off: usize) -> Result<u32> {
    let s = b.get(off..off + 4).context("ELF truncated")?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64> {
    let s = b.get(off..off + 8).context("ELF truncated")?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_le_bytes(a))
}

fn usize_of(v: u64) -> Result<usize> {
    usize::try_from(v).context("ELF offset out of range")
}

/// The sections of an ELF64 little-endian file (System V gABI, "Section Header").
pub fn sections(b: &[u8]) -> Result<Vec<Section>> {
    if b.get(..4) != Some(b"\x7fELF".as_slice()) {
        bail!("not an ELF file");
    }
    if b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        bail!("not a 64-bit little-endian ELF");
    }
    let shoff = usize_of(u64_at(b, 0x28)?)?;
    let shentsize = usize::from(u16_at(b, 0x3a)?);
    let shnum = usize::from(u16_at(b, 0x3c)?);
    let shstrndx = usize::from(u16_at(b, 0x3e)?);
    if shnum == 0 {
        return Ok(Vec::new());
    }
    if shentsize < 0x40 || shstrndx >= shnum {
        bail!("malformed section header table");
    }
    let header = |i: usize| shoff + i * shentsize;
    let strtab_off = usize_of(u64_at(b, header(shstrndx) + 0x18)?)?;
    let strtab_size = usize_of(u64_at(b, header(shstrndx) + 0x20)?)?;
    let strtab = b.get(strtab_off..strtab_off + strtab_size).context("section name table out of the file")?;
    let mut out = Vec::with_capacity(shnum);
    for i in 1..shnum {
        let h = header(i);
        let name_off = usize_of(u64::from(u32_at(b, h)?))?;
        let name = strtab
            .get(name_off..)
            .and_then(|s| s.split(|&c| c == 0).next())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default();
        out.push(Section {
            name,
            size: u64_at(b, h + 0x20)?,
            alloc: u64_at(b, h + 0x08)? & SHF_ALLOC != 0,
            nobits: u32_at(b, h + 0x04)? == SHT_NOBITS,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with a null section, `.text` (alloc), `.bss` (alloc,
    /// nobits), `.comment` and `.shstrtab`.
    fn fake_elf() -> Vec<u8> {
        let names = b"\0.text\0.bss\0.comment\0.shstrtab\0";
        let mut b = vec![0u8; 0x40];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        let strtab_off = b.len() as u64;
        b.extend_from_slice(names);
        let shoff = b.len() as u64;
        b[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        b[0x3a..0x3c].copy_from_slice(&0x40u16.to_le_bytes());
        b[0x3c..0x3e].copy_from_slice(&5u16.to_le_bytes());
        b[0x3e..0x40].copy_from_slice(&4u16.to_le_bytes());
        let mut sh = |name: u32, ty: u32, flags: u64, off: u64, size: u64| {
            let mut h = vec![0u8; 0x40];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&ty.to_le_bytes());
            h[8..16].copy_from_slice(&flags.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&off.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&h);
        };
        sh(0, 0, 0, 0, 0);
        sh(1, 1, 0x6, 0, 0x1234);
        sh(7, 8, 0x3, 0, 0x8000);
        sh(12, 1, 0, 0, 0x10);
        sh(21, 3, 0, strtab_off, names.len() as u64);
        b
    }

    #[test]
    fn lists_sections() {
        let s = sections(&fake_elf()).expect("parse");
        let got: Vec<_> = s.iter().map(|s| (s.name.as_str(), s.size, s.alloc, s.nobits)).collect();
        assert_eq!(
            got,
            vec![
                (".text", 0x1234, true, false),
                (".bss", 0x8000, true, true),
                (".comment", 0x10, false, false),
                (".shstrtab", 31, false, false),
            ]
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(sections(b"not an elf").is_err());
        let mut e = fake_elf();
        e.truncate(0x50);
        assert!(sections(&e).is_err());
    }
}
