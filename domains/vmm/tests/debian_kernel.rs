//! The Linux boot pieces on the real thing: Debian bookworm's cloud kernel
//! and the initramfs `cargo xtask linux-payload` builds. `cargo xtask
//! test` fetches them (or finds them cached) and runs this test with their
//! paths in `RYOKAN_LINUX_KERNEL` and `RYOKAN_LINUX_INITRD` (the names
//! are `build/src/linux.rs`'s); a plain `cargo test` has no kernel and
//! lists it as ignored. Run by hand, it fails loudly when a path is
//! missing: `cargo xtask linux-payload` prints them.

use std::path::PathBuf;

use vmm::zeropage::{bp, BootInfo, CMDLINE_GPA};
use vmm::{acpi, bzimage, initrd, zeropage};

const MIB: u64 = 1 << 20;
/// A guest as issue 11's tests boot it: 512 MiB, 2 vCPUs.
const RAM_END: u64 = 512 * MIB;

fn payload_file(var: &str) -> Vec<u8> {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!("{var} is not set: run this test through `cargo xtask test`, or set it to what `cargo xtask linux-payload` prints")
    });
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{var}={} was provided but cannot be read: {e}", path.display()))
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

#[test]
#[ignore = "needs Debian's kernel: `cargo xtask test` fetches it and runs this test"]
fn debian_bookworms_cloud_kernel_is_parsed_placed_and_given_its_zero_page() {
    let file = payload_file("RYOKAN_LINUX_KERNEL");
    let initrd_file = payload_file("RYOKAN_LINUX_INITRD");

    let image = bzimage::parse(&file).unwrap_or_else(|e| panic!("Debian's vmlinuz refused: {e}"));
    // What `cargo xtask build` and the VMM make of the file (vmm::kernel).
    assert!(matches!(vmm::kernel::identify(&file, RAM_END), Ok(vmm::kernel::KernelFile::Linux(_))));
    assert_eq!(image.version, 0x020F, "boot protocol 2.15");
    assert!(image.relocatable);
    assert_ne!(image.xloadflags & bzimage::XLF_KERNEL_64, 0);
    assert_eq!((image.kernel_alignment, image.pref_address), (2 * MIB, 16 * MIB));
    assert_eq!((image.cmdline_size, image.initrd_addr_max), (2047, 0x7FFF_FFFF));
    let kernel = image.kernel();
    assert!(
        kernel.len() > 4 * MIB as usize && image.setup_size + kernel.len() <= file.len(),
        "{}",
        kernel.len()
    );
    assert!(
        image.init_size >= kernel.len() as u64 && image.init_size < 256 * MIB,
        "init_size {:#x}",
        image.init_size
    );
    let version = image.version_string().unwrap().expect("a version string");
    assert!(version.starts_with("6.1.0-") && version.contains("-cloud-amd64 "), "{version}");

    let placement = image.placement(RAM_END).expect("fits in 512 MiB");
    assert_eq!(
        (placement.load, placement.entry32, placement.entry64),
        (16 * MIB, 16 * MIB, 16 * MIB + 0x200)
    );
    assert_eq!(placement.runtime, 16 * MIB..16 * MIB + image.init_size);
    // startup_32 at the load address and startup_64 at +0x200 both open
    // with `cld; cli` (arch/x86/boot/compressed/head_64.S).
    assert_eq!((&kernel[..2], &kernel[0x200..0x202]), (&[0xFC, 0xFA][..], &[0xFC, 0xFA][..]));

    assert_eq!(&initrd_file[..2], [0x1F, 0x8B], "a gzip initramfs");
    let size = initrd_file.len() as u64;
    let at = initrd::place(size, image.initrd_addr_max, RAM_END, &placement).expect("the initrd fits");
    assert_eq!(at.end, (RAM_END - size) / 4096 * 4096 + size, "as high as it fits");
    assert!(at.start >= placement.runtime.end);

    let tables = acpi::build(2).unwrap();
    let mut page = [0u8; 4096];
    let cmdline = "console=ttyS0 panic=-1 ryokan.test";
    let info = BootInfo { ram_end: RAM_END, cmdline, initrd: Some(at.clone()), rsdp: tables.rsdp };
    let written = zeropage::build(&mut page, &image, &placement, &info).expect("a zero page");
    assert_eq!(written, cmdline.as_bytes());
    // The image's own fields, copied as they are (offset, length).
    use bzimage::hdr;
    for (o, len) in [
        (hdr::SETUP_SECTS, 1),
        (hdr::SYSSIZE, 4),
        (hdr::BOOT_FLAG, 2),
        (hdr::HEADER, 6),
        (hdr::INITRD_ADDR_MAX, 0x0C),
        (hdr::CMDLINE_SIZE, 4),
        (hdr::PAYLOAD_OFFSET, 8),
        (hdr::PREF_ADDRESS, 0x14),
    ] {
        assert_eq!(page[o..o + len], file[o..o + len], "the field at {o:#x}");
    }
    assert_eq!(page[0x210], 0xFF, "type_of_loader");
    assert_eq!(
        (u32_at(&page, 0x218), u32_at(&page, 0x21C)),
        (at.start as u32, size as u32),
        "ramdisk_image/size"
    );
    assert_eq!(u32_at(&page, 0x228), CMDLINE_GPA as u32);
    assert_eq!(u32_at(&page, 0x214), 16 << 20, "code32_start");
    assert_eq!(u64::from_le_bytes(page[bp::ACPI_RSDP_ADDR..][..8].try_into().unwrap()), acpi::ACPI_GPA);
    assert_eq!(page[bp::E820_ENTRIES], 3);
}
