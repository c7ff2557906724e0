//! `ryokan upload` against a booted system (tests/systems/upload.toml): a
//! guest's kernel and a domain's image, the boot image's own files sent
//! under names it does not have, are checked by their SHA-256 and kept,
//! and `ryokan create` starts a guest and a domain from them (the guest
//! answers at its console), and again at their restarts. The hostile twins, on a raw line: a wrong
//! checksum, a truncated upload, an oversized one (past the limit, and past
//! its own size), pieces out of place, and an upload with other requests
//! between its pieces; each gets its error, an upload refused frees the
//! memory it was given (the free-frame count comes back), and one that
//! goes on after a refused piece or other requests loses nothing. An
//! upload larger than what is left of mgmt's quota is refused as such.
//! Through all of it mgmt serves and `echo` and `idler` run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ipc::control::{Body, ControlError, Name, Verb, UPLOAD_MAX, UPLOAD_PIECE_MAX};
use sha2::{Digest, Sha256};

use super::console::{console, Line};
use super::{ensure, field, until, Session};
use crate::cases::{Image, SystemTest};
use crate::emulator::{Emulator, Qemu};
use crate::judge::{Outcome, Verdict};

pub fn case() -> SystemTest {
    SystemTest {
        name: "control_upload",
        image: Image::System("tests/systems/upload.toml"),
        emulator: Emulator::Qemu(Qemu::with_control()),
        check: check_upload,
        drive: Some(drive_upload),
        prepare: None,
    }
}

/// A file of the boot image of tests/systems/upload.toml, as the build
/// laid it out (`$RYOKAN_OUT`, which `cargo xtask test` sets, else the
/// workspace's target/ryokan).
fn boot_file(name: &str) -> Result<Vec<u8>, String> {
    let out = std::env::var_os("RYOKAN_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ryokan"));
    let path = out.join("systems/upload/iso/boot").join(name);
    std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn name(n: &str) -> Name {
    Name::try_from(n).unwrap_or_default()
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn pieces(bytes: &[u8]) -> Vec<Verb> {
    bytes
        .chunks(UPLOAD_PIECE_MAX)
        .enumerate()
        .map(|(i, c)| Verb::UploadPiece {
            offset: (i * UPLOAD_PIECE_MAX) as u32,
            bytes: c.iter().copied().collect(),
        })
        .collect()
}

fn free(line: &mut Line) -> Result<u64, String> {
    match line.call(Verb::Stats { name: None })? {
        Body::Stats(st) => Ok(st.free_frames),
        other => Err(format!("stats answered {other:?}")),
    }
}

/// `verb`'s answer must be `want`.
fn expect(line: &mut Line, verb: Verb, want: &Body, what: &str) -> Result<(), String> {
    let got = line.call(verb)?;
    ensure(&got == want, || format!("{what}: answered {got:?}, not {want:?}"))
}

fn done(line: &mut Line, verb: Verb, what: &str) -> Result<(), String> {
    expect(line, verb, &Body::Done, what)
}

fn refused(line: &mut Line, verb: Verb, e: ControlError, what: &str) -> Result<(), String> {
    expect(line, verb, &Body::Error(e), what)
}

fn drive_upload(s: &Session) -> Result<(), String> {
    s.wait_for("[mgmt] control: serving on COM2", Duration::from_secs(30))?;
    s.wait_for("[echo] guest-echo: ready", Duration::from_secs(30))?;
    let echo = boot_file("guest-echo")?;
    let idler = boot_file("idler")?;
    let dir = s.serial.parent().ok_or("the serial log has no directory")?;
    let write = |file: &str, text: &str| -> Result<String, String> {
        let path = dir.join(file);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path.display().to_string())
    };
    let vm = write("up-vm.toml", "[[guest]]\nname = \"up-vm\"\nimage = \"up-echo\"\nmemory = \"4M\"\n")?;
    let early = s.run(&["create", &vm])?;
    ensure(
        !early.ok && early.stderr.contains("up-vm: its image is not on the boot image, nor uploaded"),
        || format!("`create` before the upload said: {}", early.stderr),
    )?;

    // QEMU serves one connection at a time: the raw line is closed before
    // the CLI runs.
    let mut line = Line::open(s)?;
    let f0 = free(&mut line)?;
    wrong_checksum(&mut line, &echo, f0)?;
    truncated(&mut line, &echo, f0)?;
    oversized(&mut line, &echo)?;
    interleaved(&mut line, &echo)?;
    drop(line);
    let create = "[[guest]]\nname = \"up-trunc-vm\"\nimage = \"up-trunc\"\nmemory = \"4M\"\n";
    let r = s.run(&["create", &write("up-trunc.toml", create)?])?;
    ensure(!r.ok && r.stderr.contains("nor uploaded"), || {
        format!("a create of the truncated said: {}", r.stderr)
    })?;
    no_quota(s, &write)?;

    // The CLI: the domain's image, then the guest's (uploaded above), started.
    let start = Instant::now();
    let idler_file = dir.join("idler.elf");
    std::fs::write(&idler_file, &idler).map_err(|e| e.to_string())?;
    let idler_path = idler_file.display().to_string();
    s.ok(&["upload", &idler_path, "up-idler"])?;
    let ms = start.elapsed().as_millis().max(1);
    eprintln!(
        "control_upload: `ryokan upload` of {} bytes took {ms} ms ({} KiB/s)",
        idler.len(),
        idler.len() as u128 * 1000 / 1024 / ms
    );
    let again = s.run(&["upload", &idler_path, "up-idler"])?;
    ensure(
        !again.ok && again.stderr.contains("up-idler: the boot image has a module of that name, or"),
        || format!("a second upload of up-idler said: {}", again.stderr),
    )?;
    let taken = s.run(&["--json", "upload", &idler_path, "idler"])?;
    ensure(!taken.ok && taken.stdout.contains("\"ok\":false"), || {
        format!("an upload named as a boot module said: {} {}", taken.stdout, taken.stderr)
    })?;
    let dom = write(
        "made-up.toml",
        "[[domain]]\nname = \"made-up\"\nimage = \"up-idler\"\nmemory = \"1M\"\ncaps = [\"console\"]\n",
    )?;
    s.ok(&["create", &dom])?;
    s.wait_for("[made-up] idler: up (generation 0)", Duration::from_secs(10))?;
    s.ok(&["create", &vm])?;
    s.wait_for("[up-vm] guest-echo: ready", Duration::from_secs(20))?;
    let r = console(s, &["up-vm", "--linger", "1"], b"hello upload\n")?;
    ensure(r.ok && r.stdout.contains("echo: hello upload\n"), || {
        format!("`ryokan console up-vm` printed {:?} ({})", r.stdout, r.stderr)
    })?;
    let g = until(s, "up-vm", Duration::from_secs(5), |v| v["state"] == "running")?;
    ensure(g["kind"] == "guest", || format!("up-vm: {g}"))?;
    json_console(s)?;
    json_watch(s)?;
    // Kept: a restart loads them again.
    s.ok(&["restart", "made-up"])?;
    s.wait_for("[made-up] idler: up (generation 1)", Duration::from_secs(10))?;
    s.ok(&["restart", "up-vm"])?;
    let start = Instant::now();
    while s.log().matches("[up-vm] guest-echo: ready").count() < 2 {
        ensure(start.elapsed() < Duration::from_secs(20), || "up-vm did not start again".to_string())?;
        std::thread::sleep(Duration::from_millis(100));
    }
    let list = s.json(&["list"])?;
    for n in ["echo", "idler", "made-up", "up-vm"] {
        let running =
            list.as_array().into_iter().flatten().any(|e| e["name"] == n && e["state"] == "running");
        ensure(running, || format!("{n} is not running after it all: {list}"))?;
    }
    let out = s.run(&["shutdown"])?;
    ensure(out.ok, || format!("`ryokan shutdown` failed: {}", out.stderr))
}

/// `console --json`: the output as JSON lines with their offsets, then
/// how it ended.
fn json_console(s: &Session) -> Result<(), String> {
    let r = console_json(s, b"hello json\n")?;
    let lines: Vec<serde_json::Value> =
        r.stdout.lines().map(serde_json::from_str).collect::<Result<_, _>>().map_err(|e| {
            format!("`ryokan --json console up-vm` printed no JSON lines ({e}): {:?}", r.stdout)
        })?;
    let said: String = lines.iter().filter_map(|v| v["output"].as_str()).collect();
    let offsets = lines.iter().filter(|v| v["output"].is_string()).all(|v| v["offset"].is_u64());
    let last = lines.last().cloned().unwrap_or_default();
    ensure(r.ok && offsets && said.contains("echo: hello json\n"), || {
        format!("`ryokan --json console up-vm` printed {:?}", r.stdout)
    })?;
    ensure(last["ok"] == true && last["end"] == "detached", || format!("the console's last line: {last}"))
}

fn console_json(s: &Session, input: &[u8]) -> Result<super::Ran, String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(&s.cli)
        .args(["--json", "--connect"])
        .arg(&s.socket)
        .args(["console", "up-vm", "--linger", "1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", s.cli.display()))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    stdin.write_all(input).map_err(|e| e.to_string())?;
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    Ok(super::Ran {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `stats --watch --json`: a JSON object a second, from the second on
/// with each one's CPU use over the second before.
fn json_watch(s: &Session) -> Result<(), String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(&s.cli)
        .args(["--json", "--connect"])
        .arg(&s.socket)
        .args(["stats", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", s.cli.display()))?;
    std::thread::sleep(Duration::from_millis(2600));
    let _ = child.kill();
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("`ryokan --json stats --watch` printed no JSON lines ({e}): {text:?}"))?;
    ensure(lines.len() >= 2, || {
        format!("`ryokan --json stats --watch` printed {} lines: {text:?}", lines.len())
    })?;
    let echo = |v: &serde_json::Value| {
        v["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == "echo")
            .cloned()
            .unwrap_or_default()
    };
    let (first, second) = (echo(&lines[0]), echo(&lines[1]));
    ensure(first["cpu_us"].is_u64() && first["cpu_percent"].is_null(), || format!("the first: {first}"))?;
    ensure(second["cpu_percent"].is_f64(), || format!("the second has no CPU use: {second}"))
}

/// Frames in use while an upload is under way (at least its own), and
/// none kept once it is refused.
fn held(line: &mut Line, f0: u64, bytes: usize, what: &str) -> Result<(), String> {
    let during = free(line)?;
    let pages = bytes.div_ceil(4096) as u64;
    ensure(during + pages <= f0, || {
        format!("{what}: {f0} frames free before, {during} during: not the image's {pages} set aside")
    })
}

fn given_back(line: &mut Line, f0: u64, what: &str) -> Result<(), String> {
    // A few may stay: mgmt's page tables over the window it was mapped at.
    let after = free(line)?;
    ensure(after + 4 >= f0, || format!("{what}: {f0} frames free before, {after} after: memory kept"))
}

fn wrong_checksum(line: &mut Line, echo: &[u8], f0: u64) -> Result<(), String> {
    let mut other = sha256(echo);
    other[0] ^= 1;
    let size = echo.len() as u32;
    done(line, Verb::UploadBegin { image: name("up-bad"), size, sha256: other }, "a begin")?;
    for p in pieces(echo) {
        done(line, p, "a piece of up-bad")?;
    }
    held(line, f0, echo.len(), "up-bad")?;
    refused(line, Verb::UploadEnd, ControlError::BadChecksum, "the end of a wrong checksum")?;
    given_back(line, f0, "a wrong checksum")?;
    refused(line, Verb::UploadEnd, ControlError::NotUploading, "an end again")
}

fn truncated(line: &mut Line, echo: &[u8], f0: u64) -> Result<(), String> {
    let size = echo.len() as u32;
    done(line, Verb::UploadBegin { image: name("up-trunc"), size, sha256: sha256(echo) }, "a begin")?;
    let mut all = pieces(echo);
    let last = all.pop().ok_or("no pieces")?;
    for p in all {
        done(line, p, "a piece of up-trunc")?;
    }
    let Verb::UploadPiece { offset, .. } = last else { return Err("not a piece".into()) };
    refused(line, Verb::UploadEnd, ControlError::Truncated { have: offset, want: size }, "a truncated end")?;
    given_back(line, f0, "a truncated upload")?;
    refused(line, last, ControlError::NotUploading, "a piece after the end")
}

fn oversized(line: &mut Line, echo: &[u8]) -> Result<(), String> {
    let big = Verb::UploadBegin { image: name("up-big"), size: UPLOAD_MAX + 1, sha256: [0; 32] };
    refused(line, big, ControlError::TooLarge { max: UPLOAD_MAX }, "a begin past the limit")?;
    refused(line, Verb::UploadEnd, ControlError::NotUploading, "an end of the refused")?;
    let sha256 = sha256(&echo[..100]);
    done(line, Verb::UploadBegin { image: name("up-small"), size: 100, sha256 }, "a begin of 100 bytes")?;
    let long = Verb::UploadPiece { offset: 0, bytes: echo[..101].iter().copied().collect() };
    refused(line, long, ControlError::PastTheEnd { size: 100 }, "101 bytes of 100")?;
    let rest = Verb::UploadPiece { offset: 90, bytes: echo[90..100].iter().copied().collect() };
    refused(line, rest, ControlError::UploadOffset { expected: 0 }, "a piece skipping ahead")?;
    // Another begun drops this one.
    Ok(())
}

/// An upload of up-echo with every other kind of request between its
/// pieces, a piece sent twice and one out of place among them: each of
/// those refused, and the upload goes on to the end, whole.
fn interleaved(line: &mut Line, echo: &[u8]) -> Result<(), String> {
    let size = echo.len() as u32;
    done(line, Verb::UploadBegin { image: name("up-echo"), size, sha256: sha256(echo) }, "a begin")?;
    let all = pieces(echo);
    for (i, p) in all.iter().enumerate() {
        if i == 3 {
            let Verb::UploadPiece { offset, .. } = all[2] else { return Err("not a piece".into()) };
            let twice = all[2].clone();
            refused(
                line,
                twice,
                ControlError::UploadOffset { expected: offset + UPLOAD_PIECE_MAX as u32 },
                "a piece again",
            )?;
            let ahead = all[5].clone();
            let expected = 3 * UPLOAD_PIECE_MAX as u32;
            refused(line, ahead, ControlError::UploadOffset { expected }, "a piece ahead")?;
        }
        match i % 5 {
            0 => drop(line.call(Verb::List)?),
            1 => drop(line.call(Verb::Info { name: name("echo") })?),
            2 => drop(line.call(Verb::Stats { name: None })?),
            3 => drop(line.call(Verb::Console { name: name("echo"), from: 0, input: Default::default() })?),
            _ => {
                // A create's piece (a manifest upload of its own), dropped.
                let create =
                    Verb::Create { piece: 0, pieces: 2, sum: 0, bytes: [1u8, 2, 3].into_iter().collect() };
                done(line, create, "a create's first piece")?;
            }
        }
        done(line, p.clone(), "a piece of up-echo")?;
    }
    done(line, Verb::UploadEnd, "the end of up-echo")
}

/// With mgmt's quota given to a domain made to hold it all (but some 4
/// MiB), an upload of UPLOAD_MAX is refused as not memory enough; the
/// domain destroyed, it is not.
fn no_quota(s: &Session, write: &dyn Fn(&str, &str) -> Result<String, String>) -> Result<(), String> {
    let frames = s.json(&["stats"]).and_then(|v| field(&v, "free_frames"))?;
    let mut hog_mib = frames / 256;
    let hog = loop {
        hog_mib = hog_mib.checked_sub(4).filter(|&m| m > 4).ok_or("no hog could be made")?;
        let text = format!(
            "[[domain]]\nname = \"hog\"\nimage = \"idler\"\nmemory = \"{hog_mib}M\"\nrestart = \"never\"\ncaps = [\"console\"]\n"
        );
        let path = write("hog.toml", &text)?;
        let r = s.run(&["create", &path])?;
        if r.ok {
            break hog_mib;
        }
        ensure(r.stderr.contains("not memory enough left"), || format!("a hog's create said: {}", r.stderr))?;
    };
    let mut line = Line::open(s)?;
    let big = Verb::UploadBegin { image: name("up-huge"), size: UPLOAD_MAX, sha256: [0; 32] };
    let answer = line.call(big.clone())?;
    eprintln!("control_upload: with a hog of {hog} MiB, an upload of {UPLOAD_MAX} bytes: {answer:?}");
    ensure(answer == Body::Error(ControlError::NoMemory), || {
        format!("an upload past mgmt's quota (a hog of {hog} MiB) answered {answer:?}")
    })?;
    done(&mut line, Verb::Destroy { name: name("hog") }, "the hog's destroy")?;
    done(&mut line, big, "an upload of UPLOAD_MAX with the hog gone")?;
    // Ended at once, it is dropped, its memory freed.
    let truncated = ControlError::Truncated { have: 0, want: UPLOAD_MAX };
    refused(&mut line, Verb::UploadEnd, truncated, "the end of an upload of nothing")
}

/// The run ended in success after `ryokan shutdown`, no domain faulted, and
/// mgmt said what it kept and refused.
fn check_upload(o: &Outcome) -> Result<(), String> {
    if let Verdict::Failure { reason } = &o.verdict {
        return Err(reason.clone());
    }
    let s = &o.serial;
    for prefix in [
        "[mgmt] control: upload of up-bad refused: BadChecksum",
        "[mgmt] control: upload of up-trunc refused: Truncated",
        "[mgmt] control: upload of up-small dropped (0 of 100 bytes): another began",
        "[mgmt] control: uploaded up-echo: ",
        "[mgmt] control: uploaded up-idler: ",
        "[mgmt] control: creating made-up",
        "[mgmt] control: creating up-vm",
        "[mgmt] control: shutdown asked for",
        "[mgmt] all domains stopped: shutting down",
    ] {
        ensure(s.lines().any(|l| l.starts_with(prefix)), || format!("the log lacks `{prefix}`"))?;
    }
    ensure(!s.contains("faulted:"), || "a domain faulted".to_string())
}
