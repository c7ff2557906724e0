//! Host tests of the bzImage rules, on small images made here that have
//! the shape of Debian's (protocol 2.15, relocatable, 64-bit, signed), and
//! their hostile twins: every malformed header gets its error, no input
//! panics.

use proptest::prelude::*;

use super::*;
use crate::le::{put16, put32, put64};

pub(crate) use crate::samples::bzimage as image;
use crate::samples::{BZ_KERNEL as KERNEL, BZ_SETUP as SETUP};

const MIB: u64 = 1 << 20;

#[test]
fn a_bookworm_like_image_is_accepted() {
    let f = image();
    let k = parse(&f).expect("accepted");
    assert_eq!((k.version, k.setup_size, k.header_end), (0x020F, SETUP, 0x26C));
    assert!(k.relocatable);
    assert_eq!((k.kernel_alignment, k.pref_address, k.init_size), (0x20_0000, 0x100_0000, 0x30_0000));
    assert_eq!((k.cmdline_size, k.initrd_addr_max, k.xloadflags), (2047, 0x7FFF_FFFF, 0x7F));
    assert_eq!(k.kernel().len(), KERNEL, "syssize, not the signature after it");
    assert_eq!(k.kernel()[0x200], 0x64);
    assert_eq!(k.setup_header(), &f[0x1F1..0x26C]);
    assert_eq!(k.version_string(), Ok(Some("6.1.0-test")));
    assert!(looks_like(&f));
}

#[test]
fn a_relocatable_kernel_goes_to_its_aligned_preferred_address() {
    let k = parse(&image()).unwrap().placement(64 * MIB).unwrap();
    assert_eq!((k.load, k.entry32, k.entry64), (16 * MIB, 16 * MIB, 16 * MIB + 0x200));
    assert_eq!(k.loaded, 16 * MIB..16 * MIB + KERNEL as u64);
    assert_eq!(k.runtime, 16 * MIB..19 * MIB);

    let mut f = image();
    put64(&mut f, hdr::PREF_ADDRESS, 0x130_0000);
    let k = parse(&f).unwrap().placement(64 * MIB).unwrap();
    assert_eq!(k.load, 20 * MIB, "rounded up to kernel_alignment");
    put64(&mut f, hdr::PREF_ADDRESS, 0x1000);
    let k = parse(&f).unwrap().placement(64 * MIB).unwrap();
    assert_eq!(k.load, 2 * MIB, "never below 1 MiB, then aligned");
}

#[test]
fn a_fixed_kernel_loads_at_1_mib_and_runs_at_its_preferred_address() {
    let mut f = image();
    f[hdr::RELOCATABLE_KERNEL] = 0;
    put32(&mut f, hdr::KERNEL_ALIGNMENT, 3); // ignored when fixed
    let k = parse(&f).unwrap().placement(64 * MIB).unwrap();
    assert_eq!((k.load, k.entry64), (MIB, MIB + 0x200));
    assert_eq!(k.loaded, MIB..MIB + KERNEL as u64);
    assert_eq!(k.runtime, 16 * MIB..19 * MIB);
    put64(&mut f, hdr::PREF_ADDRESS, 0xF_F000);
    assert_eq!(parse(&f), Err(BzError::PrefAddressLow { pref_address: 0xF_F000 }));
}

#[test]
fn a_kernel_must_fit_in_ram() {
    let f = image();
    let k = parse(&f).unwrap();
    assert!(k.placement(19 * MIB).is_ok(), "exactly");
    assert_eq!(
        k.placement(19 * MIB - 1),
        Err(KernelTooBig { start: 16 * MIB, end: 19 * MIB, ram_end: 19 * MIB - 1 })
    );
    assert!(k.placement(8 * MIB).is_err());
    let mut f = image();
    put64(&mut f, hdr::PREF_ADDRESS, u64::MAX - 0x1000);
    assert!(parse(&f).unwrap().placement(u64::MAX).is_err(), "no overflow");
}

#[test]
fn an_older_protocol_needs_only_its_own_fields() {
    let mut f = image();
    put16(&mut f, hdr::VERSION, 0x020C);
    f[hdr::JUMP + 1] = (hdr::END_2_12 - hdr::HEADER) as u8;
    put32(&mut f, hdr::KERNEL_INFO_OFFSET, 0xFFFF_FFFF); // not a 2.12 field
    let k = parse(&f).expect("2.12 is enough");
    assert_eq!(k.setup_header().len(), 0x268 - 0x1F1);
    put16(&mut f, hdr::VERSION, 0x020B);
    assert_eq!(parse(&f), Err(BzError::OldProtocol { version: 0x020B }));
}

#[test]
fn setup_sects_zero_means_four() {
    let mut f = image();
    f[hdr::SETUP_SECTS] = 0;
    f.insert(SETUP, 0xCC); // the kernel one sector later: 512 bytes more setup code
    f.splice(SETUP..SETUP, [0xCC; 511]);
    let k = parse(&f).unwrap();
    assert_eq!(k.setup_size, 5 * 512);
    assert_eq!(k.kernel(), &f[5 * 512..5 * 512 + KERNEL]);
}

/// `image()` with `edit` applied.
fn with(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut f = image();
    edit(&mut f);
    f
}

#[test]
fn hostile_headers_are_refused_with_their_reason() {
    let cases: Vec<(Vec<u8>, BzError)> = vec![
        (vec![0; 0x100], BzError::TooShort { len: 0x100 }),
        (with(|f| put16(f, hdr::BOOT_FLAG, 0x55AA)), BzError::NoBootFlag { found: 0x55AA }),
        (with(|f| f[hdr::HEADER] = b'h'), BzError::NoHeader),
        (with(|f| put16(f, hdr::VERSION, 0x0100)), BzError::OldProtocol { version: 0x0100 }),
        (
            with(|f| f[hdr::JUMP + 1] = 0x60),
            BzError::BadHeaderEnd { end: 0x262, setup_size: SETUP, needed: 0x26C },
        ),
        (
            with(|f| f[hdr::SETUP_SECTS] = 200),
            BzError::KernelOutsideFile { start: 201 * 512, len: KERNEL as u64, file: SETUP + KERNEL + 64 },
        ),
        (
            with(|f| put32(f, hdr::SYSSIZE, 0x1000_0000)),
            BzError::KernelOutsideFile { start: SETUP, len: 0x1_0000_0000, file: SETUP + KERNEL + 64 },
        ),
        (
            with(|f| put32(f, hdr::SYSSIZE, 0)),
            BzError::KernelOutsideFile { start: SETUP, len: 0, file: SETUP + KERNEL + 64 },
        ),
        (
            with(|f| f.truncate(SETUP + KERNEL - 1)),
            BzError::KernelOutsideFile { start: SETUP, len: KERNEL as u64, file: SETUP + KERNEL - 1 },
        ),
        (with(|f| f[hdr::LOADFLAGS] = 0x80), BzError::NotLoadedHigh { loadflags: 0x80 }),
        (with(|f| put16(f, hdr::XLOADFLAGS, 0x7E)), BzError::Not64Bit { xloadflags: 0x7E }),
        (
            with(|f| put32(f, hdr::KERNEL_ALIGNMENT, 0x30_0000)),
            BzError::BadAlignment { alignment: 0x30_0000 },
        ),
        (with(|f| put32(f, hdr::KERNEL_ALIGNMENT, 0)), BzError::BadAlignment { alignment: 0 }),
        (
            with(|f| put32(f, hdr::INIT_SIZE, 0xFFF)),
            BzError::InitSizeTooSmall { init_size: 0xFFF, kernel: KERNEL },
        ),
        (
            with(|f| put32(f, hdr::PAYLOAD_LENGTH, 0xF01)),
            BzError::FieldOutside {
                field: "payload_offset/payload_length",
                offset: 0x100,
                len: 0xF01,
                within: KERNEL,
            },
        ),
        (
            with(|f| put32(f, hdr::PAYLOAD_OFFSET, 0xFFFF_FFFF)),
            BzError::FieldOutside {
                field: "payload_offset/payload_length",
                offset: 0xFFFF_FFFF,
                len: 0x600,
                within: KERNEL,
            },
        ),
        (
            with(|f| put16(f, hdr::KERNEL_VERSION, 0x700)),
            BzError::FieldOutside { field: "kernel_version", offset: 0x900, len: 1, within: SETUP },
        ),
        (
            with(|f| f[0x400..SETUP].fill(b'x')),
            BzError::FieldOutside {
                field: "kernel_version (no NUL)",
                offset: 0x400,
                len: VERSION_STRING_MAX as u64,
                within: SETUP,
            },
        ),
        (
            with(|f| put32(f, hdr::KERNEL_INFO_OFFSET, 0xFF9)),
            BzError::FieldOutside { field: "kernel_info_offset", offset: 0xFF9, len: 8, within: KERNEL },
        ),
        (with(|f| f[SETUP + 0x800] = b'l'), BzError::BadKernelInfo),
        (
            with(|f| put32(f, SETUP + 0x804, 0x801)),
            BzError::FieldOutside { field: "kernel_info's size", offset: 0x800, len: 0x801, within: KERNEL },
        ),
    ];
    for (i, (file, want)) in cases.iter().enumerate() {
        assert_eq!(parse(file).as_ref().err(), Some(want), "case {i}");
        // Every reason reads as a sentence naming what is wrong.
        assert!(!want.to_string().is_empty());
    }
    assert!(!looks_like(&cases[1].0) && !looks_like(&cases[2].0) && !looks_like(&[]));
}

#[test]
fn a_version_string_that_is_not_utf8_is_no_version() {
    let f = with(|f| f[0x400] = 0xFF);
    assert_eq!(parse(&f).unwrap().version_string(), Ok(None));
    let f = with(|f| put16(f, hdr::KERNEL_VERSION, 0));
    assert_eq!(parse(&f).unwrap().version_string(), Ok(None));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any bytes: an answer, never a panic.
    #[test]
    fn any_bytes_are_answered(file in proptest::collection::vec(any::<u8>(), 0..0x1400)) {
        if let Ok(k) = parse(&file) {
            let _ = (k.kernel(), k.setup_header(), k.version_string(), k.placement(u64::MAX));
        }
    }

    /// A good image with any header bytes overwritten: an answer, never a
    /// panic, and what is accepted lies inside the file.
    #[test]
    fn mangled_headers_are_answered(
        edits in proptest::collection::vec((0x1F1usize..0x270, any::<u8>()), 1..12),
        ram_end in any::<u64>(),
    ) {
        let mut f = image();
        for (at, v) in edits {
            f[at] = v;
        }
        if let Ok(k) = parse(&f) {
            prop_assert!(k.setup_size + k.kernel().len() <= f.len());
            prop_assert!(k.header_end <= k.setup_size);
            if let Ok(p) = k.placement(ram_end) {
                prop_assert!(p.loaded.end <= ram_end && p.runtime.end <= ram_end);
                prop_assert!(p.load >= HIGH_LOAD);
            }
        }
    }
}
