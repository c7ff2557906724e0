//! What a guest's kernel file is, judged once for the build (`cargo xtask
//! build` refuses a wrong file at its `kernel = …` with the reason) and
//! for the VMM (which loader boots it): a Linux bzImage (`crate::bzimage`)
//! or a Multiboot v1 ELF kernel (`crate::multiboot`). A file that starts
//! like one of them is judged as that one, so that its error is that
//! format's ("protocol 2.10 is older than 2.12"), not a shrug.

use core::fmt;

use crate::bzimage::{self, BzError, BzImage};
use crate::multiboot::{self, ImageError, Kernel};
use crate::ram::RAM_START;

/// A kernel the VMM knows how to treat. (Judged once per boot and never
/// stored in bulk: the Multiboot variant's size costs nothing.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum KernelFile<'a> {
    Linux(BzImage<'a>),
    Multiboot(Kernel),
}

/// Why a file is no kernel the VMM boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelError {
    /// Neither a bzImage's header nor a Multiboot header is in it.
    Unknown,
    /// A bzImage, but one the VMM refuses.
    BzImage(BzError),
    /// A bzImage that does not fit in the guest's RAM.
    BzImageTooBig { end: u64, ram_end: u64 },
    /// A Multiboot kernel the VMM refuses (or that does not fit the RAM).
    Multiboot(ImageError),
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelError::Unknown => write!(f, "not a bzImage or Multiboot kernel"),
            KernelError::BzImage(e) => write!(f, "a bzImage the VMM refuses: {e}"),
            KernelError::BzImageTooBig { end, ram_end } => {
                write!(f, "a bzImage that needs guest RAM up to {end:#x}, past the guest's {ram_end:#x}")
            }
            KernelError::Multiboot(e) => write!(f, "a Multiboot kernel the VMM refuses: {e}"),
        }
    }
}

/// Judges `file` as the kernel of a guest with RAM `[0, ram_end)`.
pub fn identify(file: &[u8], ram_end: u64) -> Result<KernelFile<'_>, KernelError> {
    if bzimage::looks_like(file) {
        let image = bzimage::parse(file).map_err(KernelError::BzImage)?;
        image
            .placement(ram_end)
            .map_err(|e| KernelError::BzImageTooBig { end: e.end, ram_end: e.ram_end })?;
        return Ok(KernelFile::Linux(image));
    }
    match multiboot::check(file, RAM_START..ram_end) {
        Ok(k) => Ok(KernelFile::Multiboot(k)),
        Err(ImageError::NoHeader) => Err(KernelError::Unknown),
        Err(e) => Err(KernelError::Multiboot(e)),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn each_format_is_told_apart() {
        let linux = crate::samples::bzimage();
        assert!(matches!(identify(&linux, 64 * MIB), Ok(KernelFile::Linux(_))));
        let mb = crate::samples::multiboot(3);
        assert!(matches!(identify(&mb, 16 * MIB), Ok(KernelFile::Multiboot(k)) if k.entry == MIB + 0x10));
        assert_eq!(identify(b"#!/bin/sh\necho not a kernel\n", 16 * MIB), Err(KernelError::Unknown));
        assert_eq!(identify(&[], 16 * MIB), Err(KernelError::Unknown));
        assert_eq!(KernelError::Unknown.to_string(), "not a bzImage or Multiboot kernel");
    }

    #[test]
    fn a_broken_one_gets_its_formats_reason() {
        let mut linux = crate::samples::bzimage();
        linux[crate::bzimage::hdr::VERSION] = 0x0A; // protocol 2.10
        assert!(matches!(identify(&linux, 64 * MIB), Err(KernelError::BzImage(_))));
        let small = identify(&crate::samples::bzimage(), MIB).unwrap_err();
        assert!(matches!(small, KernelError::BzImageTooBig { .. }), "{small}");
        let mut mb = crate::samples::multiboot(3);
        mb[0x1008] ^= 1; // the header's checksum
        assert!(matches!(
            identify(&mb, 16 * MIB),
            Err(KernelError::Multiboot(ImageError::BadChecksum { .. }))
        ));
        let tight = identify(&crate::samples::multiboot(3), MIB + 0x2000).unwrap_err();
        assert!(tight.to_string().starts_with("a Multiboot kernel the VMM refuses"), "{tight}");
    }

    proptest! {
        #[test]
        fn any_bytes_are_judged_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..12_000)) {
            let _ = identify(&bytes, 16 * MIB);
        }
    }
}
