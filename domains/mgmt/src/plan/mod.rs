//! From the manifest to what `mgmt` gives each domain: its image module, its
//! quota, its CPU share, and the capabilities beyond `self` and `console`
//! (which every domain gets), each with the name the domain finds it under
//! in its start page, the rights it carries and, for shared regions, the
//! address it is mapped at. Each guest of the manifest becomes a domain too,
//! after the manifest's domains: its VMM ([`guest`]).

use core::fmt::{self, Write};

use heapless::{String, Vec};
use ipc::guest::GuestConfig;
use ipc::manifest::{
    CapSpec, DomainSpec, Manifest, Name, PciAddress, Restart, MAX_CAPS, MAX_DOMAINS, MAX_GUESTS,
    MAX_GUEST_DISKS, MAX_SHARED,
};
use ipc::Rights;
use user::layout;
use user::start::{
    DOMAIN_PREFIX, ENDPOINT_PREFIX, IRQ_PREFIX, MODULE_PREFIX, NOTIFICATION_PREFIX, SHARED_PREFIX,
};

/// A capability's name in a start page (`ipc::boot::NamedCap` holds 32 bytes).
pub type CapName = String<32>;
/// A boot module's capability name, `module:<image>`.
pub type ModuleName = String<32>;

/// The CPU weight a domain has from `DomainCreate`.
pub const DEFAULT_WEIGHT: u16 = ipc::guest::DEFAULT_WEIGHT;
/// The most domains a plan starts: the manifest's, and a VMM per guest.
pub const MAX_PLANNED: usize = MAX_DOMAINS + MAX_GUESTS;
/// The most capabilities a domain is given besides `self` and `console`:
/// the system file's, its devices, and its guests' disks' channels
/// ([`disks`]); a start page holds 48.
pub const MAX_GRANTS: usize = 24;
/// The most shared regions a plan makes: the manifest's and one per
/// guest disk; and notifications: the manifest's, one per guest disk and
/// one per `blk` domain.
pub const MAX_PLANNED_SHARED: usize = MAX_SHARED + MAX_GUESTS * MAX_GUEST_DISKS;
pub const MAX_PLANNED_NOTIFICATIONS: usize = MAX_PLANNED_SHARED + MAX_DOMAINS;

mod disks;
mod guest;

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The manifest's domains, then its guests' VMMs.
    pub domains: Vec<DomainPlan, MAX_PLANNED>,
    /// The manifest's shared regions, in order, then the guests' disks'
    /// ([`disks`]): `mgmt` creates each once.
    pub shared: Vec<SharedPlan, MAX_PLANNED_SHARED>,
    /// The manifest's endpoints, in order: `mgmt` creates and owns each.
    pub endpoints: Vec<Name, MAX_SHARED>,
    /// The manifest's notifications, likewise, then the guests' disks'.
    pub notifications: Vec<Name, MAX_PLANNED_NOTIFICATIONS>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedPlan {
    pub name: Name,
    pub pages: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DomainPlan {
    pub name: Name,
    /// The name of the boot module holding its image: `module:<image>`.
    pub module: ModuleName,
    pub quota_pages: u64,
    pub restart: Restart,
    /// The (weight, cap percent) to set with `SchedSet`, if not the
    /// defaults a new domain has (256, no cap).
    pub sched: Option<(u16, u8)>,
    /// The CPU to move its first thread to.
    pub cpu: Option<u16>,
    /// In start-page order.
    pub grants: Vec<Grant, MAX_GRANTS>,
    /// Capabilities of the manifest left out, to be logged.
    pub notes: Vec<Note, MAX_CAPS>,
    /// Why the domain cannot be started at all.
    pub refusal: Option<Refusal>,
}

/// A capability given to a domain besides `self` and `console`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Ports `base..base + count`, made from `mgmt`'s `ioports`.
    IoPorts { cap: CapName, base: u16, count: u16 },
    /// Shared region number `region` of the plan, mapped at `va`.
    Shared { cap: CapName, region: usize, writable: bool, va: u64 },
    /// Control of domain number `domain` of the plan.
    Domain { cap: CapName, domain: usize },
    /// Interrupt line `line`, from `mgmt`'s capability of the same name.
    Irq { cap: CapName, line: u8 },
    /// Endpoint number `endpoint` of the plan, with `rights`; a badge other
    /// than 0 is minted into the copy.
    Endpoint { cap: CapName, endpoint: usize, rights: Rights, badge: u64 },
    /// Notification number `notification` of the plan, with `rights`.
    Notification { cap: CapName, notification: usize, rights: Rights },
    /// The boot module `module` (`module:<image>`), read-only.
    Module { cap: CapName, module: ModuleName },
    /// A page holding `config` (postcard), read-only; the capability's
    /// size is the encoding's length. (Boxed: it is far larger than the
    /// other grants, and a plan holds many.)
    GuestConfig { cap: CapName, config: alloc::boxed::Box<GuestConfig> },
    /// `mgmt`'s supervision endpoint (WRITE, badged with the domain's index
    /// in the plan plus one), on which a VMM hands over its guest
    /// (`ipc::guest::HANDOVER`).
    Supervisor { cap: CapName },
    /// A guest's console (`ipc::guest::CONSOLE_CAP`): the two pages of its
    /// rings, `mgmt`'s, READ|WRITE; with them a notification made for the
    /// VMM (`CONSOLE_BELL_CAP`, READ|WRITE) and `mgmt`'s own
    /// (`CONSOLE_MGMT_CAP`, WRITE).
    Console { cap: CapName },
    /// The PCI function `pci` (`device:BB:DD.F`), made from `mgmt`'s `pci`
    /// for the domain (READ|WRITE), if its IDs are `ids` (when given);
    /// bus mastering allowed if `dma` (the system file's `unconfined_dma`:
    /// no IOMMU confines DMA yet).
    Device { cap: CapName, pci: PciAddress, ids: Option<(u16, u16)>, dma: bool },
    /// A page holding `clients` (postcard), read-only, for a `blk`
    /// domain: the guests' disks it serves and their regions
    /// (`ipc::block::clients`). Boxed as `GuestConfig` is.
    BlkClients { cap: CapName, clients: alloc::boxed::Box<ipc::block::clients::Clients> },
}

impl Grant {
    pub fn cap(&self) -> &str {
        match self {
            Grant::IoPorts { cap, .. }
            | Grant::Shared { cap, .. }
            | Grant::Domain { cap, .. }
            | Grant::Irq { cap, .. }
            | Grant::Endpoint { cap, .. }
            | Grant::Notification { cap, .. }
            | Grant::Module { cap, .. }
            | Grant::GuestConfig { cap, .. }
            | Grant::Supervisor { cap }
            | Grant::Console { cap }
            | Grant::Device { cap, .. }
            | Grant::BlkClients { cap, .. } => cap,
        }
    }
}

/// A capability of the manifest that is left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// The same capability twice: the first counts.
    Duplicate { cap: CapName },
}

/// Why a domain cannot be started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `<prefix><name>` does not fit in a start page's 24-byte name.
    NameTooLong { prefix: &'static str, name: Name },
    /// A capability names a shared region, domain, endpoint or notification
    /// the manifest lacks (`Manifest::decode` refuses such manifests).
    Unknown { name: Name },
    /// More capabilities and devices than a domain starts with.
    TooMany,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Duplicate { cap } => write!(f, "capability `{cap}` named twice: the first counts"),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NameTooLong { prefix, name } => {
                write!(
                    f,
                    "capability name `{prefix}{name}` is longer than {} bytes",
                    CapName::new().capacity()
                )
            }
            Refusal::Unknown { name } => write!(f, "the manifest has no `{name}` to give"),
            Refusal::TooMany => {
                write!(f, "more than {MAX_GRANTS} capabilities, devices and guest disks to give")
            }
        }
    }
}

fn prefixed<const N: usize>(prefix: &'static str, name: &Name) -> Result<String<N>, Refusal> {
    let mut s = String::new();
    write!(s, "{prefix}{name}").map_err(|_| Refusal::NameTooLong { prefix, name: name.clone() })?;
    Ok(s)
}

/// Plans every domain of a manifest (one `Manifest::decode` has validated).
/// On the heap, filled in place: sized for a hundred guests, a plan is a
/// third of a megabyte, which no stack of `mgmt`'s should carry twice.
pub fn plan(m: &Manifest) -> alloc::boxed::Box<Plan> {
    let shared = m.shared.iter().map(|s| SharedPlan { name: s.name.clone(), pages: u64::from(s.kib) / 4 });
    let domains = m.domains.iter().map(|d| {
        let sched = (d.weight, d.cap_percent);
        let mut p = DomainPlan {
            name: d.name.clone(),
            module: String::new(),
            quota_pages: u64::from(d.memory_kib) / 4,
            restart: d.restart,
            sched: Some(sched).filter(|&s| s != (DEFAULT_WEIGHT, 0)),
            cpu: d.cpu,
            grants: Vec::new(),
            notes: Vec::new(),
            refusal: None,
        };
        if let Err(r) = plan_domain(m, d, &mut p) {
            p.refusal = Some(r);
        }
        p
    });
    let mut plan = alloc::boxed::Box::new(Plan {
        domains: Vec::new(),
        shared: shared.collect(),
        endpoints: m.endpoints.clone(),
        notifications: m.notifications.iter().cloned().collect(),
    });
    for d in domains.chain(m.guests.iter().map(guest::plan)) {
        // As many as the manifest's domains and guests: every push fits.
        let _ = plan.domains.push(d);
    }
    disks::wire(m, &mut plan);
    plan
}

fn plan_domain(m: &Manifest, d: &DomainSpec, p: &mut DomainPlan) -> Result<(), Refusal> {
    p.module = prefixed(MODULE_PREFIX, &d.image)?;
    let (mut ports, mut shared) = (0, 0);
    for spec in &d.caps {
        // Both vectors hold at least MAX_CAPS, as many as a domain's caps: pushes fit.
        let grant = match spec {
            CapSpec::Console => continue,
            CapSpec::Irq { line } => {
                let mut cap = CapName::new();
                // "irq:" and a u8 fit in 24 bytes.
                let _ = write!(cap, "{IRQ_PREFIX}{line}");
                if p.grants.iter().any(|g| g.cap() == cap.as_str()) {
                    let _ = p.notes.push(Note::Duplicate { cap });
                    continue;
                }
                Grant::Irq { cap, line: *line }
            }
            CapSpec::IoPorts { base, count } => {
                let mut cap = CapName::new();
                // "ioports" and "ioports.<n>" (n < MAX_CAPS) fit in 24 bytes.
                let _ = match ports {
                    0 => write!(cap, "ioports"),
                    n => write!(cap, "ioports.{n}"),
                };
                ports += 1;
                Grant::IoPorts { cap, base: *base, count: *count }
            }
            CapSpec::Shared { name, writable } => {
                let cap = prefixed(SHARED_PREFIX, name)?;
                let region = m.shared.iter().position(|s| &s.name == name);
                let region = region.ok_or_else(|| Refusal::Unknown { name: name.clone() })?;
                if p.grants.iter().any(|g| g.cap() == cap.as_str()) {
                    let _ = p.notes.push(Note::Duplicate { cap });
                    continue;
                }
                shared += 1;
                Grant::Shared { cap, region, writable: *writable, va: layout::shared_va(shared - 1) }
            }
            CapSpec::Domain { name } => {
                let cap = prefixed(DOMAIN_PREFIX, name)?;
                let domain = m.domains.iter().position(|o| &o.name == name && o.name != d.name);
                let domain = domain.ok_or_else(|| Refusal::Unknown { name: name.clone() })?;
                if p.grants.iter().any(|g| g.cap() == cap.as_str()) {
                    let _ = p.notes.push(Note::Duplicate { cap });
                    continue;
                }
                Grant::Domain { cap, domain }
            }
            CapSpec::Endpoint { name, server, badge } => {
                let cap = prefixed(ENDPOINT_PREFIX, name)?;
                let endpoint = m.endpoints.iter().position(|e| e == name);
                let endpoint = endpoint.ok_or_else(|| Refusal::Unknown { name: name.clone() })?;
                if p.grants.iter().any(|g| g.cap() == cap.as_str()) {
                    let _ = p.notes.push(Note::Duplicate { cap });
                    continue;
                }
                // A server receives (READ) and may call (WRITE); a client only calls.
                let rights = if *server { Rights::READ | Rights::WRITE } else { Rights::WRITE };
                Grant::Endpoint { cap, endpoint, rights, badge: *badge }
            }
            CapSpec::Notification { name, wait } => {
                let cap = prefixed(NOTIFICATION_PREFIX, name)?;
                let notification = m.notifications.iter().position(|n| n == name);
                let notification = notification.ok_or_else(|| Refusal::Unknown { name: name.clone() })?;
                if p.grants.iter().any(|g| g.cap() == cap.as_str()) {
                    let _ = p.notes.push(Note::Duplicate { cap });
                    continue;
                }
                // A waiter waits and polls (READ) and may signal (WRITE).
                let rights = if *wait { Rights::READ | Rights::WRITE } else { Rights::WRITE };
                Grant::Notification { cap, notification, rights }
            }
        };
        let _ = p.grants.push(grant);
    }
    for dev in m.devices.iter().filter(|x| x.domain == d.name) {
        let mut cap = CapName::new();
        // "device:" and "BB:DD.F" fit in 32 bytes.
        let _ = write!(cap, "{DEVICE_PREFIX}{}", dev.pci);
        let ids = dev.model.map(|m| m.ids());
        let grant = Grant::Device { cap, pci: dev.pci, ids, dma: dev.unconfined_dma };
        // The system file's capabilities and devices: MAX_CAPS at most (the
        // rest of MAX_GRANTS is for the guests' disks' channels).
        if p.grants.len() >= MAX_CAPS {
            return Err(Refusal::TooMany);
        }
        p.grants.push(grant).map_err(|_| Refusal::TooMany)?;
        if let Some(line) = dev.intx {
            let mut cap = CapName::new();
            // "intx:" and "BB:DD.F" fit in 32 bytes.
            let _ = write!(cap, "{INTX_PREFIX}{}", dev.pci);
            p.grants.push(Grant::Irq { cap, line }).map_err(|_| Refusal::TooMany)?;
        }
    }
    Ok(())
}

/// What a domain's device capabilities are called: this and `BB:DD.F`.
pub const DEVICE_PREFIX: &str = "device:";
/// What the interrupt line a device's INTx pin reaches is called in its
/// driver's domain (the system file's `intx`): this and `BB:DD.F`.
pub const INTX_PREFIX: &str = "intx:";

#[cfg(test)]
mod tests;
