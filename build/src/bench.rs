//! `cargo xtask bench`: path lengths in instructions. Boots the bench system
//! (`tests/systems/bench.toml`) in QEMU with `-icount shift=0,sleep=off`,
//! where the guest's TSC advances by exactly one per instruction executed, so
//! a figure is the same on every run and machine (EMULATORS.md,
//! "Deterministic instruction counts"). The `bench` domain logs
//! `bench: <name> <instructions>`; this reads those lines and prints them as
//! a table. Cross-CPU figures count the instructions of both CPUs.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use ryokan_systest::runner::{self, RunSpec};
use ryokan_systest::{log, Bochs, Emulator, Image, Qemu, Verdict};

use crate::ws::Ws;
use crate::{image, prereq};

pub mod linux;

/// The system the bench boots.
pub const SYSTEM: &str = "tests/systems/bench.toml";
/// The domain that measures, and the prefix of its figures.
const WHO: &str = "bench";
const PREFIX: &str = "bench: ";
/// A run that takes longer is a failure (a bench run must stay under 2 min).
const TIMEOUT: Duration = Duration::from_secs(120);
/// How much of a failed run's log to show.
const LOG_TAIL_LINES: usize = 60;

/// What each figure measures, for the table.
const ABOUT: [(&str, &str); 9] = [
    ("syscall_poll", "Poll on an empty notification: a minimal syscall round trip"),
    ("ipc_call_same_cpu", "call + reply, server on the same CPU (direct switch)"),
    ("ipc_call_cross_cpu", "call + reply, server on the other CPU"),
    ("ntfn_wake_same_cpu", "Signal until the waiter, same CPU, returns from Wait"),
    ("ntfn_wake_cross_cpu", "Signal until the waiter, other CPU, returns from Wait"),
    ("ntfn_pingpong_same_cpu", "Signal + Wait for the answering Signal, same CPU"),
    ("ntfn_pingpong_cross_cpu", "Signal + Wait for the answering Signal, other CPU"),
    ("ring_msg_64b_same_cpu", "one 64-byte message through ipc::ring with doorbells, same CPU"),
    ("ring_msg_64b_cross_cpu", "one 64-byte message through ipc::ring with doorbells, other CPU"),
];

/// The device bench (the `devices` part): the blk domain's
/// (`tests/systems/bench-blk.toml`) and the net domain's
/// (`tests/systems/bench-net.toml`), each a boot of its own (the TSC
/// counts both CPUs' instructions); the domains whose figures each reads;
/// what each figure measures.
pub const BLK_SYSTEM: &str = "tests/systems/bench-blk.toml";
pub const NET_SYSTEM: &str = "tests/systems/bench-net.toml";
const BLK_WHO: [&str; 2] = ["blk", "blk-client"];
const NET_WHO: [&str; 1] = ["net-client"];
const DEVICES_ABOUT: [(&str, &str); 5] = [
    ("net_send_1500", "a client's 1514-byte frame (1500-byte payload) sent through net's service (ipc::net)"),
    (
        "blk_read_4k",
        "a client's 4 KiB read through blk's service (ipc::block), the device's own time taken off",
    ),
    ("blk_write_4k", "a client's 4 KiB write through blk's service, the device's own time taken off"),
    ("device_msi_to_driver_mean", "the same, mean of the rounds (with the ticks some took)"),
    (
        "device_msi_to_driver",
        "virtio-blk's MSI-X until blk runs again, woken from Wait (fewest of the rounds)",
    ),
];

/// What each guest figure measures (its name then says where).
/// (`_mean` ones are the mean of 1000; the others the fewest.)
const GUEST_ABOUT: [(&str, &str); 10] = [
    ("linux_first_to_init_ryokan", "Debian's kernel, first instruction to init's first line, on Ryokan"),
    ("linux_first_to_init_bare", "the same on bare QEMU TCG, -smp 1, from its reset (SeaBIOS too)"),
    ("linux_to_init_ryokan", "Debian's kernel, TSC start to `Run /init`, a 1-vCPU guest on Ryokan"),
    ("linux_to_init_bare", "the same kernel and initramfs on bare QEMU TCG, -smp 1"),
    ("guest_out_kernel_mean", "the same, mean of 1000"),
    ("guest_out_kernel", "guest OUT to a doorbell port until it resumes, handled in the kernel alone"),
    ("guest_cpuid_vmm_mean", "the same, mean of 1000"),
    ("guest_cpuid_vmm", "guest CPUID until it resumes, answered by the VMM (exit, call, reply, entry)"),
    ("guest_out_vmm_mean", "the same, mean of 1000"),
    ("guest_out_vmm", "guest OUT to a UART port until it resumes, handled by the VMM"),
];

/// The deterministic machine: the test harness' QEMU plus instruction counting.
pub fn emulator() -> Emulator {
    Emulator::Qemu(Qemu::deterministic())
}

/// The parts of the bench `--only` can name: the native figures
/// (`bench.toml`), the guest exits on QEMU AMD-V (`exits`), on Bochs VT-x
/// and AMD-V (`bochs`), Linux to init (`linux`) and the blk domain's
/// paths (`devices`).
pub const PARTS: [&str; 5] = ["native", "exits", "bochs", "linux", "devices"];

/// Which parts of the bench to run: `--only`'s comma-separated list of
/// [`PARTS`], or all of them.
pub fn parts(only: Option<&str>) -> Result<Vec<&'static str>> {
    let Some(only) = only else { return Ok(PARTS.to_vec()) };
    let mut got = Vec::new();
    for name in only.split(',') {
        let Some(&part) = PARTS.iter().find(|&&p| p == name) else {
            bail!(
                "unknown bench part `{name}` (--only takes a comma-separated list of {})",
                PARTS.join(", ")
            );
        };
        if !got.contains(&part) {
            got.push(part);
        }
    }
    Ok(got)
}

/// Runs the bench's `parts` ([`PARTS`]) and prints their figures.
pub fn bench(ws: &Ws, parts: &[&str]) -> Result<ExitCode> {
    prereq::ensure()?;
    let mut figures = Vec::new();
    if parts.contains(&"native") {
        figures = run_one(ws, SYSTEM, &emulator(), &[WHO], "bench", None)?;
    }
    for (label, emulator) in guest_machines() {
        let part = if label == "svm_qemu" { "exits" } else { "bochs" };
        if !parts.contains(&part) {
            continue;
        }
        let got = run_one(ws, GUEST_SYSTEM, &emulator, &[GUEST_WHO], &format!("bench-{label}"), None)?;
        figures.extend(got.into_iter().map(|(name, n)| (format!("{name}_{label}"), n)));
    }
    if parts.contains(&"linux") {
        figures.extend(linux::figures(ws)?);
    }
    if parts.contains(&"devices") {
        figures.extend(devices(ws)?);
    }
    print!("{}", table(&figures));
    if let Some(r) = linux::ratio(&figures) {
        println!("{r}");
    }
    println!("({} figures; logs in {})", figures.len(), ws.out_dir().join("bench*").display());
    Ok(ExitCode::SUCCESS)
}

/// The guest bench (`tests/systems/guest-bench.toml`): exit round trips
/// measured by the guest itself with RDTSC.
pub const GUEST_SYSTEM: &str = "tests/systems/guest-bench.toml";
const GUEST_WHO: &str = "guest-bench";

/// Where the guest figures are taken, each named by the suffix its figures
/// get: AMD-V under QEMU with instruction counting; VT-x and AMD-V under
/// Bochs (`clock: sync=none`, where the TSC advances by one per emulated
/// instruction at `ips` 50 M, the TSC's calibrated rate).
pub fn guest_machines() -> [(&'static str, Emulator); 3] {
    let ryzen = Bochs { cpu_model: "ryzen".to_string(), ..Bochs::default() };
    [
        ("svm_qemu", emulator()),
        ("vmx_bochs", Emulator::Bochs(Bochs::default())),
        ("svm_bochs", Emulator::Bochs(ryzen)),
    ]
}

/// The device bench: the deterministic machine with each system's
/// devices; the net domain's with the control channel too, over which it
/// is shut down once its client is done (`net` serves until then).
fn devices(ws: &Ws) -> Result<Vec<(String, u64)>> {
    let machine = image::with_devices(ws, Image::System(BLK_SYSTEM), emulator())?;
    let mut figures = run_one(ws, BLK_SYSTEM, &machine, &BLK_WHO, "bench-blk", None)?;
    let Emulator::Qemu(mut q) = emulator() else { bail!("the bench machine is QEMU") };
    q.extra.extend(Qemu::CONTROL.iter().map(|s| s.to_string()));
    let machine = image::with_devices(ws, Image::System(NET_SYSTEM), Emulator::Qemu(q))?;
    let mut cmd = ws.cargo();
    cmd.args(["build", "-p", "ryokan"]);
    crate::ws::run(&mut cmd)?;
    std::env::set_var("RYOKAN_CLI", ws.target_dir().join("debug").join("ryokan"));
    figures.extend(run_one(ws, NET_SYSTEM, &machine, &NET_WHO, "bench-net", Some(shut_down_when_done))?);
    Ok(figures)
}

/// The line that says the net bench's client is done.
const NET_DONE: &str = "[mgmt] net-client exited with code 0";

/// Waits for the net bench's client to finish, then shuts the system down.
fn shut_down_when_done(s: &ryokan_systest::control::Session) -> Result<(), String> {
    s.wait_for(NET_DONE, TIMEOUT)?;
    match s.run(&["shutdown"])? {
        out if out.ok => Ok(()),
        out => Err(format!("`ryokan shutdown` failed: {}", out.stderr)),
    }
}

/// Boots `system` on `emulator` (driven by `drive`, if given) and returns
/// the figures of `whos`, each's in turn.
fn run_one(
    ws: &Ws,
    system: &'static str,
    emulator: &Emulator,
    whos: &[&str],
    dir: &str,
    drive: Option<runner::Drive>,
) -> Result<Vec<(String, u64)>> {
    let iso = image::build_image(ws, Image::System(system))?;
    let work_dir = ws.out_dir().join(dir);
    eprintln!("booting {} in {}", iso.display(), emulator.describe());
    let spec = RunSpec {
        emulator,
        iso: &iso,
        work_dir: &work_dir,
        timeout: Some(TIMEOUT),
        echo: false,
        // A disk, if the system has one, holds the harness's pattern (blk checks it).
        prepare: Some(ryokan_systest::domains::prepare_disk),
    };
    let (o, driven) = runner::run_driven(&spec, drive)?;
    if let Err(e) = driven {
        eprintln!("{}", log::tail(&o.serial, LOG_TAIL_LINES));
        bail!("the bench run of {system} was not driven to its end: {e}");
    }
    let figures: Vec<(String, u64)> = whos.iter().flat_map(|who| parse(&o.serial, who)).collect();
    let who = whos.join("`, `");
    if let Verdict::Failure { reason } = &o.verdict {
        eprintln!("{}", log::tail(&o.serial, LOG_TAIL_LINES));
        bail!("the bench run of {system} failed ({:.1} s): {reason}", o.duration.as_secs_f64());
    }
    if figures.is_empty() {
        eprintln!("{}", log::tail(&o.serial, LOG_TAIL_LINES));
        bail!("the bench run of {system} logged no `[{who}] {PREFIX}<name> <instructions>` line");
    }
    eprintln!(
        "{} figures in {:.1} s (log in {})",
        figures.len(),
        o.duration.as_secs_f64(),
        work_dir.display()
    );
    Ok(figures)
}

/// The `bench: <name> <instructions>` lines of domain or guest `who`, in
/// order.
pub fn parse(serial: &str, who: &str) -> Vec<(String, u64)> {
    log::said(serial, who)
        .into_iter()
        .filter_map(|(_, m)| {
            let (name, n) = m.strip_prefix(PREFIX)?.split_once(' ')?;
            let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            Some((name.to_string(), n.trim().parse().ok().filter(|_| ok)?))
        })
        .collect()
}

/// The figures as a table: name, instructions, what it measures.
pub fn table(figures: &[(String, u64)]) -> String {
    let about = |name: &str| {
        let native = ABOUT.iter().chain(&DEVICES_ABOUT).find(|(n, _)| *n == name);
        let guest = || GUEST_ABOUT.iter().find(|(n, _)| name.starts_with(n));
        native.or_else(guest).map_or("", |(_, a)| a)
    };
    let width = figures.iter().map(|(n, _)| n.len()).chain(["name".len()]).max().unwrap_or(4);
    let mut out = format!("{:<width$}  {:>12}  what\n", "name", "instructions");
    out.push_str(&format!("{}  {}  {}\n", "-".repeat(width), "-".repeat(12), "-".repeat(4)));
    for (name, n) in figures {
        out.push_str(format!("{name:<width$}  {n:>12}  {}", about(name)).trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[cpu0] boot: starting the root domain mgmt
[bench] bench: syscall_poll 212
[cpu0] [bench] bench: ipc_call_same_cpu 1534
[bench] bench: done
[bench] bench: broken
[bench] bench: bad-name 7
[bench-srv0] bench: ipc_call_cross_cpu 1
[bench] bench: ring_msg_64b_cross_cpu 9x
";

    #[test]
    fn only_the_bench_domains_well_formed_figures_are_read() {
        assert_eq!(
            parse(LOG, WHO),
            vec![("syscall_poll".to_string(), 212), ("ipc_call_same_cpu".to_string(), 1534)]
        );
    }

    #[test]
    fn the_table_lines_up_and_explains() {
        let t = table(&parse(LOG, WHO));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[0].starts_with("name ") && lines[0].contains("instructions"), "{t}");
        assert!(lines[2].starts_with("syscall_poll ") && lines[2].contains("  212  Poll"), "{t}");
        assert_eq!(lines[2].find("212").map(|i| i + 3), lines[3].find("1534").map(|i| i + 4), "{t}");
    }

    #[test]
    fn the_bench_counts_instructions() {
        let Emulator::Qemu(q) = emulator() else { panic!("QEMU") };
        assert_eq!(q.extra, ["-icount", "shift=0,sleep=off"]);
        assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(SYSTEM).is_file());
    }

    /// The device bench's figures come from several domains of one log,
    /// each's in turn; another domain's, and ill-formed ones, are not read.
    #[test]
    fn the_device_figures_are_read_from_each_of_their_domains_and_explained() {
        let log = "\
[blk] bench: device_msi_to_driver 1044
[blk] bench: device_msi_to_driver_mean 3567
[blk] blk: interrupt path: 2 of 300 rounds counted
[blk-hostile] bench: blk_read_4k 1
[blk-client] bench: blk_read_4k 82213
[blk-client] blk-bench: blk_read_4k: 82682 per request with the device's time
[blk-client] bench: blk_write_4k 81696
[blk-client] bench: blk_write_4k 8x
";
        let figures: Vec<(String, u64)> = BLK_WHO.iter().flat_map(|w| parse(log, w)).collect();
        let names: Vec<(&str, u64)> = figures.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert_eq!(
            names,
            [
                ("device_msi_to_driver", 1044),
                ("device_msi_to_driver_mean", 3567),
                ("blk_read_4k", 82213),
                ("blk_write_4k", 81696)
            ]
        );
        let net =
            parse("[net-client] bench: net_send_1500 32669\n[net] bench: net_send_1500 2\n", NET_WHO[0]);
        assert_eq!(net, [("net_send_1500".to_string(), 32669)]);
        let t = table(&[figures, net].concat());
        assert!(t.contains("1044  virtio-blk's MSI-X until blk runs again"), "{t}");
        assert!(t.contains("3567  the same, mean"), "{t}");
        assert!(t.contains("82213  a client's 4 KiB read"), "{t}");
        assert!(t.contains("81696  a client's 4 KiB write"), "{t}");
        assert!(t.contains("32669  a client's 1514-byte frame"), "{t}");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        assert!(root.join(BLK_SYSTEM).is_file() && root.join(NET_SYSTEM).is_file());
        assert!(PARTS.contains(&"devices"));
    }

    #[test]
    fn only_names_known_parts() {
        assert_eq!(parts(None).ok(), Some(PARTS.to_vec()));
        assert_eq!(parts(Some("exits,native,exits")).ok(), Some(vec!["exits", "native"]));
        assert!(parts(Some("exits,kvm")).is_err());
        assert!(parts(Some("")).is_err());
    }

    #[test]
    fn guest_figures_are_taken_on_both_vendors_and_explained() {
        let labels: Vec<&str> = guest_machines().iter().map(|(l, _)| *l).collect();
        assert_eq!(labels, ["svm_qemu", "vmx_bochs", "svm_bochs"]);
        let log =
            "[guest-bench] bench: guest_cpuid_vmm 2051\n[guest-bench] bench: guest_cpuid_vmm_mean 2079\n";
        let figures: Vec<(String, u64)> =
            parse(log, GUEST_WHO).into_iter().map(|(n, v)| (format!("{n}_vmx_bochs"), v)).collect();
        let t = table(&figures);
        assert!(t.contains("guest_cpuid_vmm_vmx_bochs") && t.contains("2051  guest CPUID"), "{t}");
        assert!(t.contains("2079  the same, mean of 1000"), "{t}");
        assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(GUEST_SYSTEM).is_file());
    }
}
