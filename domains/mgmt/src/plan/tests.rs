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
        image: name("guest-mods"),
        modules: (0..MAX_GUEST_MODULES).map(module).collect(),
        ..disk_guest("guest-mods", &[])
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
    let spec = DeviceSpec {
        pci,
        domain: name("blk"),
        model: Some(DeviceModel::VirtioBlk),
        unconfined_dma: true,
        intx: Some(20),
    };
    m.devices.push(spec).unwrap();
    let bare = PciAddress { bus: 1, device: 0x1f, function: 7 };
    m.devices
        .push(DeviceSpec { pci: bare, domain: name("blk"), model: None, unconfined_dma: false, intx: None })
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
            Grant::Irq { cap: "intx:00:04.0".try_into().unwrap(), line: 20 },
            Grant::Device { cap: "device:01:1f.7".try_into().unwrap(), pci: bare, ids: None, dma: false },
        ]
    );
    assert!(p.domains[1].grants.is_empty(), "the other domain gets none");
    // More than a domain starts with is refused, not cut short.
    let mut m = manifest(&[domain("blk", &[CapSpec::Irq { line: 1 }])]);
    for device in 0..MAX_CAPS as u8 {
        let pci = PciAddress { bus: 0, device, function: 0 };
        let _ = m.devices.push(DeviceSpec {
            pci,
            domain: name("blk"),
            model: None,
            unconfined_dma: false,
            intx: None,
        });
    }
    assert_eq!(plan(&m).domains[0].refusal, Some(Refusal::TooMany));
}

fn disk_guest(n: &str, disks: &[ipc::manifest::DiskSpec]) -> ipc::manifest::GuestSpec {
    ipc::manifest::GuestSpec {
        name: name(n),
        image: name("vmlinuz"),
        cmdline: heapless::String::new(),
        memory_kib: 4 << 10,
        vcpus: 1,
        restart: Restart::Never,
        weight: 256,
        cap_percent: 0,
        cpu: None,
        modules: heapless::Vec::new(),
        disks: Vec::from_slice(disks).unwrap(),
    }
}

fn blk_manifest(blk_caps: &[CapSpec]) -> Manifest {
    use ipc::manifest::{DeviceModel, DeviceSpec, PciAddress};
    let mut m = manifest(&[domain("hello", &[]), domain("blk", blk_caps)]);
    let pci = PciAddress { bus: 0, device: 4, function: 0 };
    let dev = DeviceSpec {
        pci,
        domain: name("blk"),
        model: Some(DeviceModel::VirtioBlk),
        unconfined_dma: true,
        intx: None,
    };
    m.devices.push(dev).unwrap();
    m
}

#[test]
fn each_guest_disk_gets_a_channel_to_its_blk_and_blk_its_regions() {
    use ipc::block::clients::{Client, Clients};
    use ipc::manifest::DiskSpec;
    let disk =
        |first_sector, sectors, read_only| DiskSpec { blk: name("blk"), first_sector, sectors, read_only };
    let mut m = blk_manifest(&[]);
    m.guests.push(disk_guest("a", &[disk(2048, Some(100), false), disk(4096, None, true)])).unwrap();
    m.guests.push(disk_guest("b", &[disk(8192, Some(8), false)])).unwrap();
    assert_eq!(m.validate(), Ok(()));
    let p = plan(&m);
    assert!(p.domains.iter().all(|d| d.refusal.is_none()), "{:?}", p.domains);
    // The manifest's 2 regions and 1 notification first, then per disk a
    // region and a notification, then blk's request notification.
    assert_eq!(p.shared.len(), 2 + 3);
    assert!(p.shared[2..].iter().all(|s| s.pages == 32), "128 KiB each");
    assert_eq!(p.shared[2].name, "a:vd0");
    assert_eq!(p.notifications.len(), 1 + 3 + 1);
    let rw = Rights::READ | Rights::WRITE;
    let blk = &p.domains[1];
    let notification =
        |c: &str, notification, rights| Grant::Notification { cap: cap(c), notification, rights };
    let shared = |c: &str, region, ordinal| Grant::Shared {
        cap: cap(c),
        region,
        writable: true,
        va: layout::shared_va(ordinal),
    };
    assert_eq!(
        blk.grants[1..7],
        [
            notification("notification:blk-req", 2, rw),
            shared("shared:guest-disk:0", 2, 0),
            notification("notification:guest-disk:0", 1, Rights::WRITE),
            shared("shared:guest-disk:1", 3, 1),
            notification("notification:guest-disk:1", 3, Rights::WRITE),
            shared("shared:guest-disk:2", 4, 2),
        ]
    );
    let Some(Grant::BlkClients { cap: c, clients }) = blk.grants.last() else { panic!("{:?}", blk.grants) };
    assert_eq!(c.as_str(), "blk-clients");
    let client = |g: &str, first_sector, sectors, read_only| Client {
        guest: name(g),
        first_sector,
        sectors,
        read_only,
    };
    let want = [
        client("a", 2048, Some(100), false),
        client("a", 4096, None, true),
        client("b", 8192, Some(8), false),
    ];
    assert_eq!(clients.list.as_slice(), want);
    let mut buf = [0u8; ipc::block::clients::CLIENTS_MAX];
    assert_eq!(Clients::decode(clients.encode(&mut buf).unwrap()).as_ref(), Ok(&**clients));
    let a = &p.domains[2];
    let from = a.grants.iter().position(|g| g.cap() == "shared:disk:0").unwrap();
    assert_eq!(
        a.grants[from..],
        [
            shared("shared:disk:0", 2, 0),
            notification("notification:disk:0", 1, rw),
            notification("notification:disk-req:0", 2, Rights::WRITE),
            shared("shared:disk:1", 3, 1),
            notification("notification:disk:1", 3, rw),
            notification("notification:disk-req:1", 2, Rights::WRITE),
        ]
    );
    let b = &p.domains[3];
    assert_eq!(b.grants.iter().filter(|g| g.cap().starts_with("shared:disk:")).count(), 1);
    assert!(b.grants.contains(&notification("notification:disk-req:0", 2, Rights::WRITE)));
    assert!(p.domains[0].grants.is_empty(), "a domain with no disks gets nothing");
}

#[test]
fn a_blk_waiting_on_the_system_files_blk_req_is_rung_there() {
    use ipc::manifest::DiskSpec;
    let waits = CapSpec::Notification { name: name("doorbell"), wait: true };
    let mut m = blk_manifest(&[waits]);
    m.notifications[0] = name("blk-req");
    m.domains[1].caps[0] = CapSpec::Notification { name: name("blk-req"), wait: true };
    let d = DiskSpec { blk: name("blk"), first_sector: 0, sectors: None, read_only: false };
    m.guests.push(disk_guest("a", &[d])).unwrap();
    assert_eq!(m.validate(), Ok(()));
    let p = plan(&m);
    assert_eq!(p.notifications.len(), 2, "blk-req and the guest's answers: no other");
    let a = &p.domains[2];
    let rung =
        Grant::Notification { cap: cap("notification:disk-req:0"), notification: 0, rights: Rights::WRITE };
    assert!(a.grants.contains(&rung), "{:?}", a.grants);
    assert_eq!(p.domains[1].grants.iter().filter(|g| g.cap() == "notification:blk-req").count(), 1);
    // Given blk-req only to signal, blk could not wait for its guests: refused.
    m.domains[1].caps[0] = CapSpec::Notification { name: name("blk-req"), wait: false };
    let p = plan(&m);
    assert!(p.domains[1].refusal.is_some() && p.domains[2].refusal.is_some());
}

#[test]
fn more_disks_than_a_blk_serves_are_refused_not_cut_short() {
    use ipc::block::clients::MAX_CLIENTS;
    use ipc::manifest::DiskSpec;
    let mut m = blk_manifest(&[]);
    let d = |i: u64| DiskSpec { blk: name("blk"), first_sector: i * 8, sectors: Some(8), read_only: true };
    for g in 0..=MAX_CLIENTS as u64 / 2 {
        m.guests.push(disk_guest(&format!("g{g}"), &[d(2 * g), d(2 * g + 1)])).unwrap();
    }
    assert_eq!(m.validate(), Ok(()));
    let p = plan(&m);
    assert_eq!(p.domains[1].refusal, Some(Refusal::TooMany));
    assert_eq!(p.domains[2].refusal, None, "the first guests' disks are planned");
    assert_eq!(p.domains.last().unwrap().refusal, Some(Refusal::TooMany));
}
