//! What the VMM of a guest is given beyond what every domain gets: the
//! guest's kernel image and modules (`mgmt`'s boot modules or uploaded
//! images, read-only) and its configuration (a page `mgmt` fills with the
//! postcard `GuestConfig`, read-only, the capability's size the encoding's
//! length); and what a `blk` domain is given about the guests' disks it
//! serves (`ipc::block::clients`), likewise.

use ipc::block::clients::{Clients, CLIENTS_MAX};
use ipc::guest::{GuestConfig, WallClock, CONFIG_MAX};
use ipc::syscall::Width;
use ipc::{CapSlot, ObjectType, Rights};
use user::sys;

use crate::modules::ModuleError;
use crate::spawn::{failed, memory, push, Env, Failure, Instance};

/// Gives the instance `mgmt`'s boot module or uploaded image `module`
/// (`module:<image>`) as `cap`.
pub fn give_module(env: &Env, inst: &mut Instance, cap: &str, module: &str) -> Result<(), Failure> {
    let missing =
        || Failure::Module { module: module.try_into().unwrap_or_default(), error: ModuleError::Missing };
    let (memory, size) = env.modules.image(module).ok_or_else(missing)?;
    let slot = sys::cap_grant(inst.domain, memory, Rights::READ)
        .map_err(failed("granting a guest's kernel image or module"))?;
    push(inst, cap, slot, ObjectType::Memory, size)
}

/// Gives the instance a page holding `config`, with the machine's wall
/// clock (`env.wall`), as `cap`.
pub fn give_config(env: &Env, inst: &mut Instance, cap: &str, config: &GuestConfig) -> Result<(), Failure> {
    let mut buf = [0u8; CONFIG_MAX];
    let config = GuestConfig { wall: env.wall, ..config.clone() };
    let bytes = config.encode(&mut buf).map_err(failed("encoding the guest's configuration"))?;
    give_page(env, inst, cap, bytes, "the guest's configuration")
}

/// Gives a `blk` instance a page holding `clients` as `cap`.
pub fn give_clients(env: &Env, inst: &mut Instance, cap: &str, clients: &Clients) -> Result<(), Failure> {
    let mut buf = [0u8; CLIENTS_MAX];
    let bytes = clients.encode(&mut buf).map_err(failed("encoding the guests' disks"))?;
    give_page(env, inst, cap, bytes, "the guests' disks")
}

/// Gives the instance a page of its own holding `bytes`, read-only, as
/// `cap` (whose size is their length).
fn give_page(
    env: &Env,
    inst: &mut Instance,
    cap: &str,
    bytes: &[u8],
    what: &'static str,
) -> Result<(), Failure> {
    let len = bytes.len();
    let page = memory(inst, 1)?;
    env.modules.fill(page, 1, |dst| dst[..len].copy_from_slice(bytes)).map_err(failed(what))?;
    let slot = sys::cap_grant(inst.domain, page, Rights::READ).map_err(failed(what))?;
    push(inst, cap, slot, ObjectType::Memory, len as u64)
}

/// The machine's wall-clock time from its CMOS clock (`mgmt::clock`),
/// through a port range made from `ioports` for the read and deleted
/// after; None (and said why) if there is none to read.
pub fn wall_clock(ioports: Option<CapSlot>) -> Option<WallClock> {
    use mgmt::clock::{DATA, INDEX};
    let ports = sys::ioports_create(ioports?, INDEX, 2)
        .map_err(|e| log::warn!("warning: no CMOS clock ({e:?}): guests' clocks start at 1970"))
        .ok()?;
    let reg = |r: u8| {
        sys::ioport_write(ports, INDEX, Width::Byte, u32::from(r)).ok()?;
        sys::ioport_read(ports, DATA, Width::Byte).ok().map(|v| v as u8)
    };
    let wall = mgmt::clock::read(reg, user::arch::rdtsc);
    let _ = sys::cap_delete(ports);
    match wall {
        Some(w) => log::info!(
            "clock: {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC by the CMOS clock: the guests' clocks start there",
            w.year,
            w.month,
            w.day,
            w.hour,
            w.minute,
            w.second
        ),
        None => log::warn!("warning: the CMOS clock gives no date: guests' clocks start at 1970"),
    }
    wall
}
