//! What happens on an interrupt or exception. A CPU exception in the kernel
//! is a kernel bug: it is reported (vector, error code, RIP, CR2, CPU), every
//! CPU is stopped, and the run ends with the failure status.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use x86_64::registers::control::Cr2;

use super::{apic, cpu, power, serial::Serial};

pub use crate::hwdata::trap::{vector, TrapFrame};

/// Set once a CPU has begun stopping the system; an NMI then halts the CPU.
static STOPPING: AtomicBool = AtomicBool::new(false);

const NAMES: [&str; 32] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF",
    "reserved", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "reserved", "reserved", "reserved", "reserved",
    "reserved", "reserved", "#HV", "#VC", "#SX", "reserved",
];

/// Whether a CPU has begun stopping the system (an NMI then halts).
pub fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// Reports an exception in the kernel and stops the system: a kernel bug.
pub fn exception(frame: &TrapFrame) -> ! {
    let first = !STOPPING.swap(true, Ordering::SeqCst);
    if first {
        apic::nmi_all_but_self();
    }
    let cr2 = Cr2::read_raw();
    let cpu = cpu::current_index();
    let name = NAMES.get(frame.vector as usize).copied().unwrap_or("?");
    // The log lock may be held by a CPU that the NMI just stopped: write
    // straight to the port.
    let mut out = Serial::already_initialised();
    let _ = write!(
        out,
        "\n[cpu{cpu}] EXCEPTION: vector {} ({name}) error={:#x} rip={:#018x} cr2={cr2:#018x} cpu={cpu}\n\
         [cpu{cpu}]   cs={:#x} rflags={:#x} rsp={:#018x} ss={:#x}\n\
         [cpu{cpu}]   rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n\
         [cpu{cpu}]   rsi={:#018x} rdi={:#018x} rbp={:#018x}\n",
        frame.vector,
        frame.error,
        frame.rip,
        frame.cs,
        frame.rflags,
        frame.rsp,
        frame.ss,
        frame.rax,
        frame.rbx,
        frame.rcx,
        frame.rdx,
        frame.rsi,
        frame.rdi,
        frame.rbp,
    );
    if !first {
        cpu::halt_forever();
    }
    power::exit(power::Status::Failure)
}

/// An NMI arrived while this CPU ran a guest (it exited instead of being
/// delivered): halt if the system is stopping.
pub fn nmi_in_guest() {
    if STOPPING.load(Ordering::SeqCst) {
        cpu::halt_forever();
    }
}

/// Stops every other CPU (the panic path).
pub fn stop_others() -> bool {
    let first = !STOPPING.swap(true, Ordering::SeqCst);
    if first {
        apic::nmi_all_but_self();
    }
    first
}
