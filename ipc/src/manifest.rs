//! The system manifest: which domains `mgmt` starts, with what memory,
//! capabilities and restart policy. `cargo xtask` compiles `system.toml` into
//! it (postcard) and GRUB loads it as the module `manifest`. Decoding checks
//! everything: a manifest is input like any other.

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

use crate::error::Error;

pub const MANIFEST_VERSION: u32 = 1;
pub const MAX_DOMAINS: usize = 16;
pub const MAX_SHARED: usize = 8;
pub const MAX_CAPS: usize = 8;
/// The most domains one shared region may be mapped into (a memory object
/// has at most 8 mappings; one is kept for `mgmt`).
pub const MAX_SHARERS: usize = 7;
/// The most memory one domain may be given (1 GiB).
pub const MAX_MEMORY_KIB: u32 = 1 << 20;

/// A name: of a domain, an image (a boot module), a shared region.
pub type Name = String<24>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub domains: Vec<DomainSpec, MAX_DOMAINS>,
    pub shared: Vec<SharedSpec, MAX_SHARED>,
    /// Endpoints `mgmt` creates, by name.
    pub endpoints: Vec<Name, MAX_SHARED>,
    /// Notifications `mgmt` creates, by name.
    pub notifications: Vec<Name, MAX_SHARED>,
    /// Guests (virtual machines), each run by a VMM domain `mgmt` starts.
    pub guests: Vec<GuestSpec, MAX_GUESTS>,
    /// PCI functions `mgmt` hands to domains as Device capabilities.
    pub devices: Vec<DeviceSpec, MAX_DEVICES>,
}

/// The most PCI functions a manifest hands out.
pub const MAX_DEVICES: usize = 8;

/// A PCI function's address on segment 0: bus, device (0 to 31), function (0 to 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciAddress {
    pub bus: u8,
    pub device: u8,
    pub function: u8,
}

impl PciAddress {
    /// Whether device and function are in range.
    pub fn valid(self) -> bool {
        self.device < 32 && self.function < 8
    }

    /// Parses `BB:DD.F` (hexadecimal, as `lspci` shows it).
    pub fn parse(s: &str) -> Option<PciAddress> {
        let (bus, rest) = s.split_once(':')?;
        let (device, function) = rest.split_once('.')?;
        let hex = |t: &str, digits: usize| {
            if t.len() == digits && t.bytes().all(|b| b.is_ascii_hexdigit()) {
                u8::from_str_radix(t, 16).ok()
            } else {
                None
            }
        };
        let a = PciAddress { bus: hex(bus, 2)?, device: hex(device, 2)?, function: hex(function, 1)? };
        a.valid().then_some(a)
    }
}

impl core::fmt::Display for PciAddress {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{:x}", self.bus, self.device, self.function)
    }
}

/// What a system expects to find at a device's address: `mgmt` hands the
/// function out only if its vendor and device IDs say so, and the xtask
/// puts that device there in QEMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceModel {
    /// A modern virtio block device (virtio 1.x, PCI ID 1af4:1042).
    VirtioBlk,
    /// A modern virtio network device (virtio 1.x, PCI ID 1af4:1041).
    VirtioNet,
}

impl DeviceModel {
    /// Every model, with the name a system file gives it.
    pub const ALL: [(&'static str, DeviceModel); 2] =
        [("virtio-blk", DeviceModel::VirtioBlk), ("virtio-net", DeviceModel::VirtioNet)];

    /// The PCI vendor and device IDs of the model.
    pub fn ids(self) -> (u16, u16) {
        match self {
            DeviceModel::VirtioBlk => (0x1af4, 0x1042),
            DeviceModel::VirtioNet => (0x1af4, 0x1041),
        }
    }
}

/// A PCI function given to one native domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceSpec {
    pub pci: PciAddress,
    /// The domain that drives it: a `[[domain]]`, never a guest's VMM.
    pub domain: Name,
    /// What must be found there; anything if `None`.
    pub model: Option<DeviceModel>,
    /// Hand it out even where no IOMMU confines its DMA (the boot log says so).
    pub unconfined_dma: bool,
    /// The interrupt line (GSI) its INTx pin reaches, as the platform's
    /// ACPI `_PRT` says (the kernel reads no AML): given to its domain as
    /// `intx:BB:DD.F`, its interrupts' fallback where it has no MSI-X.
    pub intx: Option<u8>,
}

/// The most guests a manifest runs.
pub const MAX_GUESTS: usize = 100;

/// A guest: its kernel image (a boot module), command line, memory, vCPUs,
/// and the same restart and schedule settings as a domain (they apply to its
/// VMM domain, whose guest shares its fate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestSpec {
    pub name: Name,
    /// The boot module holding the guest's Multiboot (v1) ELF kernel.
    pub image: Name,
    pub cmdline: String<128>,
    pub memory_kib: u32,
    pub vcpus: u8,
    pub restart: Restart,
    pub weight: u16,
    pub cap_percent: u8,
    pub cpu: Option<u16>,
    /// Its Multiboot modules, in order.
    pub modules: Vec<GuestModule, { crate::guest::MAX_GUEST_MODULES }>,
    /// Its virtual disks, in order (Linux's `vda`, `vdb`, …).
    pub disks: Vec<DiskSpec, MAX_GUEST_DISKS>,
}

/// The most disks a guest has.
pub const MAX_GUEST_DISKS: usize = 4;

/// A guest's virtual disk: a region of the physical disk a `[[domain]]`
/// drives (the domain of a `[[device]]` of model virtio-blk), in sectors
/// of 512 bytes, or the rest of that disk from `first_sector` if
/// `sectors` is `None`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskSpec {
    pub blk: Name,
    pub first_sector: u64,
    pub sectors: Option<u64>,
    pub read_only: bool,
}

/// A Multiboot module of a guest: a boot module (its bytes) and the
/// string the guest is told with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestModule {
    pub module: Name,
    pub string: crate::guest::ModuleString,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainSpec {
    pub name: Name,
    /// The boot module holding the domain's ELF image.
    pub image: Name,
    /// Memory quota: image, stack, heap and page tables.
    pub memory_kib: u32,
    pub restart: Restart,
    pub caps: Vec<CapSpec, MAX_CAPS>,
    /// CPU weight: share under contention (default 256).
    pub weight: u16,
    /// Most of one CPU the domain may use, in percent; 0 for no cap.
    pub cap_percent: u8,
    /// The CPU its first thread runs on; `None` lets the kernel choose.
    pub cpu: Option<u16>,
}

/// What `mgmt` does when a domain faults or exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Restart {
    /// Leave it stopped.
    Never,
    /// Start it again after `initial_ms`, doubling up to `max_ms`, at most
    /// `max_restarts` times.
    Backoff { max_restarts: u32, initial_ms: u32, max_ms: u32 },
}

/// A capability a domain starts with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CapSpec {
    /// The debug console (write).
    Console,
    /// I/O ports `base..base + count`.
    IoPorts { base: u16, count: u16 },
    /// An interrupt line.
    Irq { line: u8 },
    /// A shared memory region of the manifest, mapped read-only or writable.
    Shared { name: Name, writable: bool },
    /// Control of another domain of the manifest (map memory into it, give it
    /// capabilities): for domains that set up sharing themselves.
    Domain { name: Name },
    /// An endpoint of the manifest: to receive on (`server`) or to call
    /// through with `badge` (what the server learns of this caller).
    Endpoint { name: Name, server: bool, badge: u64 },
    /// A notification of the manifest: to wait on (`wait`) or only signal.
    Notification { name: Name, wait: bool },
}

/// Memory shared between domains, created by `mgmt`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedSpec {
    pub name: Name,
    pub kib: u32,
}

/// What is wrong with a manifest, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    WrongVersion,
    NoDomains,
    EmptyName,
    DuplicateName,
    BadMemorySize,
    UnknownShared,
    /// A `Domain` capability names no other domain of the manifest.
    UnknownDomain,
    BadPortRange,
    BadIrq,
    BadBackoff,
    /// A shared region is given to more than [`MAX_SHARERS`] domains.
    TooManySharers,
    /// A capability names no endpoint or notification of the manifest.
    UnknownChannel,
    /// A weight of 0, or a cap above 100 %.
    BadSchedule,
    /// A guest module with no boot module, or a string that is not
    /// printable ASCII.
    BadModule,
    /// A device with an address out of range, given twice, to no domain of
    /// the manifest, or to a guest's VMM.
    BadDevice,
    /// A guest's disk on no domain that drives a virtio-blk device, of no
    /// sectors, or ending past the last sector a `u64` counts.
    BadDisk,
}

/// A problem, with the index of the domain or shared region it concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub problem: Problem,
    /// `Some(i)`: domain `i`; `None`: the manifest or its shared regions.
    pub domain: Option<usize>,
}

impl Manifest {
    /// Whether `d` lies on a domain that drives a virtio-blk device (or
    /// one of no stated model) and has a sector count that fits.
    fn disk_ok(&self, d: &DiskSpec) -> bool {
        let blk = self
            .devices
            .iter()
            .any(|v| v.domain == d.blk && matches!(v.model, None | Some(DeviceModel::VirtioBlk)));
        let fits = match d.sectors {
            None => true,
            Some(n) => n > 0 && d.first_sector.checked_add(n).is_some(),
        };
        blk && fits
    }

    /// Checks the manifest for consistency.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let err = |problem, domain| Err(ManifestError { problem, domain });
        if self.version != MANIFEST_VERSION {
            return err(Problem::WrongVersion, None);
        }
        if self.domains.is_empty() && self.guests.is_empty() {
            return err(Problem::NoDomains, None);
        }
        for (i, g) in self.guests.iter().enumerate() {
            if g.name.is_empty() || g.image.is_empty() {
                return err(Problem::EmptyName, None);
            }
            let clash = self.domains.iter().any(|d| d.name == g.name)
                || self.guests[..i].iter().any(|o| o.name == g.name);
            if clash {
                return err(Problem::DuplicateName, None);
            }
            let memory_ok = g.memory_kib >= 2048
                && g.memory_kib % 4 == 0
                && g.memory_kib <= crate::guest::MAX_GUEST_MEMORY_KIB;
            if !memory_ok {
                return err(Problem::BadMemorySize, None);
            }
            if g.vcpus == 0 || g.vcpus > 16 || g.weight == 0 || g.cap_percent > 100 {
                return err(Problem::BadSchedule, None);
            }
            if g.modules.iter().any(|m| m.module.is_empty() || !crate::guest::printable(&m.string)) {
                return err(Problem::BadModule, None);
            }
            if !g.disks.iter().all(|d| self.disk_ok(d)) {
                return err(Problem::BadDisk, None);
            }
        }
        for (i, d) in self.devices.iter().enumerate() {
            let known = self.domains.iter().any(|o| o.name == d.domain);
            let twice = self.devices[..i].iter().any(|o| o.pci == d.pci);
            if !d.pci.valid() || !known || twice || self.guests.iter().any(|g| g.name == d.domain) {
                return err(Problem::BadDevice, None);
            }
            // An INTx line is one device's, and no domain's `{ irq = N }`
            // too: its interrupts reach no one but the device's driver.
            if let Some(line) = d.intx {
                let shared = self.devices[..i].iter().any(|o| o.intx == Some(line))
                    || self.domains.iter().any(|o| o.caps.contains(&CapSpec::Irq { line }));
                if line >= 24 || shared {
                    return err(Problem::BadDevice, None);
                }
            }
        }
        for list in [&self.endpoints, &self.notifications] {
            for (i, n) in list.iter().enumerate() {
                if n.is_empty() {
                    return err(Problem::EmptyName, None);
                }
                if list[..i].contains(n) {
                    return err(Problem::DuplicateName, None);
                }
            }
        }
        for (i, s) in self.shared.iter().enumerate() {
            if s.name.is_empty() {
                return err(Problem::EmptyName, None);
            }
            if self.shared[..i].iter().any(|o| o.name == s.name) {
                return err(Problem::DuplicateName, None);
            }
            if s.kib == 0 || s.kib % 4 != 0 || s.kib > MAX_MEMORY_KIB {
                return err(Problem::BadMemorySize, None);
            }
            let sharers = self
                .domains
                .iter()
                .filter(|d| {
                    d.caps.iter().any(|c| matches!(c, CapSpec::Shared { name, .. } if *name == s.name))
                })
                .count();
            if sharers > MAX_SHARERS {
                return err(Problem::TooManySharers, None);
            }
        }
        for (i, d) in self.domains.iter().enumerate() {
            if d.name.is_empty() || d.image.is_empty() {
                return err(Problem::EmptyName, Some(i));
            }
            if self.domains[..i].iter().any(|o| o.name == d.name) {
                return err(Problem::DuplicateName, Some(i));
            }
            if d.memory_kib == 0 || d.memory_kib % 4 != 0 || d.memory_kib > MAX_MEMORY_KIB {
                return err(Problem::BadMemorySize, Some(i));
            }
            if d.weight == 0 || d.cap_percent > 100 {
                return err(Problem::BadSchedule, Some(i));
            }
            if let Restart::Backoff { initial_ms, max_ms, .. } = d.restart {
                if initial_ms > max_ms {
                    return err(Problem::BadBackoff, Some(i));
                }
            }
            for c in &d.caps {
                match c {
                    CapSpec::Console => {}
                    CapSpec::IoPorts { base, count } => {
                        if *count == 0 || u32::from(*base) + u32::from(*count) > 0x1_0000 {
                            return err(Problem::BadPortRange, Some(i));
                        }
                    }
                    CapSpec::Irq { line } => {
                        if *line >= 24 {
                            return err(Problem::BadIrq, Some(i));
                        }
                    }
                    CapSpec::Shared { name, .. } => {
                        if !self.shared.iter().any(|s| &s.name == name) {
                            return err(Problem::UnknownShared, Some(i));
                        }
                    }
                    CapSpec::Endpoint { name, .. } => {
                        if !self.endpoints.contains(name) {
                            return err(Problem::UnknownChannel, Some(i));
                        }
                    }
                    CapSpec::Notification { name, .. } => {
                        if !self.notifications.contains(name) {
                            return err(Problem::UnknownChannel, Some(i));
                        }
                    }
                    CapSpec::Domain { name } => {
                        if !self.domains.iter().any(|o| &o.name == name) || *name == d.name {
                            return err(Problem::UnknownDomain, Some(i));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Encodes into `buf`; returns the bytes used.
    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a mut [u8], Error> {
        postcard::to_slice(self, buf).map_err(|_| Error::Malformed)
    }

    /// Decodes and validates.
    pub fn decode(bytes: &[u8]) -> Result<Manifest, Error> {
        let m: Manifest = postcard::from_bytes(bytes).map_err(|_| Error::Malformed)?;
        m.validate().map_err(|_| Error::Malformed)?;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> Name {
        Name::try_from(s).unwrap()
    }

    fn sample() -> Manifest {
        let mut caps = Vec::new();
        caps.push(CapSpec::Console).unwrap();
        caps.push(CapSpec::Shared { name: name("ring"), writable: true }).unwrap();
        let mut domains = Vec::new();
        domains
            .push(DomainSpec {
                name: name("hello"),
                image: name("hello"),
                memory_kib: 512,
                restart: Restart::Backoff { max_restarts: 3, initial_ms: 10, max_ms: 100 },
                caps,
                weight: 256,
                cap_percent: 0,
                cpu: Some(1),
            })
            .unwrap();
        let mut shared = Vec::new();
        shared.push(SharedSpec { name: name("ring"), kib: 64 }).unwrap();
        let mut endpoints = Vec::new();
        endpoints.push(name("ping")).unwrap();
        Manifest {
            version: MANIFEST_VERSION,
            domains,
            shared,
            endpoints,
            notifications: Vec::new(),
            guests: Vec::new(),
            devices: Vec::new(),
        }
    }

    #[test]
    fn pci_addresses_parse_as_lspci_shows_them() {
        let a = PciAddress::parse("00:04.0").unwrap();
        assert_eq!(a, PciAddress { bus: 0, device: 4, function: 0 });
        assert_eq!(PciAddress::parse("ff:1f.7").unwrap().to_string(), "ff:1f.7");
        for bad in ["00:20.0", "00:04.8", "0:04.0", "00:04", "00-04.0", "00:4.0", "g0:04.0", "00:04.0 "] {
            assert_eq!(PciAddress::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn devices_go_once_to_a_known_native_domain() {
        let dev = |bus| DeviceSpec {
            pci: PciAddress { bus, device: 4, function: 0 },
            domain: name("hello"),
            model: Some(DeviceModel::VirtioBlk),
            unconfined_dma: false,
            intx: None,
        };
        let mut m = sample();
        m.devices.push(dev(0)).unwrap();
        m.devices.push(dev(1)).unwrap();
        assert_eq!(m.validate(), Ok(()));
        m.devices.push(dev(0)).unwrap();
        assert_eq!(m.validate().unwrap_err().problem, Problem::BadDevice);
        let mut m = sample();
        m.devices.push(DeviceSpec { domain: name("nobody"), ..dev(0) }).unwrap();
        assert_eq!(m.validate().unwrap_err().problem, Problem::BadDevice);
        let mut m = sample();
        m.devices.push(DeviceSpec { pci: PciAddress { bus: 0, device: 32, function: 0 }, ..dev(0) }).unwrap();
        assert_eq!(m.validate().unwrap_err().problem, Problem::BadDevice);
        // An INTx line: below 24, one device's, no domain's IRQ as well.
        let mut m = sample();
        m.devices.push(DeviceSpec { intx: Some(20), ..dev(0) }).unwrap();
        assert_eq!(m.validate(), Ok(()));
        m.devices.push(DeviceSpec { intx: Some(20), ..dev(1) }).unwrap();
        assert_eq!(m.validate().unwrap_err().problem, Problem::BadDevice, "a line twice");
        for line in [24, 255] {
            let mut m = sample();
            m.devices.push(DeviceSpec { intx: Some(line), ..dev(0) }).unwrap();
            assert_eq!(m.validate().unwrap_err().problem, Problem::BadDevice, "line {line}");
        }
        let mut m = sample();
        m.devices.push(DeviceSpec { intx: Some(4), ..dev(0) }).unwrap();
        m.domains[0].caps.push(CapSpec::Irq { line: 4 }).unwrap();
        assert_eq!(m.validate().unwrap_err().problem, Problem::BadDevice, "a domain's IRQ too");
    }

    #[test]
    fn guest_disks_lie_on_a_blk_domain_and_fit() {
        let mut m = sample();
        let blk = DeviceSpec {
            pci: PciAddress { bus: 0, device: 4, function: 0 },
            domain: name("hello"),
            model: Some(DeviceModel::VirtioBlk),
            unconfined_dma: false,
            intx: None,
        };
        m.devices.push(blk.clone()).unwrap();
        let disk = DiskSpec { blk: name("hello"), first_sector: 8, sectors: Some(16), read_only: false };
        let mut disks = Vec::new();
        disks.push(disk.clone()).unwrap();
        let guest = GuestSpec {
            name: name("g"),
            image: name("g"),
            cmdline: String::new(),
            memory_kib: 4096,
            vcpus: 1,
            restart: Restart::Never,
            weight: 256,
            cap_percent: 0,
            cpu: None,
            modules: Vec::new(),
            disks,
        };
        m.guests.push(guest).unwrap();
        assert_eq!(m.validate(), Ok(()));
        let mut buf = [0u8; 1024];
        let bytes = m.encode(&mut buf).unwrap().to_vec();
        assert_eq!(Manifest::decode(&bytes).as_ref(), Ok(&m));
        let bad = [
            DiskSpec { blk: name("nobody"), ..disk.clone() },
            DiskSpec { sectors: Some(0), ..disk.clone() },
            DiskSpec { first_sector: u64::MAX - 8, ..disk.clone() },
        ];
        for d in bad {
            let mut b = m.clone();
            b.guests[0].disks[0] = d.clone();
            assert_eq!(b.validate().unwrap_err().problem, Problem::BadDisk, "{d:?}");
        }
        let mut b = m.clone();
        b.devices[0].model = Some(DeviceModel::VirtioNet);
        assert_eq!(b.validate().unwrap_err().problem, Problem::BadDisk, "a NIC's domain");
        let mut b = m.clone();
        b.guests[0].disks[0].sectors = None;
        assert_eq!(b.validate(), Ok(()), "the rest of the disk");
    }

    #[test]
    fn round_trips() {
        let m = sample();
        let mut buf = [0u8; 1024];
        let bytes = m.encode(&mut buf).unwrap().to_vec();
        assert_eq!(Manifest::decode(&bytes), Ok(m));
    }

    #[test]
    fn inconsistencies_are_found() {
        let mut m = sample();
        m.domains[0].caps[1] = CapSpec::Shared { name: name("nope"), writable: false };
        assert_eq!(m.validate(), Err(ManifestError { problem: Problem::UnknownShared, domain: Some(0) }));
        let mut m = sample();
        let d = m.domains[0].clone();
        m.domains.push(d).unwrap();
        assert_eq!(m.validate(), Err(ManifestError { problem: Problem::DuplicateName, domain: Some(1) }));
        let mut m = sample();
        m.domains[0].memory_kib = 3;
        assert_eq!(m.validate().unwrap_err().problem, Problem::BadMemorySize);
        let mut m = sample();
        m.domains[0].caps[0] = CapSpec::IoPorts { base: 0xffff, count: 2 };
        assert_eq!(m.validate().unwrap_err().problem, Problem::BadPortRange);
        let mut m = sample();
        m.domains[0].caps[1] = CapSpec::Endpoint { name: name("pong"), server: true, badge: 0 };
        assert_eq!(m.validate().unwrap_err().problem, Problem::UnknownChannel);
        let mut m = sample();
        m.domains[0].caps[1] = CapSpec::Endpoint { name: name("ping"), server: false, badge: 3 };
        assert_eq!(m.validate(), Ok(()));
        m.domains[0].weight = 0;
        assert_eq!(m.validate().unwrap_err().problem, Problem::BadSchedule);
        let mut m = sample();
        m.domains[0].cap_percent = 101;
        assert_eq!(m.validate().unwrap_err().problem, Problem::BadSchedule);
        let mut m = sample();
        m.version = 2;
        assert_eq!(m.validate().unwrap_err().problem, Problem::WrongVersion);
    }

    proptest! {
        #[test]
        fn hostile_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = Manifest::decode(&bytes);
        }

        #[test]
        fn corrupted_manifests_are_refused_or_valid(i in 0usize..64, v in any::<u8>()) {
            let mut buf = [0u8; 1024];
            let mut bytes = sample().encode(&mut buf).unwrap().to_vec();
            let i = i % bytes.len();
            bytes[i] = v;
            if let Ok(m) = Manifest::decode(&bytes) {
                prop_assert!(m.validate().is_ok());
            }
        }
    }
}
