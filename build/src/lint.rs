//! `cargo xtask lint`: rustfmt and clippy for the host crates and the kernel target.

use std::process::ExitCode;

use anyhow::Result;

use crate::ws::{self, Ws, KERNEL_PACKAGE, KERNEL_TARGET};

pub fn lint(ws: &Ws) -> Result<ExitCode> {
    const DENY: [&str; 3] = ["--", "-D", "warnings"];
    let steps: Vec<Vec<&str>> = vec![
        vec!["fmt", "--all", "--", "--check"],
        // The kernel's binary cannot build for the host: lint the host crates,
        // then the kernel's library (with its tests) on the host, then the kernel
        // for its target in both feature variants.
        [&["clippy", "--workspace", "--exclude", KERNEL_PACKAGE, "--all-targets"][..], &DENY].concat(),
        [&["clippy", "-p", KERNEL_PACKAGE, "--lib", "--tests"][..], &DENY].concat(),
        [&["clippy", "-p", KERNEL_PACKAGE, "--target", KERNEL_TARGET][..], &DENY].concat(),
        [&["clippy", "-p", KERNEL_PACKAGE, "--target", KERNEL_TARGET, "--features", "fault-test"][..], &DENY]
            .concat(),
    ];
    let mut failed = Vec::new();
    for args in &steps {
        let mut cmd = ws.cargo();
        cmd.args(args);
        if let Err(e) = ws::run(&mut cmd) {
            eprintln!("lint: {e:#}");
            failed.push(ws::show(&cmd));
        }
    }
    if failed.is_empty() {
        println!("lint: all {} checks passed", steps.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("lint: {} of {} checks failed:", failed.len(), steps.len());
        for f in &failed {
            println!("  {f}");
        }
        Ok(ExitCode::FAILURE)
    }
}
