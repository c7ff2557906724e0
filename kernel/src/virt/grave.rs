//! Freeing a destroyed vCPU's hardware state: a VMCS may be cached by the
//! CPU that last ran it, which alone may clear it. The machine's half of
//! `crate::hw::vm::retire` and `reap` (moved here from `crate::vm`, so that
//! the trap entry reaps without calling up into the core).

use core::sync::atomic::{AtomicUsize, Ordering};

use x86_64::PhysAddr;

use super::vcpu as hw;
use crate::arch::cpu;
use crate::mem::kspace;
use crate::obj::vcpu::{state_frame, Vcpu, HW_FRAMES};

/// VMCS frames of destroyed vCPUs, with the CPU that may still cache them:
/// only that CPU may clear them (VMCLEAR writes back its cached copy), and
/// only then may they be freed. A frame is retired synchronously (its CPU
/// is kicked, and clears it in the interrupt, or when next taking the
/// lock, and the retiring CPU waits), so this holds only the frames of
/// CPUs that did not answer: those are never freed early. If it is full
/// even so (many such CPUs), a frame is leaked, never freed while cached.
static GRAVE: spin::Mutex<heapless::Vec<(usize, u64), 64>> = spin::Mutex::new(heapless::Vec::new());
/// How many frames lie in [`GRAVE`]: read without its lock on every guest
/// entry, which then skips it when none do.
static BURIED: AtomicUsize = AtomicUsize::new(0);

/// Disposes of a destroyed vCPU's VMCS: now if this CPU is the one that ran
/// it (or none did), else as soon as that CPU has cleared it.
pub fn retire(vcpu: &Vcpu, cpu_of: usize) {
    let pa = vcpu.vmcs.as_u64();
    if !hw::cached_by_cpu() || !vcpu.launched || cpu_of == cpu::current_index() {
        free_vmcs(pa);
    } else if GRAVE.lock().push((cpu_of, pa)).is_ok() {
        BURIED.fetch_add(1, Ordering::SeqCst);
        let buried = |_: &cpu::PerCpu| !GRAVE.lock().iter().any(|&(_, x)| x == pa);
        if !cpu::wait_until(cpu_of, buried) {
            log::error!("vcpu: cpu {cpu_of} did not clear a VMCS: its frame is kept until it does");
        }
    } else {
        kspace::leak(1, "a VMCS its CPU never cleared");
    }
}

/// Clears and frees the VMCS frames left for this CPU.
#[inline]
pub fn reap() {
    if BURIED.load(Ordering::SeqCst) != 0 {
        reap_here();
    }
}

fn reap_here() {
    let me = cpu::current_index();
    let mut grave = GRAVE.lock();
    grave.retain(|&(c, pa)| {
        if c == me {
            free_vmcs(pa);
            BURIED.fetch_sub(1, Ordering::SeqCst);
            false
        } else {
            true
        }
    });
}

fn free_vmcs(pa: u64) {
    hw::release(pa);
    let me = cpu::current();
    if me.current_vmcs.load(Ordering::Relaxed) == pa {
        me.current_vmcs.store(0, Ordering::Relaxed);
    }
    super::state::forget(state_frame(pa));
    kspace::free_contiguous(PhysAddr::new(pa), HW_FRAMES);
}
