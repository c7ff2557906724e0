//! The local APIC in xAPIC mode (SDM Vol. 3A ch. 11): per-CPU set-up, the
//! timer, end of interrupt, and the inter-processor interrupts that start and
//! stop CPUs.

use core::sync::atomic::{AtomicU64, Ordering};

use super::trap::vector;

const ID: usize = 0x20;
const TPR: usize = 0x80;
const EOI: usize = 0xB0;
const SVR: usize = 0xF0;
const ICR_LOW: usize = 0x300;
const ICR_HIGH: usize = 0x310;
const LVT_TIMER: usize = 0x320;
const LVT_LINT0: usize = 0x350;
const LVT_LINT1: usize = 0x360;
const LVT_ERROR: usize = 0x370;
const TIMER_INITIAL: usize = 0x380;
const TIMER_CURRENT: usize = 0x390;
const TIMER_DIVIDE: usize = 0x3E0;

const MASKED: u32 = 1 << 16;
const PERIODIC: u32 = 1 << 17;
const DELIVERY_PENDING: u32 = 1 << 12;

/// Virtual address of the register page (mapped uncached); 0 until mapped.
static BASE: AtomicU64 = AtomicU64::new(0);

/// Records where the register page is mapped.
pub fn set_base(va: u64) {
    BASE.store(va, Ordering::SeqCst);
}

fn base() -> Option<u64> {
    match BASE.load(Ordering::Relaxed) {
        0 => None,
        b => Some(b),
    }
}

fn read(reg: usize) -> u32 {
    match base() {
        // SAFETY: `base` is the uncached mapping of this CPU's local APIC
        // page and `reg` one of its 32-bit registers.
        Some(b) => unsafe { core::ptr::read_volatile((b as usize + reg) as *const u32) },
        None => 0,
    }
}

fn write(reg: usize, val: u32) {
    if let Some(b) = base() {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((b as usize + reg) as *mut u32, val) }
    }
}

/// Enables this CPU's local APIC: spurious vector, all priorities accepted,
/// LINT0 (the masked PIC) masked, LINT1 as NMI, errors masked.
pub fn init_cpu() {
    write(SVR, 0x100 | u32::from(vector::SPURIOUS));
    write(TPR, 0);
    write(LVT_LINT0, MASKED);
    write(LVT_LINT1, 0x400); // NMI delivery
    write(LVT_ERROR, MASKED);
    write(LVT_TIMER, MASKED);
}

/// This CPU's local APIC id.
pub fn id() -> u32 {
    read(ID) >> 24
}

/// Signals the end of the interrupt being handled.
pub fn eoi() {
    write(EOI, 0);
}

/// Starts the timer counting down from `initial` (divide by 16), one-shot and
/// masked: for calibration.
pub fn timer_start_counting(initial: u32) {
    write(TIMER_DIVIDE, 0x3);
    write(LVT_TIMER, MASKED);
    write(TIMER_INITIAL, initial);
}

/// The timer's current count.
pub fn timer_current() -> u32 {
    read(TIMER_CURRENT)
}

/// Starts the periodic timer interrupt, every `count` ticks (divide by 16).
pub fn timer_periodic(count: u32) {
    write(TIMER_DIVIDE, 0x3);
    write(LVT_TIMER, PERIODIC | u32::from(vector::TIMER));
    write(TIMER_INITIAL, count.max(1));
}

fn send_ipi(dest: u32, low: u32) {
    write(ICR_HIGH, dest << 24);
    write(ICR_LOW, low);
    for _ in 0..1_000_000 {
        if read(ICR_LOW) & DELIVERY_PENDING == 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

/// INIT (assert, level) to the CPU with this APIC id (SDM Vol. 3A 8.4.4.1).
pub fn send_init(apic_id: u32) {
    send_ipi(apic_id, 0x0000_4500);
}

/// A start-up IPI: the CPU starts in real mode at `page << 12`.
pub fn send_startup(apic_id: u32, page: u8) {
    send_ipi(apic_id, 0x0000_4600 | u32::from(page));
}

/// A fixed interrupt with `vector` to the CPU with this APIC id.
pub fn send_fixed(apic_id: u32, vector: u8) {
    send_ipi(apic_id, 0x0000_4000 | u32::from(vector));
}

/// An NMI to every other CPU (shorthand "all excluding self").
pub fn nmi_all_but_self() {
    send_ipi(0, 0x000C_4400);
}
