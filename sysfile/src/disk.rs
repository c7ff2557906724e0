//! A guest's `disks`: lowered to `ipc::manifest::DiskSpec`, each value
//! checked at its key: `blk` a `[[domain]]` of the file that drives a
//! `[[device]]` of model virtio-blk (or of no model), `start` and `size`
//! whole sectors (any size in K is), `size` not 0, at most
//! [`MAX_GUEST_DISKS`] disks a guest.
//!
//! And across guests ([`check_overlaps`]): a guest can reach only its own
//! regions, so two regions on one domain's disk that overlap are refused
//! unless both are read-only (design choice: sharing read-only data harms
//! no one). A region without `size` runs to the physical disk's end, so it
//! overlaps every region after its start.

use ipc::manifest::{DiskSpec, Name, MAX_GUEST_DISKS};

use super::schema::{DiskTable, GuestTable, SystemFile};
use super::{Located, Source};

/// Sectors of 512 bytes in a KiB.
const SECTORS_PER_KIB: u64 = 2;

/// The disks of guest `t`.
pub fn lower(t: &GuestTable, f: &SystemFile) -> Result<heapless::Vec<DiskSpec, MAX_GUEST_DISKS>, Located> {
    let mut out = heapless::Vec::new();
    for d in &t.disks {
        let spec = one(d.get_ref(), f)?;
        out.push(spec).map_err(|_| {
            Located::new(d.span(), format!("too many disks: a guest has at most {MAX_GUEST_DISKS}"))
        })?;
    }
    Ok(out)
}

fn one(d: &DiskTable, f: &SystemFile) -> Result<DiskSpec, Located> {
    let blk = d.blk.get_ref();
    let drives = f.device.iter().any(|v| {
        let v = v.get_ref();
        v.domain.get_ref() == blk && v.model.as_ref().is_none_or(|m| m.get_ref() == "virtio-blk")
    });
    if !drives {
        let why = if f.domain.iter().any(|x| x.get_ref().name.get_ref() == blk) {
            "drives no [[device]] of model \"virtio-blk\""
        } else {
            "is no [[domain]] of this file"
        };
        return Err(Located::new(d.blk.span(), format!("disk on `{blk}`, which {why}")));
    }
    let blk = Name::try_from(blk.as_str()).map_err(|_| Located::new(d.blk.span(), "name too long"))?;
    let first_sector = d.start.as_ref().map_or(0, |s| u64::from(s.get_ref().kib) * SECTORS_PER_KIB);
    let sectors = match &d.size {
        None => None,
        Some(s) if s.get_ref().kib == 0 => {
            return Err(Located::new(s.span(), "a disk of size 0: give it at least 1K, or leave size out"))
        }
        Some(s) => Some(u64::from(s.get_ref().kib) * SECTORS_PER_KIB),
    };
    let read_only = d.read_only.as_ref().is_some_and(|r| *r.get_ref());
    Ok(DiskSpec { blk, first_sector, sectors, read_only })
}

/// Two guests' (or one guest's) regions on one disk that overlap, unless
/// both are read-only.
pub fn check_overlaps(src: &Source<'_>, f: &SystemFile) -> Result<(), Located> {
    let all: Vec<_> = f.guest.iter().flat_map(|g| g.get_ref().disks.iter()).collect();
    for (i, d) in all.iter().enumerate() {
        let (a, a_ro, a_blk) = (range(d.get_ref()), ro(d.get_ref()), d.get_ref().blk.get_ref());
        for e in &all[..i] {
            let b = range(e.get_ref());
            let same = e.get_ref().blk.get_ref() == a_blk;
            if same && a.start < b.end && b.start < a.end && !(a_ro && ro(e.get_ref())) {
                return Err(Located::new(
                    d.span(),
                    format!(
                        "this disk overlaps the one at {} on `{a_blk}`'s disk: a guest reaches only its own \
                         regions (read-only ones may share)",
                        src.at(e.span().start)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The region's sectors (to the end of what a `u64` counts without `size`).
fn range(d: &DiskTable) -> core::ops::Range<u64> {
    let start = d.start.as_ref().map_or(0, |s| u64::from(s.get_ref().kib) * SECTORS_PER_KIB);
    let end = d.size.as_ref().map_or(u64::MAX, |s| start + u64::from(s.get_ref().kib) * SECTORS_PER_KIB);
    start..end
}

fn ro(d: &DiskTable) -> bool {
    d.read_only.as_ref().is_some_and(|r| *r.get_ref())
}
