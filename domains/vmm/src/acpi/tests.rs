//! Host tests of the ACPI tables: checksums, lengths and pointers read
//! from the bytes, and the whole set parsed back by the `acpi` crate (the
//! parser Ryokan's own kernel uses on real firmware).

use core::ptr::NonNull;

use acpi::fadt::Fadt;
use acpi::madt::{Madt, MadtEntry};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};

use super::*;
use crate::le::{u16_at, u32_at, u64_at};

/// The bytes at guest-physical `gpa` of the blob.
fn at(t: &Tables, gpa: u64) -> &[u8] {
    &t.bytes[(gpa - ACPI_GPA) as usize..]
}

/// A table's bytes by its header's length, which must lie in the blob.
fn table(t: &Tables, gpa: u64) -> &[u8] {
    let b = at(t, gpa);
    let len = u32_at(b, 4).unwrap() as usize;
    assert!(len >= 36 && len <= b.len(), "table at {gpa:#x}: length {len}");
    &b[..len]
}

fn sum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |a, &x| a.wrapping_add(x))
}

#[test]
fn every_checksum_sums_to_zero_and_every_pointer_agrees() {
    for vcpus in [1, 2, MAX_VCPUS] {
        let t = build(vcpus).unwrap();
        let rsdp = &at(&t, t.rsdp)[..36];
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!((sum(&rsdp[..20]), sum(rsdp)), (0, 0), "both RSDP checksums");
        assert_eq!(
            (rsdp[15], u32_at(rsdp, 20), u32_at(rsdp, 16)),
            (2, Some(36), Some(0)),
            "revision 2, no RSDT"
        );
        assert_eq!(u64_at(rsdp, 24), Some(t.xsdt));
        let xsdt = table(&t, t.xsdt);
        assert_eq!((&xsdt[..4], xsdt.len()), (&b"XSDT"[..], 36 + 16));
        assert_eq!((u64_at(xsdt, 36), u64_at(xsdt, 44)), (Some(t.fadt), Some(t.madt)));
        let fadt = table(&t, t.fadt);
        assert_eq!(&fadt[..4], b"FACP");
        assert_eq!((u32_at(fadt, 40), u64_at(fadt, 140)), (Some(0), Some(t.dsdt)), "the DSDT by X_DSDT only");
        assert_eq!(&table(&t, t.dsdt)[..4], b"DSDT");
        assert_eq!(&table(&t, t.madt)[..4], b"APIC");
        let mut spans = Vec::new();
        for gpa in [t.xsdt, t.fadt, t.madt, t.dsdt] {
            let b = table(&t, gpa);
            assert_eq!(sum(b), 0, "{} checksum", core::str::from_utf8(&b[..4]).unwrap());
            assert_eq!((&b[10..16], &b[16..24]), (&OEM_ID[..], &OEM_TABLE_ID[..]));
            assert_eq!(gpa % 16, 0);
            spans.push(gpa..gpa + b.len() as u64);
        }
        spans.push(t.rsdp..t.rsdp + 36);
        spans.sort_by_key(|s| s.start);
        for w in spans.windows(2) {
            assert!(w[0].end <= w[1].start, "no two tables overlap: {w:?}");
        }
        assert_eq!(spans.last().unwrap().end, ACPI_GPA + t.bytes.len() as u64, "no trailing bytes");
        assert!(t.bytes.len() <= ACPI_ROOM && ACPI_GPA + ACPI_ROOM as u64 == 1 << 20);
        assert_eq!(t.rsdp, ACPI_GPA, "in the BIOS area a kernel scans, 16-byte aligned");
    }
}

#[test]
fn the_fadt_is_hardware_reduced_with_sleep_and_reset_registers_a_pm_timer_and_a_century() {
    let t = build(1).unwrap();
    let fadt = table(&t, t.fadt);
    let flags = u32_at(fadt, 112).unwrap();
    assert_ne!(flags & 1 << 20, 0, "HW_REDUCED_ACPI");
    assert_ne!(flags & 1 << 10, 0, "RESET_REG_SUP");
    assert_eq!(
        u16_at(fadt, 109),
        Some(1 << 2),
        "IAPC_BOOT_ARCH: no VGA; no 8042, legacy devices off, RTC present"
    );
    // Generic addresses: space 1 (I/O), 8 bits wide, offset 0, byte access.
    assert_eq!(&fadt[116..120], [1, 8, 0, 1]);
    assert_eq!((u64_at(fadt, 120), fadt[128]), (Some(0xCF9), 6), "reset register and value");
    assert_eq!((&fadt[244..248], u64_at(fadt, 248)), (&[1u8, 8, 0, 1][..], Some(0x600)), "sleep control");
    assert_eq!((&fadt[256..260], u64_at(fadt, 260)), (&[1u8, 8, 0, 1][..], Some(0x601)), "sleep status");
    assert_ne!(flags & 1 << 8, 0, "TMR_VAL_EXT: a 32-bit PM timer");
    assert_eq!((u32_at(fadt, 76), fadt[91]), (Some(0x608), 4), "PM_TMR_BLK and PM_TMR_LEN");
    assert_eq!((&fadt[208..212], u64_at(fadt, 212)), (&[1u8, 32, 0, 3][..], Some(0x608)), "X_PM_TMR_BLK");
    assert_eq!(fadt[108], 0x32, "CENTURY: the CMOS byte of the century");
    assert_eq!((fadt[8], fadt[131]), (6, 5), "FADT 6.5");
}

/// The MADT's interrupt controller structures: (type, bytes).
fn madt_entries(t: &Tables) -> Vec<(u8, Vec<u8>)> {
    let madt = table(t, t.madt);
    let mut out = Vec::new();
    let mut o = 44;
    while o < madt.len() {
        let len = madt[o + 1] as usize;
        assert!(len >= 2 && o + len <= madt.len());
        out.push((madt[o], madt[o..o + len].to_vec()));
        o += len;
    }
    out
}

#[test]
fn the_madt_has_every_vcpu_the_ioapic_and_a_pcs_overrides() {
    let t = build(3).unwrap();
    let madt = table(&t, t.madt);
    assert_eq!((u32_at(madt, 36), u32_at(madt, 40)), (Some(0xFEE0_0000), Some(0)), "no PCAT_COMPAT: no 8259");
    let entries = madt_entries(&t);
    let cpus: Vec<_> =
        entries.iter().filter(|e| e.0 == 0).map(|e| (e.1[2], e.1[3], u32_at(&e.1, 4))).collect();
    assert_eq!(cpus, [(0, 0, Some(1)), (1, 1, Some(1)), (2, 2, Some(1))], "UID, APIC ID, enabled");
    let ioapics: Vec<_> = entries.iter().filter(|e| e.0 == 1).collect();
    assert_eq!(ioapics.len(), 1);
    assert_eq!(
        (ioapics[0].1[2], u32_at(&ioapics[0].1, 4), u32_at(&ioapics[0].1, 8)),
        (16, Some(0xFEC0_0000), Some(0))
    );
    let overrides: Vec<_> = entries.iter().filter(|e| e.0 == 2).map(|e| e.1.clone()).collect();
    assert_eq!(overrides, [vec![2, 10, 0, 0, 2, 0, 0, 0, 0, 0]], "ISA IRQ 0 on GSI 2");
    let nmis: Vec<_> = entries.iter().filter(|e| e.0 == 4).map(|e| e.1.clone()).collect();
    assert_eq!(nmis, [vec![4, 6, 0xFF, 0, 0, 1]], "every processor's LINT1");
    assert_eq!(entries.len(), 3 + 3);
}

#[test]
fn apic_ids_from_255_get_x2apic_entries() {
    let mut madt = MADT::new(OEM_ID, OEM_TABLE_ID, 1, LocalInterruptController::Address(LOCAL_APIC_GPA));
    for id in [254, 255, 300] {
        add_processor(&mut madt, id);
    }
    let mut b = Vec::new();
    madt.to_aml_bytes(&mut b);
    assert_eq!(sum(&b), 0);
    assert_eq!(&b[44..52], [0, 8, 254, 254, 1, 0, 0, 0], "a Local APIC structure");
    let x2 = |id: u32| [[9u8, 16, 0, 0], id.to_le_bytes(), 1u32.to_le_bytes(), id.to_le_bytes()].concat();
    assert_eq!(&b[52..68], x2(255).as_slice());
    assert_eq!(&b[68..84], x2(300).as_slice());
}

/// The DSDT's AML after its `\_S5` (as `iasl -d` disassembles it:
/// see [`the_dsdt_names_the_soft_off_sleep_type_the_uart_and_the_clock`]).
const DSDT_SB: &[u8] = &[
    0x10, 0x47, 0x06, b'\\', b'_', b'S', b'B', b'_', // ScopeOp PkgLength (103, 2 bytes) \_SB_
    0x5B, 0x82, 0x31, b'C', b'O', b'M', b'1', // DeviceOp PkgLength COM1
    0x08, b'_', b'H', b'I', b'D', 0x0C, 0x41, 0xD0, 0x05, 0x01, // _HID EisaId ("PNP0501")
    0x08, b'_', b'U', b'I', b'D', 0x00, // _UID Zero
    0x08, b'_', b'C', b'R', b'S', 0x11, 0x16, 0x0A, 0x13, // _CRS Buffer (19)
    0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, // IO (Decode16, 0x3F8, 0x3F8, 1, 8)
    0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00,
    0x00, // Interrupt (Consumer, Edge, ActiveHigh, Exclusive) { 4 }
    0x79, 0x00, // EndTag
    0x5B, 0x82, 0x2B, b'R', b'T', b'C', b'_', // DeviceOp PkgLength RTC_
    0x08, b'_', b'H', b'I', b'D', 0x0C, 0x41, 0xD0, 0x0B, 0x00, // _HID EisaId ("PNP0B00")
    0x08, b'_', b'C', b'R', b'S', 0x11, 0x16, 0x0A, 0x13, // _CRS Buffer (19)
    0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02, // IO (Decode16, 0x70, 0x70, 1, 2)
    0x89, 0x06, 0x00, 0x03, 0x01, 0x08, 0x00, 0x00,
    0x00, // Interrupt (Consumer, Edge, ActiveHigh, Exclusive) { 8 }
    0x79, 0x00, // EndTag
];

#[test]
fn the_dsdt_names_the_soft_off_sleep_type_the_uart_and_the_clock() {
    let t = build(1).unwrap();
    let dsdt = table(&t, t.dsdt);
    assert_eq!(dsdt[8], 2, "revision 2: 64-bit AML integers");
    // NameOp "_S5_" PackageOp PkgLength(4) NumElements(1) BytePrefix 5.
    assert_eq!(&dsdt[36..46], [0x08, b'_', b'S', b'5', b'_', 0x12, 4, 1, 0x0A, 5]);
    assert_eq!(&dsdt[46..], DSDT_SB, "COM1 with its ports and IRQ 4, RTC with its ports and IRQ 8");
    assert_eq!(u32::from(DSDT_SB[53]), UART_IRQ);
    assert_eq!(u32::from(DSDT_SB[53 + 45]), RTC_IRQ);
    assert_eq!(
        usize::from(DSDT_SB[1] & 0x0F) | usize::from(DSDT_SB[2]) << 4,
        DSDT_SB.len() - 1,
        "the scope's PkgLength"
    );
}

/// What `iasl -d` (ACPICA's disassembler, when installed) reads in the
/// DSDT: each device with its resources, the ASL of [`DSDT_SB`]'s
/// comments. Without iasl the test fails and says how to install it
/// (`cargo xtask test` installs it with the other host packages).
#[test]
fn iasl_disassembles_the_dsdt_to_the_devices_named() {
    let dir = std::env::temp_dir().join(format!("ryokan-dsdt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = build(1).unwrap();
    std::fs::write(dir.join("dsdt.dat"), table(&t, t.dsdt)).unwrap();
    let out = std::process::Command::new("iasl").arg("-d").arg("dsdt.dat").current_dir(&dir).output();
    let out = out.expect("cannot run iasl: install acpica-tools (cargo xtask test does, as root)");
    assert!(out.status.success(), "iasl -d failed: {}", String::from_utf8_lossy(&out.stderr));
    let asl = std::fs::read_to_string(dir.join("dsdt.dsl")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    // Its comments dropped (`// …` to the line's end, `/* … */` within a
    // line), and its white space, as in each line looked for.
    let code = asl.lines().map(|l| {
        let l = l.split("//").next().unwrap_or("");
        match (l.find("/*"), l.find("*/")) {
            (Some(a), Some(b)) if a < b => format!("{}{}", &l[..a], &l[b + 2..]),
            _ => l.to_string(),
        }
    });
    let bare = |s: &str| s.split_whitespace().collect::<String>();
    let squeezed = bare(&code.collect::<String>());
    for want in [
        "Name (_S5, Package (0x01) { 0x05 })",
        "Scope (\\_SB) { Device (COM1) { Name (_HID, EisaId (\"PNP0501\")) Name (_UID, Zero) \
         Name (_CRS, ResourceTemplate () { IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08, ) \
         Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { 0x00000004, } }) }",
        "Device (RTC) { Name (_HID, EisaId (\"PNP0B00\")) \
         Name (_CRS, ResourceTemplate () { IO (Decode16, 0x0070, 0x0070, 0x01, 0x02, ) \
         Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { 0x00000008, } }) } }",
    ] {
        assert!(squeezed.contains(&bare(want)), "`{want}` not in iasl's disassembly:\n{asl}");
    }
}

#[test]
fn vcpu_counts_outside_the_tables_are_refused() {
    assert_eq!(build(0), Err(BadVcpus { vcpus: 0 }));
    assert_eq!(build(MAX_VCPUS + 1), Err(BadVcpus { vcpus: MAX_VCPUS + 1 }));
    assert_eq!(build(u32::MAX), Err(BadVcpus { vcpus: u32::MAX }));
}

/// Guest-physical memory for the `acpi` crate: the blob at [`ACPI_GPA`].
#[derive(Clone, Copy)]
struct Blob(&'static [u8]);

impl AcpiHandler for Blob {
    unsafe fn map_physical_region<T>(&self, pa: usize, size: usize) -> PhysicalMapping<Self, T> {
        let offset = pa.checked_sub(ACPI_GPA as usize).expect("the parser reads below the tables");
        assert!(offset + size <= self.0.len(), "the parser reads past the tables: {pa:#x}+{size:#x}");
        let ptr = NonNull::from(&self.0[offset]).cast::<T>();
        // SAFETY: `size` bytes from `ptr` lie in the blob, which lives for
        // the whole test and is never written; the tables' structures are
        // packed (alignment 1), so any address holds one.
        unsafe { PhysicalMapping::new(pa, ptr, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

#[test]
fn the_acpi_crate_reads_them_back() {
    let t = build(2).unwrap();
    let blob = Blob(Vec::leak(t.bytes.clone()));
    // SAFETY: the address is the RSDP's in the blob the handler maps.
    let tables = unsafe { AcpiTables::from_rsdp(blob, t.rsdp as usize) }.expect("RSDP and XSDT valid");
    let fadt = tables.find_table::<Fadt>().expect("FADT found and its checksum valid");
    assert!({ fadt.get().flags }.system_is_hw_reduced_acpi());
    assert_eq!(fadt.get().dsdt_address().ok(), Some(t.dsdt as usize));
    assert!({ fadt.get().flags }.supports_system_reset_via_fadt());
    let control = fadt.get().sleep_control_register().expect("valid").expect("present");
    assert_eq!(control.address, 0x600);
    let dsdt = tables.dsdt().expect("DSDT found");
    assert_eq!((dsdt.address, dsdt.length), (t.dsdt as usize + 36, 10 + DSDT_SB.len() as u32));
    let madt = tables.find_table::<Madt>().expect("MADT found and its checksum valid");
    assert!(!madt.get().supports_8259());
    let (mut cpus, mut ioapics, mut overrides, mut nmis) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for entry in madt.get().entries() {
        match entry {
            MadtEntry::LocalApic(e) => cpus.push((e.processor_id, e.apic_id, { e.flags })),
            MadtEntry::IoApic(e) => {
                ioapics.push((e.io_apic_id, { e.io_apic_address }, { e.global_system_interrupt_base }))
            }
            MadtEntry::InterruptSourceOverride(e) => {
                overrides.push((e.bus, e.irq, { e.global_system_interrupt }, { e.flags }))
            }
            MadtEntry::LocalApicNmi(e) => {
                assert_eq!((e.processor_id, e.nmi_line), (0xFF, 1));
                nmis += 1;
            }
            _ => panic!("an unexpected MADT entry"),
        }
    }
    assert_eq!(cpus, [(0, 0, 1), (1, 1, 1)]);
    assert_eq!(ioapics, [(16, 0xFEC0_0000, 0)]);
    assert_eq!(overrides, [(0, 0, 2, 0)]);
    assert_eq!(nmis, 1);
}

/// The DSDT of a guest with a PCI bus: the same as without, and then the
/// host bridge with its resources, as `iasl -d` reads it.
#[test]
fn with_pci_the_dsdt_names_the_host_bridge_and_its_windows() {
    let (plain, pci) = (build(1).unwrap(), with_pci(1).unwrap());
    let (a, b) = (table(&plain, plain.dsdt), table(&pci, pci.dsdt));
    assert_eq!(&b[36..a.len()], &a[36..], "the devices without PCI come first, unchanged");
    let sb = &b[a.len()..];
    assert_eq!((sb[0], &sb[3..8]), (0x10, &b"\\_SB_"[..]), "ScopeOp \\_SB_ again");
    assert_eq!(usize::from(sb[1] & 0x0F) | usize::from(sb[2]) << 4, sb.len() - 1, "its PkgLength (2 bytes)");
    let dir = std::env::temp_dir().join(format!("ryokan-dsdt-pci-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dsdt.dat"), b).unwrap();
    let out = std::process::Command::new("iasl").arg("-d").arg("dsdt.dat").current_dir(&dir).output();
    let out = out.expect("cannot run iasl: install acpica-tools (cargo xtask test does, as root)");
    assert!(out.status.success(), "iasl -d failed: {}", String::from_utf8_lossy(&out.stderr));
    let asl = std::fs::read_to_string(dir.join("dsdt.dsl")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let bare = |s: &str| s.split_whitespace().collect::<String>();
    // Comments dropped as in the test above.
    let code: String = asl
        .lines()
        .map(|l| {
            let l = l.split("//").next().unwrap_or("");
            match (l.find("/*"), l.find("*/")) {
                (Some(a), Some(b)) if a < b => format!("{}{}", &l[..a], &l[b + 2..]),
                _ => l.to_string(),
            }
        })
        .collect();
    let squeezed = bare(&code);
    for want in [
        "Device (PCI0) { Name (_HID, EisaId (\"PNP0A08\")) Name (_CID, EisaId (\"PNP0A03\")) \
         Name (_SEG, Zero) Name (_BBN, Zero) Name (_UID, Zero)",
        "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0x0000, 0x0000, 0x0000, 0x0000, 0x0001,",
        "IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08, )",
        "WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0x0000, 0xC000, 0xFFFF, 0x0000, 0x4000,",
        "DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0x00000000, \
         0xC0000000, 0xFEBFFFFF, 0x00000000, 0x3EC00000,",
    ] {
        assert!(squeezed.contains(&bare(want)), "`{want}` not in iasl's disassembly:\n{asl}");
    }
}
