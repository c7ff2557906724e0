//! Physical and virtual memory: the memory map, the frame allocator and the
//! page-table builder (all pure, host-tested), and the kernel's own address
//! space (bare metal only).

pub mod frames;
pub mod guest;
pub mod layout;
pub mod memmap;
pub mod paging;

#[cfg(target_os = "none")]
pub mod kspace;

/// The size of a base page and of a physical frame.
pub const PAGE_SIZE: u64 = 4096;

/// Rounds `x` down to a multiple of `align` (a power of two).
pub const fn align_down(x: u64, align: u64) -> u64 {
    x & !(align - 1)
}

/// Rounds `x` up to a multiple of `align` (a power of two), saturating at the
/// highest aligned value instead of wrapping.
pub const fn align_up(x: u64, align: u64) -> u64 {
    match x.checked_add(align - 1) {
        Some(v) => v & !(align - 1),
        None => align_down(u64::MAX, align),
    }
}
