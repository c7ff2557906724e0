//! How a guest's RAM is laid out: guest-physical [`RAM_START`] up to its
//! size, in memory objects of at most [`CHUNK`] bytes (each physically
//! contiguous, so smaller ones are likelier to be found), each mapped into
//! the guest at its guest-physical address and into the VMM at
//! [`RAM_VA`] + that address. And the quota a guest needs beyond its RAM.
//!
//! RAM starts at guest-physical 0, as on a PC (real-mode vectors and the
//! BIOS data area live there; a stock kernel reads them).

use core::ops::Range;

pub const PAGE: u64 = 4096;
/// The first guest-physical address backed by RAM.
pub const RAM_START: u64 = 0;
/// The largest memory object of guest RAM.
pub const CHUNK: u64 = 64 << 20;
/// Where the VMM maps guest-physical 0 (`user::layout::FREE_BASE`).
pub const RAM_VA: u64 = user::layout::FREE_BASE;

/// The guest-physical ranges of RAM's memory objects for a guest with
/// `bytes` of RAM (page-aligned): `[0, CHUNK)`, `[CHUNK, 2·CHUNK)`, …
pub fn chunks(bytes: u64) -> impl Iterator<Item = Range<u64>> {
    let end = bytes & !(PAGE - 1);
    (0..end.div_ceil(CHUNK)).map(move |i| (i * CHUNK)..((i + 1) * CHUNK).min(end)).filter(|r| r.start < r.end)
}

/// The quota `GuestCreate` moves to a guest with `bytes` of RAM and
/// `vcpus` vCPUs: its RAM, the EPT/NPT tables that map it (one table per
/// 2 MiB and a few above; counted generously), and one frame per vCPU.
pub fn guest_quota_pages(bytes: u64, vcpus: u64) -> u64 {
    let ram = bytes / PAGE;
    ram + ram / 256 + 16 + vcpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_is_cut_into_chunks_from_page_zero() {
        let mib = 1 << 20;
        let small: Vec<_> = chunks(16 * mib).collect();
        assert_eq!(small, vec![0..16 * mib]);
        let big: Vec<_> = chunks(130 * mib).collect();
        assert_eq!(big, [0..CHUNK, CHUNK..2 * CHUNK, 2 * CHUNK..130 * mib]);
        assert_eq!(chunks(0).count(), 0);
        assert_eq!(chunks(0x1000).collect::<Vec<_>>(), vec![0..0x1000], "page 0 alone");
        assert_eq!(chunks(0x2fff).collect::<Vec<_>>(), vec![0..0x2000], "partial pages are dropped");
    }

    #[test]
    fn the_quota_covers_ram_tables_and_vcpus() {
        let q = guest_quota_pages(16 << 20, 1);
        assert!(q > 4096 + 8 + 3, "{q}");
        assert!(q < 4096 + 64, "{q}");
    }
}
