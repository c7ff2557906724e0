//! Ending a run. Emulators get an exit status: QEMU's isa-debug-exit device
//! at port 0xf4 (status `(v << 1) | 1`) and Bochs' shutdown port 0x8900. The
//! final serial line says the same for those that have neither.

use core::fmt::Write;

use x86_64::instructions::port::Port;

use super::{cpu, serial::Serial};

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
}

/// Prints the final line, drains the UART and stops the machine.
pub fn exit(status: Status) -> ! {
    let (word, code) = match status {
        Status::Success => ("success", 0x10u32),
        Status::Failure => ("failure", 0x11u32),
    };
    let mut out = Serial::already_initialised();
    let _ = writeln!(out, "RYOKAN: shutdown status={word}");
    out.drain();
    // SAFETY: port 0xf4 is QEMU's debug-exit device when present (it ends the
    // emulator) and unused otherwise; port 0x8900 is Bochs' shutdown port and
    // unused elsewhere. Nothing the kernel owns is touched.
    unsafe {
        Port::<u32>::new(0xf4).write(code);
        for b in b"Shutdown" {
            Port::<u8>::new(0x8900).write(*b);
        }
    }
    cpu::halt_forever()
}
