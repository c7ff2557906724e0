//! PCI configuration space through ECAM (PCI Express Base 4.0 §7.2.2):
//! segment 0's region, mapped uncached once at boot; function `f` (bus <<
//! 8 | device << 3 | function) at `f << 12`. Only the kernel reaches it.

use core::sync::atomic::{AtomicU64, Ordering};

use ipc::syscall::Width;

/// The mapping of the first bus's function 0; 0 without ECAM.
static BASE: AtomicU64 = AtomicU64::new(0);
/// The buses the region covers: first << 8 | last.
static BUSES: AtomicU64 = AtomicU64::new(0);

/// Takes the region mapped at `va`, covering buses `first..=last`.
pub fn init(va: u64, first: u8, last: u8) {
    BUSES.store(u64::from(first) << 8 | u64::from(last), Ordering::SeqCst);
    BASE.store(va, Ordering::SeqCst);
}

pub fn present() -> bool {
    BASE.load(Ordering::SeqCst) != 0
}

/// The address of byte `offset` (below 4096, aligned to its access) of
/// function `f`, if the region covers its bus.
fn at(f: u16, offset: u16) -> Option<u64> {
    let (base, buses) = (BASE.load(Ordering::SeqCst), BUSES.load(Ordering::SeqCst));
    let (first, last, bus) = (buses >> 8, buses & 0xff, u64::from(f >> 8));
    (base != 0 && (first..=last).contains(&bus) && offset < 4096)
        .then(|| base + ((u64::from(f) - (first << 8)) << 12) + u64::from(offset))
}

/// Reads `width` bytes; all ones where no function answers (as the bus does).
pub fn read(f: u16, offset: u16, width: Width) -> u32 {
    let Some(a) = at(f, offset) else { return width.max() };
    // SAFETY: `a` is inside the uncached ECAM mapping `init` was given
    // (its bus in range, the offset below 4096) and aligned to the width
    // (the syscall decoder's check, and the kernel's own constants).
    unsafe {
        match width {
            Width::Byte => u32::from(core::ptr::read_volatile(a as *const u8)),
            Width::Word => u32::from(core::ptr::read_volatile(a as *const u16)),
            Width::Dword => core::ptr::read_volatile(a as *const u32),
        }
    }
}

/// Writes `width` bytes (`value` fits); nothing where the region does not reach.
pub fn write(f: u16, offset: u16, width: Width, value: u32) {
    let Some(a) = at(f, offset) else { return };
    // SAFETY: as in `read`.
    unsafe {
        match width {
            Width::Byte => core::ptr::write_volatile(a as *mut u8, value as u8),
            Width::Word => core::ptr::write_volatile(a as *mut u16, value as u16),
            Width::Dword => core::ptr::write_volatile(a as *mut u32, value),
        }
    }
}
