//! What the VMM of a guest is given beyond what every domain gets: the
//! guest's kernel image and modules (`mgmt`'s boot modules, read-only) and its
//! configuration (a page `mgmt` fills with the postcard `GuestConfig`,
//! read-only, the capability's size the encoding's length).

use ipc::guest::{GuestConfig, CONFIG_MAX};
use ipc::{CapSlot, ObjectType, Rights};
use user::sys;

use crate::modules::ModuleError;
use crate::spawn::{failed, memory, push, Env, Failure, Instance};

/// Gives the instance `mgmt`'s boot module `module` (`module:<image>`) as `cap`.
pub fn give_module(env: &Env, inst: &mut Instance, cap: &str, module: &str) -> Result<(), Failure> {
    let missing =
        || Failure::Module { module: module.try_into().unwrap_or_default(), error: ModuleError::Missing };
    let named = env.start.cap(module).ok_or_else(missing)?;
    let slot = sys::cap_grant(inst.domain, CapSlot(named.slot), Rights::READ)
        .map_err(failed("granting a guest's kernel image or module"))?;
    push(inst, cap, slot, ObjectType::Memory, named.size)
}

/// Gives the instance a page holding `config` as `cap`.
pub fn give_config(env: &Env, inst: &mut Instance, cap: &str, config: &GuestConfig) -> Result<(), Failure> {
    let mut buf = [0u8; CONFIG_MAX];
    let bytes = config.encode(&mut buf).map_err(failed("encoding the guest's configuration"))?;
    let len = bytes.len();
    let page = memory(inst, 1)?;
    env.modules
        .fill(page, 1, |dst| dst[..len].copy_from_slice(bytes))
        .map_err(failed("writing the guest's configuration"))?;
    let slot = sys::cap_grant(inst.domain, page, Rights::READ)
        .map_err(failed("granting the guest's configuration"))?;
    push(inst, cap, slot, ObjectType::Memory, len as u64)
}
