//! From the manifest to what `mgmt` gives each domain: its image module, its
//! quota, and the capabilities beyond `self` and `console` (which every
//! domain gets), each with the name the domain finds it under in its start
//! page and, for shared regions, the address it is mapped at.

use core::fmt::{self, Write};

use heapless::{String, Vec};
use ipc::manifest::{CapSpec, DomainSpec, Manifest, Name, Restart, MAX_CAPS, MAX_DOMAINS, MAX_SHARED};
use user::layout;
use user::start::{DOMAIN_PREFIX, IRQ_PREFIX, MODULE_PREFIX, SHARED_PREFIX};

/// A capability's name in a start page (`ipc::boot::NamedCap` holds 24 bytes).
pub type CapName = String<24>;
/// A boot module's capability name, `module:<image>` (which the kernel cuts
/// to 24 bytes: such a module is then not found).
pub type ModuleName = String<32>;

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub domains: Vec<DomainPlan, MAX_DOMAINS>,
    /// The manifest's shared regions, in order: `mgmt` creates each once.
    pub shared: Vec<SharedPlan, MAX_SHARED>,
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
    /// In start-page order.
    pub grants: Vec<Grant, MAX_CAPS>,
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
}

impl Grant {
    pub fn cap(&self) -> &str {
        match self {
            Grant::IoPorts { cap, .. }
            | Grant::Shared { cap, .. }
            | Grant::Domain { cap, .. }
            | Grant::Irq { cap, .. } => cap,
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
    /// A capability names a shared region or domain the manifest lacks
    /// (`Manifest::decode` refuses such manifests).
    Unknown { name: Name },
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
                write!(f, "capability name `{prefix}{name}` is longer than 24 bytes")
            }
            Refusal::Unknown { name } => write!(f, "the manifest has no `{name}` to give"),
        }
    }
}

fn prefixed<const N: usize>(prefix: &'static str, name: &Name) -> Result<String<N>, Refusal> {
    let mut s = String::new();
    write!(s, "{prefix}{name}").map_err(|_| Refusal::NameTooLong { prefix, name: name.clone() })?;
    Ok(s)
}

/// Plans every domain of a manifest (one `Manifest::decode` has validated).
pub fn plan(m: &Manifest) -> Plan {
    let shared = m.shared.iter().map(|s| SharedPlan { name: s.name.clone(), pages: u64::from(s.kib) / 4 });
    let domains = m.domains.iter().map(|d| {
        let mut p = DomainPlan {
            name: d.name.clone(),
            module: String::new(),
            quota_pages: u64::from(d.memory_kib) / 4,
            restart: d.restart,
            grants: Vec::new(),
            notes: Vec::new(),
            refusal: None,
        };
        if let Err(r) = plan_domain(m, d, &mut p) {
            p.refusal = Some(r);
        }
        p
    });
    Plan { domains: domains.collect(), shared: shared.collect() }
}

fn plan_domain(m: &Manifest, d: &DomainSpec, p: &mut DomainPlan) -> Result<(), Refusal> {
    p.module = prefixed(MODULE_PREFIX, &d.image)?;
    let (mut ports, mut shared) = (0, 0);
    for spec in &d.caps {
        // Both vectors hold MAX_CAPS, as many as a domain's caps: pushes fit.
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
        };
        let _ = p.grants.push(grant);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::manifest::{SharedSpec, MANIFEST_VERSION};

    fn name(s: &str) -> Name {
        Name::try_from(s).unwrap()
    }

    fn domain(n: &str, caps: &[CapSpec]) -> DomainSpec {
        DomainSpec {
            name: name(n),
            image: name(n),
            memory_kib: 512,
            restart: Restart::Never,
            caps: Vec::from_slice(caps).unwrap(),
        }
    }

    fn manifest(domains: &[DomainSpec]) -> Manifest {
        let mut shared = Vec::new();
        shared.push(SharedSpec { name: name("ring"), kib: 64 }).unwrap();
        shared.push(SharedSpec { name: name("mailbox"), kib: 4 }).unwrap();
        Manifest { version: MANIFEST_VERSION, domains: Vec::from_slice(domains).unwrap(), shared }
    }

    fn shared(n: &str, writable: bool) -> CapSpec {
        CapSpec::Shared { name: name(n), writable }
    }

    #[test]
    fn shared_regions_are_mapped_in_start_page_order() {
        let m = manifest(&[
            domain(
                "shm-a",
                &[CapSpec::Console, shared("mailbox", true), CapSpec::Domain { name: name("shm-b") }],
            ),
            domain("shm-b", &[shared("mailbox", true), shared("ring", false)]),
        ]);
        assert_eq!(m.validate(), Ok(()));
        let p = plan(&m);
        assert_eq!(p.shared[0], SharedPlan { name: name("ring"), pages: 16 });
        let a = &p.domains[0];
        assert_eq!((a.module.as_str(), a.quota_pages, a.refusal.clone()), ("module:shm-a", 128, None));
        assert_eq!(
            a.grants.as_slice(),
            [
                Grant::Shared {
                    cap: CapName::try_from("shared:mailbox").unwrap(),
                    region: 1,
                    writable: true,
                    va: layout::SHARED_BASE,
                },
                Grant::Domain { cap: CapName::try_from("domain:shm-b").unwrap(), domain: 1 },
            ]
        );
        let b = &p.domains[1];
        assert_eq!(b.grants[1], {
            let cap = CapName::try_from("shared:ring").unwrap();
            Grant::Shared { cap, region: 0, writable: false, va: layout::shared_va(1) }
        });
    }

    #[test]
    fn the_start_page_finds_what_the_plan_maps() {
        let m = manifest(&[domain(
            "a",
            &[shared("ring", false), CapSpec::IoPorts { base: 1, count: 2 }, shared("mailbox", true)],
        )]);
        let p = plan(&m);
        let mut start = ipc::boot::StartInfo::new("a", 1, 0, 0);
        start.push("self", 1, 1, 0);
        start.push("console", 2, 6, 0);
        for (i, g) in p.domains[0].grants.iter().enumerate() {
            start.push(g.cap(), 10 + i as u32, 3, 4096);
        }
        use user::start::Caps;
        for g in &p.domains[0].grants {
            if let Grant::Shared { cap, va, .. } = g {
                let name = cap.strip_prefix(SHARED_PREFIX).unwrap();
                assert_eq!(start.shared(name).map(|r| r.va), Some(*va));
            }
        }
        assert_eq!(p.domains[0].grants[1].cap(), "ioports");
    }

    #[test]
    fn duplicates_are_left_out_and_long_names_refused() {
        let m = manifest(&[
            domain(
                "a",
                &[
                    CapSpec::Irq { line: 4 },
                    shared("ring", true),
                    shared("ring", false),
                    CapSpec::IoPorts { base: 0x3f8, count: 8 },
                    CapSpec::IoPorts { base: 0x2f8, count: 8 },
                ],
            ),
            domain("a-domain-name-of-20ch", &[]),
            domain("b", &[CapSpec::Domain { name: name("a-domain-name-of-20ch") }]),
        ]);
        let p = plan(&m);
        let a = &p.domains[0];
        let duplicate = Note::Duplicate { cap: CapName::try_from("shared:ring").unwrap() };
        assert_eq!(a.notes.as_slice(), [duplicate]);
        assert_eq!(a.grants[0], Grant::Irq { cap: CapName::try_from("irq:4").unwrap(), line: 4 });
        assert_eq!(a.grants.len(), 4);
        assert_eq!(a.grants[3].cap(), "ioports.1");
        assert_eq!(p.domains[1].refusal, None);
        assert_eq!(
            p.domains[2].refusal.as_ref().map(|r| r.to_string()),
            Some("capability name `domain:a-domain-name-of-20ch` is longer than 24 bytes".into())
        );
        let unknown = manifest(&[domain("c", &[shared("nope", true)])]);
        assert_eq!(plan(&unknown).domains[0].refusal, Some(Refusal::Unknown { name: name("nope") }));
    }
}
