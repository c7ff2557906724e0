//! Host tests of the plan: what each domain is given, under which names.

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
        weight: DEFAULT_WEIGHT,
        cap_percent: 0,
        cpu: None,
    }
}

fn manifest(domains: &[DomainSpec]) -> Manifest {
    let mut shared = Vec::new();
    shared.push(SharedSpec { name: name("ring"), kib: 64 }).unwrap();
    shared.push(SharedSpec { name: name("mailbox"), kib: 4 }).unwrap();
    let endpoints = Vec::from_slice(&[name("pp"), name("log")]).unwrap();
    let notifications = Vec::from_slice(&[name("doorbell")]).unwrap();
    Manifest {
        version: MANIFEST_VERSION,
        domains: Vec::from_slice(domains).unwrap(),
        shared,
        endpoints,
        notifications,
        guests: Vec::new(),
        devices: Vec::new(),
    }
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
        domain("a-domain-name-of-24chars", &[]),
        domain("b", &[CapSpec::Domain { name: name("a-domain-name-of-24chars") }]),
        domain("c", &[CapSpec::Notification { name: name("a-notification-of-24ch"), wait: true }]),
    ]);
    let p = plan(&m);
    let a = &p.domains[0];
    let duplicate = Note::Duplicate { cap: CapName::try_from("shared:ring").unwrap() };
    assert_eq!(a.notes.as_slice(), [duplicate]);
    assert_eq!(a.grants[0], Grant::Irq { cap: CapName::try_from("irq:4").unwrap(), line: 4 });
    assert_eq!(a.grants.len(), 4);
    assert_eq!(a.grants[3].cap(), "ioports.1");
    assert_eq!(p.domains[1].refusal, None);
    assert_eq!(p.domains[2].refusal, None, "`domain:` and any domain name fit");
    assert_eq!(
        p.domains[3].refusal.as_ref().map(|r| r.to_string()),
        Some("capability name `notification:a-notification-of-24ch` is longer than 32 bytes".into())
    );
    let unknown = manifest(&[domain("c", &[shared("nope", true)])]);
    assert_eq!(plan(&unknown).domains[0].refusal, Some(Refusal::Unknown { name: name("nope") }));
}

fn cap(s: &str) -> CapName {
    CapName::try_from(s).unwrap()
}

#[test]
fn servers_clients_waiters_and_signallers_get_their_rights() {
    let ep = |n: &str, server, badge| CapSpec::Endpoint { name: name(n), server, badge };
    let ntfn = |wait| CapSpec::Notification { name: name("doorbell"), wait };
    let m = manifest(&[
        domain("server", &[ep("pp", true, 0), ntfn(true), CapSpec::Console]),
        domain("client", &[ep("pp", false, 7), ep("log", false, 0), ntfn(false), ep("pp", true, 0)]),
    ]);
    assert_eq!(m.validate(), Ok(()));
    let p = plan(&m);
    assert_eq!(p.endpoints.as_slice(), [name("pp"), name("log")]);
    assert_eq!(p.notifications.as_slice(), [name("doorbell")]);
    let rw = Rights::READ | Rights::WRITE;
    assert_eq!(
        p.domains[0].grants.as_slice(),
        [
            Grant::Endpoint { cap: cap("endpoint:pp"), endpoint: 0, rights: rw, badge: 0 },
            Grant::Notification { cap: cap("notification:doorbell"), notification: 0, rights: rw },
        ]
    );
    assert_eq!(
        p.domains[1].grants.as_slice(),
        [
            Grant::Endpoint { cap: cap("endpoint:pp"), endpoint: 0, rights: Rights::WRITE, badge: 7 },
            Grant::Endpoint { cap: cap("endpoint:log"), endpoint: 1, rights: Rights::WRITE, badge: 0 },
            Grant::Notification { cap: cap("notification:doorbell"), notification: 0, rights: Rights::WRITE },
        ]
    );
    assert_eq!(p.domains[1].notes.as_slice(), [Note::Duplicate { cap: cap("endpoint:pp") }]);
    let mut start = ipc::boot::StartInfo::new("client", 1, 0, 0);
    for (i, g) in p.domains[1].grants.iter().enumerate() {
        assert!(start.push(g.cap(), i as u32, 7, 0));
    }
    use user::start::Caps;
    assert_eq!(start.endpoint("log"), Some(ipc::CapSlot(1)));
    assert_eq!(start.notification("doorbell"), Some(ipc::CapSlot(2)));
    let unknown = manifest(&[domain("c", &[ep("nope", false, 1)])]);
    assert_eq!(plan(&unknown).domains[0].refusal, Some(Refusal::Unknown { name: name("nope") }));
}

#[test]
fn only_settings_other_than_the_defaults_are_made() {
    let mut heavy = domain("heavy", &[]);
    (heavy.weight, heavy.cpu) = (512, Some(1));
    let mut capped = domain("capped", &[]);
    capped.cap_percent = 25;
    let m = manifest(&[heavy, capped, domain("plain", &[])]);
    let p = plan(&m);
    let got: std::vec::Vec<_> = p.domains.iter().map(|d| (d.sched, d.cpu)).collect();
    assert_eq!(got, [(Some((512, 0)), Some(1)), (Some((256, 25)), None), (None, None)]);
}

#[test]
fn a_guest_becomes_its_vmm_after_the_domains() {
    use ipc::guest::GuestConfig;
    use ipc::manifest::GuestSpec;
    let mut m = manifest(&[domain("hello", &[])]);
    let spec = GuestSpec {
        name: name("guest-hello"),
        image: name("guest-hello"),
        cmdline: heapless::String::try_from("console=ttyS0").unwrap(),
        memory_kib: 8 << 10,
        vcpus: 1,
        restart: Restart::Never,
        weight: 512,
        cap_percent: 0,
        cpu: Some(0),
        modules: heapless::Vec::new(),
        disks: heapless::Vec::new(),
    };
    m.guests.push(spec).unwrap();
    assert_eq!(m.validate(), Ok(()));
    let p = plan(&m);
    assert_eq!(p.domains.len(), 2);
    let vmm = &p.domains[1];
    assert_eq!(
        (vmm.name.as_str(), vmm.module.as_str(), vmm.refusal.clone()),
        ("guest-hello", "module:vmm", None)
    );
    assert_eq!(vmm.quota_pages, (8192 + 4096 + 64) / 4, "RAM, 4 MiB and 1/128 of the RAM");
    assert_eq!((vmm.sched, vmm.cpu, vmm.restart), (Some((512, 0)), Some(0), Restart::Never));
    assert_eq!(vmm.grants[0], Grant::Module { cap: cap("module:guest"), module: cap("module:guest-hello") });
    let Grant::GuestConfig { cap: c, config } = &vmm.grants[1] else { panic!("{:?}", vmm.grants) };
    assert_eq!(c.as_str(), "guest-config");
    let mut buf = [0u8; ipc::guest::CONFIG_MAX];
    let bytes = config.encode(&mut buf).unwrap().to_vec();
    let back = GuestConfig::decode(&bytes).unwrap();
    assert_eq!(
        (back.name.as_str(), back.memory_kib, back.cmdline.as_str()),
        ("guest-hello", 8192, "console=ttyS0")
    );
    assert_eq!((back.weight, back.cap_percent, back.vcpus), (512, 0, 1));
}

#[test]
fn a_guests_modules_are_granted_in_order() {
    use ipc::guest::{GuestConfig, MAX_GUEST_MODULES};
    use ipc::manifest::{GuestModule, GuestSpec};
    let mut m = manifest(&[domain("hello", &[])]);
    let module = |i: usize| GuestModule {
        module: name(&format!("guest-module.{i}")),
        string: heapless::String::try_from(format!("string {i}").as_str()).unwrap(),
    };
    let spec = GuestSpec {
        name: name("guest-mods"),
        image: name("guest-mods"),
        cmdline: heapless::String::new(),
        memory_kib: 4 << 10,
        vcpus: 1,
        restart: Restart::Never,
        weight: 256,
        cap_percent: 0,
        cpu: None,
        modules: (0..MAX_GUEST_MODULES).map(module).collect(),
        disks: heapless::Vec::new(),
    };
    m.guests.push(spec).unwrap();
    assert_eq!(m.validate(), Ok(()));
    let p = plan(&m);
    let vmm = &p.domains[1];
    assert_eq!(vmm.refusal, None);
    assert_eq!(vmm.grants.len(), 4 + MAX_GUEST_MODULES, "every module fits the start page's capabilities");
    assert_eq!(vmm.grants[2 + MAX_GUEST_MODULES], Grant::Supervisor { cap: cap("endpoint:mgmt") });
    assert_eq!(vmm.grants[3 + MAX_GUEST_MODULES], Grant::Console { cap: cap("console-rings") });
    for i in 0..MAX_GUEST_MODULES {
        let want = Grant::Module {
            cap: cap(&format!("guest-module:{i}")),
            module: cap(&format!("module:guest-module.{i}")),
        };
        assert_eq!(vmm.grants[2 + i], want);
    }
    let Grant::GuestConfig { config, .. } = &vmm.grants[1] else { panic!("{:?}", vmm.grants) };
    let mut buf = [0u8; ipc::guest::CONFIG_MAX];
    let back = GuestConfig::decode(config.encode(&mut buf).unwrap()).unwrap();
    let strings: std::vec::Vec<_> = back.modules.iter().map(|s| s.as_str()).collect();
    assert_eq!(strings, ["string 0", "string 1", "string 2", "string 3"]);
}

#[test]
fn devices_go_to_the_domain_they_name_under_their_address() {
    use ipc::manifest::{DeviceModel, DeviceSpec, PciAddress};
    let mut m = manifest(&[domain("blk", &[CapSpec::Console]), domain("other", &[])]);
    let pci = PciAddress { bus: 0, device: 4, function: 0 };
    let spec =
        DeviceSpec { pci, domain: name("blk"), model: Some(DeviceModel::VirtioBlk), unconfined_dma: true };
    m.devices.push(spec).unwrap();
    let bare = PciAddress { bus: 1, device: 0x1f, function: 7 };
    m.devices
        .push(DeviceSpec { pci: bare, domain: name("blk"), model: None, unconfined_dma: false })
        .unwrap();
    assert_eq!(m.validate(), Ok(()));
    let p = plan(&m);
    assert_eq!(
        p.domains[0].grants.as_slice(),
        [
            Grant::Device {
                cap: "device:00:04.0".try_into().unwrap(),
                pci,
                ids: Some((0x1af4, 0x1042)),
                dma: true
            },
            Grant::Device { cap: "device:01:1f.7".try_into().unwrap(), pci: bare, ids: None, dma: false },
        ]
    );
    assert!(p.domains[1].grants.is_empty(), "the other domain gets none");
    // More than a domain starts with is refused, not cut short.
    let mut m = manifest(&[domain("blk", &[CapSpec::Irq { line: 1 }])]);
    for device in 0..MAX_CAPS as u8 {
        let pci = PciAddress { bus: 0, device, function: 0 };
        let _ = m.devices.push(DeviceSpec { pci, domain: name("blk"), model: None, unconfined_dma: false });
    }
    assert_eq!(plan(&m).domains[0].refusal, Some(Refusal::TooMany));
}
