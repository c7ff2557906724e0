//! The boot modules the kernel hands `mgmt` (`module:<name>` capabilities),
//! mapped read-only into `mgmt` once each, on first use, and kept mapped
//! for restarts; and a scratch window for filling memory made for others.

use alloc::vec::Vec;
use core::fmt;

use ipc::{CapSlot, Error, Rights};
use user::{layout, sys, StartInfo};

/// Where `mgmt` maps memory for a moment to fill it (then unmaps it).
const SCRATCH_VA: u64 = layout::FREE_BASE;
/// Modules are mapped from here, each on 2 MiB boundaries with a gap.
const MODULES_VA: u64 = layout::FREE2_BASE;
const MODULE_ALIGN: u64 = 2 << 20;

/// Why a module cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleError {
    /// No capability of that name in the start page.
    Missing,
    Empty,
    Map(Error),
}

impl fmt::Display for ModuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModuleError::Missing => write!(f, "no such boot module"),
            ModuleError::Empty => write!(f, "the boot module is empty"),
            ModuleError::Map(e) => write!(f, "cannot map the boot module: {e:?}"),
        }
    }
}

pub struct Modules {
    this: CapSlot,
    start: &'static StartInfo,
    mapped: Vec<(CapSlot, &'static [u8])>,
    next_va: u64,
}

impl Modules {
    pub fn new(this: CapSlot, start: &'static StartInfo) -> Self {
        Self { this, start, mapped: Vec::new(), next_va: MODULES_VA }
    }

    /// The bytes of the module whose capability is `cap` (`module:<name>`).
    pub fn get(&mut self, cap: &str) -> Result<&'static [u8], ModuleError> {
        let named = self.start.cap(cap).ok_or(ModuleError::Missing)?;
        let slot = CapSlot(named.slot);
        if let Some((_, bytes)) = self.mapped.iter().find(|(s, _)| *s == slot) {
            return Ok(bytes);
        }
        let len = usize::try_from(named.size).map_err(|_| ModuleError::Map(Error::InvalidArgument))?;
        if len == 0 {
            return Err(ModuleError::Empty);
        }
        let va = self.next_va;
        sys::memory_map(slot, self.this, va, Rights::READ).map_err(ModuleError::Map)?;
        self.next_va += (named.size + MODULE_ALIGN).next_multiple_of(MODULE_ALIGN);
        // SAFETY: the module is mapped read-only at `va` for the rest of
        // mgmt's life (never unmapped), holds at least `size` bytes, and no
        // one can write it: the kernel gives only READ|GRANT on modules.
        let bytes: &'static [u8] = unsafe { core::slice::from_raw_parts(va as *const u8, len) };
        self.mapped.push((slot, bytes));
        Ok(bytes)
    }

    /// Maps `mem` (`pages` long) writable into `mgmt` for as long as `fill`
    /// runs, and hands it the memory's bytes.
    pub fn fill<R>(&self, mem: CapSlot, pages: u64, fill: impl FnOnce(&mut [u8]) -> R) -> Result<R, Error> {
        let len = usize::try_from(pages * layout::PAGE).map_err(|_| Error::InvalidArgument)?;
        sys::memory_map(mem, self.this, SCRATCH_VA, Rights::READ | Rights::WRITE)?;
        // SAFETY: `mem` was just mapped read-write at SCRATCH_VA with `pages`
        // pages, and nothing else maps it that runs: it is made for a domain
        // whose thread has not started yet.
        let bytes = unsafe { core::slice::from_raw_parts_mut(SCRATCH_VA as *mut u8, len) };
        let r = fill(bytes);
        // SAFETY: `bytes` is dead: `fill` could not keep it.
        unsafe { sys::memory_unmap(mem, self.this, SCRATCH_VA) }?;
        Ok(r)
    }
}
