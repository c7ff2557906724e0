//! The VMM's lines on the debug console: its own, `[vmm] <guest>: …`, and
//! the guest's serial output, `[<guest>] <line>`. Each is formatted on the
//! stack and written with one console call, so lines never interleave.

use core::fmt::{self, Write};

use heapless::String;
use ipc::CapSlot;
use user::sys;

/// The longest line; longer ones are cut and end in `...`.
const LINE_MAX: usize = 320;

pub struct Console {
    slot: Option<CapSlot>,
    name: String<24>,
}

/// Says a line of the VMM's own: `say!(console, "format", args…)`.
macro_rules! say {
    ($console:expr, $($arg:tt)*) => {
        $console.vmm(format_args!($($arg)*))
    };
}
pub(crate) use say;

impl Console {
    /// The console `slot`, speaking for the guest `name` (cut to 24 bytes).
    pub fn new(slot: Option<CapSlot>, name: &str) -> Self {
        let mut c = Console { slot, name: String::new() };
        c.rename(name);
        c
    }

    pub fn rename(&mut self, name: &str) {
        self.name.clear();
        for ch in name.chars() {
            if self.name.push(ch).is_err() {
                break;
            }
        }
    }

    /// `[vmm] <guest>: <args>`.
    pub fn vmm(&self, args: fmt::Arguments<'_>) {
        self.line(format_args!("[vmm] {}: {args}", self.name));
    }

    /// `[<guest>] <line>`: a line of the guest's serial output.
    pub fn guest(&self, line: &str) {
        self.line(format_args!("[{}] {line}", self.name));
    }

    fn line(&self, args: fmt::Arguments<'_>) {
        let Some(slot) = self.slot else { return };
        let mut line = Line { buf: [0; LINE_MAX], len: 0, cut: false };
        // Line's write_str never fails.
        let _ = line.write_fmt(args);
        // A console that refuses has nowhere to report it.
        let _ = sys::console_write(slot, line.finish());
    }
}

struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
    cut: bool,
}

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
            // Room is kept for the `...\n` of a cut line.
            if self.len == LINE_MAX - 4 {
                self.cut = true;
                break;
            }
            self.buf[self.len] = if b == b'\n' || b == b'\r' { b' ' } else { b };
            self.len += 1;
        }
        Ok(())
    }
}
