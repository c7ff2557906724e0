//! Judging a finished emulator run: exit status plus serial log → verdict.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::log;

/// QEMU's `isa-debug-exit` status when the kernel wrote 0x10: `(0x10 << 1) | 1`.
pub const QEMU_EXIT_SUCCESS: i32 = 33;
/// QEMU's `isa-debug-exit` status when the kernel wrote 0x11.
pub const QEMU_EXIT_FAILURE: i32 = 35;

/// Which emulator produced a run; they are judged differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmulatorKind {
    Qemu,
    Bochs,
}

/// How the emulator process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// It was killed by this signal (not by us).
    Signal(i32),
    /// We killed it after this long.
    TimedOut(Duration),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit status {c}"),
            Exit::Signal(s) => write!(f, "killed by signal {s}"),
            Exit::TimedOut(t) => write!(f, "timed out after {} s", t.as_secs()),
        }
    }
}

/// The harness' judgement of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Failure { reason: String },
}

impl Verdict {
    pub fn is_success(&self) -> bool {
        matches!(self, Verdict::Success)
    }

    fn failure(reason: impl Into<String>) -> Self {
        Verdict::Failure { reason: reason.into() }
    }
}

/// Everything known about one finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    /// The serial log, `\r` stripped.
    pub serial: String,
    pub exit: Exit,
    pub duration: Duration,
    /// Where serial.log, bochsrc, bochs.log etc. were kept.
    pub work_dir: PathBuf,
}

/// The first line reporting a CPU exception or a kernel panic, if any.
pub fn fault_line(serial: &str) -> Option<&str> {
    serial.lines().find(|l| l.contains("EXCEPTION") || l.contains("PANIC"))
}

/// Judges a run from how the emulator exited and what the kernel printed.
pub fn judge(kind: EmulatorKind, exit: Exit, serial: &str) -> Verdict {
    if let Exit::TimedOut(t) = exit {
        return Verdict::failure(format!(
            "timed out after {} s (last line: {})",
            t.as_secs(),
            describe_last_line(serial)
        ));
    }
    let verdict = match kind {
        EmulatorKind::Qemu => judge_qemu(exit),
        EmulatorKind::Bochs => judge_bochs(serial),
    };
    // Whatever the exit path said, a logged fault or a failure shutdown fails the run.
    let verdict = match (verdict, fault_line(serial)) {
        (Verdict::Success, Some(fault)) => {
            Verdict::failure(format!("the log reports a fault: {}", fault.trim_end()))
        }
        (Verdict::Success, None) if has_failure_shutdown(serial) => {
            Verdict::failure(format!("the log contains `{}`", log::SHUTDOWN_FAILURE))
        }
        (Verdict::Failure { reason }, Some(fault)) => {
            Verdict::failure(format!("{reason}; first fault: {}", fault.trim_end()))
        }
        (v, _) => v,
    };
    // mgmt's verdict lines say which guests failed the run, and how.
    match verdict {
        Verdict::Failure { mut reason } => {
            for guest in failed_guests(serial) {
                reason.push_str("; ");
                reason.push_str(guest);
            }
            Verdict::Failure { reason }
        }
        v => v,
    }
}

/// mgmt's lines for the guests that failed the run, from `guest …` on
/// (`[mgmt] verdict: guest NAME failed: …`, see `mgmt::verdict`).
pub fn failed_guests(serial: &str) -> impl Iterator<Item = &str> {
    log::said(serial, "mgmt")
        .into_iter()
        .filter_map(|(_, m)| m.strip_prefix("verdict: "))
        .filter(|m| m.starts_with("guest "))
}

fn judge_qemu(exit: Exit) -> Verdict {
    match exit {
        Exit::Code(QEMU_EXIT_SUCCESS) => Verdict::Success,
        Exit::Code(QEMU_EXIT_FAILURE) => {
            Verdict::failure("the kernel reported failure (QEMU exit status 35)")
        }
        Exit::Code(0) => Verdict::failure(
            "QEMU exit status 0: triple fault or reset under -no-reboot, no shutdown reported",
        ),
        Exit::Code(1) => Verdict::failure("QEMU exit status 1: QEMU itself failed"),
        other => Verdict::failure(format!("QEMU {other}, expected exit status 33")),
    }
}

fn judge_bochs(serial: &str) -> Verdict {
    // Bochs exits 1 on success, on panic and on triple fault alike: only the log tells.
    match log::last_nonempty_line(serial) {
        Some(line) if log::parse_line(line).message.trim_end() == log::SHUTDOWN_SUCCESS => Verdict::Success,
        _ => Verdict::failure(format!(
            "the last line is not `{}` (last line: {})",
            log::SHUTDOWN_SUCCESS,
            describe_last_line(serial)
        )),
    }
}

fn has_failure_shutdown(serial: &str) -> bool {
    log::lines(serial).any(|l| l.message.trim_end() == log::SHUTDOWN_FAILURE)
}

fn describe_last_line(serial: &str) -> String {
    match log::last_nonempty_line(serial) {
        Some(l) => format!("`{}`", l.trim_end()),
        None => "none, the serial log is empty".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[cpu0] hello\r\n[cpu0] RYOKAN: shutdown status=success\r\n";

    fn good() -> String {
        log::normalize(GOOD.as_bytes())
    }

    fn is_failure_with(v: &Verdict, needle: &str) -> bool {
        matches!(v, Verdict::Failure { reason } if reason.contains(needle))
    }

    #[test]
    fn qemu_exit_33_with_clean_log_succeeds() {
        assert_eq!(judge(EmulatorKind::Qemu, Exit::Code(33), &good()), Verdict::Success);
    }

    #[test]
    fn qemu_other_statuses_fail() {
        for (code, needle) in [(35, "reported failure"), (0, "triple fault"), (1, "QEMU itself")] {
            let v = judge(EmulatorKind::Qemu, Exit::Code(code), &good());
            assert!(is_failure_with(&v, needle), "{code}: {v:?}");
        }
        let v = judge(EmulatorKind::Qemu, Exit::Code(7), &good());
        assert!(is_failure_with(&v, "exit status 7"), "{v:?}");
        let v = judge(EmulatorKind::Qemu, Exit::Signal(9), &good());
        assert!(is_failure_with(&v, "signal 9"), "{v:?}");
    }

    #[test]
    fn exception_in_log_fails_even_with_success_exit() {
        let log = "[cpu1] EXCEPTION: vector 14 (#PF) error=0x2 rip=0x1 cr2=0x0 cpu=1\n\
                   [cpu0] RYOKAN: shutdown status=success\n";
        for kind in [EmulatorKind::Qemu, EmulatorKind::Bochs] {
            let v = judge(kind, Exit::Code(33), log);
            assert!(is_failure_with(&v, "vector 14"), "{v:?}");
        }
    }

    #[test]
    fn panic_in_log_fails() {
        let log = "[cpu0] PANIC: at src/x.rs:1\n[cpu0] RYOKAN: shutdown status=success\n";
        assert!(is_failure_with(&judge(EmulatorKind::Qemu, Exit::Code(33), log), "PANIC"));
    }

    #[test]
    fn failure_shutdown_line_fails_even_with_exit_33() {
        let log = "[cpu0] RYOKAN: shutdown status=failure\n";
        let v = judge(EmulatorKind::Qemu, Exit::Code(33), log);
        assert!(is_failure_with(&v, "status=failure"), "{v:?}");
    }

    #[test]
    fn bochs_is_judged_by_final_line() {
        assert_eq!(judge(EmulatorKind::Bochs, Exit::Code(1), &good()), Verdict::Success);
        let bare = "x\nRYOKAN: shutdown status=success\n\n";
        assert_eq!(judge(EmulatorKind::Bochs, Exit::Code(1), bare), Verdict::Success);
    }

    #[test]
    fn bochs_without_final_line_fails() {
        let missing = "[cpu0] hello\n";
        assert!(is_failure_with(&judge(EmulatorKind::Bochs, Exit::Code(1), missing), "`[cpu0] hello`"));
        let not_last = "[cpu0] RYOKAN: shutdown status=success\n[cpu0] more\n";
        assert!(is_failure_with(&judge(EmulatorKind::Bochs, Exit::Code(1), not_last), "more"));
        let failed = "[cpu0] RYOKAN: shutdown status=failure\n";
        assert!(!judge(EmulatorKind::Bochs, Exit::Code(1), failed).is_success());
        let empty = "";
        assert!(is_failure_with(&judge(EmulatorKind::Bochs, Exit::Code(1), empty), "empty"));
    }

    #[test]
    fn bochs_final_line_must_match_exactly() {
        let log = "[cpu0] RYOKAN: shutdown status=successful\n";
        assert!(!judge(EmulatorKind::Bochs, Exit::Code(1), log).is_success());
    }

    #[test]
    fn the_guests_that_failed_the_run_are_its_reason() {
        let log = concat!(
            "[mgmt] guest-x exited with code 1\n",
            "[mgmt] verdict: guest guest-x failed: it reported failure (VMM status 1)\n",
            "[vmm] verdict: guest forged failed: not mgmt's line\n",
            "[cpu0] RYOKAN: shutdown status=failure\n",
        );
        for kind in [EmulatorKind::Qemu, EmulatorKind::Bochs] {
            let v = judge(kind, Exit::Code(35), log);
            assert!(
                is_failure_with(&v, "; guest guest-x failed: it reported failure (VMM status 1)"),
                "{v:?}"
            );
            assert!(!is_failure_with(&v, "forged"), "{v:?}");
        }
        assert_eq!(failed_guests(log).count(), 1);
        assert_eq!(failed_guests(&good()).count(), 0);
    }

    #[test]
    fn timeout_fails_with_last_line() {
        let v = judge(EmulatorKind::Bochs, Exit::TimedOut(Duration::from_secs(180)), &good());
        assert!(is_failure_with(&v, "timed out after 180 s"), "{v:?}");
        let v = judge(EmulatorKind::Qemu, Exit::TimedOut(Duration::from_secs(60)), "[cpu0] stuck\n");
        assert!(is_failure_with(&v, "stuck"), "{v:?}");
    }
}
