//! The kernel log: `log` records to the serial port, one line per event,
//! prefixed with the CPU that logged it.

use core::fmt::Write;

use log::{Level, LevelFilter, Log, Metadata, Record};
use spin::Mutex;

use crate::arch::{cpu, serial::Serial};

static SERIAL: Mutex<Option<Serial>> = Mutex::new(None);

struct KernelLog;

static LOGGER: KernelLog = KernelLog;

impl Log for KernelLog {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= Level::Info
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            Level::Error => "ERROR ",
            Level::Warn => "WARN ",
            _ => "",
        };
        // Interrupts off while the lock is held: a handler on this CPU that
        // logged would otherwise wait for itself.
        x86_64::instructions::interrupts::without_interrupts(|| {
            if let Some(out) = SERIAL.lock().as_mut() {
                let _ = writeln!(out, "[cpu{}] {level}{}", cpu::current_index(), r.args());
            }
        });
    }

    fn flush(&self) {}
}

/// Starts logging to COM1.
pub fn init() {
    *SERIAL.lock() = Some(Serial::init());
    // Fails only if a logger is already set, which is then the one in use.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Writes a domain's console output as it is, except that control bytes
/// other than newline and tab become `?`: a domain cannot forge terminal
/// escapes into the log.
pub fn write_raw(bytes: &[u8]) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        if let Some(out) = SERIAL.lock().as_mut() {
            for &b in bytes {
                match b {
                    b'\n' => out.write_str("\n"),
                    b'\t' | 0x20..=0x7e => out.write_byte(b),
                    _ => out.write_byte(b'?'),
                }
            }
        }
    });
}
