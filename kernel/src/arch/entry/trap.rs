//! Where every interrupt and exception lands (from the stubs of `idt`):
//! the machine's own work done here, the rest handed to the core.

use core::sync::atomic::Ordering;

use crate::arch::trap::{self, vector, TrapFrame};
use crate::arch::{apic, cpu};

/// Called by `trap_common` with the saved state.
pub extern "C" fn dispatch(frame: &mut TrapFrame) {
    if frame.cs & 3 == 3 {
        if frame.vector == 2 && trap::stopping() {
            cpu::halt_forever();
        }
        crate::sched::from_user(frame);
        return;
    }
    let vec = frame.vector as u8;
    match vec {
        2 if trap::stopping() => cpu::halt_forever(),
        0..=31 => trap::exception(frame),
        vector::TIMER => {
            // The kernel's timers due are fired by the code this returns
            // to (the idle loop's, a guest exit's).
            let now = cpu::rdtsc();
            if apic::timer_tick(now) {
                cpu::current().ticks.fetch_add(1, Ordering::Relaxed);
            }
            apic::eoi();
            apic::timer_rearm(now);
        }
        vector::KICK => {
            crate::virt::grave::reap(); // a VMCS another CPU retires waits for this
            apic::eoi();
        }
        v if (vector::IRQ_BASE..vector::IRQ_BASE + 24).contains(&v) => {
            crate::sched::irq_in_idle(u32::from(v - vector::IRQ_BASE))
        }
        v if (vector::MSI_BASE..vector::MSI_BASE + vector::MSI_COUNT).contains(&v) => {
            crate::sched::msi_in_idle(v)
        }
        vector::SPURIOUS => {}
        v if (vector::PIC_BASE..vector::PIC_BASE + 16).contains(&v) => {} // masked PIC: spurious
        v => {
            log::warn!("trap: unexpected interrupt vector {v:#x}");
            apic::eoi();
        }
    }
}
