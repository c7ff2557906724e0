//! A cpio archive in the "newc" format, the one Linux unpacks as its
//! initramfs (`Documentation/driver-api/early-userspace/buffer-format.rst`):
//! each entry a 110-byte ASCII header ("070701" and thirteen 8-digit hex
//! fields), its NUL-terminated name padded to 4 bytes, its data padded to
//! 4 bytes; the archive ends with the entry "TRAILER!!!".
//!
//! Written here rather than by `cpio(1)` so that the archive needs no
//! files on disk with the right owners and modes: device nodes
//! (`/dev/console`) go in without root, every entry is owned by root, and
//! every mtime is 0, so the same inputs give the same bytes.

use anyhow::{bail, Result};

const MAGIC: &str = "070701";
pub const TRAILER: &str = "TRAILER!!!";
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFCHR: u32 = 0o020000;

/// An archive being written.
#[derive(Debug, Default)]
pub struct Cpio {
    out: Vec<u8>,
    next_ino: u32,
}

impl Cpio {
    pub fn new() -> Self {
        Cpio { out: Vec::new(), next_ino: 1 }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> Result<()> {
        if name.is_empty()
            || name.starts_with('/')
            || name.contains('\0')
            || name.split('/').any(|c| c == "..")
        {
            bail!("cpio: bad entry name {name:?}");
        }
        let Ok(size) = u32::try_from(data.len()) else {
            bail!("cpio: {name} is too big ({} bytes)", data.len());
        };
        let ino = if name == TRAILER { 0 } else { self.next_ino };
        self.next_ino += 1;
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, name.len() as u32 + 1, 0];
        self.out.extend_from_slice(MAGIC.as_bytes());
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
        Ok(())
    }

    fn pad(&mut self) {
        self.out.resize(self.out.len().next_multiple_of(4), 0);
    }

    pub fn dir(&mut self, name: &str) -> Result<()> {
        self.entry(name, S_IFDIR | 0o755, (0, 0), &[])
    }

    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> Result<()> {
        self.entry(name, S_IFREG | (perm & 0o7777), (0, 0), data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> Result<()> {
        self.entry(name, S_IFLNK | 0o777, (0, 0), target.as_bytes())
    }

    pub fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> Result<()> {
        self.entry(name, S_IFCHR | (perm & 0o7777), (major, minor), &[])
    }

    /// The archive, with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        // The trailer's name is valid and it holds no data.
        let _ = self.entry(TRAILER, 0, (0, 0), &[]);
        self.out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An entry as a reader sees it: name, mode, rdev, data.
    pub(crate) type Entry = (String, u32, (u32, u32), Vec<u8>);

    /// Reads a newc archive back, checking its framing.
    pub(crate) fn read(mut b: &[u8]) -> Vec<Entry> {
        let total = b.len();
        let mut out = Vec::new();
        loop {
            assert_eq!((total - b.len()) % 4, 0, "entries start 4-byte aligned");
            assert_eq!(&b[..6], MAGIC.as_bytes());
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&b[6 + 8 * i..14 + 8 * i]).unwrap(), 16).unwrap()
            };
            let (mode, size, rdev, namesize) =
                (field(1), field(6) as usize, (field(9), field(10)), field(11) as usize);
            assert_eq!((field(2), field(3), field(5)), (0, 0, 0), "root-owned, mtime 0");
            let name = std::str::from_utf8(&b[110..110 + namesize - 1]).unwrap().to_string();
            assert_eq!(b[110 + namesize - 1], 0);
            let data_at = (110 + namesize).next_multiple_of(4);
            let data = b[data_at..data_at + size].to_vec();
            b = &b[(data_at + size).next_multiple_of(4)..];
            if name == TRAILER {
                assert!(b.is_empty(), "nothing after the trailer");
                return out;
            }
            out.push((name, mode, rdev, data));
        }
    }

    #[test]
    fn an_archive_reads_back_entry_by_entry() {
        let mut c = Cpio::new();
        c.dir("bin").unwrap();
        c.file("bin/busybox", 0o755, b"\x7fELF...").unwrap();
        c.symlink("bin/sh", "busybox").unwrap();
        c.dir("dev").unwrap();
        c.char_dev("dev/console", 0o600, 5, 1).unwrap();
        c.file("init", 0o755, b"#!/bin/sh\n").unwrap();
        c.file("empty", 0o644, b"").unwrap();
        let entries = read(&c.finish());
        let want: Vec<Entry> = vec![
            ("bin".into(), 0o040755, (0, 0), vec![]),
            ("bin/busybox".into(), 0o100755, (0, 0), b"\x7fELF...".to_vec()),
            ("bin/sh".into(), 0o120777, (0, 0), b"busybox".to_vec()),
            ("dev".into(), 0o040755, (0, 0), vec![]),
            ("dev/console".into(), 0o020600, (5, 1), vec![]),
            ("init".into(), 0o100755, (0, 0), b"#!/bin/sh\n".to_vec()),
            ("empty".into(), 0o100644, (0, 0), vec![]),
        ];
        assert_eq!(entries, want);
    }

    #[test]
    fn a_header_is_what_the_kernel_parses() {
        let mut c = Cpio::new();
        c.file("a", 0o644, b"xy").unwrap();
        let b = c.finish();
        let header = "070701\
            00000001000081a4000000000000000000000001\
            00000000000000020000000000000000\
            000000000000000000000002\
            00000000";
        assert_eq!(std::str::from_utf8(&b[..110]).unwrap(), header);
        assert_eq!(&b[110..116], b"a\0xy\0\0", "the name (110 + 2 is 4-aligned), the data, padding");
    }

    #[test]
    fn bad_names_are_refused() {
        let mut c = Cpio::new();
        for bad in ["", "/init", "a/../b", "..", "a\0b"] {
            assert!(c.file(bad, 0o644, b"").is_err(), "{bad:?}");
        }
        assert_eq!(read(&c.finish()), vec![], "nothing was written");
    }

    #[test]
    fn identical_inputs_give_identical_bytes() {
        let make = || {
            let mut c = Cpio::new();
            c.file("x", 0o600, b"1").unwrap();
            c.finish()
        };
        assert_eq!(make(), make());
    }
}
