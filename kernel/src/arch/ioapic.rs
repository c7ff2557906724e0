//! The I/O APIC (82093AA datasheet; ACPI 6.5 5.2.12.3): routes each global
//! system interrupt (GSI) to a vector on one CPU. Every line starts masked;
//! a line is unmasked only while a thread waits for it.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use spin::Mutex;

/// Register select and window (MMIO offsets).
const IOREGSEL: usize = 0x00;
const IOWIN: usize = 0x10;
const REG_VERSION: u32 = 0x01;
const fn redirection(pin: u32) -> u32 {
    0x10 + 2 * pin
}

const MASKED: u64 = 1 << 16;
const LEVEL: u64 = 1 << 15;
const ACTIVE_LOW: u64 = 1 << 13;

/// The one I/O APIC driven (most machines have one for the legacy lines).
static BASE: AtomicU64 = AtomicU64::new(0);
static GSI_BASE: AtomicU32 = AtomicU32::new(0);
static PINS: AtomicU32 = AtomicU32::new(0);
/// Serialises the select/window register pair.
static LOCK: Mutex<()> = Mutex::new(());

fn access(reg: u32, write: Option<u32>) -> u32 {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return 0;
    }
    let _guard = LOCK.lock();
    // SAFETY: `base` is the uncached mapping of the I/O APIC's register page;
    // IOREGSEL and IOWIN are its two 32-bit registers (reading the window
    // back after a write has no effect).
    unsafe {
        core::ptr::write_volatile((base as usize + IOREGSEL) as *mut u32, reg);
        let win = (base as usize + IOWIN) as *mut u32;
        if let Some(v) = write {
            core::ptr::write_volatile(win, v);
        }
        core::ptr::read_volatile(win)
    }
}

fn write_entry(pin: u32, entry: u64) {
    access(redirection(pin) + 1, Some((entry >> 32) as u32));
    access(redirection(pin), Some(entry as u32));
}

/// Takes over the I/O APIC mapped at `va` serving GSIs from `gsi_base`:
/// every pin masked. Returns the number of pins.
pub fn init(va: u64, gsi_base: u32) -> u32 {
    BASE.store(va, Ordering::SeqCst);
    GSI_BASE.store(gsi_base, Ordering::SeqCst);
    let pins = ((access(REG_VERSION, None) >> 16) & 0xff) + 1;
    PINS.store(pins, Ordering::SeqCst);
    (0..pins).for_each(|pin| write_entry(pin, MASKED));
    pins
}

fn pin(gsi: u32) -> Option<u32> {
    let p = gsi.checked_sub(GSI_BASE.load(Ordering::Relaxed))?;
    (p < PINS.load(Ordering::Relaxed)).then_some(p)
}

/// Routes `gsi` to `vector` on the CPU with local APIC id `dest`, masked:
/// under interrupt remapping through the entry (handle) `vector`, which
/// only the I/O APIC's requests match (the redirection entry's vector
/// and trigger mode kept, as VT-d §5.1.5.1 asks); else directly. A line
/// whose entry could not be made stays in the compatibility format, which
/// remapping blocks.
pub fn route(gsi: u32, vector: u8, dest: u32, level: bool, active_low: bool) {
    let Some(p) = pin(gsi) else { return };
    let to = match crate::arch::iommu::remap(vector, Some((dest, None, level))) {
        Some(true) => crate::platform::vtd::ioapic_handle(u16::from(vector)),
        _ => u64::from(dest) << 56,
    };
    let modes = if level { LEVEL } else { 0 } | if active_low { ACTIVE_LOW } else { 0 };
    write_entry(p, u64::from(vector) | MASKED | to | modes);
}

/// Masks or unmasks `gsi`.
pub fn set_masked(gsi: u32, masked: bool) {
    let Some(p) = pin(gsi) else { return };
    let e = u64::from(access(redirection(p), None)) | u64::from(access(redirection(p) + 1, None)) << 32;
    write_entry(p, if masked { e | MASKED } else { e & !MASKED });
}
