//! Kernel files made to fail, for the system tests of a guest's verdict
//! (issue 11: a kernel that triple-faults at its first instruction must
//! fail the run, with the reason): made by the build when a system file
//! names one ([`make_if_named`]), never committed.
//!
//! - [`TRIPLE_BZIMAGE`]: a bzImage the VMM's checks accept (protocol 2.12,
//!   LOADED_HIGH, XLF_KERNEL_64, loaded at 1 MiB), whose protected-mode
//!   kernel is `ud2` at its 32-bit entry and at its 64-bit one: with no
//!   IDT the #UD becomes a double fault and then a triple fault, at the
//!   kernel's first instruction.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use vmm::bzimage::{hdr, BOOT_FLAG, HEADER_MAGIC, LOADED_HIGH};

use crate::ws::Ws;

/// The triple-faulting bzImage's name, in [`dir`].
pub const TRIPLE_BZIMAGE: &str = "triple-bzImage";

/// Where the build puts these files: `target/ryokan/bad`.
pub fn dir(ws: &Ws) -> PathBuf {
    ws.out_dir().join("bad")
}

/// The bytes of [`TRIPLE_BZIMAGE`]: one setup sector after the boot
/// sector, then 4 KiB of protected-mode kernel.
pub fn triple_bzimage() -> Vec<u8> {
    const SETUP: usize = 2 * 512;
    const KERNEL: usize = 0x1000;
    const UD2: [u8; 2] = [0x0F, 0x0B];
    let mut f = vec![0u8; SETUP + KERNEL];
    let put = |f: &mut [u8], at: usize, bytes: &[u8]| f[at..at + bytes.len()].copy_from_slice(bytes);
    f[hdr::SETUP_SECTS] = 1;
    put(&mut f, hdr::SYSSIZE, &((KERNEL / 16) as u32).to_le_bytes());
    put(&mut f, hdr::BOOT_FLAG, &BOOT_FLAG.to_le_bytes());
    f[hdr::JUMP] = 0xEB;
    f[hdr::JUMP + 1] = (hdr::END_2_12 - hdr::HEADER) as u8;
    put(&mut f, hdr::HEADER, &HEADER_MAGIC.to_le_bytes());
    put(&mut f, hdr::VERSION, &0x020Cu16.to_le_bytes());
    f[hdr::LOADFLAGS] = LOADED_HIGH;
    put(&mut f, hdr::CODE32_START, &0x10_0000u32.to_le_bytes());
    put(&mut f, hdr::INITRD_ADDR_MAX, &0x7FFF_FFFFu32.to_le_bytes());
    put(&mut f, hdr::XLOADFLAGS, &1u16.to_le_bytes()); // XLF_KERNEL_64
    put(&mut f, hdr::CMDLINE_SIZE, &255u32.to_le_bytes());
    put(&mut f, hdr::PREF_ADDRESS, &0x10_0000u64.to_le_bytes());
    put(&mut f, hdr::INIT_SIZE, &(KERNEL as u32).to_le_bytes());
    put(&mut f, SETUP, &UD2); // the 32-bit entry
    put(&mut f, SETUP + 0x200, &UD2); // the 64-bit entry
    f
}

/// Whether `path` (relative to the working directory) is one of these files.
fn is_bad_file(ws: &Ws, path: &Path) -> bool {
    crate::linux::normalised(path).is_some_and(|p| p == dir(ws).join(TRIPLE_BZIMAGE))
}

/// Writes the files of `paths` that are these (anew each time).
pub fn make_if_named<'a>(ws: &Ws, paths: impl IntoIterator<Item = &'a PathBuf>) -> Result<()> {
    if paths.into_iter().any(|p| is_bad_file(ws, p)) {
        let dir = dir(ws);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(TRIPLE_BZIMAGE);
        std::fs::write(&path, triple_bzimage())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_triple_faulting_bzimage_passes_the_vmms_checks_with_ud2_at_both_entries() {
        let f = triple_bzimage();
        let k = vmm::bzimage::parse(&f).expect("the VMM's checks accept it");
        let p = k.placement(8 << 20).expect("it fits 8 MiB");
        assert_eq!((p.load, p.entry32, p.entry64), (0x10_0000, 0x10_0000, 0x10_0200));
        assert_eq!(&k.kernel()[..2], &[0x0F, 0x0B]);
        assert_eq!(&k.kernel()[0x200..0x202], &[0x0F, 0x0B]);
        assert!(matches!(vmm::kernel::identify(&f, 8 << 20), Ok(vmm::kernel::KernelFile::Linux(_))));
    }

    #[test]
    fn it_is_made_only_when_named() {
        let ws = Ws::locate().unwrap();
        assert!(is_bad_file(&ws, &dir(&ws).join("x/..").join(TRIPLE_BZIMAGE)));
        assert!(!is_bad_file(&ws, &dir(&ws).join("vmlinuz")));
    }
}
