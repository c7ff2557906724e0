//! The 8254 PIT's channel 2, used once at boot as the reference clock for
//! calibrating the TSC and the local APIC timer; and the 8259 PICs, which
//! are remapped out of the exception vectors and masked.

use x86_64::instructions::port::Port;

use super::{apic, cpu};

const PIT_HZ: u64 = 1_193_182;
const PIT_CH2: u16 = 0x42;
const PIT_CMD: u16 = 0x43;
const PORT_B: u16 = 0x61; // bit 0: channel 2 gate; bit 5: channel 2 output

/// Clock rates measured against the PIT.
#[derive(Clone, Copy, Debug)]
pub struct Calibration {
    /// TSC ticks per millisecond.
    pub tsc_per_ms: u64,
    /// Local APIC timer ticks (divide by 16) per millisecond.
    pub apic_per_ms: u32,
}

fn outb(port: u16, v: u8) {
    // SAFETY: the PIT, port B and PIC ports belong to the kernel; writing them
    // touches only those timers and interrupt controllers.
    unsafe { Port::<u8>::new(port).write(v) }
}

fn inb(port: u16) -> u8 {
    // SAFETY: reading port B has no side effects.
    unsafe { Port::<u8>::new(port).read() }
}

/// How many windows of the PIT the rates are measured over.
const WINDOWS: usize = 5;

/// Measures the TSC and the local APIC timer over 10 ms of the PIT, five
/// times, and keeps the window the TSC found shortest. Every way a window
/// goes wrong makes it longer, never shorter: the gate opened after the
/// first TSC read, or the PIT's end seen late (an emulated CPU, as QEMU's
/// TCG, that its host takes away for a few milliseconds in between: one
/// window on a loaded host measured a 2.6 GHz TSC at 3.3 to 5.7 GHz).
pub fn calibrate() -> Calibration {
    // The first of the shortest (WINDOWS is not 0: never the fallback).
    let (tsc, apic) = (0..WINDOWS).map(|_| window()).min_by_key(|w| w.0).unwrap_or((0, 0));
    Calibration { tsc_per_ms: (tsc / WINDOW_MS).max(1), apic_per_ms: (apic / WINDOW_MS as u32).max(1) }
}

/// One window's length in milliseconds.
const WINDOW_MS: u64 = 10;

/// The TSC's and the local APIC timer's ticks over one window of the PIT.
fn window() -> (u64, u32) {
    let count = (PIT_HZ * WINDOW_MS / 1000) as u16;
    let b = inb(PORT_B) & !0x02; // speaker off
    outb(PORT_B, b & !0x01); // gate low: hold
    outb(PIT_CMD, 0xB0); // channel 2, lobyte/hibyte, mode 0, binary
    outb(PIT_CH2, count as u8);
    outb(PIT_CH2, (count >> 8) as u8);
    apic::timer_start_counting(u32::MAX);
    let apic0 = apic::timer_current();
    let tsc0 = cpu::rdtsc();
    outb(PORT_B, b | 0x01); // gate high: count
    let mut spins = 0u64;
    while inb(PORT_B) & 0x20 == 0 && spins < 100_000_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    let tsc1 = cpu::rdtsc();
    let apic1 = apic::timer_current();
    (tsc1.wrapping_sub(tsc0), apic0.wrapping_sub(apic1))
}

/// Remaps the 8259 PICs to vectors `base..base + 16` and masks every line:
/// interrupts come through the APICs.
pub fn disable_pic(base: u8) {
    for (cmd, data, offset, wiring) in [(0x20, 0x21, base, 4), (0xA0, 0xA1, base + 8, 2)] {
        outb(cmd, 0x11); // ICW1: init, ICW4 follows
        outb(data, offset); // ICW2: vector base
        outb(data, wiring); // ICW3: cascade wiring
        outb(data, 0x01); // ICW4: 8086 mode
        outb(data, 0xFF); // mask all
    }
}
