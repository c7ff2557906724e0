//! The control tests: a booted system (tests/systems/control.toml) driven
//! from the host with the `ryokan` binary over mgmt's control channel (COM2
//! on a unix socket), one boot serving every check, in order:
//! list/info (`--json` parses, every field), pause/resume (CPU time stands
//! still while paused), weights (the measured share follows), kill and
//! restart (the restart policy applies; a new instance), destroy (the
//! free-frame count grows back by what it held), a fuzzed channel (random,
//! truncated, oversized and wrong-version frames, each answered, mgmt and
//! every domain still up), and `shutdown` (the run ends in success).
//! QEMU only: Bochs gets no second serial port here, so it has no channel.

mod console;
mod fuzz;
#[cfg(test)]
mod tests;
mod upload;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cases::{Image, SystemTest};
use crate::emulator::{Emulator, Qemu};
use crate::judge::{Outcome, Verdict};
use crate::log;

/// The control tests.
pub fn cases() -> Vec<SystemTest> {
    vec![
        SystemTest {
            name: "control_cli",
            image: Image::System("tests/systems/control.toml"),
            emulator: Emulator::Qemu(Qemu::with_control()),
            check: check_cli,
            drive: Some(drive_cli),
            prepare: None,
        },
        console::case(),
        console::linux_case(),
        upload::case(),
    ]
}

/// Where the `ryokan` binary is: `$RYOKAN_CLI` (which `cargo xtask test`
/// sets after building it), else the workspace's debug build.
pub fn cli_path() -> PathBuf {
    std::env::var_os("RYOKAN_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/ryokan"))
}

/// A running system as a driver sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub socket: PathBuf,
    pub serial: PathBuf,
    pub cli: PathBuf,
    /// The host loopback port forwarded into the system's user network
    /// (to its guest's TCP port `emulator::FORWARDED_TO`), if it has one.
    pub host_port: Option<u16>,
}

/// What one `ryokan` run printed.
#[derive(Debug)]
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Session {
    pub fn new(work_dir: &Path) -> Self {
        Self {
            socket: work_dir.join(Qemu::CONTROL_SOCKET),
            serial: work_dir.join("serial.log"),
            cli: cli_path(),
            host_port: None,
        }
    }

    /// The serial log so far.
    pub fn log(&self) -> String {
        log::normalize(&std::fs::read(&self.serial).unwrap_or_default())
    }

    /// Waits until a line of the log contains `text`.
    pub fn wait_for(&self, text: &str, within: Duration) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.log().lines().any(|l| l.contains(text)) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        Err(format!("the log did not say `{text}` within {} s", within.as_secs()))
    }

    /// Runs `ryokan --connect SOCKET ARGS…`.
    pub fn run(&self, args: &[&str]) -> Result<Ran, String> {
        let out =
            Command::new(&self.cli).arg("--connect").arg(&self.socket).args(args).output().map_err(|e| {
                format!("cannot run {}: {e} (build it: cargo build -p ryokan)", self.cli.display())
            })?;
        Ok(Ran {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs `ryokan ARGS…`, which must succeed; its output.
    pub fn ok(&self, args: &[&str]) -> Result<String, String> {
        let r = self.run(args)?;
        if !r.ok {
            return Err(format!("`ryokan {}` failed: {}", args.join(" "), r.stderr.trim()));
        }
        Ok(r.stdout)
    }

    /// Runs `ryokan --json ARGS…` and parses what it prints.
    pub fn json(&self, args: &[&str]) -> Result<Value, String> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.ok(&all)?;
        serde_json::from_str(&out)
            .map_err(|e| format!("`ryokan {}` printed no JSON ({e}): {out}", all.join(" ")))
    }

    /// `ryokan --json info NAME`.
    pub fn info(&self, name: &str) -> Result<Value, String> {
        self.json(&["info", name])
    }
}

fn field(v: &Value, key: &str) -> Result<u64, String> {
    v.get(key).and_then(Value::as_u64).ok_or(format!("no number `{key}` in {v}"))
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, String> {
    v.get(key).and_then(Value::as_str).ok_or(format!("no string `{key}` in {v}"))
}

/// `cond`, or the failure `why`.
fn ensure(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(why())
    }
}

/// Polls `info NAME` until `pred` holds for it.
fn until(s: &Session, name: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Result<Value, String> {
    let start = Instant::now();
    loop {
        let v = s.info(name)?;
        if pred(&v) {
            return Ok(v);
        }
        if start.elapsed() > within {
            return Err(format!("{name} did not reach the state wanted within {} s: {v}", within.as_secs()));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// CPU time (µs) of spin-a and spin-b over `window`.
fn shares(s: &Session, window: Duration) -> Result<(u64, u64), String> {
    let cpu = |n| s.info(n).and_then(|v| field(&v, "cpu_us"));
    let (a0, b0) = (cpu("spin-a")?, cpu("spin-b")?);
    thread::sleep(window);
    let (a1, b1) = (cpu("spin-a")?, cpu("spin-b")?);
    Ok((a1.saturating_sub(a0), b1.saturating_sub(b0)))
}

const NAMES: [&str; 4] = ["spin-a", "spin-b", "idler", "guest-spin"];

fn drive_cli(s: &Session) -> Result<(), String> {
    s.wait_for("[mgmt] control: serving on COM2", Duration::from_secs(30))?;
    s.wait_for("[guest-spin] guest-steady: checksum before", Duration::from_secs(30))?;
    check_list(s)?;
    check_pause(s)?;
    check_guest(s)?;
    check_weights(s)?;
    check_kill_restart(s)?;
    check_destroy(s)?;
    check_create(s)?;
    fuzz::bad_creates(s)?;
    fuzz::check(s)?;
    let after = s.json(&["list"])?;
    let running =
        |n: &str| after.as_array().into_iter().flatten().any(|e| e["name"] == n && e["state"] == "running");
    for n in ["spin-a", "idler", "guest-spin", "made", "made-vm"] {
        ensure(running(n), || format!("after the fuzzing {n} is not running: {after}"))?;
    }
    let out = s.run(&["shutdown"])?;
    ensure(out.ok, || format!("`ryokan shutdown` failed: {}", out.stderr))
}

fn check_list(s: &Session) -> Result<(), String> {
    let table = s.ok(&["list"])?;
    for n in NAMES {
        ensure(table.lines().any(|l| l.starts_with(n)), || format!("`ryokan list` shows no {n}:\n{table}"))?;
    }
    let list = s.json(&["list"])?;
    let entries = list.as_array().ok_or(format!("`list --json` is no array: {list}"))?;
    ensure(entries.len() == NAMES.len(), || format!("`list --json` has {} entries: {list}", entries.len()))?;
    for e in entries {
        let keys = ["memory_kib", "guest_memory_kib", "vcpus", "weight", "cap_percent", "restarts", "cpu_us"];
        for key in keys.into_iter().chain(["iommu_faults"]) {
            field(e, key)?;
        }
        ensure(text(e, "state")? == "running", || format!("not running: {e}"))?;
    }
    let g = s.info("guest-spin")?;
    let want = [
        ("vcpus", 1),
        ("guest_memory_kib", 4096),
        ("cap_percent", 10),
        ("weight", 256),
        ("restarts", 0),
        ("iommu_faults", 0),
    ];
    for (k, v) in want {
        ensure(field(&g, k)? == v, || format!("guest-spin's {k} is not {v}: {g}"))?;
    }
    ensure(text(&g, "kind")? == "guest", || format!("guest-spin is no guest: {g}"))?;
    let a = s.info("spin-a")?;
    ensure(field(&a, "memory_kib")? == 512 && text(&a, "kind")? == "domain", || format!("spin-a: {a}"))?;
    ensure(field(&a, "vcpus")? == 0, || format!("a domain with vCPUs: {a}"))?;
    let text = s.ok(&["info", "guest-spin"])?;
    ensure(text.contains("vcpus:    1"), || format!("`info guest-spin` shows no vCPUs:\n{text}"))?;
    let missing = s.run(&["info", "nosuch"])?;
    ensure(
        !missing.ok && missing.stderr.contains("no domain or guest named 'nosuch'; try `ryokan list`"),
        || format!("`info nosuch` said: {}", missing.stderr),
    )?;
    let bad = s.run(&["set", "spin-a", "weight=0"])?;
    ensure(!bad.ok && bad.stderr.contains("1 to 65535"), || format!("`set weight=0` said: {}", bad.stderr))
}

fn check_pause(s: &Session) -> Result<(), String> {
    s.ok(&["pause", "spin-a"])?;
    let p = until(s, "spin-a", Duration::from_secs(5), |v| v["state"] == "paused")?;
    // The pause takes hold at the CPU's next tick: measure from a moment on.
    thread::sleep(Duration::from_millis(100));
    let t0 = field(&s.info("spin-a")?, "cpu_us")?;
    thread::sleep(Duration::from_millis(1500));
    let t1 = field(&s.info("spin-a")?, "cpu_us")?;
    ensure(t1 == t0, || format!("spin-a's CPU time grew from {t0} to {t1} µs while paused ({p})"))?;
    let again = s.run(&["pause", "spin-a"])?;
    ensure(!again.ok && again.stderr.contains("already"), || {
        format!("a second pause said: {}", again.stderr)
    })?;
    s.ok(&["resume", "spin-a"])?;
    thread::sleep(Duration::from_millis(1000));
    let t2 = field(&s.info("spin-a")?, "cpu_us")?;
    ensure(t2 > t1 + 100_000, || format!("spin-a's CPU time after resume: {t1} -> {t2} µs in 1 s"))
}

/// The guest as its own domain (its VMM handed it to mgmt): its CPU time
/// grows, stands still while paused, and follows its cap.
fn check_guest(s: &Session) -> Result<(), String> {
    let cpu = || s.info("guest-spin").and_then(|v| field(&v, "cpu_us"));
    let rate = |ms: u64| -> Result<u64, String> {
        let c0 = cpu()?;
        thread::sleep(Duration::from_millis(ms));
        Ok((cpu()? - c0) * 1000 / ms)
    };
    let at10 = rate(1500)?;
    // Capped at 10 % of a CPU: some 100 ms a second.
    ensure((50_000..150_000).contains(&at10), || format!("guest-spin ran {at10} µs a second at a 10 % cap"))?;
    s.ok(&["pause", "guest-spin"])?;
    thread::sleep(Duration::from_millis(100));
    let still = rate(1000)?;
    ensure(still == 0, || format!("guest-spin ran {still} µs a second while paused"))?;
    s.ok(&["resume", "guest-spin"])?;
    s.ok(&["set", "guest-spin", "cap=20"])?;
    let v = s.info("guest-spin")?;
    ensure(field(&v, "cap_percent")? == 20, || format!("guest-spin's cap after set: {v}"))?;
    let at20 = rate(1500)?;
    let ratio = at20 as f64 / at10.max(1) as f64;
    ensure((1.5..2.6).contains(&ratio), || {
        format!("a 20 % cap gave guest-spin {at20} µs/s against {at10} at 10 %")
    })?;
    let stats = s.json(&["stats", "guest-spin"])?;
    let u = &stats["entries"][0];
    let (all, guest) = (field(u, "cpu_us")?, field(u, "guest_cpu_us")?);
    ensure(guest > 0 && guest <= all, || format!("guest-spin's stats: {u}"))?;
    // Its exits by reason, as the kernel counted them: it printed its
    // checksum line through the UART (an OUT exit a byte) and marked its
    // window (OUT 0xf5); a domain has none.
    let outs = field(&u["exits"], "port_out")?;
    ensure(outs >= 30, || format!("guest-spin's exits: {u}"))?;
    let text = s.ok(&["stats", "guest-spin"])?;
    eprintln!("control_cli: `ryokan stats guest-spin` printed:\n{text}");
    ensure(text.contains("  exits ") && text.contains("port_out "), || {
        format!("`ryokan stats guest-spin` shows no exits by reason:\n{text}")
    })?;
    let dom = s.json(&["stats", "spin-a"])?;
    ensure(dom["entries"][0].get("exits").is_none(), || format!("a domain with exits: {dom}"))?;
    let start = Instant::now();
    for _ in 0..10 {
        s.info("spin-a")?;
    }
    eprintln!("control_cli: `ryokan info` round trip {} ms (mean of 10)", start.elapsed().as_millis() / 10);
    Ok(())
}

fn check_weights(s: &Session) -> Result<(), String> {
    let (a, b) = shares(s, Duration::from_secs(2))?;
    let even = a as f64 / b.max(1) as f64;
    ensure((0.7..1.4).contains(&even), || format!("equal weights split CPU 1 {a}:{b} µs"))?;
    s.ok(&["set", "spin-a", "weight=768"])?;
    let v = s.info("spin-a")?;
    ensure(field(&v, "weight")? == 768, || format!("spin-a's weight after set: {v}"))?;
    let (a, b) = shares(s, Duration::from_secs(2))?;
    let ratio = a as f64 / b.max(1) as f64;
    ensure((2.2..4.0).contains(&ratio), || format!("weights 768:256 split CPU 1 {a}:{b} µs ({ratio:.2})"))
}

fn check_kill_restart(s: &Session) -> Result<(), String> {
    let before = s.info("idler")?;
    s.ok(&["kill", "idler"])?;
    s.wait_for("[mgmt] killed idler (exit code 137)", Duration::from_secs(5))?;
    s.wait_for("[mgmt] restarting idler in 10 ms (restart 1 of 5)", Duration::from_secs(5))?;
    let after =
        until(s, "idler", Duration::from_secs(10), |v| v["state"] == "running" && v["restarts"] == 1)?;
    ensure(after["id"] != before["id"], || format!("idler kept its id through a kill: {before} {after}"))?;
    s.wait_for("[idler] idler: up (generation 1)", Duration::from_secs(5))?;
    s.ok(&["restart", "idler"])?;
    s.wait_for("[idler] idler: up (generation 2)", Duration::from_secs(10))?;
    let again =
        until(s, "idler", Duration::from_secs(10), |v| v["state"] == "running" && v["restarts"] == 2)?;
    ensure(again["id"] != after["id"], || format!("idler kept its id through a restart: {again}"))
}

fn check_destroy(s: &Session) -> Result<(), String> {
    let free = |s: &Session| s.json(&["stats"]).and_then(|v| field(&v, "free_frames"));
    let f0 = free(s)?;
    s.ok(&["destroy", "spin-b"])?;
    let f1 = free(s)?;
    // spin-b held its image, a 64 KiB stack (16 frames), its start page and
    // page tables: at least 18 frames come back.
    ensure(f1 >= f0 + 18, || {
        format!("destroying spin-b freed {} frames ({f0} -> {f1})", f1 as i64 - f0 as i64)
    })?;
    let v = s.info("spin-b")?;
    ensure(v["state"] == "stopped" && v["id"] == "0x0", || format!("spin-b after destroy: {v}"))?;
    let again = s.run(&["destroy", "spin-b"])?;
    ensure(!again.ok && again.stderr.contains("not running"), || {
        format!("a second destroy said: {}", again.stderr)
    })
}

/// `ryokan create` of snippets written beside the serial log: a domain and
/// a guest from images the boot image has start and show in `list`; the
/// refusals say why, a bad snippet with the build's own `FILE:LINE:COL`.
fn check_create(s: &Session) -> Result<(), String> {
    let dir = s.serial.parent().ok_or("the serial log has no directory")?;
    let write = |name: &str, text: &str| -> Result<String, String> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path.display().to_string())
    };
    let domain = "[[domain]]\nname = \"made\"\nimage = \"idler\"\nmemory = \"512K\"\ncaps = [\"console\"]\n";
    let made = write("made.toml", domain)?;
    s.ok(&["create", &made])?;
    let v = until(s, "made", Duration::from_secs(5), |v| v["state"] == "running")?;
    ensure(text(&v, "kind")? == "domain" && field(&v, "memory_kib")? == 512, || format!("made: {v}"))?;
    let guest = "[[guest]]\nname = \"made-vm\"\nimage = \"guest-steady\"\ncmdline = \"spin_ms=3600000\"\nmemory = \"4M\"\ncap = 5\n";
    let vm = write("made-vm.toml", guest)?;
    s.ok(&["create", &vm])?;
    s.wait_for("[made-vm] guest-steady: checksum before", Duration::from_secs(20))?;
    let g = s.info("made-vm")?;
    ensure(text(&g, "kind")? == "guest" && field(&g, "cap_percent")? == 5, || format!("made-vm: {g}"))?;
    let table = s.ok(&["list"])?;
    ensure(
        table.lines().any(|l| l.starts_with("made ")) && table.lines().any(|l| l.starts_with("made-vm ")),
        || format!("`ryokan list` lacks the created:\n{table}"),
    )?;
    let refused = |args: &[&str], says: &str| -> Result<(), String> {
        let r = s.run(args)?;
        eprintln!("control_cli: `ryokan {}` said: {}", args.join(" "), r.stderr.trim_end());
        ensure(!r.ok && r.stderr.contains(says), || format!("`ryokan {}` said: {}", args.join(" "), r.stderr))
    };
    refused(&["create", &made], "made: that name is taken")?;
    let unknown = write("unknown.toml", &domain.replace("made", "other").replace("idler", "nosuch"))?;
    refused(&["create", &unknown], "other: its image is not on the boot image")?;
    let greedy = write("greedy.toml", &domain.replace("made", "greedy").replace("512K", "1G"))?;
    refused(&["create", &greedy], "greedy: not memory enough left")?;
    let typo = write("typo.toml", &domain.replace("memory", "memroy"))?;
    refused(&["create", &typo], &format!("{typo}:4:1: unknown field `memroy`"))?;
    let two = write("two.toml", &format!("{domain}{guest}"))?;
    refused(&["create", &two], &format!("{two}:6:1: a snippet for `ryokan create` holds one"))?;
    // A refused name is free again: nothing of it was kept.
    let list = s.json(&["list"])?;
    let names: Vec<&str> = list.as_array().into_iter().flatten().filter_map(|e| e["name"].as_str()).collect();
    ensure(!names.contains(&"other") && !names.contains(&"greedy"), || {
        format!("refused entries kept: {list}")
    })
}

/// The run ended in success after `ryokan shutdown`, no domain faulted, and
/// mgmt logged what the driver asked for.
fn check_cli(o: &Outcome) -> Result<(), String> {
    if let Verdict::Failure { reason } = &o.verdict {
        return Err(reason.clone());
    }
    let s = &o.serial;
    for line in [
        "[mgmt] control: paused spin-a",
        "[mgmt] control: resumed spin-a",
        "[mgmt] control: spin-a now has weight 768, cap 0%",
        "[mgmt] control: paused guest-spin",
        "[mgmt] control: guest-spin now has weight 256, cap 20%",
        "[mgmt] control: destroyed spin-b",
        "[mgmt] control: creating made",
        "[mgmt] control: creating made-vm",
        "[mgmt] control: shutdown asked for",
        "[mgmt] all domains stopped: shutting down",
    ] {
        ensure(s.lines().any(|l| l == line), || format!("the log lacks `{line}`"))?;
    }
    ensure(!s.contains("faulted:"), || "a domain faulted".to_string())
}
