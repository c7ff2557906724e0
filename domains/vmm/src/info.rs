//! The Multiboot information a kernel finds at ebx (Multiboot Specification
//! 0.6.96, section 3.3): memory sizes, the command line, the modules, a
//! memory map and the loader's name, all in one page of guest RAM at
//! [`INFO_GPA`].
//!
//! The page holds the information block at offset 0, the memory map at
//! [`MMAP_OFFSET`], the command line at [`CMDLINE_OFFSET`], the loader's
//! name at [`NAME_OFFSET`], the module list at [`MODS_OFFSET`] and the
//! modules' strings from [`MOD_STRINGS_OFFSET`]. The memory map is a PC's:
//! RAM from [`crate::ram::RAM_START`] to 0x9FC00, the extended BIOS data
//! area and the BIOS ROM reserved, RAM from 1 MiB to the end.
//!
//! The modules themselves go where [`place_modules`] says: page-aligned
//! (whether or not the kernel's header asks), one after the other, from
//! the first page above both 1 MiB and the kernel's last segment.

use core::fmt;
use core::ops::Range;

use ipc::guest::{MAX_GUEST_MODULES, MODULE_STRING_MAX};

use crate::ram::{PAGE, RAM_START};

/// Where the information page goes in guest RAM (below 640 KiB, where a
/// kernel at 1 MiB does not load).
pub const INFO_GPA: u64 = 0x9000;
pub const MMAP_OFFSET: usize = 0x100;
pub const CMDLINE_OFFSET: usize = 0x200;
pub const NAME_OFFSET: usize = 0x400;
pub const MODS_OFFSET: usize = 0x600;
pub const MOD_STRINGS_OFFSET: usize = 0x800;
/// The room for each module's string (and its NUL).
const MOD_STRING_ROOM: usize = 0x80;
const _: () = assert!(MODULE_STRING_MAX < MOD_STRING_ROOM);
const _: () = assert!(MODS_OFFSET + 16 * MAX_GUEST_MODULES <= MOD_STRINGS_OFFSET);
const _: () = assert!(MOD_STRINGS_OFFSET + MOD_STRING_ROOM * MAX_GUEST_MODULES <= PAGE as usize);
/// The loader's name the kernel is told.
pub const LOADER_NAME: &str = "ryokan-vmm";
/// The longest command line passed on: ipc::guest::GuestConfig's 128
/// bytes and the `tsc_khz=` the VMM may append ([`with_tsc_khz`]).
pub const CMDLINE_MAX: usize = 160;
/// A command line with an option named `<something>_ms` (`spin_ms=1000`,
/// `wait_ms=200`) asks for a fixed time: the VMM tells the guest the TSC's
/// rate by appending `tsc_khz=<ticks per ms>` (the test guests' convention;
/// a guest that finds it can time itself without calibrating).
pub const TIMED_SUFFIX: &str = "_ms";
/// The option the VMM appends.
pub const TSC_OPTION: &str = "tsc_khz=";

/// `cmdline`, and ` tsc_khz=<tsc_khz>` after it if one of its options is
/// timed ([`TIMED_SUFFIX`]) and none already says the rate (cut to
/// [`CMDLINE_MAX`] bytes).
pub fn with_tsc_khz(cmdline: &str, tsc_khz: u64) -> heapless::String<CMDLINE_MAX> {
    let mut out = heapless::String::new();
    for ch in cmdline.chars() {
        if out.push(ch).is_err() {
            return out;
        }
    }
    let timed = |w: &str| w.split_once('=').is_some_and(|(name, _)| name.ends_with(TIMED_SUFFIX));
    let words = || cmdline.split(' ');
    if words().any(timed) && !words().any(|w| w.starts_with(TSC_OPTION)) {
        // Cut if it does not fit: the guest then finds no rate and says so.
        let _ = core::fmt::write(&mut out, format_args!(" tsc_khz={tsc_khz}"));
    }
    out
}

/// The end of conventional memory: 639 KiB.
const LOW_END: u64 = 0x9_FC00;
const MIB: u64 = 1 << 20;

/// Flags of the information block: mem_lower/mem_upper, cmdline, mmap,
/// boot_loader_name; [`MODS_FLAG`] too when there are modules.
pub const FLAGS: u32 = 1 << 0 | 1 << 2 | 1 << 6 | 1 << 9;
pub const MODS_FLAG: u32 = 1 << 3;

/// A module as the guest is told of it: where it lies in guest RAM, and
/// its string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Module<'a> {
    pub at: Range<u64>,
    pub string: &'a str,
}

/// Modules that do not fit in the guest's RAM above the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModulesTooBig {
    /// Where they would have ended, and where RAM ends.
    pub end: u64,
    pub ram_end: u64,
}

impl fmt::Display for ModulesTooBig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the modules do not fit: they would end at {:#x}, past the end of RAM {:#x}",
            self.end, self.ram_end
        )
    }
}

/// Where modules of `sizes` bytes go in a guest whose RAM ends at
/// `ram_end` and whose kernel's segments end at `kernel_end`: each
/// page-aligned, in order, from the first page above 1 MiB and the kernel.
pub fn place_modules(
    kernel_end: u64,
    sizes: &[u64],
    ram_end: u64,
) -> Result<heapless::Vec<Range<u64>, MAX_GUEST_MODULES>, ModulesTooBig> {
    let mut out = heapless::Vec::new();
    let mut at = kernel_end.max(MIB).checked_next_multiple_of(PAGE).unwrap_or(u64::MAX);
    let too_big = |end| ModulesTooBig { end, ram_end };
    for &size in sizes {
        let end = at.checked_add(size).ok_or(too_big(u64::MAX))?;
        if end > ram_end {
            return Err(too_big(end));
        }
        out.push(at..end).map_err(|_| too_big(end))?;
        at = end.checked_next_multiple_of(PAGE).unwrap_or(u64::MAX);
    }
    Ok(out)
}

/// Memory map entry types.
pub const AVAILABLE: u32 = 1;
pub const RESERVED: u32 = 2;

/// The memory map of a guest whose RAM ends at `ram_end` (at least 2 MiB).
pub fn memory_map(ram_end: u64) -> [(u64, u64, u32); 4] {
    [
        (RAM_START, LOW_END, AVAILABLE),
        (LOW_END, 0xA_0000, RESERVED),
        (0xF_0000, MIB, RESERVED),
        (MIB, ram_end, AVAILABLE),
    ]
}

fn put32(page: &mut [u8], o: usize, v: u32) {
    page[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(page: &mut [u8], o: usize, v: u64) {
    page[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// Puts `s` at `o` in `page`, cut at `max` bytes and at a NUL (the page is
/// zeroed, so it ends with one).
fn put_str(page: &mut [u8], o: usize, s: &str, max: usize) {
    let b = s.as_bytes();
    let len = b.iter().position(|&c| c == 0).unwrap_or(b.len()).min(max);
    page[o..o + len].copy_from_slice(&b[..len]);
}

/// Fills `page` (to be copied to [`INFO_GPA`]) for a guest whose RAM ends
/// at `ram_end`, whose command line is `cmdline` (cut at [`CMDLINE_MAX`]
/// bytes, and at a NUL) and whose modules are `modules` (at most
/// [`MAX_GUEST_MODULES`] are told; strings cut at [`MODULE_STRING_MAX`]
/// bytes); returns the address for ebx.
pub fn build(page: &mut [u8; PAGE as usize], ram_end: u64, cmdline: &str, modules: &[Module<'_>]) -> u32 {
    page.fill(0);
    let gpa = |offset: usize| (INFO_GPA as u32) + offset as u32;
    let modules = &modules[..modules.len().min(MAX_GUEST_MODULES)];
    put32(page, 0, if modules.is_empty() { FLAGS } else { FLAGS | MODS_FLAG });
    if !modules.is_empty() {
        put32(page, 20, modules.len() as u32);
        put32(page, 24, gpa(MODS_OFFSET));
    }
    for (i, m) in modules.iter().enumerate() {
        // Guest RAM ends below 4 GiB (MAX_GUEST_MEMORY_KIB), so these fit.
        let o = MODS_OFFSET + i * 16;
        let string = MOD_STRINGS_OFFSET + i * MOD_STRING_ROOM;
        put32(page, o, m.at.start as u32);
        put32(page, o + 4, m.at.end as u32);
        put32(page, o + 8, gpa(string));
        put_str(page, string, m.string, MODULE_STRING_MAX);
    }
    put32(page, 4, (LOW_END / 1024) as u32);
    put32(page, 8, (ram_end.saturating_sub(MIB) / 1024) as u32);
    put32(page, 16, gpa(CMDLINE_OFFSET));
    let map = memory_map(ram_end);
    // Each entry: size (20, not counting itself), base, length, type.
    for (i, (start, end, kind)) in map.iter().enumerate() {
        let o = MMAP_OFFSET + i * 24;
        put32(page, o, 20);
        put64(page, o + 4, *start);
        put64(page, o + 12, end - start);
        put32(page, o + 20, *kind);
    }
    put32(page, 44, (map.len() * 24) as u32);
    put32(page, 48, gpa(MMAP_OFFSET));
    put_str(page, CMDLINE_OFFSET, cmdline, CMDLINE_MAX);
    put32(page, 64, gpa(NAME_OFFSET));
    page[NAME_OFFSET..NAME_OFFSET + LOADER_NAME.len()].copy_from_slice(LOADER_NAME.as_bytes());
    INFO_GPA as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(p: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(p[o..o + 4].try_into().unwrap())
    }

    fn u64_at(p: &[u8], o: usize) -> u64 {
        u64::from_le_bytes(p[o..o + 8].try_into().unwrap())
    }

    /// A C string at a guest-physical address of the page.
    fn c_str(p: &[u8], gpa: u32) -> &str {
        let o = (gpa as u64 - INFO_GPA) as usize;
        let end = p[o..].iter().position(|&b| b == 0).unwrap();
        std::str::from_utf8(&p[o..o + end]).unwrap()
    }

    #[test]
    fn a_kernel_reads_what_it_is_told() {
        let mut page = [0xAAu8; 4096];
        let ebx = build(&mut page, 16 << 20, "console=ttyS0 probe=apic", &[]);
        assert_eq!(ebx, 0x9000);
        assert_eq!(u32_at(&page, 0), 0b10_0100_0101, "mem, cmdline, mmap, loader name");
        assert_eq!((u32_at(&page, 4), u32_at(&page, 8)), (639, 15 * 1024));
        assert_eq!(c_str(&page, u32_at(&page, 16)), "console=ttyS0 probe=apic");
        assert_eq!(c_str(&page, u32_at(&page, 64)), "ryokan-vmm");
        let (len, addr) = (u32_at(&page, 44) as usize, u32_at(&page, 48));
        assert_eq!(len, 4 * 24);
        let base = (addr as u64 - INFO_GPA) as usize;
        let mut entries = Vec::new();
        let mut o = base;
        while o < base + len {
            entries.push((u64_at(&page, o + 4), u64_at(&page, o + 12), u32_at(&page, o + 20)));
            o += u32_at(&page, o) as usize + 4;
        }
        assert_eq!(
            entries,
            [(0, 0x9_FC00, 1), (0x9_FC00, 0x400, 2), (0xF_0000, 0x1_0000, 2), (1 << 20, 15 << 20, 1)]
        );
        assert_eq!(u32_at(&page, 12), 0, "no boot device");
        assert_eq!(u32_at(&page, 20), 0, "no modules");
    }

    #[test]
    fn a_timed_guest_is_told_the_tsc_rate() {
        assert_eq!(
            with_tsc_khz("spin_ms=1500 warm_ms=500", 2_500_000),
            "spin_ms=1500 warm_ms=500 tsc_khz=2500000"
        );
        assert_eq!(with_tsc_khz("console=ttyS0", 2_500_000), "console=ttyS0");
        assert_eq!(with_tsc_khz("", 1), "");
        assert_eq!(with_tsc_khz("probe=high wait_ms=200", 7), "probe=high wait_ms=200 tsc_khz=7");
        assert_eq!(with_tsc_khz("spin_ms", 1), "spin_ms", "not an option with a value");
        assert_eq!(with_tsc_khz("ms=1 timeout=5", 1), "ms=1 timeout=5");
        assert_eq!(with_tsc_khz("spin_ms=1 tsc_khz=9", 1), "spin_ms=1 tsc_khz=9", "already told");
    }

    #[test]
    fn long_or_odd_command_lines_are_cut() {
        let mut page = [0u8; 4096];
        let long = "x".repeat(300);
        build(&mut page, 4 << 20, &long, &[]);
        assert_eq!(c_str(&page, 0x9200).len(), CMDLINE_MAX);
        build(&mut page, 4 << 20, "a\0b", &[]);
        assert_eq!(c_str(&page, 0x9200), "a");
    }

    #[test]
    fn modules_are_listed_with_their_strings() {
        let mut page = [0xAAu8; 4096];
        let mods = [
            Module { at: 0x20_0000..0x20_0005, string: "initrd ro" },
            Module { at: 0x20_1000..0x20_3000, string: "" },
        ];
        build(&mut page, 16 << 20, "", &mods);
        assert_eq!(u32_at(&page, 0), FLAGS | MODS_FLAG);
        assert_eq!((u32_at(&page, 20), u32_at(&page, 24)), (2, 0x9600));
        let entry = |i: usize| (u32_at(&page, 0x600 + 16 * i), u32_at(&page, 0x604 + 16 * i));
        assert_eq!((entry(0), entry(1)), ((0x20_0000, 0x20_0005), (0x20_1000, 0x20_3000)));
        assert_eq!(c_str(&page, u32_at(&page, 0x608)), "initrd ro");
        assert_eq!(c_str(&page, u32_at(&page, 0x618)), "");
        assert_eq!(u32_at(&page, 0x60c), 0, "reserved");
        build(&mut page, 16 << 20, "", &[]);
        assert_eq!((u32_at(&page, 0) & MODS_FLAG, u32_at(&page, 20)), (0, 0), "no modules, no flag");
        let long = "s".repeat(200);
        build(&mut page, 16 << 20, "", &[Module { at: 0x20_0000..0x20_1000, string: &long }]);
        assert_eq!(c_str(&page, u32_at(&page, 0x608)).len(), MODULE_STRING_MAX);
    }

    #[test]
    fn modules_go_page_aligned_above_the_kernel_and_1_mib() {
        let placed = place_modules(0x10_3804, &[5, 0x2000, 1], 4 << 20).unwrap();
        assert_eq!(placed.as_slice(), [0x10_4000..0x10_4005, 0x10_5000..0x10_7000, 0x10_7000..0x10_7001]);
        let low = place_modules(0x8000, &[1], 4 << 20).unwrap();
        assert_eq!((low.len(), low[0].clone()), (1, 0x10_0000..0x10_0001), "never below 1 MiB");
        assert_eq!(place_modules(0x30_0000, &[0x10_0000], 4 << 20).unwrap()[0], 0x30_0000..0x40_0000);
        assert_eq!(
            place_modules(0x30_0000, &[0x10_0001], 4 << 20),
            Err(ModulesTooBig { end: 0x40_0001, ram_end: 4 << 20 })
        );
        assert!(place_modules(0x10_0000, &[u64::MAX], 4 << 20).is_err(), "no overflow");
        assert!(place_modules(0x10_0000, &[1; 5], 4 << 20).is_err(), "at most MAX_GUEST_MODULES");
    }
}
