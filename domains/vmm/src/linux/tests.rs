use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind, Register};

use super::*;
use crate::bzimage;
use crate::zeropage::bp;

const MIB: u64 = 1 << 20;

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

#[test]
fn the_stub_hands_the_zero_page_over_as_the_boot_protocol_asks() {
    let code = stub(0x100_0000);
    let mut decoder = Decoder::with_ip(32, &code, STUB_GPA, DecoderOptions::NONE);
    let mut said = Vec::new();
    while decoder.can_decode() {
        let i = decoder.decode();
        assert!(!i.is_invalid(), "{said:?}");
        let second = match i.op_count() {
            2 if i.op1_kind() == OpKind::Register => format!("{:?}", i.op1_register()),
            2 => format!("{:#x}", i.immediate32()),
            _ => String::new(),
        };
        said.push(format!("{:?} {:?} {second}", i.mnemonic(), i.op0_register()));
    }
    let want = [
        (Mnemonic::Mov, Register::ESI, "EBX"),
        (Mnemonic::Xor, Register::EBX, "EBX"),
        (Mnemonic::Xor, Register::EBP, "EBP"),
        (Mnemonic::Xor, Register::EDI, "EDI"),
        (Mnemonic::Mov, Register::EAX, "0x1000000"),
        (Mnemonic::Jmp, Register::EAX, ""),
    ];
    let want: Vec<String> = want.iter().map(|(m, r, s)| format!("{m:?} {r:?} {s}")).collect();
    assert_eq!(said, want);
}

#[test]
fn the_tsc_rate_is_told_once() {
    assert_eq!(command_line("console=ttyS0", 2_500_000).unwrap(), "console=ttyS0 tsc_early_khz=2500000");
    assert_eq!(command_line("", 7).unwrap(), "tsc_early_khz=7");
    assert_eq!(command_line("tsc_early_khz=5 quiet", 7).unwrap(), "tsc_early_khz=5 quiet", "the user's");
    assert_eq!(command_line(&"x".repeat(CMDLINE_ROOM - 5), 7), Err(LinuxError::CmdlineTooLong));
    assert_eq!(command_line(&"x".repeat(CMDLINE_ROOM + 1), 7), Err(LinuxError::CmdlineTooLong));
}

#[test]
fn a_sample_kernel_is_planned_with_its_initrd_tables_and_zero_page() {
    let file = crate::samples::bzimage();
    let image = bzimage::parse(&file).unwrap();
    let boot = plan(&image, 64 * MIB, 2, "console=ttyS0", Some(0x1234), 1_000_000).unwrap();
    assert_eq!((boot.entry, boot.arg), (STUB_GPA, ZERO_PAGE_GPA));
    assert_eq!(boot.placement.load, 16 * MIB);
    assert_eq!(&boot.stub[9..13], &(16 * MIB as u32).to_le_bytes());
    let initrd = boot.initrd.clone().unwrap();
    assert_eq!(initrd.end - initrd.start, 0x1234);
    assert!(initrd.end <= 64 * MIB && initrd.start >= boot.placement.runtime.end);
    let z = &boot.zero_page;
    assert_eq!((u32_at(z, 0x218), u32_at(z, 0x21C)), (initrd.start as u32, 0x1234));
    assert_eq!(u32_at(z, 0x228), CMDLINE_GPA as u32);
    assert_eq!(u32_at(z, 0x214), 16 * MIB as u32, "code32_start");
    assert_eq!(u64::from_le_bytes(z[bp::ACPI_RSDP_ADDR..][..8].try_into().unwrap()), boot.tables.rsdp);
    assert_eq!(z[bp::E820_ENTRIES], 3);
    assert_eq!(boot.cmdline, "console=ttyS0 tsc_early_khz=1000000");
    // Nothing the VMM writes below 1 MiB overlaps.
    let low = [
        (STUB_GPA, STUB_LEN as u64),
        (ZERO_PAGE_GPA, PAGE),
        (CMDLINE_GPA, CMDLINE_ROOM as u64),
        (acpi::ACPI_GPA, boot.tables.bytes.len() as u64),
    ];
    for (i, a) in low.iter().enumerate() {
        assert!(a.0 + a.1 <= MIB);
        for b in &low[i + 1..] {
            assert!(a.0 + a.1 <= b.0 || b.0 + b.1 <= a.0, "{a:x?} {b:x?}");
        }
    }
    let without = plan(&image, 64 * MIB, 1, "", None, 1).unwrap();
    // A guest with disks: its DSDT has the PCI root, the rest as without.
    let pci = plan_on(&image, 64 * MIB, (1, true), "", None, 1).unwrap();
    assert_eq!(pci.tables.bytes, crate::acpi::with_pci(1).unwrap().bytes);
    assert_ne!(pci.tables.bytes, without.tables.bytes);
    assert_eq!((pci.zero_page.len(), pci.entry), (without.zero_page.len(), without.entry));
    assert_eq!((without.initrd, u32_at(&without.zero_page, 0x218)), (None, 0));
}

#[test]
fn what_does_not_fit_is_refused_with_its_reason() {
    let file = crate::samples::bzimage();
    let image = bzimage::parse(&file).unwrap();
    assert!(matches!(plan(&image, 8 * MIB, 1, "", None, 1), Err(LinuxError::KernelTooBig { .. })));
    let big = plan(&image, 64 * MIB, 1, "", Some(60 * MIB), 1).err().unwrap();
    assert!(matches!(big, LinuxError::Initrd(InitrdError::NoRoom { .. })), "{big}");
    assert!(matches!(plan(&image, 64 * MIB, 1, "", Some(0), 1), Err(LinuxError::Initrd(InitrdError::Empty))));
    assert!(matches!(plan(&image, 64 * MIB, 0, "", None, 1), Err(LinuxError::Acpi(_))));
    let long = "x".repeat(3000);
    let e = plan(&image, 64 * MIB, 1, &long, None, 1).err().unwrap();
    assert!(matches!(e, LinuxError::ZeroPage(ZeroPageError::CmdlineTooLong { .. })), "{e}");
    assert!(e.to_string().contains("more than the kernel takes"), "{e}");
}
