//! Making one domain of the plan: create it, set its CPU share, load its
//! image, give it a stack and its capabilities (`create`), give it the other
//! domains it may control (`grant_peer`), then write its start page and
//! start its thread on its CPU (`launch`); and taking it apart again
//! (`destroy`).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use ipc::boot::{StartInfo, STACK_TOP, START_INFO_VA};
use ipc::elf::{self, ElfError};
use ipc::event::DomainId;
use ipc::syscall::USER_MIN;
use ipc::{CapSlot, Error, ObjectType, Rights};
use mgmt::plan::{DomainPlan, Grant, ModuleName, Refusal};
use mgmt::report::Report;
use user::{layout, sys, Caps};

use crate::modules::{ModuleError, Modules};

/// Why a domain could not be started.
#[derive(Clone, Debug)]
pub enum Failure {
    Refused(Refusal),
    Module {
        module: ModuleName,
        error: ModuleError,
    },
    Image {
        module: ModuleName,
        error: ElfError,
    },
    /// A syscall failed while doing `what`.
    Sys {
        what: &'static str,
        error: Error,
    },
    /// Needed, but `mgmt` could not make it (logged when it tried).
    Unavailable(&'static str),
    StartPageFull,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Refused(r) => write!(f, "{r}"),
            Failure::Module { module, error } => write!(f, "`{module}`: {error}"),
            Failure::Image { module, error } => write!(f, "`{module}` is not a good image: {error:?}"),
            Failure::Sys { what, error } => write!(f, "{what}: {error:?}"),
            Failure::Unavailable(what) => write!(f, "{what} is not available"),
            Failure::StartPageFull => write!(f, "too many capabilities for the start page"),
        }
    }
}

pub(crate) fn failed(what: &'static str) -> impl FnOnce(Error) -> Failure {
    move |error| Failure::Sys { what, error }
}

/// What `mgmt` has to make domains with, some of it made once for all.
pub struct Env {
    /// `mgmt`'s own start page (its interrupt lines, `irq:<line>`).
    pub start: &'static StartInfo,
    pub console: CapSlot,
    /// All I/O ports, to make the domains' ranges from.
    pub ioports: Option<CapSlot>,
    pub tsc_per_ms: u64,
    /// The machine's wall-clock time, read once at start, for the guests'
    /// clocks (`guest::wall_clock`).
    pub wall: Option<ipc::guest::WallClock>,
    pub modules: Modules,
    /// The plan's shared regions and their sizes in bytes (None: could not
    /// be made).
    pub regions: Vec<(Option<CapSlot>, u64)>,
    /// The port ranges made for (domain, grant index).
    pub ports: Vec<((usize, usize), CapSlot)>,
    /// The plan's endpoints and notifications, owned by `mgmt` (None: could
    /// not be made).
    pub endpoints: Vec<Option<CapSlot>>,
    pub notifications: Vec<Option<CapSlot>>,
    /// mgmt's supervision endpoint, on which VMMs hand over their guests
    /// (None: could not be made).
    pub supervisor: Option<CapSlot>,
    /// mgmt's own domain and notification.
    pub this: CapSlot,
    pub bell: CapSlot,
    /// Each guest's console, by plan index (None: not a guest, or not yet
    /// started).
    pub consoles: Vec<Option<crate::console::GuestConsole>>,
}

/// One start of a domain.
pub struct Instance {
    /// `mgmt`'s capability to it.
    pub domain: CapSlot,
    pub id: DomainId,
    entry: u64,
    /// Capabilities `mgmt` holds for it, deleted when it is destroyed.
    held: Vec<CapSlot>,
    /// The guest a VMM handed over (`ipc::guest::HANDOVER`), if any.
    pub guest: Option<CapSlot>,
    info: Box<StartInfo>,
}

/// Creates domain `index` of the plan, loads its image and gives it all but
/// the other domains; its thread does not run yet.
pub fn create(env: &mut Env, plan: &DomainPlan, index: usize, generation: u64) -> Result<Instance, Failure> {
    if let Some(r) = &plan.refusal {
        return Err(Failure::Refused(r.clone()));
    }
    let module = || plan.module.clone();
    let file = env.modules.get(&plan.module).map_err(|error| Failure::Module { module: module(), error })?;
    let image = elf::parse(file, USER_MIN..layout::IMAGE_END)
        .map_err(|error| Failure::Image { module: module(), error })?;
    let (domain, id) = sys::domain_create(plan.quota_pages).map_err(failed("creating the domain"))?;
    let info = Box::new(StartInfo::new(&plan.name, plan.quota_pages, generation, env.tsc_per_ms));
    let mut inst = Instance { domain, id, entry: image.entry, held: Vec::new(), guest: None, info };
    let built = sched(plan, &inst)
        .and_then(|()| load(env, file, plan, &image, &mut inst))
        .and_then(|()| give(env, plan, index, &mut inst));
    match built {
        Ok(()) => Ok(inst),
        Err(f) => {
            destroy(inst);
            Err(f)
        }
    }
}

/// Gives the domain its weight and cap, if the plan's are not the defaults.
fn sched(plan: &DomainPlan, inst: &Instance) -> Result<(), Failure> {
    match plan.sched {
        Some((weight, cap)) => {
            sys::sched_set(inst.domain, weight, cap).map_err(failed("setting its CPU share"))
        }
        None => Ok(()),
    }
}

/// Loads the image's segments, each into memory of its own owned by the
/// instance, and maps its stack.
fn load(
    env: &Env,
    file: &[u8],
    plan: &DomainPlan,
    image: &elf::Image,
    inst: &mut Instance,
) -> Result<(), Failure> {
    for seg in &image.segments {
        let pages = (seg.pages().end - seg.pages().start) / layout::PAGE;
        let mem = memory(inst, pages)?;
        let at = (seg.vaddr % layout::PAGE) as usize;
        // elf::parse checked that the file bytes lie in the file, and the
        // segment within its pages: the lookups cannot fail.
        let src = file.get(seg.offset as usize..(seg.offset + seg.filesz) as usize);
        let src =
            src.ok_or(Failure::Image { module: plan.module.clone(), error: ElfError::SegmentOutsideFile })?;
        let copy = |m: &mut [u8]| m.get_mut(at..at + src.len()).map(|dst| dst.copy_from_slice(src));
        let copied = env.modules.fill(mem, pages, copy).map_err(failed("loading the image"))?;
        copied.ok_or(Failure::Image { module: plan.module.clone(), error: ElfError::SegmentOutOfRange })?;
        let mut rights = Rights::READ;
        rights.set(Rights::WRITE, seg.access.write);
        rights.set(Rights::EXEC, seg.access.exec);
        sys::memory_map(mem, inst.domain, seg.pages().start, rights).map_err(failed("mapping the image"))?;
    }
    let stack = memory(inst, layout::pages(layout::STACK_SIZE))?;
    sys::memory_map(stack, inst.domain, layout::STACK_BOTTOM, Rights::READ | Rights::WRITE)
        .map_err(failed("mapping the stack"))
}

/// Gives the instance `self`, the console and what its plan names, but
/// the other domains.
fn give(env: &mut Env, plan: &DomainPlan, index: usize, inst: &mut Instance) -> Result<(), Failure> {
    let this_domain =
        sys::cap_grant(inst.domain, inst.domain, Rights::CONTROL).map_err(failed("granting self"))?;
    push(inst, "self", this_domain, ObjectType::Domain, 0)?;
    let console =
        sys::cap_grant(inst.domain, env.console, Rights::WRITE).map_err(failed("granting the console"))?;
    push(inst, "console", console, ObjectType::Console, 0)?;
    for (g, grant) in plan.grants.iter().enumerate() {
        match grant {
            Grant::IoPorts { cap, base, count } => {
                let ports = ports(env, (index, g), *base, *count)?;
                let rights = Rights::READ | Rights::WRITE;
                let slot = sys::cap_grant(inst.domain, ports, rights).map_err(failed("granting ports"))?;
                push(inst, cap, slot, ObjectType::IoPorts, u64::from(*count))?;
            }
            Grant::Shared { cap, region, writable, va } => {
                let (Some(mem), bytes) = env.regions.get(*region).copied().unwrap_or((None, 0)) else {
                    return Err(Failure::Unavailable("a shared region"));
                };
                let mut rights = Rights::READ;
                rights.set(Rights::WRITE, *writable);
                sys::memory_map(mem, inst.domain, *va, rights).map_err(failed("mapping a shared region"))?;
                let slot =
                    sys::cap_grant(inst.domain, mem, rights).map_err(failed("granting a shared region"))?;
                push(inst, cap, slot, ObjectType::Memory, bytes)?;
            }
            Grant::Irq { cap, line } => {
                // mgmt's own `irq:<line>`, under the grant's name (a
                // device's INTx line is `intx:BB:DD.F` to its driver).
                let line = env.start.slot(&alloc::format!("{}{line}", user::start::IRQ_PREFIX));
                let line = line.ok_or(Failure::Unavailable("the interrupt line"))?;
                let slot =
                    sys::cap_grant(inst.domain, line, Rights::CONTROL).map_err(failed("granting an IRQ"))?;
                push(inst, cap, slot, ObjectType::Irq, 0)?;
            }
            Grant::Endpoint { cap, endpoint, rights, badge } => {
                let ep = env.endpoints.get(*endpoint).copied().flatten();
                let ep = ep.ok_or(Failure::Unavailable("an endpoint"))?;
                let slot = channel(inst, ep, *rights, *badge).map_err(failed("granting an endpoint"))?;
                push(inst, cap, slot, ObjectType::Endpoint, 0)?;
            }
            Grant::Notification { cap, notification, rights } => {
                let n = env.notifications.get(*notification).copied().flatten();
                let n = n.ok_or(Failure::Unavailable("a notification"))?;
                let slot = channel(inst, n, *rights, 0).map_err(failed("granting a notification"))?;
                push(inst, cap, slot, ObjectType::Notification, 0)?;
            }
            Grant::Module { cap, module } => crate::guest::give_module(env, inst, cap, module)?,
            Grant::GuestConfig { cap, config } => crate::guest::give_config(env, inst, cap, config)?,
            Grant::BlkClients { cap, clients } => crate::guest::give_clients(env, inst, cap, clients)?,
            Grant::Supervisor { cap } => {
                let ep = env.supervisor.ok_or(Failure::Unavailable("mgmt's supervision endpoint"))?;
                let badge = index as u64 + 1;
                let slot =
                    channel(inst, ep, Rights::WRITE, badge).map_err(failed("granting the supervisor"))?;
                push(inst, cap, slot, ObjectType::Endpoint, 0)?;
            }
            Grant::Console { cap } => crate::console::give(env, inst, index, cap)?,
            Grant::Device { cap, pci, ids, dma } => {
                let slot = crate::device::give(env, inst, &plan.name, *pci, *ids, *dma)?;
                push(inst, cap, slot, ObjectType::Device, 0)?;
            }
            // Given once every domain exists: see grant_peer.
            Grant::Domain { .. } => {}
        }
    }
    Ok(())
}

/// Gives the instance `mgmt`'s endpoint or notification `obj` with
/// `rights`, through a copy minted with `badge` if that is not 0 (the copy
/// is `mgmt`'s only for the moment it takes).
fn channel(inst: &Instance, obj: CapSlot, rights: Rights, badge: u64) -> Result<CapSlot, Error> {
    if badge == 0 {
        return sys::cap_grant(inst.domain, obj, rights);
    }
    let minted = sys::cap_mint(obj, rights | Rights::GRANT, badge)?;
    let granted = sys::cap_grant(inst.domain, minted, rights);
    let _ = sys::cap_delete(minted);
    granted
}

impl Instance {
    /// Keeps `slot` with the instance: deleted when it is destroyed.
    pub fn hold(&mut self, slot: CapSlot) {
        self.held.push(slot);
    }
}

/// A memory object of `pages` owned by (and charged to) the instance.
pub(crate) fn memory(inst: &mut Instance, pages: u64) -> Result<CapSlot, Failure> {
    let mem = sys::memory_create(inst.domain, pages).map_err(failed("making its memory"))?;
    inst.held.push(mem);
    Ok(mem)
}

pub(crate) fn push(
    inst: &mut Instance,
    name: &str,
    slot: CapSlot,
    kind: ObjectType,
    size: u64,
) -> Result<(), Failure> {
    if inst.info.push(name, slot.0, kind as u32, size) {
        Ok(())
    } else {
        Err(Failure::StartPageFull)
    }
}

/// The port range for grant `key` (domain, grant index), made on first use
/// from `mgmt`'s `ioports` and kept for the domain's restarts.
fn ports(env: &mut Env, key: (usize, usize), base: u16, count: u16) -> Result<CapSlot, Failure> {
    if let Some((_, slot)) = env.ports.iter().find(|(k, _)| *k == key) {
        return Ok(*slot);
    }
    let all = env.ioports.ok_or(Failure::Unavailable("`ioports`"))?;
    let slot = sys::ioports_create(all, base, count).map_err(failed("making a port range"))?;
    env.ports.push((key, slot));
    Ok(slot)
}

/// Gives the instance control of another domain, as `cap`.
pub fn grant_peer(inst: &mut Instance, cap: &str, peer: CapSlot) -> Result<(), Failure> {
    let slot = sys::cap_grant(inst.domain, peer, Rights::CONTROL).map_err(failed("granting a domain"))?;
    push(inst, cap, slot, ObjectType::Domain, 0)
}

/// Writes the start page, maps it read-only and starts the first thread on
/// `cpu` if given (from its first instruction: a VMM's vCPU then lands there
/// too); if that CPU is not there, the thread runs where the kernel puts it,
/// and a line says so.
pub fn launch(env: &Env, inst: &mut Instance, cpu: Option<u16>) -> Result<(), Failure> {
    let page = memory(inst, 1)?;
    let info = &*inst.info;
    env.modules
        .fill(page, 1, |bytes| {
            let dst = bytes.as_mut_ptr().cast::<StartInfo>();
            // SAFETY: `bytes` is a whole page (mapped page aligned), large
            // and aligned enough for a StartInfo (checked at compile time in
            // ipc::boot), and ours alone while `fill` runs.
            unsafe { dst.write(*info) }
        })
        .map_err(failed("writing the start page"))?;
    sys::memory_map(page, inst.domain, START_INFO_VA, Rights::READ)
        .map_err(failed("mapping the start page"))?;
    let (entry, start) = (inst.entry, START_INFO_VA);
    // SAFETY: the thread runs in the new domain, not in mgmt (so below too).
    let placed = unsafe { sys::thread_create(inst.domain, entry, STACK_TOP, start, cpu) };
    let thread = match (placed, cpu) {
        (Err(error @ Error::NotSupported), Some(cpu)) => {
            log::warn!("{}", Report::CpuUnavailable { name: inst.info.name(), cpu, error });
            // SAFETY: as above.
            unsafe { sys::thread_create(inst.domain, entry, STACK_TOP, start, None) }
        }
        (r, _) => r,
    }
    .map_err(failed("starting its thread"))?;
    inst.held.push(thread);
    Ok(())
}

/// Destroys the instance and everything it owned, and drops the
/// capabilities `mgmt` held for it.
pub fn destroy(inst: Instance) {
    if let Err(e) = sys::domain_destroy(inst.domain) {
        log::warn!("warning: cannot destroy {} (domain {:#x}): {e:?}", inst.info.name(), inst.id.0);
    }
    // The kernel may have emptied these slots already (their objects died
    // with the domain): then deleting them finds them stale, which is fine.
    for slot in inst.held.into_iter().chain(inst.guest).chain([inst.domain]) {
        let _ = sys::cap_delete(slot);
    }
}
