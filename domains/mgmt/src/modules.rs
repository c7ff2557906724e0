//! The boot modules the kernel hands `mgmt` (`module:<name>` capabilities),
//! mapped read-only into `mgmt` once each, on first use, and kept mapped
//! for restarts; the images uploaded over the control channel, found by
//! the same names (`crate::images`); and a scratch window for filling
//! memory made for others.

use alloc::vec::Vec;
use core::fmt;

use ipc::{CapSlot, Error, Rights};
use mgmt::plan::ModuleName;
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
    /// The images uploaded, each as `module:<image>`.
    uploaded: Vec<Uploaded>,
}

/// An image uploaded whole: its memory (`mgmt`'s capability, all rights;
/// its owner a domain that runs nothing, `crate::images`), mapped
/// read-only into `mgmt` for the rest of its life.
pub struct Uploaded {
    pub cap: ModuleName,
    pub memory: CapSlot,
    pub bytes: &'static [u8],
}

impl Modules {
    pub fn new(this: CapSlot, start: &'static StartInfo) -> Self {
        Self { this, start, mapped: Vec::new(), next_va: MODULES_VA, uploaded: Vec::new() }
    }

    /// The memory of the module or uploaded image `cap` (`module:<name>`)
    /// and its length in bytes.
    pub fn image(&self, cap: &str) -> Option<(CapSlot, u64)> {
        if let Some(u) = self.uploaded.iter().find(|u| u.cap.as_str() == cap) {
            return Some((u.memory, u.bytes.len() as u64));
        }
        self.start.cap(cap).map(|named| (CapSlot(named.slot), named.size))
    }

    /// Where `bytes` more can be mapped into `mgmt`: an address no module
    /// or image is mapped at, ever.
    pub fn reserve(&mut self, bytes: u64) -> u64 {
        let va = self.next_va;
        self.next_va += (bytes + MODULE_ALIGN).next_multiple_of(MODULE_ALIGN);
        va
    }

    /// Gives back the last reservation, of `bytes` at `va` (an upload
    /// dropped), so that the next maps where it was, over the same page
    /// tables; another is kept.
    pub fn unreserve(&mut self, va: u64, bytes: u64) {
        if va + (bytes + MODULE_ALIGN).next_multiple_of(MODULE_ALIGN) == self.next_va {
            self.next_va = va;
        }
    }

    /// Keeps an image uploaded whole.
    pub fn add(&mut self, image: Uploaded) {
        self.uploaded.push(image);
    }

    /// How many images were uploaded.
    pub fn uploads(&self) -> usize {
        self.uploaded.len()
    }

    pub fn this(&self) -> CapSlot {
        self.this
    }

    /// The bytes of the module or uploaded image whose capability is `cap`
    /// (`module:<name>`).
    pub fn get(&mut self, cap: &str) -> Result<&'static [u8], ModuleError> {
        if let Some(u) = self.uploaded.iter().find(|u| u.cap.as_str() == cap) {
            return Ok(u.bytes);
        }
        let named = self.start.cap(cap).ok_or(ModuleError::Missing)?;
        let slot = CapSlot(named.slot);
        if let Some((_, bytes)) = self.mapped.iter().find(|(s, _)| *s == slot) {
            return Ok(bytes);
        }
        let len = usize::try_from(named.size).map_err(|_| ModuleError::Map(Error::InvalidArgument))?;
        if len == 0 {
            return Err(ModuleError::Empty);
        }
        let va = self.reserve(named.size);
        sys::memory_map(slot, self.this, va, Rights::READ).map_err(ModuleError::Map)?;
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
