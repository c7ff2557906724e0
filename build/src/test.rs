//! `cargo xtask test`: host tests, then the system tests in the emulators.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use ryokan_systest::schedule::{self, Job, TestResult};
use ryokan_systest::{cases, kvm, log, Accel, Emulator, Image, Outcome};

use crate::ws::{self, Ws, KERNEL_PACKAGE};
use crate::{domains, image, linux, prereq};

/// QEMU boots two at a time on the 2-core machines; Bochs runs beside at most one QEMU.
const SLOTS: usize = 2;
/// How much of a failed run's serial log to print.
const LOG_TAIL_LINES: usize = 200;

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestOpts {
    pub host: bool,
    pub system: bool,
    /// Run only system tests whose name contains one of these.
    pub filters: Vec<String>,
    /// QEMU's accelerator for the QEMU tests (`--accel kvm`; those that
    /// count instructions stay on TCG, the only one that can).
    pub accel: Accel,
}

pub fn test(ws: &Ws, opts: &TestOpts) -> Result<ExitCode> {
    if opts.accel == Accel::Kvm && opts.system {
        let vendor = kvm::check().map_err(|why| anyhow::anyhow!("--accel kvm: {why}"))?;
        println!("QEMU tests on KVM with nested virtualization: Ryokan gets the host's {vendor}");
    }
    // A filter that is a test's whole name picks that test alone (so that
    // `linux_boot` is not also `linux_boot_one`); `=NAME` says so outright;
    // any other picks every test whose name holds it.
    let all = cases::all();
    let picks = |name: &str| {
        opts.filters.is_empty()
            || opts.filters.iter().any(|f| match f.strip_prefix('=') {
                Some(exact) => name == exact,
                None if all.iter().any(|t| t.name == f.as_str()) => name == f.as_str(),
                None => name.contains(f.as_str()),
            })
    };
    let selected: Vec<_> = all
        .iter()
        .filter(|&t| picks(t.name))
        .cloned()
        .map(|mut t| {
            if let Emulator::Qemu(q) = t.emulator {
                t.emulator = Emulator::Qemu(q.on(opts.accel));
            }
            t
        })
        .collect();
    if opts.system && selected.is_empty() {
        anyhow::bail!(
            "no system test matches {:?} (`cargo xtask list` shows them; host tests such as \
             manifest_rejected run by name with `cargo test -p ryokan-sysfile NAME`)",
            opts.filters
        );
    }
    if opts.system {
        prereq::ensure()?;
    }
    let host_ok = !opts.host || host_tests(ws);
    if !opts.system {
        return Ok(if host_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE });
    }

    // Build each image the selected tests need; a failed build fails its tests.
    let mut wanted: Vec<Image> = Vec::new();
    for t in &selected {
        if !wanted.contains(&t.image) {
            wanted.push(t.image);
        }
    }
    let isos: HashMap<Image, Result<PathBuf, String>> =
        image::build_images(ws, &wanted).into_iter().collect();
    let mut results = Vec::new();
    let mut jobs = Vec::new();
    for mut test in selected {
        let built = isos[&test.image].clone().and_then(|iso| {
            test.emulator =
                image::with_devices(ws, test.image, test.emulator.clone()).map_err(|e| format!("{e:#}"))?;
            Ok(iso)
        });
        match built {
            Ok(iso) => jobs.push(Job { test, iso }),
            Err(e) => results.push(TestResult {
                name: test.name,
                result: Err(format!("{} did not build: {e}", image::describe(test.image))),
                outcome: None,
                duration: Default::default(),
            }),
        }
    }
    for r in &results {
        report(r);
    }
    if jobs.iter().any(|j| j.test.drive.is_some()) {
        // The control tests drive the system with the `ryokan` binary.
        let mut cmd = ws.cargo();
        cmd.args(["build", "-p", "ryokan"]);
        ws::run(&mut cmd)?;
        std::env::set_var("RYOKAN_CLI", ws.target_dir().join("debug").join("ryokan"));
        // And some read the images the boot image holds (`ryokan upload`).
        std::env::set_var("RYOKAN_OUT", ws.out_dir());
    }
    let base = ws.out_dir().join("systest");
    println!("running {} system tests, {SLOTS} at a time (work dirs in {})", jobs.len(), base.display());
    results.extend(schedule::run_all(jobs, &base, SLOTS, &report));

    let passed = results.iter().filter(|r| r.passed()).count();
    let failed = results.len() - passed;
    if !host_ok {
        println!("host tests FAILED (see above)");
    }
    // Every failure again, last, one line each: a long log above may be
    // cut from what a CI page shows.
    for r in results.iter().filter(|r| !r.passed()) {
        let reason = r.result.as_ref().err().map_or("", |e| e.lines().next().unwrap_or(""));
        println!("failed: {}: {reason}", r.name);
    }
    println!("{passed} passed, {failed} failed");
    Ok(if host_ok && failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The host crates' tests, then the library tests of the kernel and of the
/// user-side crates (whose binaries only build for the target), then the
/// test of the real Linux kernel; true if all passed.
fn host_tests(ws: &Ws) -> bool {
    let crates = match domains::user_crates(ws) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("host tests: {e:#}");
            return false;
        }
    };
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut host = vec!["test", "--workspace", "--exclude", KERNEL_PACKAGE]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    for c in &crates {
        host.extend(["--exclude".to_string(), c.package.clone()]);
    }
    runs.push(host);
    runs.push(["test", "-p", KERNEL_PACKAGE, "--test", "host"].into_iter().map(String::from).collect());
    // The core's random test again, optimized: 10^7 calls (about a minute;
    // the debug run above makes 10^5, with overflow checks).
    let random = ["test", "--release", "-p", KERNEL_PACKAGE, "--test", "host", "core_tests::random"];
    runs.push(random.into_iter().map(String::from).collect());
    for c in crates.iter().filter(|c| c.host_tests) {
        let mut run = vec!["test".into(), "-p".into(), c.package.clone(), "--lib".into()];
        if c.integration_tests {
            run.extend(["--test".into(), "*".into()]);
        }
        runs.push(run);
    }
    let mut ok = true;
    for args in runs {
        let mut cmd = ws.cargo();
        cmd.args(args);
        if let Err(e) = ws::run(&mut cmd) {
            eprintln!("host tests: {e:#}");
            ok = false;
        }
    }
    ok & real_kernel_test(ws)
}

/// The vmm crate's test of Debian's real kernel (ignored in a plain
/// `cargo test`, which has no kernel to read): the payload is fetched (or
/// found in its cache) first, and its paths handed to the test, which
/// fails if they are missing. A payload that cannot be had fails the host
/// tests: the test is never skipped quietly.
fn real_kernel_test(ws: &Ws) -> bool {
    let payload = match linux::payload(ws) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("host tests: the Linux payload for the real-kernel test: {e:#}");
            return false;
        }
    };
    let mut cmd = ws.cargo();
    cmd.args(["test", "-p", "ryokan-vmm", "--test", "debian_kernel", "--", "--include-ignored"])
        .env(linux::KERNEL_ENV, &payload.kernel)
        .env(linux::INITRD_ENV, &payload.initrd);
    match ws::run(&mut cmd) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("host tests: {e:#}");
            false
        }
    }
}

fn report(r: &TestResult) {
    let secs = r.duration.as_secs_f64();
    match &r.result {
        Ok(()) => println!("PASS {} ({secs:.1}s)", r.name),
        Err(reason) => {
            println!("FAIL {} ({secs:.1}s)", r.name);
            println!("  reason: {}", reason.replace('\n', "\n  "));
            if let Some(o) = &r.outcome {
                print_log(o);
            }
        }
    }
}

fn print_log(o: &Outcome) {
    println!("  {}; serial log ({}):", o.exit, o.work_dir.join("serial.log").display());
    if o.serial.trim().is_empty() {
        println!("  | (empty)");
        return;
    }
    for line in log::tail(&o.serial, LOG_TAIL_LINES).lines() {
        println!("  | {line}");
    }
}
