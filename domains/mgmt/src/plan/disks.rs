//! The channel of each guest's disk (issue 13): `mgmt` makes it as a
//! system file's `[[shared]]` and `[[notification]]`s would, between the
//! guest's VMM and the `blk` domain the disk lies on, and tells `blk` each
//! client's region in a page of its own (`ipc::block::clients`, whose
//! opening says what each side is given under which name).
//!
//! Per disk: a region of `ipc::block::REGION_BYTES` (both rings), mapped
//! writable into both; a notification the VMM waits on (READ|WRITE for
//! it, WRITE for `blk`); and `blk`'s request notification, WRITE for the
//! VMM: the one the system file gives `blk` to wait on as `blk-req`, else
//! one made here, given `blk` READ|WRITE. A domain that cannot take all
//! its grants is refused ([`Refusal::TooMany`]), as a system file naming
//! too many would be.

use core::fmt::Write;

use ipc::block::clients::{self, Client, Clients, BLK_REQUESTS, CLIENTS_CAP, MAX_CLIENTS};
use ipc::block::REGION_BYTES;
use ipc::manifest::{Manifest, Name};
use ipc::Rights;
use user::layout;

use super::{CapName, DomainPlan, Grant, Plan, Refusal, SharedPlan};

/// Wires every guest disk of `m` into `plan` (whose domains are the
/// manifest's, then a VMM per guest, in order).
pub(super) fn wire(m: &Manifest, plan: &mut Plan) {
    for (b, blk) in m.domains.iter().enumerate() {
        let mut list = Clients::new();
        let mut bell = None;
        for (g, guest) in m.guests.iter().enumerate() {
            for (k, d) in guest.disks.iter().enumerate().filter(|(_, d)| d.blk == blk.name) {
                let vmm = m.domains.len() + g;
                let client = Client {
                    guest: guest.name.clone(),
                    first_sector: d.first_sector,
                    sectors: d.sectors,
                    read_only: d.read_only,
                };
                if let Err(r) = connect(plan, (b, &mut bell), (vmm, k), list.list.len(), &guest.name) {
                    refuse(plan, vmm, r.clone());
                    refuse(plan, b, r);
                } else if list.list.push(client).is_err() {
                    refuse(plan, b, Refusal::TooMany);
                }
            }
        }
        if !list.list.is_empty() {
            let grant = Grant::BlkClients { cap: cap(CLIENTS_CAP), clients: alloc::boxed::Box::new(list) };
            if let Some(p) = plan.domains.get_mut(b) {
                if p.grants.push(grant).is_err() {
                    refuse(plan, b, Refusal::TooMany);
                }
            }
        }
    }
}

fn cap(s: &str) -> CapName {
    // Every name given here is below 32 bytes (ipc::block::clients tests).
    CapName::try_from(s).unwrap_or_default()
}

fn refuse(plan: &mut Plan, domain: usize, r: Refusal) {
    if let Some(p) = plan.domains.get_mut(domain) {
        p.refusal.get_or_insert(r);
    }
}

/// Makes the channel of the VMM `vmm`'s disk `k`, client `n` of `blk`,
/// whose request notification is `bell` once made.
fn connect(
    plan: &mut Plan,
    (blk, bell): (usize, &mut Option<usize>),
    (vmm, k): (usize, usize),
    n: usize,
    guest: &Name,
) -> Result<(), Refusal> {
    if n >= MAX_CLIENTS {
        return Err(Refusal::TooMany);
    }
    let mut name = Name::new();
    // Only logged: cut short if the guest's name is long.
    for c in guest.chars() {
        if name.push(c).is_err() || name.len() >= 20 {
            break;
        }
    }
    let _ = write!(name, ":vd{k}");
    let region = plan.shared.len();
    let pages = (REGION_BYTES as u64).div_ceil(layout::PAGE);
    plan.shared.push(SharedPlan { name: name.clone(), pages }).map_err(|_| Refusal::TooMany)?;
    let answers = plan.notifications.len();
    plan.notifications.push(name).map_err(|_| Refusal::TooMany)?;
    let requests = match *bell {
        Some(r) => r,
        None => {
            let r = requests(plan, blk)?;
            *bell = Some(r);
            r
        }
    };
    let rw = Rights::READ | Rights::WRITE;
    let vmm_grants = [
        shared(domain(plan, vmm)?, clients::vmm_region(k), region),
        Grant::Notification { cap: clients::vmm_bell(k), notification: answers, rights: rw },
        Grant::Notification { cap: clients::vmm_blk_bell(k), notification: requests, rights: Rights::WRITE },
    ];
    push(domain(plan, vmm)?, vmm_grants)?;
    let blk_grants = [
        shared(domain(plan, blk)?, clients::blk_region(n), region),
        Grant::Notification { cap: clients::blk_bell(n), notification: answers, rights: Rights::WRITE },
    ];
    push(domain(plan, blk)?, blk_grants)
}

fn domain(plan: &mut Plan, i: usize) -> Result<&mut DomainPlan, Refusal> {
    plan.domains.get_mut(i).ok_or(Refusal::TooMany)
}

/// The notification `blk` waits on: the system file's `blk-req` if `blk`
/// may wait on it, else one made now and given to it.
fn requests(plan: &mut Plan, blk: usize) -> Result<usize, Refusal> {
    let given = domain(plan, blk)?.grants.iter().find_map(|g| match g {
        Grant::Notification { cap, notification, rights }
            if cap == BLK_REQUESTS && rights.contains(Rights::READ) =>
        {
            Some(*notification)
        }
        _ => None,
    });
    if let Some(n) = given {
        return Ok(n);
    }
    if domain(plan, blk)?.grants.iter().any(|g| g.cap() == BLK_REQUESTS) {
        // The system file's, to signal only: blk could not wait on both.
        return Err(Refusal::Unknown { name: Name::try_from("blk-req").unwrap_or_default() });
    }
    let r = plan.notifications.len();
    plan.notifications.push(Name::try_from("blk-req").unwrap_or_default()).map_err(|_| Refusal::TooMany)?;
    let grant =
        Grant::Notification { cap: cap(BLK_REQUESTS), notification: r, rights: Rights::READ | Rights::WRITE };
    domain(plan, blk)?.grants.push(grant).map_err(|_| Refusal::TooMany)?;
    Ok(r)
}

/// Region `region` for `p`, mapped writable after its other shared regions.
fn shared(p: &DomainPlan, cap: CapName, region: usize) -> Grant {
    let ordinal = p.grants.iter().filter(|g| matches!(g, Grant::Shared { .. })).count();
    Grant::Shared { cap, region, writable: true, va: layout::shared_va(ordinal) }
}

fn push<const N: usize>(p: &mut DomainPlan, grants: [Grant; N]) -> Result<(), Refusal> {
    for g in grants {
        if p.grants.iter().any(|x| x.cap() == g.cap()) {
            return Err(Refusal::TooMany);
        }
        p.grants.push(g).map_err(|_| Refusal::TooMany)?;
    }
    Ok(())
}
