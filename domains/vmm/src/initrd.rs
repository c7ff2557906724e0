//! Where a Linux guest's initrd goes: as high as it fits (boot.rst,
//! "Details of Header Fields", `initrd_addr_max`: "the initrd should
//! typically be located as high in memory as possible"), page-aligned,
//! wholly at or below the kernel's `initrd_addr_max` (the address of the
//! highest byte it may occupy) and below the end of RAM, above 1 MiB
//! (below it lie the zero page, the command line and the ACPI tables), and
//! over none of the kernel: neither its bytes as loaded nor the `init_size`
//! bytes it uses from its runtime start before it reads its memory map
//! ([`crate::bzimage::Placement`]). If the highest place overlaps the
//! kernel, the next one down is tried, below the kernel.

use core::fmt;
use core::ops::Range;

use crate::bzimage::Placement;
use crate::ram::PAGE;

const MIB: u64 = 1 << 20;

/// The initrd fits nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitrdError {
    Empty,
    /// No page-aligned place of `size` bytes between 1 MiB and `limit`
    /// (the lower of RAM's end and `initrd_addr_max` + 1) misses the kernel.
    NoRoom {
        size: u64,
        limit: u64,
    },
}

impl fmt::Display for InitrdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            InitrdError::Empty => write!(f, "the initrd is empty"),
            InitrdError::NoRoom { size, limit } => write!(
                f,
                "an initrd of {size:#x} bytes fits nowhere between 1 MiB and {limit:#x} beside the kernel"
            ),
        }
    }
}

/// Where an initrd of `size` bytes goes for a kernel at `kernel` whose
/// `initrd_addr_max` is `addr_max`, in guest RAM ending at `ram_end`.
pub fn place(size: u64, addr_max: u32, ram_end: u64, kernel: &Placement) -> Result<Range<u64>, InitrdError> {
    if size == 0 {
        return Err(InitrdError::Empty);
    }
    let limit = ram_end.min(u64::from(addr_max) + 1);
    let no_room = InitrdError::NoRoom { size, limit };
    let taken = [kernel.loaded.clone(), kernel.runtime.clone()];
    let mut end = limit;
    loop {
        // The highest page-aligned start whose initrd ends by `end`.
        let start = end.checked_sub(size).ok_or(no_room)? & !(PAGE - 1);
        if start < MIB {
            return Err(no_room);
        }
        let here = start..start + size;
        // Below the lowest part of the kernel it overlaps, if any: `end`
        // falls each time, so this ends.
        match taken.iter().filter(|t| t.start < here.end && here.start < t.end).map(|t| t.start).min() {
            Some(below) => end = below,
            None => return Ok(here),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relocatable kernel at 16 MiB using 16 MiB..48 MiB.
    fn kernel() -> Placement {
        Placement {
            load: 16 * MIB,
            entry32: 16 * MIB,
            entry64: 16 * MIB + 0x200,
            loaded: 16 * MIB..16 * MIB + 0x80_0000,
            runtime: 16 * MIB..48 * MIB,
        }
    }

    #[test]
    fn it_goes_as_high_as_ram_and_the_kernel_allow() {
        let k = kernel();
        assert_eq!(place(0x1000, 0x7FFF_FFFF, 512 * MIB, &k), Ok(512 * MIB - 0x1000..512 * MIB));
        assert_eq!(
            place(5, 0x7FFF_FFFF, 512 * MIB, &k),
            Ok(512 * MIB - 0x1000..512 * MIB - 0x1000 + 5),
            "aligned down"
        );
        let odd_end = 512 * MIB - 0x800;
        assert_eq!(place(0x1000, 0x7FFF_FFFF, odd_end, &k), Ok(odd_end - 0x1800..odd_end - 0x800));
    }

    #[test]
    fn it_stays_at_or_below_initrd_addr_max() {
        let k = kernel();
        // The highest byte it may occupy is 0x37FF_FFFF (boot.rst's example).
        assert_eq!(place(0x2_0000, 0x37FF_FFFF, 2048 * MIB, &k), Ok(0x37FE_0000..0x3800_0000));
        let r = place(0x2_0001, 0x37FF_FFFF, 2048 * MIB, &k).unwrap();
        assert_eq!(r, 0x37FD_F000..0x37FD_F000 + 0x2_0001);
        assert!(r.end - 1 <= 0x37FF_FFFF);
        assert_eq!(
            place(0x1000, u32::MAX, 3 << 30, &k),
            Ok((3 << 30) - 0x1000..3 << 30),
            "RAM is the lower limit"
        );
    }

    #[test]
    fn it_never_overlaps_the_kernel() {
        let k = kernel();
        let max = 0x7FFF_FFFF;
        // Just above init_size's end: fits exactly.
        assert_eq!(place(16 * MIB, max, 64 * MIB, &k), Ok(48 * MIB..64 * MIB));
        // A byte more overlaps the runtime area, and below the kernel is no room.
        let no_room = InitrdError::NoRoom { size: 16 * MIB + 1, limit: 64 * MIB };
        assert_eq!(place(16 * MIB + 1, max, 64 * MIB, &k), Err(no_room));
        // Below the kernel, down to 1 MiB exactly, and not a page lower.
        assert_eq!(place(15 * MIB, max, 62 * MIB, &k), Ok(MIB..16 * MIB));
        assert_eq!(
            place(15 * MIB + 1, max, 62 * MIB, &k),
            Err(InitrdError::NoRoom { size: 15 * MIB + 1, limit: 62 * MIB })
        );
    }

    #[test]
    fn it_misses_a_fixed_kernel_both_where_it_loads_and_where_it_runs() {
        // Loaded at 1 MiB..9 MiB, running at 16 MiB..48 MiB.
        let k = Placement { load: MIB, entry32: MIB, entry64: MIB + 0x200, loaded: MIB..9 * MIB, ..kernel() };
        let max = 0x7FFF_FFFF;
        assert_eq!(place(5 * MIB, max, 50 * MIB, &k), Ok(11 * MIB..16 * MIB), "between the two");
        assert_eq!(place(7 * MIB, max, 50 * MIB, &k), Ok(9 * MIB..16 * MIB), "exactly between");
        assert!(place(7 * MIB + 1, max, 50 * MIB, &k).is_err());
    }

    #[test]
    fn hostile_sizes_and_limits_are_refused() {
        let k = kernel();
        assert_eq!(place(0, u32::MAX, 64 * MIB, &k), Err(InitrdError::Empty));
        assert!(place(u64::MAX, u32::MAX, 64 * MIB, &k).is_err(), "no underflow");
        assert!(place(0x1000, u32::MAX, 0, &k).is_err(), "no RAM");
        assert!(place(0x1000, 0, 64 * MIB, &k).is_err(), "initrd_addr_max 0");
        assert!(place(0x1000, 0xF_FFFF, 64 * MIB, &k).is_err(), "initrd_addr_max below 1 MiB");
        // Any answer lies in [1 MiB, limit), page-aligned, off the kernel.
        for size in [1, 0xFFF, 0x1000, 0x1001, MIB, 31 * MIB, 32 * MIB, 100 * MIB] {
            for ram_end in [2 * MIB, 17 * MIB, 49 * MIB, 64 * MIB + 7, 3 << 30] {
                for max in [0x37FF_FFFF, 0x7FFF_FFFF, u32::MAX] {
                    if let Ok(r) = place(size, max, ram_end, &k) {
                        assert!(r.start >= MIB && r.end <= ram_end && r.end - 1 <= u64::from(max));
                        assert_eq!((r.start % PAGE, r.end - r.start), (0, size));
                        assert!(r.end <= k.loaded.start || r.start >= k.loaded.end);
                        assert!(r.end <= k.runtime.start || r.start >= k.runtime.end);
                    }
                }
            }
        }
    }
}
