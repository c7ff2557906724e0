//! `ryokan console NAME`: a guest's UART both ways. What the guest said
//! (what `mgmt` still keeps of it, then what comes) is written to stdout;
//! what is read from stdin is typed into the guest. On a terminal, stdin
//! is put in raw mode (every key goes to the guest as typed, Enter as
//! `\r`, as a serial terminal sends it) and restored on the way out;
//! Ctrl-] detaches, as in telnet and `virsh console`. With a pipe, the
//! console detaches once stdin has ended, all of it was taken and the
//! guest has said nothing more for `--linger` seconds; a Ctrl-] byte in
//! the pipe detaches too.
//!
//! One connection, one request at a time (`Verb::Console`: the input
//! typed since the last one, and the offset of the output it has): every
//! [`POLL`] while nothing happens, at once while output or input flows.
//! A guest that does not read leaves its input ring full: what was typed
//! waits here, is offered again each poll, and if it is still not taken
//! when the console detaches, the console says how much was not (and
//! exits 1), never dropping it silently.
//!
//! With `--json`, stdout is one JSON object a line instead: the guest's
//! output as `{"offset":N,"output":"…"}` (the bytes from offset N of its
//! console log, as UTF-8 with what is not replaced), bytes no longer kept
//! as `{"lost":N}`, and last how the console ended (`main.rs`).

use std::io::{Read, Write};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use ipc::control::{Body, Name, Verb, CONSOLE_INPUT_MAX};

use crate::client::{Client, Failure};

/// The key that detaches: Ctrl-] (GS, 0x1d).
pub const DETACH: u8 = 0x1d;
/// How long to wait between polls while nothing happens.
pub const POLL: Duration = Duration::from_millis(50);

/// How an attached console ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Ctrl-], or stdin ended and all was taken.
    Detached,
    /// The guest stopped running.
    Stopped,
    /// Stdin ended, and this many typed bytes were never taken.
    NotTaken(usize),
}

/// What was typed, split at the detach key: the bytes before it, and
/// whether it was there.
pub fn until_detach(bytes: &[u8]) -> (&[u8], bool) {
    match bytes.iter().position(|&b| b == DETACH) {
        Some(i) => (&bytes[..i], true),
        None => (bytes, false),
    }
}

/// Restores the terminal's modes when dropped.
struct Raw {
    saved: Option<rustix::termios::Termios>,
}

impl Raw {
    /// Raw mode, if stdin is a terminal.
    fn on() -> Raw {
        let stdin = std::io::stdin();
        if !rustix::termios::isatty(&stdin) {
            return Raw { saved: None };
        }
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else { return Raw { saved: None } };
        let mut raw = saved.clone();
        raw.make_raw();
        if rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).is_err() {
            return Raw { saved: None };
        }
        Raw { saved: Some(saved) }
    }

    fn is_on(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, t);
        }
    }
}

/// Reads stdin on a thread of its own; None on the channel is its end.
fn typing() -> Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 256];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(n) => {
                    if tx.send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Where the guest's output goes: stdout as it came, or as JSON lines.
pub struct Out {
    json: bool,
}

impl Out {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// The guest's bytes from offset `at` of its console log.
    fn write(&mut self, at: u64, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut out = std::io::stdout();
        if self.json {
            let line = serde_json::json!({ "offset": at, "output": String::from_utf8_lossy(bytes) });
            let _ = writeln!(out, "{line}");
        } else {
            let _ = out.write_all(bytes);
        }
        let _ = out.flush();
    }

    /// `n` bytes of the guest's output were no longer kept.
    fn lost(&mut self, n: u64) {
        if self.json {
            println!("{}", serde_json::json!({ "lost": n }));
        } else {
            eprint!("[ryokan: {n} bytes of the guest's output were lost]\r\n");
        }
    }
}

/// Attaches to guest `name`'s console until it ends; `linger` is how long
/// to wait for more output once stdin ended and everything was taken.
pub fn attach(client: &mut Client, name: Name, linger: Duration, out: &mut Out) -> Result<End, Failure> {
    // Asked once before anything: a bad name is said before the terminal
    // changes.
    let (mut next, running) = catch_up(client, &name, 0, out)?;
    if !running {
        return Ok(End::Stopped);
    }
    let raw = Raw::on();
    if raw.is_on() {
        eprint!("[ryokan: connected to {name}'s console; detach with Ctrl-]]\r\n");
    }
    let keys = typing();
    // What the keyboard gave: None (nothing yet), Some(None) its end.
    let next_key = |block: bool| -> Option<Option<Vec<u8>>> {
        if block {
            match keys.recv_timeout(POLL) {
                Ok(k) => Some(k),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(None),
            }
        } else {
            match keys.try_recv() {
                Ok(k) => Some(k),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => Some(None),
            }
        }
    };
    let mut pending: Vec<u8> = Vec::new();
    let (mut eof, mut detach, mut flowing) = (false, false, false);
    let mut quiet_since = Instant::now();
    loop {
        // Take what was typed meanwhile; wait a poll's time for it if
        // nothing else is to be done.
        let mut block = pending.is_empty() && !eof && !detach && !flowing;
        if !block && !flowing && (eof || detach) {
            std::thread::sleep(POLL);
        }
        while !eof && !detach {
            match next_key(block) {
                None => break,
                Some(None) => eof = true,
                Some(Some(bytes)) => {
                    let (before, found) = until_detach(&bytes);
                    pending.extend_from_slice(before);
                    detach = found;
                }
            }
            block = false;
        }
        let n = pending.len().min(CONSOLE_INPUT_MAX);
        let input = pending[..n].iter().copied().collect();
        let body = client.call(Verb::Console { name: name.clone(), from: next, input })?;
        let Body::Console { start, output, taken, running } = body else {
            return Err(Failure::Unexpected("not a console's answer".into()));
        };
        if start > next {
            out.lost(start - next);
        }
        if !output.is_empty() {
            out.write(start, &output);
            quiet_since = Instant::now();
        }
        next = start + output.len() as u64;
        pending.drain(..usize::from(taken).min(pending.len()));
        flowing = taken > 0 || !output.is_empty();
        if !running {
            // What it said last, all of it.
            catch_up(client, &name, next, out)?;
            return Ok(End::Stopped);
        }
        if detach && pending.is_empty() {
            return Ok(End::Detached);
        }
        if (eof || detach) && quiet_since.elapsed() >= linger {
            return Ok(if pending.is_empty() { End::Detached } else { End::NotTaken(pending.len()) });
        }
    }
}

/// Writes the guest's console log from `from` on, as much as there is
/// (answers of at most `CONSOLE_OUTPUT_MAX` bytes each); the offset after
/// it, and whether the guest runs.
fn catch_up(client: &mut Client, name: &Name, from: u64, out: &mut Out) -> Result<(u64, bool), Failure> {
    let mut next = from;
    loop {
        let body =
            client.call(Verb::Console { name: name.clone(), from: next, input: Default::default() })?;
        let Body::Console { start, output, running, .. } = body else {
            return Err(Failure::Unexpected("not a console's answer".into()));
        };
        if start > next {
            out.lost(start - next);
        }
        out.write(start, &output);
        next = start + output.len() as u64;
        if output.is_empty() {
            return Ok((next, running));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_right_bracket_detaches_and_what_came_before_is_typed() {
        assert_eq!(until_detach(b"uname -a\r"), (&b"uname -a\r"[..], false));
        assert_eq!(until_detach(b"ls\r\x1dmore"), (&b"ls\r"[..], true));
        assert_eq!(until_detach(b"\x1d"), (&b""[..], true));
    }
}
