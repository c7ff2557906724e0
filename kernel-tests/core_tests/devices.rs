//! Device objects through the real entry: a function has one holder, its
//! configuration space is reached only through a Device capability, and
//! only where it is the holder's; its bus mastering ends with its holder.

use ipc::syscall::{Call, UserAddr, UserBuf, Width};
use ipc::{Error, ObjectType, Rights};

use super::sim::{run, Child, Sim};
use crate::hw::fake::{Event, BAR0, BAR2, BAR_BYTES, PCI_BRIDGE, PCI_FUNCTION, PCI_OTHER};
use crate::mem::paging::MapFlags;

const RAM: usize = 8192;

fn config(s: &Sim, f: u16, offset: usize, len: usize) -> Vec<u8> {
    s.m(|m| m.pci[&f][offset..offset + len].to_vec())
}

#[test]
fn a_function_is_made_once_and_only_where_one_answers() {
    run(2, RAM, |s| {
        let (r, pci, me) = (s.root_thread, s.caps.pci, s.caps.me);
        let make =
            |s: &mut Sim, function| s.call(r, Call::DeviceCreate { pci, domain: me, function, dma: false });
        make(s, PCI_FUNCTION).slot();
        assert_eq!(make(s, PCI_FUNCTION).err(), Error::Busy, "a second holder");
        assert_eq!(make(s, 0x30).err(), Error::NotSupported, "nothing answers there");
        assert_eq!(make(s, PCI_BRIDGE).err(), Error::NotSupported, "a bridge");
        let dev = make(s, PCI_OTHER).slot();
        let from_a_function = Call::DeviceCreate { pci: dev, domain: me, function: 0x38, dma: false };
        assert_eq!(
            s.call(r, from_a_function).err(),
            Error::InsufficientRights,
            "only the segment makes them"
        );
        let segment_read = Call::DeviceConfigRead { dev: pci, width: Width::Word, offset: 0 };
        assert_eq!(s.call(r, segment_read).err(), Error::InsufficientRights, "the segment is no function");
    });
}

#[test]
fn without_the_capability_nothing_of_the_function_is_reached() {
    run(2, RAM, |s| {
        let (r, pci) = (s.root_thread, s.caps.pci);
        let holder = s.child(256, Some(1));
        let other = s.child(256, Some(1));
        let dev =
            s.call(r, Call::DeviceCreate { pci, domain: holder.slot, function: PCI_FUNCTION, dma: false });
        let dev = dev.slot();
        let rw = Rights::READ | Rights::WRITE;
        let mine = s.call(r, Call::CapGrant { domain: holder.slot, slot: dev, rights: rw }).slot();
        let read = |dev| Call::DeviceConfigRead { dev, width: Width::Dword, offset: 0 };
        assert_eq!(s.call(holder.thread, read(mine)).ok()[0], 0x1042_1af4);
        // The other domain names every slot the holder's device has, and
        // its own capabilities of other kinds: none is the device.
        for slot in [mine, other.me, other.console, dev] {
            let e = s.call(other.thread, read(slot)).err();
            assert!(matches!(e, Error::InvalidCapability | Error::WrongType), "{slot:?}: {e:?}");
            let w = Call::DeviceConfigWrite { dev: slot, width: Width::Byte, offset: 0x3c, value: 5 };
            let e = s.call(other.thread, w).err();
            assert!(matches!(e, Error::InvalidCapability | Error::WrongType), "{slot:?}: {e:?}");
        }
        // Nor may it make one of its own: it holds no segment.
        let e = s.call(
            other.thread,
            Call::DeviceCreate { pci, domain: other.me, function: PCI_OTHER, dma: false },
        );
        assert!(matches!(e.err(), Error::InvalidCapability | Error::WrongType));
        assert_eq!(config(s, PCI_FUNCTION, 0x3c, 1), [0], "nothing was written");
        // A holder with READ alone reads and cannot write.
        let ro = s.call(r, Call::CapGrant { domain: other.slot, slot: dev, rights: Rights::READ }).slot();
        s.call(other.thread, read(ro)).ok();
        let w = Call::DeviceConfigWrite { dev: ro, width: Width::Byte, offset: 0x3c, value: 5 };
        assert_eq!(s.call(other.thread, w).err(), Error::InsufficientRights);
    });
}

#[test]
fn the_kernels_registers_are_refused_and_left_as_they_were() {
    run(2, RAM, |s| {
        let (r, pci, me) = (s.root_thread, s.caps.pci, s.caps.me);
        let dev =
            s.call(r, Call::DeviceCreate { pci, domain: me, function: PCI_FUNCTION, dma: false }).slot();
        let write = |s: &mut Sim, width, offset, value| {
            s.call(r, Call::DeviceConfigWrite { dev, width, offset, value })
        };
        // A BAR moved over the kernel's memory (at 1 MiB), the ROM, MSI-X
        // turned on to any vector, the capability list relinked.
        let bar = config(s, PCI_FUNCTION, 0x10, 4);
        assert_eq!(write(s, Width::Dword, 0x10, 0x0010_0000).err(), Error::InsufficientRights);
        assert_eq!(write(s, Width::Dword, 0x30, 0x0010_0001).err(), Error::InsufficientRights);
        assert_eq!(write(s, Width::Word, 0x52, 0x8000).err(), Error::InsufficientRights);
        assert_eq!(write(s, Width::Byte, 0x41, 0x50).err(), Error::InsufficientRights);
        assert_eq!(write(s, Width::Dword, 0x104, 1).err(), Error::InsufficientRights);
        assert_eq!(config(s, PCI_FUNCTION, 0x10, 4), bar, "the BAR stays where it was");
        assert_eq!(config(s, PCI_FUNCTION, 0x52, 2), [3, 0], "MSI-X stays off");
        assert_eq!(config(s, PCI_FUNCTION, 0x41, 1), [0x50]);
        // Its own registers: memory decoding on (bus mastering refused
        // without `dma`: written 0), the interrupt line, virtio's capability.
        write(s, Width::Word, 0x04, 0x0006).ok();
        assert_eq!(config(s, PCI_FUNCTION, 0x04, 2), [0x02, 0]);
        write(s, Width::Byte, 0x3c, 11).ok();
        write(s, Width::Dword, 0x44, 0xdead_beef).ok();
        assert_eq!(config(s, PCI_FUNCTION, 0x44, 4), 0xdead_beefu32.to_le_bytes());
    });
}

#[test]
fn bus_mastering_ends_with_its_holder() {
    run(2, RAM, |s| {
        let (r, pci) = (s.root_thread, s.caps.pci);
        let c = s.child(256, Some(1));
        let dev =
            s.call(r, Call::DeviceCreate { pci, domain: c.slot, function: PCI_FUNCTION, dma: true }).slot();
        s.call(r, Call::DeviceConfigWrite { dev, width: Width::Word, offset: 0x04, value: 0x0006 }).ok();
        assert_eq!(config(s, PCI_FUNCTION, 0x04, 2), [0x06, 0], "DMA allowed: bus mastering on");
        s.call(r, Call::DomainDestroy { domain: c.slot }).ok();
        assert_eq!(config(s, PCI_FUNCTION, 0x04, 2), [0x02, 0], "its holder gone, its DMA stopped");
        assert_eq!(
            s.call(r, Call::DeviceConfigRead { dev, width: Width::Word, offset: 0 }).err(),
            Error::StaleCapability
        );
        // The function is free again: a new holder may have it.
        let me = s.caps.me;
        s.call(r, Call::DeviceCreate { pci, domain: me, function: PCI_FUNCTION, dma: false }).slot();
    });
}

/// A child holding `function` as its owner (READ and WRITE, as `mgmt`
/// grants it); returns it and its slot for the device.
fn holder(s: &mut Sim, function: u16) -> (Child, ipc::CapSlot) {
    let (r, pci) = (s.root_thread, s.caps.pci);
    let c = s.child(256, Some(1));
    let dev = s.call(r, Call::DeviceCreate { pci, domain: c.slot, function, dma: false }).slot();
    let mine = s.call(r, Call::CapGrant { domain: c.slot, slot: dev, rights: Rights::READ | Rights::WRITE });
    (c, mine.slot())
}

fn at(va: u64) -> UserAddr {
    UserAddr::page(va).expect("a page")
}

fn lookup(s: &Sim, c: &Child, va: u64) -> Option<(u64, MapFlags)> {
    let root = s.k().domains.get(c.domain).expect("living").root;
    crate::hw::fake::space::lookup(false, root, va).map(|(pa, f)| (pa.as_u64(), f))
}

#[test]
fn the_bars_are_sized_and_put_back() {
    run(2, RAM, |s| {
        let before = config(s, PCI_FUNCTION, 0x10, 24);
        holder(s, PCI_FUNCTION);
        assert_eq!(config(s, PCI_FUNCTION, 0x10, 24), before, "every BAR where the firmware put it");
        assert_eq!(config(s, PCI_FUNCTION, 0x04, 2), [0, 0], "decoding as it was (off)");
        let k = s.k();
        let dev = k.devices.iter().find(|(_, d)| d.function == Some(PCI_FUNCTION)).map(|(_, d)| d.bars);
        let bars = dev.expect("the device");
        use crate::obj::device::Bar;
        assert_eq!(bars[0], Bar { base: BAR0, size: BAR_BYTES, io: false });
        assert_eq!(bars[1], Bar { base: 0xc040, size: 0x40, io: true });
        assert_eq!(bars[2], Bar { base: BAR2, size: BAR_BYTES, io: false });
        assert_eq!(bars[3..], [Bar::default(); 3], "the high half of 64 bits is no BAR; 4 and 5 are none");
    });
}

#[test]
fn the_holder_maps_its_bars_uncached_but_for_the_msix_table() {
    run(2, RAM, |s| {
        let (c, dev) = holder(s, PCI_FUNCTION);
        let va = 0x4000_0000;
        let got = s.call(c.thread, Call::DeviceMap { dev, bar: 0, va: at(va) }).ok();
        assert_eq!(got[0], BAR_BYTES);
        for page in 0..3 {
            let (pa, flags) = lookup(s, &c, va + page * 4096).expect("mapped");
            assert_eq!(pa, BAR0 + page * 4096);
            assert!(flags.contains(MapFlags::UNCACHED | MapFlags::WRITE | MapFlags::USER), "{flags:?}");
            assert!(!flags.contains(MapFlags::EXEC));
        }
        assert_eq!(lookup(s, &c, va + 3 * 4096), None, "the MSI-X table's page is the kernel's");
        s.call(c.thread, Call::DeviceMap { dev, bar: 2, va: at(0x5000_0000) }).ok();
        assert_eq!(lookup(s, &c, 0x5000_3000).map(|x| x.0), Some(BAR2 + 0x3000));
        // Over what is mapped already: refused, nothing changed.
        let again = s.call(c.thread, Call::DeviceMap { dev, bar: 2, va: at(va) }).err();
        assert_eq!(again, Error::AlreadyMapped);
        assert_eq!(lookup(s, &c, va).map(|x| x.0), Some(BAR0));
        // The kernel never reads or writes device registers for a domain
        // as if they were memory: a console write from them, refused.
        let buf = UserBuf::new(va, 16, 4096).expect("buf");
        assert_eq!(s.call(c.thread, Call::ConsoleWrite { console: c.console, buf }).err(), Error::BadAddress);
        // Its I/O BAR is a port range, and nothing else is.
        let ports = s.call(c.thread, Call::DevicePorts { dev, bar: 1 }).slot();
        let info = s.call(c.thread, Call::CapInfo { slot: ports }).ok();
        assert_eq!(info[0], ObjectType::IoPorts as u64);
        s.call(c.thread, Call::IoPortRead { ports, port: 0xc07f, width: Width::Byte }).ok();
        let past = Call::IoPortRead { ports, port: 0xc080, width: Width::Byte };
        assert_eq!(s.call(c.thread, past).err(), Error::InsufficientRights);
        assert_eq!(s.call(c.thread, Call::DevicePorts { dev, bar: 0 }).err(), Error::NotSupported);
        let io = Call::DeviceMap { dev, bar: 1, va: at(0x6000_0000) };
        assert_eq!(s.call(c.thread, io).err(), Error::NotSupported, "an I/O BAR is not mapped");
        for bar in [3, 4, 5] {
            let none = Call::DeviceMap { dev, bar, va: at(0x6000_0000) };
            assert_eq!(s.call(c.thread, none).err(), Error::NotSupported, "BAR {bar}");
        }
        assert_eq!(s.call(c.thread, Call::DevicePorts { dev, bar: 4 }).err(), Error::NotSupported);
    });
}

#[test]
fn without_the_device_or_as_no_owner_no_bar_is_mapped() {
    run(2, RAM, |s| {
        let (c, dev) = holder(s, PCI_FUNCTION);
        let other = s.child(256, Some(1));
        let r = s.root_thread;
        let va = at(0x4000_0000);
        // Another domain names the holder's slot, and its own capabilities.
        for slot in [dev, other.me, other.console] {
            let e = s.call(other.thread, Call::DeviceMap { dev: slot, bar: 0, va }).err();
            assert!(matches!(e, Error::InvalidCapability | Error::WrongType), "{slot:?}: {e:?}");
            let e = s.call(other.thread, Call::DevicePorts { dev: slot, bar: 1 }).err();
            assert!(matches!(e, Error::InvalidCapability | Error::WrongType), "{slot:?}: {e:?}");
        }
        // A copy of the device in a domain that does not own it (mgmt's
        // own, or one granted on) maps nothing: the mapping would outlive
        // the device when its owner dies.
        let root_dev = s.call(
            r,
            Call::DeviceCreate { pci: s.caps.pci, domain: other.slot, function: PCI_OTHER, dma: false },
        );
        let root_dev = root_dev.slot();
        let e = s.call(r, Call::DeviceMap { dev: root_dev, bar: 0, va }).err();
        assert_eq!(e, Error::InsufficientRights);
        let lent = s
            .call(r, Call::CapGrant { domain: c.slot, slot: root_dev, rights: Rights::READ | Rights::WRITE });
        let lent = lent.slot();
        assert_eq!(
            s.call(c.thread, Call::DeviceMap { dev: lent, bar: 0, va }).err(),
            Error::InsufficientRights
        );
        assert_eq!(
            s.call(c.thread, Call::DevicePorts { dev: lent, bar: 1 }).err(),
            Error::InsufficientRights
        );
        // READ alone is not enough.
        let ro =
            s.call(r, Call::CapGrant { domain: other.slot, slot: root_dev, rights: Rights::READ }).slot();
        assert_eq!(
            s.call(other.thread, Call::DeviceMap { dev: ro, bar: 2, va }).err(),
            Error::InsufficientRights
        );
        assert_eq!(lookup(s, &other, va.get()), None);
        assert_eq!(lookup(s, &c, va.get()), None);
        // The segment is no function.
        let e = s.call(r, Call::DeviceMap { dev: s.caps.pci, bar: 0, va }).err();
        assert_eq!(e, Error::InsufficientRights);
    });
}

#[test]
fn a_bar_over_ram_the_interrupts_or_the_isa_ports_is_refused() {
    run(2, RAM, |s| {
        let (c, dev) = holder(s, PCI_OTHER);
        let va = at(0x4000_0000);
        let over_ram = s.call(c.thread, Call::DeviceMap { dev, bar: 2, va }).err();
        assert_eq!(over_ram, Error::BadAddress, "BARs 2-3 lie over the RAM");
        let over_apic = s.call(c.thread, Call::DeviceMap { dev, bar: 0, va }).err();
        assert_eq!(over_apic, Error::BadAddress, "BAR 0 lies over the interrupt window");
        assert_eq!(
            s.call(c.thread, Call::DevicePorts { dev, bar: 1 }).err(),
            Error::BadAddress,
            "the ISA ports"
        );
        for page in 0..4 {
            assert_eq!(lookup(s, &c, va.get() + page * 4096), None, "nothing mapped");
        }
    });
}

#[test]
fn the_bars_mappings_end_with_their_holder() {
    run(2, RAM, |s| {
        let (c, dev) = holder(s, PCI_FUNCTION);
        let free = s.m(|m| m.ram.free);
        s.call(c.thread, Call::DeviceMap { dev, bar: 0, va: at(0x4000_0000) }).ok();
        s.call(c.thread, Call::DevicePorts { dev, bar: 1 }).slot();
        s.call(s.root_thread, Call::DomainDestroy { domain: c.slot }).ok();
        // Its tables are given back and no device frame was "freed".
        assert!(s.m(|m| m.ram.free) >= free, "every frame back");
        let (c, dev) = holder(s, PCI_FUNCTION);
        s.call(c.thread, Call::DeviceMap { dev, bar: 0, va: at(0x4000_0000) }).ok();
    });
}

/// Where the good function's MSI-X entry `e` is (BAR 0, offset 0x3000).
fn entry(e: u64) -> u64 {
    BAR0 + 0x3000 + 16 * e
}

#[test]
fn msix_vectors_reach_the_bound_notification_and_no_other() {
    use crate::hw::trap::vector::{MSI_BASE, MSI_COUNT};
    run(2, RAM, |s| {
        let (c, dev) = holder(s, PCI_FUNCTION);
        let ntfn = s.call(c.thread, Call::NotificationCreate { domain: c.me }).slot();
        s.call(c.thread, Call::DeviceIrqBind { dev, entry: 1, ntfn, bits: 0x10 }).ok();
        let written = s.m(|m| m.msix.get(&entry(1)).copied()).expect("entry 1 written");
        let vector = written[2] as u8;
        assert_eq!(written[0], 0xfee0_0000, "to a local APIC");
        assert!((MSI_BASE..MSI_BASE + MSI_COUNT).contains(&vector), "{vector:#x}");
        assert_eq!(written[3], 0, "unmasked");
        assert_eq!(config(s, PCI_FUNCTION, 0x53, 1)[0] & 0xc0, 0x80, "MSI-X on, not masked");
        // A second entry gets another vector.
        s.call(c.thread, Call::DeviceIrqBind { dev, entry: 0, ntfn, bits: 0x20 }).ok();
        let other = s.m(|m| m.msix[&entry(0)])[2] as u8;
        assert_ne!(other, vector);
        // Each arrival signals its bits once.
        s.interrupt(0, vector);
        assert_eq!(s.call(c.thread, Call::Poll { ntfn }).ok()[0], 0x10);
        s.interrupt(0, other);
        assert_eq!(s.call(c.thread, Call::Poll { ntfn }).ok()[0], 0x20);
        // What it was not given is refused, and nothing more is written:
        // an entry past the table, one bound already, another's device or
        // its own without WRITE on the notification.
        let before = s.m(|m| m.msix.clone());
        let past = s.call(c.thread, Call::DeviceIrqBind { dev, entry: 4, ntfn, bits: 1 }).err();
        assert_eq!(past, Error::NotSupported);
        let twice = s.call(c.thread, Call::DeviceIrqBind { dev, entry: 1, ntfn, bits: 1 }).err();
        assert_eq!(twice, Error::Busy);
        let ro = s.call(c.thread, Call::CapDerive { slot: ntfn, rights: Rights::READ }).slot();
        let e = s.call(c.thread, Call::DeviceIrqBind { dev, entry: 2, ntfn: ro, bits: 1 }).err();
        assert_eq!(e, Error::InsufficientRights);
        let other_domain = s.child(256, Some(1));
        let n2 = s.call(other_domain.thread, Call::NotificationCreate { domain: other_domain.me }).slot();
        for slot in [dev, other_domain.me] {
            let e = s
                .call(other_domain.thread, Call::DeviceIrqBind { dev: slot, entry: 2, ntfn: n2, bits: 1 })
                .err();
            assert!(matches!(e, Error::InvalidCapability | Error::WrongType), "{slot:?}: {e:?}");
        }
        assert_eq!(s.m(|m| m.msix.clone()), before, "no entry written");
        // A vector nobody bound signals nothing.
        s.interrupt(0, MSI_BASE + MSI_COUNT - 1);
        assert_eq!(s.call(c.thread, Call::Poll { ntfn }).ok()[0], 0);
        // With its holder gone, its entries are masked and MSI-X is off.
        s.call(s.root_thread, Call::DomainDestroy { domain: c.slot }).ok();
        assert_eq!(s.m(|m| m.msix[&entry(1)])[3], 1, "masked");
        assert_eq!(config(s, PCI_FUNCTION, 0x53, 1)[0] & 0x80, 0, "MSI-X off");
    });
}

#[test]
fn under_interrupt_remapping_an_entry_names_its_function_alone_until_it_goes() {
    run(2, RAM, |s| {
        s.m(|m| m.iommu = true);
        let (c, dev) = holder(s, PCI_FUNCTION);
        let ntfn = s.call(c.thread, Call::NotificationCreate { domain: c.me }).slot();
        s.call(c.thread, Call::DeviceIrqBind { dev, entry: 1, ntfn, bits: 0x10 }).ok();
        let written = s.m(|m| m.msix[&entry(1)]);
        let vector = written[2] as u8;
        let handle = (written[0] >> 5 & 0x7fff) as u8;
        assert_eq!(written[0] & 0xfff0_001c, 0xfee0_0010, "remappable format, no subhandle");
        assert_eq!(handle, vector, "the handle is the vector");
        assert_eq!(s.m(|m| m.remapped.clone()), [(vector, PCI_FUNCTION)].into(), "for 00:04.0 alone");
        s.interrupt(0, vector);
        assert_eq!(s.call(c.thread, Call::Poll { ntfn }).ok()[0], 0x10);
        // A unit that does not take the entry: the binding is refused and
        // its MSI-X entry left unwritten.
        s.m(|m| m.iommu_answers = false);
        let e = s.call(c.thread, Call::DeviceIrqBind { dev, entry: 0, ntfn, bits: 0x20 }).err();
        assert_eq!(e, Error::OutOfObjects);
        assert!(s.m(|m| !m.msix.contains_key(&entry(0))), "entry 0 unwritten");
        s.m(|m| m.iommu_answers = true);
        // With its holder gone its entry goes too.
        s.call(s.root_thread, Call::DomainDestroy { domain: c.slot }).ok();
        assert!(s.m(|m| m.remapped.is_empty()), "no remapping entry left");
    });
}

#[test]
fn a_function_without_msix_binds_nothing() {
    run(2, RAM, |s| {
        s.m(|m| m.pci.get_mut(&PCI_FUNCTION).expect("function")[0x51] = 0); // the list ends at the vendor's
        s.m(|m| m.pci.get_mut(&PCI_FUNCTION).expect("function")[0x41] = 0);
        let (c, dev) = holder(s, PCI_FUNCTION);
        let ntfn = s.call(c.thread, Call::NotificationCreate { domain: c.me }).slot();
        let e = s.call(c.thread, Call::DeviceIrqBind { dev, entry: 0, ntfn, bits: 1 }).err();
        assert_eq!(e, Error::NotSupported);
        assert!(s.m(|m| m.msix.is_empty()));
    });
}

#[test]
fn dma_addresses_only_of_the_owners_memory_and_only_with_dma() {
    run(2, RAM, |s| {
        let (r, pci) = (s.root_thread, s.caps.pci);
        let c = s.child(256, Some(1));
        let made = s.call(r, Call::DeviceCreate { pci, domain: c.slot, function: PCI_FUNCTION, dma: true });
        let rw = Rights::READ | Rights::WRITE;
        let dev = s.call(r, Call::CapGrant { domain: c.slot, slot: made.slot(), rights: rw }).slot();
        let mem = s.call(c.thread, Call::MemoryCreate { domain: c.me, pages: 4 }).slot();
        let got = s.call(c.thread, Call::DeviceDma { dev, memory: mem }).ok();
        let base =
            s.k().memory.iter().find(|(_, m)| m.owner == c.domain && m.pages == 4).map(|(_, m)| m.base);
        assert_eq!(Some(got[0]), base.map(|b| b.as_u64()), "the memory's physical address (no IOMMU)");
        assert_eq!(got[1], 4 * 4096);
        // Memory that is not the owner's own (its supervisor's, lent).
        let theirs = s.call(r, Call::MemoryCreate { domain: s.caps.me, pages: 1 }).slot();
        let lent = s.call(r, Call::CapGrant { domain: c.slot, slot: theirs, rights: rw }).slot();
        let e = s.call(c.thread, Call::DeviceDma { dev, memory: lent }).err();
        assert_eq!(e, Error::InsufficientRights, "memory freed apart from the device");
        // Without WRITE on the memory, or a device made without DMA.
        let ro = s.call(c.thread, Call::CapDerive { slot: mem, rights: Rights::READ }).slot();
        assert_eq!(s.call(c.thread, Call::DeviceDma { dev, memory: ro }).err(), Error::InsufficientRights);
        let (d, nodma) = holder(s, PCI_OTHER);
        let m2 = s.call(d.thread, Call::MemoryCreate { domain: d.me, pages: 1 }).slot();
        let e = s.call(d.thread, Call::DeviceDma { dev: nodma, memory: m2 }).err();
        assert_eq!(e, Error::InsufficientRights, "no DMA given");
        // Not the device's owner: mgmt's own copy.
        let e = s.call(r, Call::DeviceDma { dev: made.slot(), memory: theirs }).err();
        assert_eq!(e, Error::InsufficientRights);
    });
}

#[test]
fn under_an_iommu_dma_reaches_only_what_is_mapped_until_it_is_gone() {
    run(2, RAM, |s| {
        s.m(|m| m.iommu = true);
        let (r, pci) = (s.root_thread, s.caps.pci);
        let c = s.child(256, Some(1));
        let made = s.call(r, Call::DeviceCreate { pci, domain: c.slot, function: PCI_FUNCTION, dma: true });
        let rw = Rights::READ | Rights::WRITE;
        let dev = s.call(r, Call::CapGrant { domain: c.slot, slot: made.slot(), rights: rw }).slot();
        let reach = |iova| crate::hw::fake::iommu::reach(PCI_FUNCTION, iova);
        assert_eq!(reach(1 << 32), None, "a device with no mapping reaches nothing");
        let (a, b) = (
            s.call(c.thread, Call::MemoryCreate { domain: c.me, pages: 2 }).slot(),
            s.call(c.thread, Call::MemoryCreate { domain: c.me, pages: 1 }).slot(),
        );
        let base = |s: &Sim, pages| {
            s.k()
                .memory
                .iter()
                .find(|(_, m)| m.owner == c.domain && m.pages == pages)
                .map(|(_, m)| m.base.as_u64())
        };
        let got = s.call(c.thread, Call::DeviceDma { dev, memory: a }).ok();
        assert_eq!(
            (got[0], got[1]),
            (1 << 32, 2 * 4096),
            "an IOVA the kernel picks, not the physical address"
        );
        assert_eq!(reach(got[0] + 4096 + 8), base(s, 2).map(|b| b + 4096 + 8));
        assert_eq!(reach(got[0] + 2 * 4096), None, "a run past the buffer faults");
        let e = s.call(c.thread, Call::DeviceDma { dev, memory: a }).err();
        assert_eq!(e, Error::AlreadyMapped, "mapped once");
        let second = s.call(c.thread, Call::DeviceDma { dev, memory: b }).ok()[0];
        assert_eq!(second, (1 << 32) + 3 * 4096, "after the first and its guard page");
        let pb = base(s, 1);
        for p in [pb.unwrap_or(0), base(s, 2).unwrap_or(0), 0xfee0_0000, 0x10_0000] {
            assert_eq!(reach(p), None, "{p:#x}: a physical address is no IOVA");
        }
        // The owner's death: the context entry goes, the tables with it.
        s.seen.clear();
        s.call(r, Call::DomainDestroy { domain: c.slot }).ok();
        assert!(s.m(|m| m.dma_spaces.is_empty()), "detached");
        assert_eq!(reach(got[0]), None);
        assert!(s.seen.iter().any(|e| matches!(e, Event::IommuFlush { bdf: PCI_FUNCTION, .. })));
        assert!(!s.seen.iter().any(|e| matches!(e, Event::Leaked { .. })), "all freed");
    });
}

#[test]
fn an_unfinished_invalidation_keeps_the_frames_from_reuse() {
    run(2, RAM, |s| {
        s.m(|m| m.iommu = true);
        let (r, pci) = (s.root_thread, s.caps.pci);
        let c = s.child(256, Some(1));
        let made = s.call(r, Call::DeviceCreate { pci, domain: c.slot, function: PCI_FUNCTION, dma: true });
        let rw = Rights::READ | Rights::WRITE;
        let dev = s.call(r, Call::CapGrant { domain: c.slot, slot: made.slot(), rights: rw }).slot();
        let mem = s.call(c.thread, Call::MemoryCreate { domain: c.me, pages: 3 }).slot();
        s.call(c.thread, Call::DeviceDma { dev, memory: mem }).ok();
        s.m(|m| m.iommu_answers = false);
        s.seen.clear();
        s.call(r, Call::DomainDestroy { domain: c.slot }).ok();
        let leaked = s.seen.contains(&Event::Leaked { n: 3 });
        assert!(leaked, "the 3 pages it reached are never handed out again");
    });
}

#[test]
fn iommu_faults_are_charged_to_the_devices_holder_and_the_rest_to_the_root() {
    run(2, RAM, |s| {
        let (r, pci, me) = (s.root_thread, s.caps.pci, s.caps.me);
        let c = s.child(256, Some(1));
        let other = s.child(256, Some(1));
        s.call(r, Call::DeviceCreate { pci, domain: c.slot, function: PCI_FUNCTION, dma: true }).slot();
        let fault =
            |bdf, addr| crate::hwdata::dma::DmaFault { bdf, addr, irq: false, write: true, reason: 6 };
        let faults = |s: &mut Sim, d| s.call(r, Call::DomainInfo { domain: d }).ok()[3];
        assert_eq!(faults(s, c.slot), 1, "running, no fault yet");
        // A flood from the held function, and two from one nobody holds.
        s.m(|m| {
            m.dma_faults.extend((0..1000).map(|i| fault(PCI_FUNCTION, 0x1000 * i)));
            m.dma_faults.extend([fault(PCI_OTHER, 0xfee0_0000), fault(PCI_OTHER, 0)]);
            m.dma_lost = 5;
        });
        s.tick(0, 1000);
        assert!(s.m(|m| m.dma_faults.is_empty() && m.dma_lost == 0), "every fault taken at the tick");
        assert_eq!(faults(s, c.slot), 1 | 1000 << 1, "the holder's: running, 1000 faults");
        assert_eq!(faults(s, other.slot), 1, "a bystander is charged nothing");
        assert_eq!(faults(s, me) >> 1, 2, "an unheld function's are the segment's holder's");
        // Charged while its holder runs or not: a dead holder's device still counts.
        s.call(c.thread, Call::Exit { code: 0 });
        s.m(|m| m.dma_faults.push_back(fault(PCI_FUNCTION, 0)));
        s.tick(0, 1000);
        assert_eq!(faults(s, c.slot), 1001 << 1, "dead, 1001 faults");
    });
}
