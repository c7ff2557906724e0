//! A guest of the manifest as a domain: its VMM (the boot module
//! [`VMM_IMAGE`]), named after the guest, with the RAM and more in its
//! quota ([`vmm_quota_kib`]), the guest's restart policy, CPU share and
//! CPU, and capabilities: the guest's kernel image as `module:guest`, its
//! [`GuestConfig`] as `guest-config`, and its Multiboot modules (boot
//! modules too) as `guest-module:<i>` ([`module_cap`]), and its console ([`Grant::Console`]). The VMM sets the guest's CPU
//! share on the guest domain it creates, whose vCPUs are charged to it;
//! `mgmt` sets the same on the VMM domain. Its disks go into the
//! configuration as the manifest gives them, and their channels to the
//! `blk` domains are added after ([`super::disks`]).

use heapless::{String, Vec};
use ipc::guest::{
    module_cap, vmm_quota_kib, GuestConfig, CONFIG_CAP, CONSOLE_CAP, GUEST_CONFIG_VERSION, MODULE_CAP,
    SUPERVISOR_CAP, VMM_IMAGE,
};
use ipc::manifest::{GuestSpec, Name};
use user::start::MODULE_PREFIX;

use super::{prefixed, CapName, DomainPlan, Grant, Refusal, DEFAULT_WEIGHT};

/// Plans the VMM of `g` (from a manifest `Manifest::decode` validated).
pub(super) fn plan(g: &GuestSpec) -> DomainPlan {
    let sched = (g.weight, g.cap_percent);
    let mut p = DomainPlan {
        name: g.name.clone(),
        module: String::new(),
        quota_pages: u64::from(vmm_quota_kib(g.memory_kib)).div_ceil(4),
        restart: g.restart,
        sched: Some(sched).filter(|&s| s != (DEFAULT_WEIGHT, 0)),
        cpu: g.cpu,
        grants: Vec::new(),
        notes: Vec::new(),
        refusal: None,
    };
    if let Err(r) = grants(g, &mut p) {
        p.refusal = Some(r);
    }
    p
}

fn grants(g: &GuestSpec, p: &mut DomainPlan) -> Result<(), Refusal> {
    let vmm = Name::try_from(VMM_IMAGE).map_err(|_| Refusal::Unknown { name: Name::new() })?;
    p.module = prefixed(MODULE_PREFIX, &vmm)?;
    let config = GuestConfig {
        version: GUEST_CONFIG_VERSION,
        name: g.name.clone(),
        memory_kib: g.memory_kib,
        cmdline: g.cmdline.clone(),
        vcpus: g.vcpus,
        weight: g.weight,
        cap_percent: g.cap_percent,
        modules: g.modules.iter().map(|m| m.string.clone()).collect(),
        // Set at each start, when the VMM is given it (`guest::give_config`).
        wall: None,
        disks: g.disks.clone(),
    };
    let cap = |s: &str| CapName::try_from(s).map_err(|_| Refusal::Unknown { name: Name::new() });
    let module = Grant::Module { cap: cap(MODULE_CAP)?, module: prefixed(MODULE_PREFIX, &g.image)? };
    let config = Grant::GuestConfig { cap: cap(CONFIG_CAP)?, config: alloc::boxed::Box::new(config) };
    // 4 + MAX_GUEST_MODULES grants fit in MAX_GRANTS (a test says so).
    let _ = p.grants.push(module);
    let _ = p.grants.push(config);
    for (i, m) in g.modules.iter().enumerate() {
        let name = module_cap(i);
        let _ =
            p.grants.push(Grant::Module { cap: cap(&name)?, module: prefixed(MODULE_PREFIX, &m.module)? });
    }
    let _ = p.grants.push(Grant::Supervisor { cap: cap(SUPERVISOR_CAP)? });
    let _ = p.grants.push(Grant::Console { cap: cap(CONSOLE_CAP)? });
    Ok(())
}
