//! Boots an image in an emulator in its own work dir, with a timeout, and judges the run.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::emulator::{Bochs, Emulator, QemuSerial};
use crate::judge::{self, Exit, Outcome, Verdict};
use crate::log;

const POLL: Duration = Duration::from_millis(25);

/// One boot to perform.
#[derive(Debug, Clone)]
pub struct RunSpec<'a> {
    pub emulator: &'a Emulator,
    pub iso: &'a Path,
    /// Emptied and reused: serial.log, bochsrc, bochs.log, emulator.log end up here.
    pub work_dir: &'a Path,
    /// Kill the emulator (its whole process group) after this long.
    pub timeout: Option<Duration>,
    /// Show the serial output on our stdout while the emulator runs (`cargo xtask run`).
    pub echo: bool,
    /// Called in the work dir once its disk images are made, before boot.
    pub prepare: Option<Prepare>,
}

/// What a test does in the run's work dir before boot, e.g. writing a
/// pattern into a disk image: an `Err` fails the test unbooted.
pub type Prepare = fn(&Path) -> Result<(), String>;

/// What drives a running system from the host (the control tests): called
/// on its own thread once the emulator is started, with the run's
/// [`crate::control::Session`]; an `Err` fails the test and stops the
/// emulator at once.
pub type Drive = fn(&crate::control::Session) -> Result<(), String>;

/// Boots, waits (at most the timeout), and judges the run.
pub fn run(spec: &RunSpec<'_>) -> io::Result<Outcome> {
    run_driven(spec, None).map(|(o, _)| o)
}

/// As [`run`], with `drive` working the system meanwhile; returns what it
/// returned too (`Ok` when there is none).
pub fn run_driven(spec: &RunSpec<'_>, drive: Option<Drive>) -> io::Result<(Outcome, Result<(), String>)> {
    let dir = spec.work_dir;
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::create_dir_all(dir)?;
    let dir = fs::canonicalize(dir)?;
    // Relative names keep odd characters in paths out of QEMU's and Bochs' option syntax.
    std::os::unix::fs::symlink(fs::canonicalize(spec.iso)?, dir.join("image.iso"))?;
    let serial_path = dir.join("serial.log");
    if let Emulator::Qemu(q) = spec.emulator {
        for disk in &q.disks {
            File::create(dir.join(disk))?.set_len(crate::emulator::DISK_BYTES)?;
        }
    }
    if let Some(prepare) = spec.prepare {
        prepare(&dir).map_err(|e| io::Error::other(format!("before boot: {e}")))?;
    }

    // A user network gets a free host loopback port forwarded in, picked
    // now (the port is free again once the probe is dropped; QEMU binds it
    // at once).
    let mut emulator = spec.emulator.clone();
    let mut host_port = None;
    if let Emulator::Qemu(q) = &mut emulator {
        if !q.netdevs.is_empty() {
            let port = std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
            q.host_port = Some(port);
            host_port = Some(port);
        }
    }
    let spec = &RunSpec { emulator: &emulator, ..spec.clone() };
    let mut cmd = command(spec, &dir)?;
    cmd.current_dir(&dir);
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(2), which is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            // Take the emulator down with us if the harness dies (e.g. Ctrl-C).
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let own_group = !spec.echo;
    if own_group {
        cmd.process_group(0);
    }

    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start {:?}: {e}", cmd.get_program())))?;
    let stop = Arc::new(AtomicBool::new(false));
    let echo = match (spec.echo, spec.emulator) {
        (false, _) => Echo::None,
        (true, Emulator::Qemu(_)) => match child.stdout.take() {
            Some(out) => Echo::Tee(tee(out)),
            None => Echo::None,
        },
        (true, Emulator::Bochs(_)) => Echo::Tail(tail(serial_path.clone(), stop.clone())),
    };

    let failed = Arc::new(AtomicBool::new(false));
    let driver = drive.map(|d| {
        let session = crate::control::Session { host_port, ..crate::control::Session::new(&dir) };
        let failed = failed.clone();
        thread::spawn(move || {
            let r = d(&session);
            if r.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            r
        })
    });
    let exit = wait(&mut child, spec.timeout, own_group, &failed)?;
    let driven = match driver {
        None => Ok(()),
        Some(h) => h.join().unwrap_or_else(|_| Err("the test's driver panicked".to_string())),
    };
    let duration = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let raw = match echo {
        Echo::Tee(h) => h.join().unwrap_or_default(),
        Echo::Tail(h) => {
            let _ = h.join();
            fs::read(&serial_path).unwrap_or_default()
        }
        Echo::None => fs::read(&serial_path).unwrap_or_default(),
    };
    let serial = log::normalize(&raw);
    let verdict = match judge::judge(spec.emulator.kind(), exit, &serial) {
        Verdict::Failure { reason } => {
            Verdict::Failure { reason: with_diagnostics(reason, spec.emulator, &dir) }
        }
        v => v,
    };
    Ok((Outcome { verdict, serial, exit, duration, work_dir: dir }, driven))
}

enum Echo {
    None,
    Tee(JoinHandle<Vec<u8>>),
    Tail(JoinHandle<()>),
}

fn command(spec: &RunSpec<'_>, dir: &Path) -> io::Result<Command> {
    let output = File::create(dir.join("emulator.log"))?;
    let mut cmd;
    match spec.emulator {
        Emulator::Qemu(q) => {
            cmd = Command::new(crate::emulator::Qemu::BINARY);
            if spec.echo {
                cmd.args(q.args("image.iso", QemuSerial::Stdio));
                cmd.stdin(Stdio::inherit()).stdout(Stdio::piped());
                cmd.stderr(Stdio::inherit());
            } else {
                cmd.args(q.args("image.iso", QemuSerial::File("serial.log")));
                cmd.stdin(Stdio::null()).stdout(output.try_clone()?);
                cmd.stderr(output);
            }
        }
        Emulator::Bochs(b) => {
            fs::write(dir.join("bochsrc"), b.bochsrc("image.iso", "serial.log", "bochs.log"))?;
            fs::write(dir.join("continue.rc"), Bochs::CONTINUE_RC)?;
            cmd = Command::new(Bochs::BINARY);
            cmd.args(Bochs::args());
            cmd.stdin(Stdio::null()).stdout(output.try_clone()?);
            cmd.stderr(output);
        }
    }
    Ok(cmd)
}

fn wait(
    child: &mut Child,
    timeout: Option<Duration>,
    own_group: bool,
    failed: &AtomicBool,
) -> io::Result<Exit> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(exit_of(status));
        }
        if failed.load(Ordering::SeqCst) {
            kill(child, own_group);
            return Ok(exit_of(child.wait()?));
        }
        if let Some(limit) = timeout.filter(|&t| start.elapsed() >= t) {
            kill(child, own_group);
            child.wait()?;
            return Ok(Exit::TimedOut(limit));
        }
        thread::sleep(POLL);
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(c), _) => Exit::Code(c),
        (None, Some(s)) => Exit::Signal(s),
        (None, None) => Exit::Code(-1),
    }
}

fn kill(child: &mut Child, own_group: bool) {
    if own_group {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group that
            // the child leads (process_group(0) above); it touches no memory.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            return;
        }
    }
    let _ = child.kill();
}

/// Copies QEMU's stdout (the serial port) to ours and keeps it.
fn tee(mut from: ChildStdout) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        let mut out = io::stdout();
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            let _ = out.write_all(&buf[..n]);
            let _ = out.flush();
        }
        all
    })
}

/// Follows a growing file (Bochs' serial log) onto our stdout until `stop`.
fn tail(path: PathBuf, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut pos = 0u64;
        let mut out = io::stdout();
        loop {
            let last_round = stop.load(Ordering::Relaxed);
            if let Ok(mut f) = File::open(&path) {
                let mut buf = Vec::new();
                if f.seek(SeekFrom::Start(pos)).is_ok() && f.read_to_end(&mut buf).is_ok() {
                    pos += buf.len() as u64;
                    let _ = out.write_all(&buf);
                    let _ = out.flush();
                }
            }
            if last_round {
                break;
            }
            thread::sleep(POLL * 4);
        }
    })
}

/// Adds what the emulator itself said to a failure reason.
fn with_diagnostics(reason: String, emulator: &Emulator, dir: &Path) -> String {
    let mut notes: Vec<String> = Vec::new();
    let emu_log = fs::read(dir.join("emulator.log")).unwrap_or_default();
    let emu_log = log::normalize(&emu_log);
    match emulator {
        Emulator::Qemu(_) => notes.extend(emu_log.lines().take(10).map(str::to_string)),
        Emulator::Bochs(_) => {
            let bochs_log = log::normalize(&fs::read(dir.join("bochs.log")).unwrap_or_default());
            notes.extend(bochs_log.lines().filter(|l| l.contains(">>PANIC<<")).take(3).map(str::to_string));
            // Bochs' farewell on stdout names the faulting instructions of each CPU.
            notes.extend(
                emu_log
                    .lines()
                    .skip_while(|l| !l.starts_with("Bochs is exiting"))
                    .skip(1)
                    .filter(|l| !l.starts_with("====") && !l.trim().is_empty())
                    .take(8)
                    .map(str::to_string),
            );
        }
    }
    if notes.is_empty() {
        return reason;
    }
    format!("{reason}\n  the emulator said ({}):\n    {}", dir.display(), notes.join("\n    "))
}
