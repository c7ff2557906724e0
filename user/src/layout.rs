//! Where things live in every domain's address space. The supervisor maps
//! the image, stack, start page and shared regions here; the runtime maps the
//! heap; the rest of the lower half is the domain's own.
//!
//! ```text
//! 0x0000_0000_0040_0000  the image (user/link.ld): text, rodata, data+bss
//! 0x0000_1000_0000_0000  shared regions, 1 GiB apart (shared_va)
//! 0x0000_2000_0000_0000  free: for the domain's own mappings
//! 0x0000_3000_0000_0000  the heap
//! 0x0000_4000_0000_0000  free: for the domain's own mappings
//! 0x0000_7FF0_0000_0000  top of the larger stack the runtime may switch to
//! 0x0000_7FFF_FFFE_0000  the stack (64 KiB, up to STACK_TOP)
//! 0x0000_7FFF_FFFF_F000  the start page (START_INFO_VA)
//! ```

pub use ipc::boot::{IMAGE_END, STACK_TOP, START_INFO_VA};

pub const PAGE: u64 = 4096;
/// Where `user/link.ld` places the image.
pub const IMAGE_BASE: u64 = 0x40_0000;
/// The first shared region.
pub const SHARED_BASE: u64 = 0x1000_0000_0000;
/// The distance between shared regions: the largest a region may be.
pub const SHARED_STRIDE: u64 = 1 << 30;
/// The most shared regions one domain is given.
pub const MAX_SHARED: usize = 64;
/// The start of the first free range (the domain's own mappings).
pub const FREE_BASE: u64 = 0x2000_0000_0000;
/// The heap.
pub const HEAP_VA: u64 = 0x3000_0000_0000;
/// The start of the second free range.
pub const FREE2_BASE: u64 = 0x4000_0000_0000;
/// The top of the larger stack `entry!(…, stack_kib = N)` asks for (it
/// grows down from here, above the images' end).
pub const BIG_STACK_TOP: u64 = 0x7FF0_0000_0000;
/// The first thread's stack size.
pub const STACK_SIZE: u64 = 64 * 1024;
/// The lowest address of the first thread's stack.
pub const STACK_BOTTOM: u64 = STACK_TOP - STACK_SIZE;

/// Where the `ordinal`-th shared region named in a domain's start page is
/// mapped (counting only `shared:` capabilities, in start-page order).
pub const fn shared_va(ordinal: usize) -> u64 {
    SHARED_BASE + ordinal as u64 * SHARED_STRIDE
}

/// Pages that hold `bytes`.
pub const fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE)
}

// The regions are in this order and do not overlap.
const _: () = assert!(IMAGE_BASE < SHARED_BASE && shared_va(MAX_SHARED) <= FREE_BASE);
const _: () = assert!(FREE_BASE < HEAP_VA && HEAP_VA < FREE2_BASE && FREE2_BASE < STACK_BOTTOM);
const _: () = assert!(STACK_TOP < START_INFO_VA && IMAGE_END < BIG_STACK_TOP && BIG_STACK_TOP < STACK_BOTTOM);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_sizes() {
        assert_eq!(shared_va(2), 0x1000_8000_0000);
        assert_eq!(pages(1), 1);
        assert_eq!(pages(4096), 1);
        assert_eq!(pages(4097), 2);
    }
}
