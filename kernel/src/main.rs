//! The kernel binary: the library does the work; this file only adds what a
//! freestanding executable needs.

#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use {
    core::fmt::Write,
    ryokan_kernel::arch::{cpu, power, serial::Serial, trap},
};

/// On the host there is no kernel to run: `cargo test` builds this binary
/// only because it builds every binary of the package for its tests.
#[cfg(not(target_os = "none"))]
fn main() {}

/// A kernel panic is a broken kernel invariant: report it, stop every CPU,
/// end the run as failed.
#[cfg(target_os = "none")]
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
#[cfg(target_os = "none")]
#[used]
static ENTRY: extern "C" fn(u32, u32) -> ! = ryokan_kernel::arch::entry::boot::kernel_start;
