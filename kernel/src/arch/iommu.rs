//! The IOMMU, whichever vendor's the firmware describes: the interface the
//! Device object and the interrupt routing use (through `hw::iommu` and
//! `hw::irq`), served by AMD-Vi (`amdvi`) where its units are on, else by
//! VT-d (`vtd`, which answers "no IOMMU" where it drives no unit). Attach a
//! function to a DMA space of its own; map and unmap device addresses in
//! it; flush what its unit cached; detach it on its Device's end (its
//! DMA stopped and the unit's caches told before its tables go); point an
//! interrupt entry at a vector or take it away; read the faults.

use ipc::Error;
use x86_64::{PhysAddr, VirtAddr};

use super::{amdvi, vtd};
use crate::mem::kspace;
use crate::mem::paging::{AmdviTable, MapError, MapFlags, VtdTable};

/// Each function of the interface, served by the vendor's of the same name.
macro_rules! either {
    ($($(#[$m:meta])* fn $f:ident($($a:ident: $t:ty),*) -> $r:ty;)*) => {$(
        $(#[$m])*
        pub fn $f($($a: $t),*) -> $r {
            if amdvi::on() { amdvi::$f($($a),*) } else { vtd::$f($($a),*) }
        }
    )*};
}

either! {
    fn attach(bdf: u16, did: u16) -> Result<Option<(PhysAddr, u64)>, Error>;
    fn detach(bdf: u16, did: u16, root: PhysAddr) -> Option<u64>;
    #[must_use]
    fn flush(bdf: u16, did: u16) -> bool;
    /// `Some(true)`: the message names the entry in VT-d's remappable
    /// format; `Some(false)`: it keeps the compatibility format (no
    /// remapping, or AMD-Vi's, which finds the entry by the vector in the
    /// message's data).
    fn remap(vector: u8, to: Option<(u32, Option<u16>, bool)>) -> Option<bool>;
    fn poll_faults() -> ();
}

/// Maps page `pa` at device address `iova` (read and write) in the DMA
/// space `root`, in the format of the unit's tables; the frames its
/// tables took.
pub fn map(root: PhysAddr, iova: u64, pa: PhysAddr) -> Result<u64, MapError> {
    let (va, rw) = (VirtAddr::new(iova), MapFlags::WRITE);
    match amdvi::on() {
        true => kspace::uspace_map(&AmdviTable::from_root(root), va, pa, rw),
        false => kspace::uspace_map(&VtdTable::from_root(root), va, pa, rw),
    }
}

/// Unmaps device address `iova`; the caller invalidates (`flush`).
pub fn unmap(root: PhysAddr, iova: u64) {
    let _ = match amdvi::on() {
        true => kspace::uspace_unmap(&AmdviTable::from_root(root), VirtAddr::new(iova)),
        false => kspace::uspace_unmap(&VtdTable::from_root(root), VirtAddr::new(iova)),
    };
}
