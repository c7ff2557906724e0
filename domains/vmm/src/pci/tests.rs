//! The bus as Linux enumerates it, and hostile configuration writes.

use super::*;
use crate::virtio_pci::BAR0_SIZE;
use vq::mock::MockMemory;

fn bus(n: usize) -> Bus {
    Bus::new(&vec![Disk { sectors: 8, read_only: true }; n])
}

fn cfg(b: &mut Bus, dev: u32, offset: u32) -> u32 {
    b.port_write(CONFIG_ADDRESS, 4, ENABLE | dev << 11 | offset);
    b.port_read(CONFIG_DATA, 4)
}

fn set(b: &mut Bus, dev: u32, offset: u32, v: u32) {
    b.port_write(CONFIG_ADDRESS, 4, ENABLE | dev << 11 | offset);
    b.port_write(CONFIG_DATA, 4, v);
}

#[test]
fn enumeration_finds_the_bridge_and_the_disks() {
    let mut b = bus(2);
    // Linux's type 1 probe: the address register reads back.
    b.port_write(CONFIG_ADDRESS, 4, 0x8000_0000);
    assert_eq!(b.port_read(CONFIG_ADDRESS, 4), 0x8000_0000);
    assert_eq!(cfg(&mut b, 0, 0), 0x0008_1b36);
    assert_eq!(cfg(&mut b, 0, 8) >> 8, 0x06_0000, "a host bridge");
    assert_eq!(cfg(&mut b, 1, 0), 0x1042_1af4);
    assert_eq!(cfg(&mut b, 2, 0), 0x1042_1af4);
    assert_eq!(cfg(&mut b, 3, 0), u32::MAX, "nothing at 00:03");
    b.port_write(CONFIG_ADDRESS, 4, ENABLE | 1 << 16 | 1 << 11);
    assert_eq!(b.port_read(CONFIG_DATA, 4), u32::MAX, "bus 1");
    b.port_write(CONFIG_ADDRESS, 4, ENABLE | 1 << 11 | 1 << 8);
    assert_eq!(b.port_read(CONFIG_DATA, 4), u32::MAX, "function 1");
    b.port_write(CONFIG_ADDRESS, 4, 1 << 11);
    assert_eq!(b.port_read(CONFIG_DATA, 4), u32::MAX, "not enabled");
    // Narrow reads at each data port.
    b.port_write(CONFIG_ADDRESS, 4, ENABLE | 1 << 11);
    assert_eq!(b.port_read(CONFIG_DATA + 2, 2), 0x1042);
    assert_eq!(b.port_read(CONFIG_DATA + 1, 1), 0x1a);
    assert_eq!(b.port_read(CONFIG_ADDRESS + 1, 1), u32::MAX);
    // Firmware placed the BARs and turned decoding on.
    assert_eq!(cfg(&mut b, 2, 0x10), 0xC000_4000);
    assert_eq!(cfg(&mut b, 2, 0x14), 0xC011);
    assert_eq!(cfg(&mut b, 2, 4) & 3, 3);
    assert_eq!(b.mmio_target(0xC000_4010), Some(Target { function: 1, offset: 0x10 }));
    assert_eq!(b.io_target(0xC010), Some(Target { function: 1, offset: 0 }));
    assert_eq!(b.mmio_target(0xC000_8000), None);
}

#[test]
fn sizing_and_moving_bars() {
    let mut b = bus(1);
    let mem = MockMemory::new(0, 0x1000);
    set(&mut b, 1, 0x10, u32::MAX);
    assert_eq!(cfg(&mut b, 1, 0x10), !(BAR0_SIZE - 1), "the size");
    assert_eq!(b.mmio_target(0xFFFF_C000), None, "sizing: outside the window");
    set(&mut b, 1, 0x10, 0xD000_0000);
    assert_eq!(b.mmio_target(0xD000_0014).map(|t| t.offset), Some(0x14));
    assert_eq!(b.mmio_read(0xD000_0012, 2), 1, "num_queues through the bus");
    // Byte writes merge into the dword.
    b.port_write(CONFIG_ADDRESS, 4, ENABLE | 1 << 11 | 0x10);
    b.port_write(CONFIG_DATA + 3, 1, 0xE0);
    assert_eq!(cfg(&mut b, 1, 0x10), 0xE000_0000);
    // Decoding off: nothing there.
    set(&mut b, 1, 4, 0);
    assert_eq!(b.mmio_target(0xE000_0000), None);
    assert_eq!(b.mmio_read(0xE000_0000, 4), u64::MAX);
    assert_eq!(b.mmio_write(0xE000_0014, 1, 1, &mem).0, None);
    assert_eq!(b.notify(0xC000, 2), None);
}

#[test]
fn hostile_placements_do_not_decode() {
    let mut b = bus(2);
    let cases: [(u32, &str); 5] = [
        (0x0010_0000, "over RAM"),
        (0xBFFF_C000, "just below the window"),
        (0xFEC0_0000, "over the I/O APIC"),
        (0xFEE0_0000, "over the local APICs"),
        (0xFF00_0000, "above the window (firmware flash on a PC)"),
    ];
    for (at, why) in cases {
        set(&mut b, 1, 0x10, at);
        let base = u64::from(at & !(BAR0_SIZE - 1));
        assert_eq!(b.mmio_target(base), None, "{why}");
        assert_eq!(b.mmio_target(base + 0x2000), None, "{why}");
    }
    // Over the other function's BAR: neither decodes, until it moves away.
    set(&mut b, 1, 0x10, 0xC000_4000);
    assert_eq!(b.mmio_target(0xC000_4000), None);
    assert_eq!(b.mmio_target(0xC000_0000), None, "the other's own place is free");
    set(&mut b, 1, 0x10, 0xC100_0000);
    assert_eq!(b.mmio_target(0xC000_4000).map(|t| t.function), Some(1));
    assert_eq!(b.mmio_target(0xC100_0000).map(|t| t.function), Some(0));
    // I/O BARs: outside the window, and over each other.
    set(&mut b, 1, 0x14, 0x3F8);
    assert_eq!(b.io_target(0x3F8), None, "the UART's ports");
    set(&mut b, 1, 0x14, 0xC010);
    assert_eq!(b.io_target(0xC010), None);
    set(&mut b, 2, 0x14, 0xC020);
    assert_eq!(b.io_target(0xC010).map(|t| t.function), Some(0));
    // The host bridge takes no writes that matter.
    set(&mut b, 0, 0, 0);
    assert_eq!(cfg(&mut b, 0, 0), 0x0008_1b36);
    set(&mut b, 0, 0x10, u32::MAX);
    assert_eq!(cfg(&mut b, 0, 0x10), 0, "no BARs");
}

#[test]
fn too_many_disks_are_left_off() {
    let mut b = bus(MAX_FUNCTIONS + 2);
    assert_eq!(b.functions().len(), MAX_FUNCTIONS);
    assert_eq!(cfg(&mut b, MAX_FUNCTIONS as u32, 0), 0x1042_1af4);
    assert_eq!(cfg(&mut b, MAX_FUNCTIONS as u32 + 1, 0), u32::MAX);
}

use proptest::prelude::*;

/// One access a hostile guest makes: a configuration port, BAR 0 or the
/// notify BAR, at any offset and width, of any value.
#[derive(Clone, Debug)]
enum Access {
    Port { port: u16, size: u8, value: u32, write: bool },
    Mmio { offset: u64, size: u8, value: u64, write: bool },
}

/// The common configuration's fields: offset and width.
const FIELDS: [(u64, u8); 13] = [
    (0x00, 4),
    (0x04, 4),
    (0x08, 4),
    (0x0C, 4),
    (0x10, 2),
    (0x14, 1),
    (0x16, 2),
    (0x18, 2),
    (0x1A, 2),
    (0x1C, 2),
    (0x20, 8),
    (0x28, 8),
    (0x30, 8),
];

fn access() -> impl Strategy<Value = Access> {
    let size = prop_oneof![Just(1u8), Just(2), Just(4), Just(8), any::<u8>()];
    prop_oneof![
        (0xCF8u16..0xD00, size.clone(), any::<u32>(), any::<bool>())
            .prop_map(|(port, size, value, write)| Access::Port { port, size, value, write }),
        // The address register pointed at a register of 00:00.0-00:02.0.
        (0u32..3, 0u32..64).prop_map(|(dev, reg)| Access::Port {
            port: CONFIG_ADDRESS,
            size: 4,
            value: ENABLE | dev << 11 | reg << 2,
            write: true,
        }),
        (0u64..0x4100, size, any::<u64>(), any::<bool>())
            .prop_map(|(offset, size, value, write)| Access::Mmio { offset, size, value, write }),
        // A common-configuration field at its own width, as a driver writes it.
        (proptest::sample::select(&FIELDS[..]), any::<u64>())
            .prop_map(|((offset, size), value)| { Access::Mmio { offset, size, value, write: true } }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Random accesses to the configuration space, BAR 0 and the notify
    /// BAR: no panic; the device never shows a status the rules forbid
    /// (DEVICE_NEEDS_RESET set by the driver, FEATURES_OK with features
    /// not offered or without VERSION_1, DRIVER_OK without FEATURES_OK);
    /// a BAR decodes only inside its window; the IDs never change.
    #[test]
    fn hostile_accesses_keep_the_rules(accesses in proptest::collection::vec(access(), 1..200)) {
        use crate::virtio_pci::common::{status::*, F_VERSION_1};
        let mem = MockMemory::new(0, 0x10000);
        let mut b = bus(2);
        for a in accesses {
            match a {
                Access::Port { port, size, value, write: true } => {
                    b.port_write(port, size, value);
                }
                Access::Port { port, size, .. } => {
                    b.port_read(port, size);
                }
                Access::Mmio { offset, size, value, write } => {
                    let gpa = MMIO_WINDOW.start + offset;
                    if write {
                        b.mmio_write(gpa, size, value, &mem);
                    } else {
                        b.mmio_read(gpa, size);
                    }
                }
            }
            for f in b.functions().iter() {
                let c = f.common();
                let s = c.status();
                if s & FEATURES_OK != 0 {
                    let offered = Disk { sectors: 8, read_only: true }.features() | F_VERSION_1;
                    prop_assert_eq!(c.features() & !offered, 0);
                    prop_assert!(c.features() & F_VERSION_1 != 0);
                }
                prop_assert!(s & DRIVER_OK == 0 || s & FEATURES_OK != 0);
                prop_assert_eq!(f.config_read(0), 0x1042_1af4);
            }
            for gpa in [MMIO_WINDOW.start - 1, MMIO_WINDOW.end, 0xFEE0_0000, 0] {
                prop_assert!(b.mmio_target(gpa).is_none());
            }
        }
        prop_assert_eq!(mem.strays(), 0);
    }
}
