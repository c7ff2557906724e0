//! The local APIC in xAPIC mode (SDM Vol. 3A ch. 11): per-CPU set-up, the
//! timer, end of interrupt, and the inter-processor interrupts that start and
//! stop CPUs. The register offsets are the `x86` crate's (`x86::apic::xapic`).

use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use x86::apic::xapic::{
    XAPIC_EOI, XAPIC_ICR0, XAPIC_ICR1, XAPIC_ID, XAPIC_LVT_ERROR, XAPIC_LVT_LINT0, XAPIC_LVT_LINT1,
    XAPIC_LVT_TIMER, XAPIC_SVR, XAPIC_TIMER_CURRENT_COUNT, XAPIC_TIMER_DIV_CONF, XAPIC_TIMER_INIT_COUNT,
    XAPIC_TPR,
};

use super::trap::vector;

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

fn read(reg: u32) -> u32 {
    match base() {
        // SAFETY: `base` is the uncached mapping of this CPU's local APIC
        // page and `reg` one of its 32-bit registers.
        Some(b) => unsafe { core::ptr::read_volatile((b as usize + reg as usize) as *const u32) },
        None => 0,
    }
}

fn write(reg: u32, val: u32) {
    if let Some(b) = base() {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((b as usize + reg as usize) as *mut u32, val) }
    }
}

/// Enables this CPU's local APIC: spurious vector, all priorities accepted,
/// LINT0 (the masked PIC) masked, LINT1 as NMI, errors masked.
pub fn init_cpu() {
    write(XAPIC_SVR, 0x100 | u32::from(vector::SPURIOUS));
    write(XAPIC_TPR, 0);
    write(XAPIC_LVT_LINT0, MASKED);
    write(XAPIC_LVT_LINT1, 0x400); // NMI delivery
    write(XAPIC_LVT_ERROR, MASKED);
    write(XAPIC_LVT_TIMER, MASKED);
}

/// This CPU's local APIC id.
pub fn id() -> u32 {
    read(XAPIC_ID) >> 24
}

/// Signals the end of the interrupt being handled.
pub fn eoi() {
    write(XAPIC_EOI, 0);
}

/// Starts the timer counting down from `initial` (divide by 16), one-shot and
/// masked: for calibration.
pub fn timer_start_counting(initial: u32) {
    write(XAPIC_TIMER_DIV_CONF, 0x3);
    write(XAPIC_LVT_TIMER, MASKED);
    write(XAPIC_TIMER_INIT_COUNT, initial);
}

/// The timer's current count.
pub fn timer_current() -> u32 {
    read(XAPIC_TIMER_CURRENT_COUNT)
}

/// Starts the timer interrupt, every `count` ticks (divide by 16): the
/// scheduler's tick, a millisecond. The timer stays periodic, so that a CPU
/// whose timer were not restarted would still tick; it is restarted at each
/// of its interrupts and when a kernel timer comes due sooner
/// ([`timer_rearm`]).
pub fn timer_periodic(count: u32) {
    TICK_COUNT.store(count.max(1), Ordering::Relaxed);
    write(XAPIC_TIMER_DIV_CONF, 0x3);
    write(XAPIC_LVT_TIMER, PERIODIC | u32::from(vector::TIMER));
    write(XAPIC_TIMER_INIT_COUNT, count.max(1));
    let me = super::cpu::current();
    let at = super::cpu::rdtsc().saturating_add(tick_tsc());
    me.tick_at.store(at, Ordering::Relaxed);
    me.timer_at.store(at, Ordering::Relaxed);
}

/// The tick's period in timer counts (0 until the timer starts).
static TICK_COUNT: AtomicU32 = AtomicU32::new(0);
/// The TSC at which the kernel's first timer is due (`u64::MAX`: none).
static NEXT_DUE: AtomicU64 = AtomicU64::new(u64::MAX);
/// The CPU whose timer interrupt comes for it: the one that last changed
/// it (any CPU fires the timers due, at its own interrupts, but only one
/// takes an interrupt for them; the rest keep their ticks).
static DUE_CPU: AtomicUsize = AtomicUsize::new(0);

/// The tick's period in TSC ticks.
fn tick_tsc() -> u64 {
    super::cpu::tsc_per_us().saturating_mul(1000)
}

/// A timer interrupt on this CPU at TSC `now`: whether it is the
/// scheduler's tick (`policy::tick_at`; else a kernel timer's). The
/// timer is restarted after it, by its handler.
pub fn timer_tick(now: u64) -> bool {
    let me = super::cpu::current();
    match crate::policy::tick_at(now, me.tick_at.load(Ordering::Relaxed), tick_tsc()) {
        Some(next) => {
            me.tick_at.store(next, Ordering::Relaxed);
            if super::cpu::current_index() == 0 {
                super::iommu::poll_faults();
            }
            true
        }
        None => false,
    }
}

/// The kernel's first timer is now due at TSC `due` (`u64::MAX`: none):
/// this CPU takes the interrupt for it from now on, and its timer is
/// restarted if that makes it fire sooner (never later:
/// `policy::timer_arm_sooner`). A later one leaves it (it fires early once
/// and is restarted then). Another CPU's timer may fire it first: any CPU
/// fires the timers due.
pub fn timer_due(due: u64) {
    if NEXT_DUE.swap(due, Ordering::Relaxed) == due {
        return;
    }
    DUE_CPU.store(super::cpu::current_index(), Ordering::Relaxed);
    let Some((count, period, me)) = started() else { return };
    let (now, tick_at, armed) =
        (super::cpu::rdtsc(), me.tick_at.load(Ordering::Relaxed), me.timer_at.load(Ordering::Relaxed));
    if let Some((at, n)) = crate::policy::timer_arm_sooner(now, tick_at, due, period, count, armed) {
        me.timer_at.store(at, Ordering::Relaxed);
        write(XAPIC_TIMER_INIT_COUNT, n);
    }
}

/// The tick's period in counts and in TSC ticks, and this CPU's state,
/// once its timer started.
fn started() -> Option<(u32, u64, &'static super::cpu::PerCpu)> {
    let (count, period) = (TICK_COUNT.load(Ordering::Relaxed), tick_tsc());
    (count != 0 && period != 0).then(|| (count, period, super::cpu::current()))
}

/// Restarts this CPU's timer after its interrupt, at TSC `now`, for the
/// earlier of its next tick and the kernel's first timer if this CPU takes
/// that (`policy::timer_arm`): so a timer fires when it is due, not at the
/// next millisecond's tick (a guest's TSC-deadline timer, which its VMM
/// sets as a kernel timer, came up to a tick late, and Linux's early
/// jiffies took 5 ms each).
pub fn timer_rearm(now: u64) {
    let Some((count, period, me)) = started() else { return };
    let mine = DUE_CPU.load(Ordering::Relaxed) == super::cpu::current_index();
    let due = if mine { NEXT_DUE.load(Ordering::Relaxed) } else { u64::MAX };
    let (at, n) = crate::policy::timer_arm(now, me.tick_at.load(Ordering::Relaxed), due, period, count);
    me.timer_at.store(at, Ordering::Relaxed);
    write(XAPIC_TIMER_INIT_COUNT, n);
}

fn send_ipi(dest: u32, low: u32) {
    write(XAPIC_ICR1, dest << 24);
    write(XAPIC_ICR0, low);
    for _ in 0..1_000_000 {
        if read(XAPIC_ICR0) & DELIVERY_PENDING == 0 {
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
