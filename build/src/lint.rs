//! `cargo xtask lint`: rustfmt and clippy for the host crates, the kernel and the domains.

use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::ws::{self, Ws, KERNEL_PACKAGE, KERNEL_TARGET};
use crate::{domains, guests, layers, sizes};

const DENY: [&str; 3] = ["--", "-D", "warnings"];

fn cargo(ws: &Ws, args: &[&str]) -> Command {
    let mut cmd = ws.cargo();
    cmd.args(args);
    cmd
}

pub fn lint(ws: &Ws) -> Result<ExitCode> {
    let crates = domains::user_crates(ws)?;
    // The kernel's binary and the user-side crates (the runtime and the
    // domains) are `no_std` code for the target: lint the host crates without
    // them, then the libraries of both (with their tests) on the host, then
    // the kernel in both feature variants, `ipc`, and the user-side crates and
    // guest kernels for the target, with their own flags in their own target dirs.
    let mut host = vec!["clippy", "--workspace", "--exclude", KERNEL_PACKAGE];
    for c in &crates {
        host.extend(["--exclude", c.package.as_str()]);
    }
    host.push("--all-targets");
    let mut steps = vec![
        cargo(ws, &["fmt", "--all", "--", "--check"]),
        cargo(ws, &[&host[..], &DENY].concat()),
        cargo(ws, &[&["clippy", "-p", KERNEL_PACKAGE, "--lib", "--tests"][..], &DENY].concat()),
        cargo(ws, &[&["clippy", "-p", KERNEL_PACKAGE, "--target", KERNEL_TARGET][..], &DENY].concat()),
        cargo(
            ws,
            &[
                &["clippy", "-p", KERNEL_PACKAGE, "--target", KERNEL_TARGET, "--features", "fault-test"][..],
                &DENY,
            ]
            .concat(),
        ),
        cargo(ws, &[&["clippy", "-p", "ryokan-ipc", "--target", KERNEL_TARGET][..], &DENY].concat()),
    ];
    for c in crates.iter().filter(|c| c.host_tests) {
        steps.push(cargo(
            ws,
            &[&["clippy", "-p", c.package.as_str(), "--lib", "--tests"][..], &DENY].concat(),
        ));
    }
    let mut failed = Vec::new();
    if !crates.is_empty() {
        match domains::cargo(ws, "clippy") {
            Ok(mut cmd) => {
                for c in &crates {
                    cmd.args(["-p", &c.package]);
                }
                cmd.args(DENY);
                steps.push(cmd);
            }
            Err(e) => {
                eprintln!("lint: {e:#}");
                failed.push("clippy of the user-side crates for the target".to_string());
            }
        }
    }
    // The guest kernels, for the target with their own flags: their
    // assembly is only assembled there.
    match guests::cargo(ws, "clippy") {
        Ok(mut cmd) => {
            cmd.args(DENY);
            steps.push(cmd);
        }
        Err(e) => {
            eprintln!("lint: {e:#}");
            failed.push("clippy of the guest kernels for the target".to_string());
        }
    }
    // The kernel's line budget (`cargo xtask sizes`, without the build).
    let budget = sizes::check(ws).unwrap_or_else(|e| {
        eprintln!("lint: {e:#}");
        false
    });
    if !budget {
        failed.push("the kernel's line budget (cargo xtask sizes)".to_string());
    }
    // No cycle among the kernel's modules (`cargo xtask layers`).
    let layered = layers::check(ws).unwrap_or_else(|e| {
        eprintln!("lint: {e:#}");
        false
    });
    if !layered {
        failed.push("the kernel's layers: a cycle among its modules (cargo xtask layers)".to_string());
    }
    let total = steps.len() + failed.len() + usize::from(budget) + usize::from(layered);
    for mut cmd in steps {
        if let Err(e) = ws::run(&mut cmd) {
            eprintln!("lint: {e:#}");
            failed.push(ws::show(&cmd));
        }
    }
    if failed.is_empty() {
        println!("lint: all {total} checks passed");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("lint: {} of {total} checks failed:", failed.len());
        for f in &failed {
            println!("  {f}");
        }
        Ok(ExitCode::FAILURE)
    }
}
