//! `ryokan`: runs and watches a live Ryokan system from the host, through
//! `mgmt`'s control channel (`ipc::control`; under QEMU, COM2 on a unix
//! socket, which `cargo xtask run` prints). Every verb that prints takes
//! `--json`; a verb that only acts prints nothing on success (`--json`:
//! `{"ok":true}`). Exit status: 0 done, 1 refused or failed, 2 bad usage.
//!
//! A crate of its own (`cli/`), not a part of `user/` as DESIGN.md's layout
//! has it: `user/` is the `no_std` runtime domains link, and this is a
//! host program (std, clap, serde_json); what the two share is `ipc`.

mod client;
mod console;
mod show;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ipc::control::{check_name, Body, Name, Verb};

use crate::client::{Client, Failure};

/// Where `cargo xtask run` puts the socket, relative to the workspace.
const DEFAULT_SOCKET: &str = "target/ryokan/run/control.sock";

#[derive(Parser)]
#[command(name = "ryokan", version, about = "Run and watch a live Ryokan system")]
struct Cli {
    /// The system's control socket (default: $RYOKAN_CONNECT, else
    /// target/ryokan/run/control.sock, where `cargo xtask run` puts it).
    #[arg(long, global = true, value_name = "PATH")]
    connect: Option<PathBuf>,
    /// Print the answer as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for an answer.
    #[arg(long, global = true, default_value_t = 10)]
    timeout: u64,
    #[command(subcommand)]
    verb: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every domain and guest: state, memory, vCPUs, weight, cap, restarts, CPU time.
    List,
    /// One domain or guest.
    Info { name: String },
    /// Stop its threads (a guest's vCPUs and its VMM) until `resume`.
    Pause { name: String },
    /// Let a paused one run again.
    Resume { name: String },
    /// Fault injection: stop it as a failure; its restart policy applies.
    Kill { name: String },
    /// Stop it and start it afresh now.
    Restart { name: String },
    /// Stop it for good and free all it held.
    Destroy { name: String },
    /// Set its CPU weight and/or cap: `set NAME weight=512 cap=25`.
    Set {
        name: String,
        /// `weight=N` (1-65535) and/or `cap=P` (0-100 percent of one CPU, 0 for none).
        #[arg(required = true, num_args = 1..=2)]
        settings: Vec<String>,
    },
    /// CPU time and memory per domain and guest, and the kernel's free frames.
    Stats {
        name: Option<String>,
        /// Again every second (until interrupted), with each one's CPU use
        /// over that second.
        #[arg(long)]
        watch: bool,
    },
    /// Start a new domain or guest from a snippet of the system file's
    /// format: one [[domain]] or [[guest]], whose images are on the boot
    /// image or uploaded (`ryokan upload`).
    Create { file: PathBuf },
    /// Send the image FILE to the system (checked there by its SHA-256) as
    /// NAME, for `create` snippets to name as `image` (or a guest's
    /// module); it stays until the system stops.
    Upload { file: PathBuf, name: String },
    /// Attach to a guest's console (its UART) both ways: what it said and
    /// says on stdout, stdin typed into it. Ctrl-] detaches. On a
    /// terminal, raw mode; with a pipe, it detaches once stdin ended, was
    /// all taken, and the guest said nothing for --linger seconds. With
    /// --json: one JSON object a line, the output with its offsets.
    Console {
        name: String,
        /// Seconds of quiet from the guest, after stdin ended, before the
        /// console detaches.
        #[arg(long, default_value_t = 1.0)]
        linger: f64,
    },
    /// Stop everything; the system powers off.
    Shutdown,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let path = cli
        .connect
        .clone()
        .or_else(|| std::env::var_os("RYOKAN_CONNECT").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    if let Command::Create { file } = &cli.verb {
        return create(&path, &cli, file);
    }
    if let Command::Upload { file, name } = &cli.verb {
        return upload(&path, &cli, file, name);
    }
    if let Command::Console { name: n, linger } = &cli.verb {
        return console(&path, &cli, n, *linger);
    }
    let verb = match verb(&cli.verb) {
        Ok(v) => v,
        Err(why) => {
            eprintln!("ryokan: {why}");
            return ExitCode::from(2);
        }
    };
    if let Command::Stats { watch: true, .. } = cli.verb {
        return match watch(&path, &cli, verb) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => fail(&f, &cli),
        };
    }
    let answer = Client::connect(&path, Duration::from_secs(cli.timeout)).and_then(|mut c| c.call(verb));
    match answer {
        Ok(body) => match print(&body, cli.json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => fail(&f, &cli),
        },
        Err(f) => fail(&f, &cli),
    }
}

fn fail(f: &Failure, cli: &Cli) -> ExitCode {
    let name = match &cli.verb {
        Command::Info { name }
        | Command::Pause { name }
        | Command::Resume { name }
        | Command::Kill { name }
        | Command::Restart { name }
        | Command::Destroy { name }
        | Command::Set { name, .. }
        | Command::Console { name, .. }
        | Command::Stats { name: Some(name), .. } => Some(name.as_str()),
        _ => None,
    };
    let msg = match (f, name) {
        (Failure::Refused(ipc::control::ControlError::NoSuchName), Some(n)) => {
            format!("no domain or guest named '{n}'; try `ryokan list`")
        }
        (Failure::Refused(e), Some(n)) => format!("{n}: {}", show::refusal(e)),
        _ => f.to_string(),
    };
    refused(cli, &msg)
}

/// Says `msg` as the error it is (a JSON object with `--json`) and fails.
fn refused(cli: &Cli, msg: &str) -> ExitCode {
    if cli.json {
        println!("{}", serde_json::json!({ "ok": false, "error": msg }));
    } else {
        eprintln!("ryokan: {msg}");
    }
    ExitCode::FAILURE
}

/// `create FILE`: the snippet compiled as the build compiles a system file
/// (the same `FILE:LINE:COL` errors), then sent in checksummed pieces.
fn create(path: &std::path::Path, cli: &Cli, file: &std::path::Path) -> ExitCode {
    let say = |msg: String| refused(cli, &msg);
    let shown = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return say(format!("cannot read {shown}: {e}")),
    };
    let compiled = match sysfile::compile_entry(&shown, &text) {
        Ok(c) => c,
        Err(e) => return say(e.to_string()),
    };
    let m = &compiled.manifest;
    let name = m.domains.first().map(|d| d.name.as_str()).or(m.guests.first().map(|g| g.name.as_str()));
    let name = name.unwrap_or("?").to_string();
    let sent = Client::connect(path, Duration::from_secs(cli.timeout))
        .and_then(|mut c| client::create(&mut c, &compiled.bytes));
    match sent {
        Ok(()) => match print(&Body::Done, cli.json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => fail(&f, cli),
        },
        Err(Failure::Refused(e)) => say(format!("{name}: {}", show::refusal(&e))),
        Err(f) => say(f.to_string()),
    }
}

/// `upload FILE NAME`: the file sent in pieces, checked whole by the system.
fn upload(path: &std::path::Path, cli: &Cli, file: &std::path::Path, image: &str) -> ExitCode {
    let say = |msg: String| refused(cli, &msg);
    let image = match name(image) {
        Ok(n) => n,
        Err(why) => {
            eprintln!("ryokan: {why}");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return say(format!("cannot read {}: {e}", file.display())),
    };
    let max = ipc::control::UPLOAD_MAX;
    if bytes.is_empty() || bytes.len() > max as usize {
        return say(format!(
            "{} is {} bytes: the system takes images of 1 to {max} bytes ({} MiB)",
            file.display(),
            bytes.len(),
            max >> 20
        ));
    }
    let sent = Client::connect(path, Duration::from_secs(cli.timeout))
        .and_then(|mut c| client::upload(&mut c, &image, &bytes));
    match sent {
        Ok(()) => match print(&Body::Done, cli.json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(f) => fail(&f, cli),
        },
        Err(Failure::Refused(ipc::control::ControlError::NameInUse)) => say(format!(
            "{image}: the boot image has a module of that name, or an image was uploaded by it: pick another"
        )),
        Err(Failure::Refused(e)) => say(format!("{image}: {}", show::refusal(&e))),
        Err(f) => say(f.to_string()),
    }
}

/// `console NAME`: attached until detached, the guest stops, or stdin ends.
fn console(path: &std::path::Path, cli: &Cli, n: &str, linger: f64) -> ExitCode {
    let n = match name(n) {
        Ok(n) => n,
        Err(why) => {
            eprintln!("ryokan: {why}");
            return ExitCode::from(2);
        }
    };
    let linger = Duration::from_secs_f64(if linger.is_finite() { linger.clamp(0.0, 3600.0) } else { 1.0 });
    let mut out = console::Out::new(cli.json);
    let ended = Client::connect(path, Duration::from_secs(cli.timeout))
        .and_then(|mut c| console::attach(&mut c, n.clone(), linger, &mut out));
    let (code, end, why) = match ended {
        Ok(console::End::Detached) => (ExitCode::SUCCESS, "detached", None),
        Ok(console::End::Stopped) => (
            ExitCode::FAILURE,
            "stopped",
            Some(format!("{n} is not running (what its console said last is above)")),
        ),
        Ok(console::End::NotTaken(left)) => (
            ExitCode::FAILURE,
            "not taken",
            Some(format!("{n}: {left} bytes typed were not taken: the guest is not reading its console")),
        ),
        Err(f) => return fail(&f, cli),
    };
    if cli.json {
        let mut v = serde_json::json!({ "ok": why.is_none(), "end": end });
        if let Some(why) = &why {
            v["error"] = why.clone().into();
        }
        println!("{v}");
    } else if let Some(why) = why {
        eprintln!("ryokan: {why}");
    }
    code
}

fn name(s: &str) -> Result<Name, String> {
    let n = Name::try_from(s)
        .map_err(|_| format!("`{s}` is longer than {} bytes: not a name", Name::new().capacity()))?;
    check_name(&n).map_err(|_| format!("`{s}` is not a name (printable ASCII, no spaces)"))?;
    Ok(n)
}

fn verb(c: &Command) -> Result<Verb, String> {
    Ok(match c {
        Command::List => Verb::List,
        Command::Info { name: n } => Verb::Info { name: name(n)? },
        Command::Pause { name: n } => Verb::Pause { name: name(n)? },
        Command::Resume { name: n } => Verb::Resume { name: name(n)? },
        Command::Kill { name: n } => Verb::Kill { name: name(n)? },
        Command::Restart { name: n } => Verb::Restart { name: name(n)? },
        Command::Destroy { name: n } => Verb::Destroy { name: name(n)? },
        Command::Stats { name: n, .. } => Verb::Stats { name: n.as_deref().map(name).transpose()? },
        Command::Shutdown => Verb::Shutdown,
        // Many requests, one per piece: `create`.
        Command::Create { .. } => return Err("`create` is sent in pieces".into()),
        Command::Upload { .. } => return Err("`upload` is sent in pieces".into()),
        Command::Console { .. } => return Err("`console` is a session of requests".into()),
        Command::Set { name: n, settings } => {
            let (mut weight, mut cap_percent) = (None, None);
            for s in settings {
                match s.split_once('=') {
                    Some(("weight", v)) => {
                        let w = v.parse::<u16>().ok().filter(|&w| w > 0);
                        weight = Some(w.ok_or(format!("weight={v}: a weight is 1 to 65535"))?);
                    }
                    Some(("cap", v)) => {
                        let c = v.trim_end_matches('%').parse::<u8>().ok().filter(|&c| c <= 100);
                        cap_percent =
                            Some(c.ok_or(format!("cap={v}: a cap is 0 to 100 (percent; 0 for none)"))?);
                    }
                    _ => return Err(format!("`{s}`: say weight=N or cap=P")),
                }
            }
            Verb::Set { name: name(n)?, weight, cap_percent }
        }
    })
}

/// `stats --watch`: the stats every second on one connection, each with
/// the CPU use (percent of one CPU) since the one before; with `--json`,
/// one JSON object a line.
fn watch(path: &std::path::Path, cli: &Cli, verb: Verb) -> Result<(), Failure> {
    let mut client = Client::connect(path, Duration::from_secs(cli.timeout))?;
    let mut last: Option<(u64, Vec<(String, u64)>)> = None;
    loop {
        let Body::Stats(s) = client.call(verb.clone())? else {
            return Err(Failure::Unexpected("not stats".into()));
        };
        let now: Vec<(String, u64)> = s.entries.iter().map(|u| (u.name.to_string(), u.cpu_us)).collect();
        let usage = |name: &str, cpu: u64| -> Option<f64> {
            let (t0, prev) = last.as_ref()?;
            let dt = s.uptime_ms.checked_sub(*t0).filter(|&d| d > 0)?;
            let c0 = prev.iter().find(|(n, _)| n == name)?.1;
            Some(cpu.saturating_sub(c0) as f64 / (dt as f64 * 10.0))
        };
        if cli.json {
            let per: Vec<_> = now
                .iter()
                .map(|(n, c)| serde_json::json!({ "name": n, "cpu_us": c, "cpu_percent": usage(n, *c) }))
                .collect();
            println!(
                "{}",
                serde_json::json!({ "uptime_ms": s.uptime_ms, "free_frames": s.free_frames, "entries": per })
            );
        } else {
            println!("up {} ms, {} free frames", s.uptime_ms, s.free_frames);
            for (n, c) in &now {
                let pct = usage(n, *c).map_or("-".to_string(), |p| format!("{p:.1}%"));
                println!("  {n:<24} {:>12} ms {pct:>7}", c / 1000);
            }
        }
        last = Some((s.uptime_ms, now));
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn print(body: &Body, json: bool) -> Result<(), Failure> {
    let out = match (body, json) {
        (Body::List(entries), false) => show::table(entries),
        (Body::List(entries), true) => {
            let v: Vec<_> = entries.iter().map(show::entry_json).collect();
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
        (Body::Info(e), false) => show::info(e),
        (Body::Info(e), true) => {
            serde_json::to_string_pretty(&show::entry_json(e)).unwrap_or_default() + "\n"
        }
        (Body::Stats(s), false) => show::stats(s),
        (Body::Stats(s), true) => {
            serde_json::to_string_pretty(&show::stats_json(s)).unwrap_or_default() + "\n"
        }
        (Body::Done, false) => String::new(),
        (Body::Done, true) => "{\"ok\":true}\n".into(),
        (Body::Error(e), _) => return Err(Failure::Refused(*e)),
        (Body::Console { .. }, _) => return Err(Failure::Unexpected("a console's answer".into())),
    };
    print!("{out}");
    Ok(())
}
