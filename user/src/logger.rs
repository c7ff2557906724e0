//! `log` to the debug console: each record one line `[<domain>] <message>`,
//! written with one console call, formatted on the stack (no heap: it works
//! before the heap exists and after it ran out).

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU32, Ordering};

use ipc::CapSlot;
use log::{LevelFilter, Log, Metadata, Record};

use crate::{rt, sys};

/// The longest line; longer ones are cut and end in `...`.
const LINE_MAX: usize = 1024;
const NO_CONSOLE: u32 = u32::MAX;

struct Logger {
    console: AtomicU32,
}

static LOGGER: Logger = Logger { console: AtomicU32::new(NO_CONSOLE) };

/// Sends log records to `console` from now on.
pub fn init(console: Option<CapSlot>) {
    LOGGER.console.store(console.map_or(NO_CONSOLE, |c| c.0), Ordering::Relaxed);
    // Fails only if a logger is set already: then it stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Writes one line `[<domain>] <args>` to the console, if there is one.
pub fn line(args: fmt::Arguments<'_>) {
    let console = LOGGER.console.load(Ordering::Relaxed);
    if console == NO_CONSOLE {
        return;
    }
    let mut l = Line { buf: [0; LINE_MAX], len: 0, cut: false };
    let name = rt::start_info().map_or("?", |s| s.name());
    // Line's write_str never fails; a Display impl that does only ends the line early.
    let _ = write!(l, "[{name}] {args}");
    // A console that refuses has nowhere to report it.
    let _ = sys::console_write(CapSlot(console), l.finish());
}

impl Log for Logger {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        self.console.load(Ordering::Relaxed) != NO_CONSOLE
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            line(*record.args());
        }
    }

    fn flush(&self) {}
}

/// A line being formatted: line breaks in it become spaces.
struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
    cut: bool,
}

/// Room kept for the `...\n` of a cut line.
const TAIL: usize = 4;

impl Line {
    fn finish(&mut self) -> &[u8] {
        let end: &[u8] = if self.cut { b"...\n" } else { b"\n" };
        self.buf[self.len..self.len + end.len()].copy_from_slice(end);
        &self.buf[..self.len + end.len()]
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == LINE_MAX - TAIL {
                self.cut = true;
                break;
            }
            self.buf[self.len] = if b == b'\n' || b == b'\r' { b' ' } else { b };
            self.len += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(args: fmt::Arguments<'_>) -> Vec<u8> {
        let mut l = Line { buf: [0; LINE_MAX], len: 0, cut: false };
        l.write_fmt(args).unwrap();
        l.finish().to_vec()
    }

    #[test]
    fn lines_are_single_and_bounded() {
        assert_eq!(format(format_args!("[a] x\ny {}", 5)), b"[a] x y 5\n");
        let long = "z".repeat(5000);
        let out = format(format_args!("{long}"));
        assert_eq!(out.len(), LINE_MAX);
        assert!(out.ends_with(b"zzz...\n"));
    }
}
