//! The kernel binary: the library does the work; this file only adds what a
//! freestanding executable needs.

#![no_std]
#![no_main]

use core::fmt::Write;

use ryokan_kernel::arch::{cpu, power, serial::Serial, trap};

/// A kernel panic is a broken kernel invariant: report it, stop every CPU,
/// end the run as failed.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let first = trap::stop_others();
    let mut out = Serial::already_initialised();
    let _ = writeln!(out, "\n[cpu{}] PANIC: {info}", cpu::current_index());
    if !first {
        cpu::halt_forever();
    }
    power::exit(power::Status::Failure)
}

/// Keeps the library's boot path (which holds the entry point) linked in.
#[used]
static ENTRY: extern "C" fn(u32, u32) -> ! = ryokan_kernel::boot::kernel_start;
