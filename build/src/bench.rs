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
use ryokan_systest::{log, Emulator, Image, Qemu, Verdict};

use crate::ws::Ws;
use crate::{image, prereq};

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

/// The deterministic machine: the test harness' QEMU plus instruction counting.
pub fn emulator() -> Emulator {
    Emulator::Qemu(Qemu::deterministic())
}

pub fn bench(ws: &Ws) -> Result<ExitCode> {
    prereq::ensure()?;
    let iso = image::build_image(ws, Image::System(SYSTEM))?;
    let emulator = emulator();
    let work_dir = ws.out_dir().join("bench");
    eprintln!("booting {} in {}", iso.display(), emulator.describe());
    let o = runner::run(&RunSpec {
        emulator: &emulator,
        iso: &iso,
        work_dir: &work_dir,
        timeout: Some(TIMEOUT),
        echo: false,
    })?;
    let figures = parse(&o.serial);
    if let Verdict::Failure { reason } = &o.verdict {
        eprintln!("{}", log::tail(&o.serial, LOG_TAIL_LINES));
        bail!("the bench run failed ({:.1} s): {reason}", o.duration.as_secs_f64());
    }
    if figures.is_empty() {
        eprintln!("{}", log::tail(&o.serial, LOG_TAIL_LINES));
        bail!("the bench run logged no `[{WHO}] {PREFIX}<name> <instructions>` line");
    }
    print!("{}", table(&figures));
    println!(
        "({} figures in {:.1} s; log in {})",
        figures.len(),
        o.duration.as_secs_f64(),
        work_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The `bench: <name> <instructions>` lines of `bench`, in order.
pub fn parse(serial: &str) -> Vec<(String, u64)> {
    log::said(serial, WHO)
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
    let about = |name: &str| ABOUT.iter().find(|(n, _)| *n == name).map_or("", |(_, a)| a);
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
            parse(LOG),
            vec![("syscall_poll".to_string(), 212), ("ipc_call_same_cpu".to_string(), 1534)]
        );
    }

    #[test]
    fn the_table_lines_up_and_explains() {
        let t = table(&parse(LOG));
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
}
