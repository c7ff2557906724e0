//! `ryokan console` against a booted system (tests/systems/console.toml):
//! `echo` (guest-echo, which reads its UART by interrupt and answers each
//! line) round-trips what is piped into the CLI, in order and whole, with
//! the output it gave before the console attached; a name that is no
//! guest, or none, gets its error. The hostile twins: console frames that
//! are oversized, carry too much input, or are garbage are each answered
//! with an error; a guest that never reads (`deaf`) fills its console's
//! input ring, and the CLI says what was not taken instead of hanging;
//! through all of it mgmt serves, `echo` answers and `idler` runs. Then
//! `quit` ends `echo` (its interrupts counted), whose console log is still
//! shown, and `shutdown` ends the run.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipc::control::{
    Body, ControlError, FrameEvent, Framer, Request, Response, Verb, CONSOLE_INPUT_MAX, MAX_REQUEST,
    MAX_RESPONSE, VERSION,
};

use super::fuzz::Rng;
use super::{ensure, Ran, Session};
use crate::cases::{Image, SystemTest};
use crate::emulator::{Emulator, Qemu};
use crate::judge::{Outcome, Verdict};

pub fn case() -> SystemTest {
    SystemTest {
        name: "control_console",
        image: Image::System("tests/systems/console.toml"),
        emulator: Emulator::Qemu(Qemu::with_control()),
        check: check_console,
        drive: Some(drive_console),
        prepare: None,
    }
}

/// How many mutated console frames are sent.
pub const MUTATED: usize = 2000;

/// `ryokan --connect SOCKET console ARGS…` with `input` on its stdin.
pub(super) fn console(s: &Session, args: &[&str], input: &[u8]) -> Result<Ran, String> {
    let mut child = Command::new(&s.cli)
        .arg("--connect")
        .arg(&s.socket)
        .arg("console")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", s.cli.display()))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let bytes = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = writer.join();
    Ok(Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn drive_console(s: &Session) -> Result<(), String> {
    s.wait_for("[mgmt] control: serving on COM2", Duration::from_secs(30))?;
    s.wait_for("[echo] guest-echo: ready", Duration::from_secs(30))?;
    s.wait_for("[deaf] guest-echo: deaf, never reading", Duration::from_secs(30))?;
    round_trip(s)?;
    refusals(s)?;
    hostile_frames(s)?;
    deaf(s)?;
    round_trip_again(s, "after the hostile frames and the deaf guest")?;
    let list = s.json(&["list"])?;
    for n in ["echo", "deaf", "idler"] {
        let running =
            list.as_array().into_iter().flatten().any(|e| e["name"] == n && e["state"] == "running");
        ensure(running, || format!("{n} is not running after it all: {list}"))?;
    }
    quit(s)?;
    let out = s.run(&["shutdown"])?;
    ensure(out.ok, || format!("`ryokan shutdown` failed: {}", out.stderr))
}

/// Two lines piped in come back answered, after what `echo` said before
/// the console attached; 40 more, typed faster than a 16-byte FIFO takes
/// them, all come back in order; a line longer than guest-echo keeps is
/// cut where it says.
fn round_trip(s: &Session) -> Result<(), String> {
    let start = Instant::now();
    let r = console(s, &["echo", "--linger", "1"], b"hello console\r\nsecond line\n")?;
    eprintln!(
        "control_console: `printf 'hello console\\r\\nsecond line\\n' | ryokan console echo` ({} ms, 1 s of it the linger) printed:\n{}",
        start.elapsed().as_millis(),
        r.stdout
    );
    ensure(r.ok, || format!("`ryokan console echo` failed: {}", r.stderr))?;
    let want = "guest-echo: ready\necho: hello console\necho: second line\n";
    ensure(r.stdout.starts_with(want), || format!("`ryokan console echo` printed {:?}", r.stdout))?;
    let many: String = (0..40).map(|i| format!("line {i} of forty\n")).collect();
    let r = console(s, &["echo", "--linger", "1"], many.as_bytes())?;
    ensure(r.ok, || format!("`ryokan console echo` of 40 lines failed: {}", r.stderr))?;
    let answered: String = (0..40).map(|i| format!("echo: line {i} of forty\n")).collect();
    ensure(r.stdout.ends_with(&answered), || format!("40 lines came back as {:?}", r.stdout))?;
    let long = "x".repeat(100);
    let r = console(s, &["echo", "--linger", "1"], format!("{long}\n").as_bytes())?;
    ensure(r.stdout.ends_with(&format!("echo: {}\n", &long[..64])), || {
        format!("a 100-byte line came back as {:?}", r.stdout)
    })?;
    // The round trip of one line, request by request.
    let t = Instant::now();
    let mut line = Line::open(s)?;
    let from =
        match line.call(Verb::Console { name: name("echo"), from: u64::MAX, input: Default::default() })? {
            Body::Console { start, .. } => start,
            other => return Err(format!("a console request was answered {other:?}")),
        };
    let mut got = String::new();
    let mut next = from;
    let mut input: Vec<u8> = b"ping\r".to_vec();
    while !got.contains("echo: ping\n") {
        ensure(t.elapsed() < Duration::from_secs(10), || format!("no echo of ping within 10 s: {got:?}"))?;
        let body = line.call(Verb::Console {
            name: name("echo"),
            from: next,
            input: core::mem::take(&mut input).into_iter().collect(),
        })?;
        let Body::Console { start, output, .. } = body else { return Err(format!("answered {body:?}")) };
        got.push_str(&String::from_utf8_lossy(&output));
        next = start + output.len() as u64;
    }
    eprintln!(
        "control_console: one line's round trip through mgmt, the VMM and the guest: {} ms",
        t.elapsed().as_millis()
    );
    Ok(())
}

fn round_trip_again(s: &Session, when: &str) -> Result<(), String> {
    let r = console(s, &["echo", "--linger", "1"], b"still there?\n")?;
    ensure(r.ok && r.stdout.ends_with("echo: still there?\n"), || {
        format!("{when}, `ryokan console echo` printed {:?} and said {:?}", r.stdout, r.stderr)
    })
}

/// No such name, a native domain, a name that is none: each said.
fn refusals(s: &Session) -> Result<(), String> {
    let r = console(s, &["nosuch"], b"")?;
    ensure(!r.ok && r.stderr.contains("no domain or guest named 'nosuch'; try `ryokan list`"), || {
        format!("`ryokan console nosuch` said: {}", r.stderr)
    })?;
    let r = console(s, &["idler"], b"")?;
    ensure(
        !r.ok && r.stderr.contains("idler: it is a native domain, not a guest: it has no console"),
        || format!("`ryokan console idler` said: {}", r.stderr),
    )?;
    let r = console(s, &["a b"], b"")?;
    ensure(!r.ok && r.stderr.contains("is not a name"), || {
        format!("`ryokan console 'a b'` said: {}", r.stderr)
    })?;
    let gone = Command::new(&s.cli)
        .args(["--connect", "/nonexistent/control.sock", "console", "echo"])
        .output()
        .map_err(|e| e.to_string())?;
    let said = String::from_utf8_lossy(&gone.stderr);
    ensure(
        !gone.status.success() && said.contains("no system listening on /nonexistent/control.sock"),
        || format!("`ryokan console` with no system said: {said}"),
    )
}

fn name(n: &str) -> ipc::control::Name {
    ipc::control::Name::try_from(n).unwrap_or_default()
}

/// A raw line to mgmt: frames out, answers in.
pub(super) struct Line {
    stream: UnixStream,
    framer: Framer<MAX_RESPONSE>,
    seq: u32,
}

impl Line {
    pub(super) fn open(s: &Session) -> Result<Line, String> {
        let stream = UnixStream::connect(&s.socket).map_err(|e| format!("cannot connect: {e}"))?;
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        Ok(Line { stream, framer: Framer::new(), seq: 7000 })
    }

    /// Sends `frame` (with its 0x00) and reads the next answer.
    fn send(&mut self, frame: &[u8]) -> Result<Response, String> {
        self.stream.write_all(frame).map_err(|e| format!("writing a frame failed: {e}"))?;
        loop {
            let mut b = [0u8; 1];
            match self.stream.read(&mut b) {
                Ok(1) => {}
                _ => return Err(format!("no answer to the frame {frame:?}")),
            }
            if let Some(FrameEvent::Frame(f)) = self.framer.push(b[0]) {
                if let Ok(r) = Response::decode(f) {
                    return Ok(r);
                }
            }
        }
    }

    pub(super) fn call(&mut self, verb: Verb) -> Result<Body, String> {
        self.seq += 1;
        let mut buf = [0u8; MAX_REQUEST + 1];
        let frame = Request::new(self.seq, verb).encode(&mut buf).map_err(|e| format!("{e:?}"))?.to_vec();
        let r = self.send(&frame)?;
        ensure(r.seq == self.seq, || format!("answer {} to request {}", r.seq, self.seq))?;
        Ok(r.body)
    }
}

/// A console request's frame as postcard would make it, unchecked: any
/// input length (the checked type holds at most CONSOLE_INPUT_MAX).
fn raw_console(seq: u32, name: &str, from: u64, input: &[u8]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    enum RawVerb<'a> {
        _List,
        _Info,
        _Pause,
        _Resume,
        _Kill,
        _Restart,
        _Destroy,
        _Set,
        _Stats,
        _Shutdown,
        _Create,
        Console { name: &'a str, from: u64, input: &'a [u8] },
    }
    let mut buf = vec![0u8; 4096];
    postcard::to_slice_cobs(&(VERSION, seq, RawVerb::Console { name, from, input }), &mut buf)
        .map(|f| f.to_vec())
        .unwrap_or_default()
}

/// Oversized, overfull and garbage console frames: each gets one error
/// answer; mutated console frames, [`MUTATED`] of them, each one answer
/// (an error, or a console's answer when the mutation left a request that
/// is one); and no byte of them reaches `echo`.
fn hostile_frames(s: &Session) -> Result<(), String> {
    let mut line = Line::open(s)?;
    let too_long = raw_console(1, "echo", 0, &[b'a'; 200]);
    let r = line.send(&too_long)?;
    ensure(r.seq == 0 && r.body == Body::Error(ControlError::TooLong), || {
        format!("an oversized frame: {r:?}")
    })?;
    let overfull = raw_console(2, "echo", 0, &[b'a'; CONSOLE_INPUT_MAX + 1]);
    ensure(overfull.len() <= MAX_REQUEST + 1, || "the overfull frame is too long to test".to_string())?;
    let r = line.send(&overfull)?;
    ensure(r.body == Body::Error(ControlError::Malformed), || format!("65 bytes of input: {r:?}"))?;
    let nameless = raw_console(3, "", 0, b"x");
    let r = line.send(&nameless)?;
    ensure(r.body == Body::Error(ControlError::Malformed), || format!("no name: {r:?}"))?;
    let r = line.send(&raw_console(4, "idler", 0, b"x"))?;
    ensure(r.body == Body::Error(ControlError::NotAGuest), || format!("a domain's console: {r:?}"))?;
    let r = line.send(&raw_console(5, "echo", u64::MAX, b""))?;
    ensure(matches!(r.body, Body::Console { ref output, .. } if output.is_empty()), || {
        format!("a read from past the end: {r:?}")
    })?;
    let mut rng = Rng::new(0xc0_7501e);
    let template = raw_console(6, "echo", 0, b"no guest must see this\r");
    let (mut errors, mut answers) = (0, 0);
    let mut sent = 0;
    while sent < MUTATED {
        let mut f = template[..template.len() - 1].to_vec();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() % f.len() as u64) as usize;
            f[at] = 1 + (rng.next() % 255) as u8;
        }
        f.truncate(1 + (rng.next() % f.len() as u64) as usize);
        // Only frames that are no request at all: a mutation must not
        // type into a guest (or shut the system down).
        if Request::decode(&mut f.clone()).is_ok() {
            continue;
        }
        f.push(0);
        let r = line.send(&f)?;
        match r.body {
            Body::Error(_) => errors += 1,
            _ => answers += 1,
        }
        sent += 1;
    }
    ensure(answers == 0, || format!("{answers} mutated console frames were answered as requests"))?;
    eprintln!("control_console: {errors} mutated console frames, each answered with an error");
    let log = s.log();
    ensure(!log.contains("no guest must see this"), || "a mutated frame's input reached a guest".to_string())
}

/// `deaf` never reads: what is typed at it fills its console's input ring,
/// the CLI says how much was not taken (and does not hang), a request then
/// takes nothing, and mgmt, `echo` and `idler` are unaffected.
fn deaf(s: &Session) -> Result<(), String> {
    let idler0 = s.info("idler")?;
    let t = Instant::now();
    let r = console(s, &["deaf", "--linger", "1"], &[b'z'; 4000])?;
    eprintln!(
        "control_console: 4000 bytes typed at a guest that never reads: {:?} ({} ms)",
        r.stderr.trim(),
        t.elapsed().as_millis()
    );
    ensure(
        !r.ok && r.stderr.contains("bytes typed were not taken: the guest is not reading its console"),
        || format!("typing at deaf said: {}", r.stderr),
    )?;
    ensure(t.elapsed() < Duration::from_secs(20), || format!("typing at deaf took {:?}", t.elapsed()))?;
    let mut line = Line::open(s)?;
    let body =
        line.call(Verb::Console { name: name("deaf"), from: 0, input: b"more".iter().copied().collect() })?;
    ensure(matches!(body, Body::Console { taken: 0, running: true, .. }), || {
        format!("a full input ring took input: {body:?}")
    })?;
    let Body::Console { output, .. } = body else { return Err("not a console".into()) };
    ensure(String::from_utf8_lossy(&output) == "guest-echo: deaf, never reading\n", || {
        format!("deaf's console log: {output:?}")
    })?;
    // QEMU's socket serves one client at a time: this one goes first.
    drop(line);
    round_trip_again(s, "with deaf's input ring full")?;
    let idler1 = s.info("idler")?;
    ensure(idler1["state"] == "running" && idler1["id"] == idler0["id"], || {
        format!("idler was disturbed: {idler0} -> {idler1}")
    })
}

/// `quit` ends echo: the console shows its last words and says it stopped;
/// a console attached afterwards still shows its log.
fn quit(s: &Session) -> Result<(), String> {
    let r = console(s, &["echo", "--linger", "5"], b"quit\n")?;
    ensure(!r.ok && r.stderr.contains("echo is not running"), || {
        format!("after quit the console said {:?}", r.stderr)
    })?;
    ensure(r.stdout.contains("echo: quit\nguest-echo: ") && r.stdout.contains(" interrupts\n"), || {
        format!("after quit the console printed {:?}", r.stdout)
    })?;
    s.wait_for("[mgmt] echo exited with code 0", Duration::from_secs(10))?;
    let again = console(s, &["echo"], b"")?;
    ensure(
        !again.ok && again.stdout.contains("guest-echo: ready\n") && again.stdout.contains("echo: quit\n"),
        || format!("a stopped guest's console printed {:?}, said {:?}", again.stdout, again.stderr),
    )
}

/// guest-echo's last words: `<lines> lines in <irqs> interrupts`.
pub fn counts(log: &str) -> Option<(u64, u64)> {
    log.lines().find_map(|l| {
        let (lines, rest) = l.strip_prefix("[echo] guest-echo: ")?.split_once(" lines in ")?;
        let irqs = rest.strip_suffix(" interrupts")?;
        Some((lines.parse().ok()?, irqs.parse().ok()?))
    })
}

/// The run ended in success after `shutdown`; echo answered by interrupt
/// (at least one interrupt, at most one a byte of what it answered); no
/// domain faulted and no console broke.
pub fn check_console(o: &Outcome) -> Result<(), String> {
    if let Verdict::Failure { reason } = &o.verdict {
        return Err(reason.clone());
    }
    let s = &o.serial;
    for line in [
        "[echo] echo: hello console",
        "[echo] echo: second line",
        "[echo] echo: line 39 of forty",
        "[mgmt] echo exited with code 0",
        "[mgmt] control: shutdown asked for",
    ] {
        ensure(s.lines().any(|l| l == line), || format!("the log lacks `{line}`"))?;
    }
    let (lines, irqs) = counts(s).ok_or("echo did not count its lines and interrupts")?;
    ensure(lines >= 46 && irqs > 0, || format!("echo answered {lines} lines in {irqs} interrupts"))?;
    ensure(!s.contains("faulted:"), || "a domain faulted".to_string())?;
    ensure(!s.contains("console off") && !s.contains("the console is off"), || "a console broke".to_string())
}

/// Issue 15 item 4 with Linux: Debian's kernel (tests/systems/linux-shell.toml,
/// 1 vCPU) boots to its init's shell on ttyS0; `uname -a` typed through
/// `ryokan console` is answered by the kernel; `poweroff -f` typed the same
/// way ends the guest (the console says it stopped); `shutdown` ends the run.
pub fn linux_case() -> SystemTest {
    SystemTest {
        name: "control_linux_console",
        image: Image::System("tests/systems/linux-shell.toml"),
        emulator: Emulator::Qemu(Qemu::with_control()),
        check: check_linux_console,
        drive: Some(drive_linux),
        prepare: None,
    }
}

fn drive_linux(s: &Session) -> Result<(), String> {
    s.wait_for("[mgmt] control: serving on COM2", Duration::from_secs(30))?;
    s.wait_for("[linux] ryokan-init: a shell; 'poweroff -f' ends the guest", Duration::from_secs(200))?;
    s.wait_for("[linux] Enter 'help' for a list of built-in commands.", Duration::from_secs(20))?;
    let t = Instant::now();
    let r = console(s, &["linux", "--linger", "3"], b"uname -a\n")?;
    let tail: Vec<&str> = r.stdout.lines().rev().take(4).collect();
    eprintln!(
        "control_linux_console: `printf 'uname -a\\n' | ryokan console linux` ({} ms, 3 s of it the linger) ended with:\n{}",
        t.elapsed().as_millis(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    ensure(r.ok, || format!("`ryokan console linux` failed: {}", r.stderr))?;
    ensure(linux_answered(&r.stdout), || format!("`uname -a` was not answered: {:?}", r.stdout))?;
    let r = console(s, &["linux", "--linger", "30"], b"poweroff -f\n")?;
    ensure(!r.ok && r.stderr.contains("linux is not running"), || {
        format!("after `poweroff -f` the console said {:?} and printed {:?}", r.stderr, r.stdout)
    })?;
    s.wait_for("[mgmt] linux exited with code 0", Duration::from_secs(10))?;
    let out = s.run(&["shutdown"])?;
    ensure(out.ok, || format!("`ryokan shutdown` failed: {}", out.stderr))
}

/// The shell echoed `uname -a` and the kernel's answer followed:
/// `Linux <host> 6.1.0-… x86_64 GNU/Linux`.
pub fn linux_answered(out: &str) -> bool {
    let mut lines = out.lines().map(|l| l.trim_end_matches('\r'));
    lines.by_ref().any(|l| l.ends_with("uname -a"))
        && lines.any(|l| l.starts_with("Linux ") && l.contains(" 6.1.0-") && l.ends_with(" x86_64 GNU/Linux"))
}

/// The run ended in success once Linux powered off; the answer to `uname
/// -a` is in its serial log too; no domain faulted.
pub fn check_linux_console(o: &Outcome) -> Result<(), String> {
    if let Verdict::Failure { reason } = &o.verdict {
        return Err(reason.clone());
    }
    let s = &o.serial;
    let answer = s.lines().any(|l| {
        l.strip_prefix("[linux] Linux ")
            .is_some_and(|rest| rest.contains(" 6.1.0-") && rest.ends_with(" x86_64 GNU/Linux"))
    });
    ensure(answer, || "the log lacks Linux's answer to `uname -a`".to_string())?;
    for line in ["[vmm] linux: powered off (ACPI S5)", "[mgmt] linux exited with code 0"] {
        ensure(s.lines().any(|l| l == line), || format!("the log lacks `{line}`"))?;
    }
    ensure(!s.contains("faulted:"), || "a domain faulted".to_string())
}
