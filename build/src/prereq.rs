//! Checks (and, as root, installs) what building and booting the images needs.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::ws::{self, KERNEL_TARGET};

/// Something the host must have, and the Debian packages that provide it.
struct Need {
    what: &'static str,
    present: fn(&str) -> bool,
    packages: &'static [&'static str],
}

fn command(name: &str) -> bool {
    ws::on_path(name)
}

fn path(p: &str) -> bool {
    // Follows symlinks: VGABIOS-lgpl-latest (package bochs) points into vgabios.
    Path::new(p).exists()
}

const NEEDS: &[Need] = &[
    Need { what: "qemu-system-x86_64", present: command, packages: &["qemu-system-x86"] },
    Need { what: "bochs-bin", present: command, packages: &["bochs"] },
    Need { what: "grub-mkrescue", present: command, packages: &["grub-common"] },
    Need { what: "xorriso", present: command, packages: &["xorriso"] },
    Need { what: "mformat", present: command, packages: &["mtools"] },
    // The VMM's DSDT host test checks its AML with ACPICA's disassembler.
    Need { what: "iasl", present: command, packages: &["acpica-tools"] },
    // linux_disk builds an ext4 image (`mke2fs -d`) and reads it back
    // (`debugfs`, `e2fsck -fn`); /usr/sbin, which may not be on PATH.
    Need { what: "/usr/sbin/mke2fs", present: path, packages: &["e2fsprogs"] },
    Need { what: "/usr/sbin/debugfs", present: path, packages: &["e2fsprogs"] },
    Need { what: "/usr/lib/grub/i386-pc", present: path, packages: &["grub-pc-bin"] },
    Need { what: "/usr/share/bochs/BIOS-bochs-latest", present: path, packages: &["bochsbios"] },
    Need { what: "/usr/share/bochs/VGABIOS-lgpl-latest", present: path, packages: &["bochs", "vgabios"] },
];

/// Makes sure the Rust target and every tool and file are there, installing
/// what is missing when we are root.
pub fn ensure() -> Result<()> {
    ensure_rust_target()?;
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if !is_root() {
        bail!(
            "missing host packages; install them with:\n  \
             sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y {list}"
        );
    }
    eprintln!("installing missing host packages: {list}");
    ws::run(Command::new("apt-get").arg("update"))?;
    ws::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y"])
            .args(&missing),
    )?;
    let still = missing_packages();
    if !still.is_empty() {
        bail!("still missing after apt-get install: {}", still.join(" "));
    }
    Ok(())
}

/// The packages to install for everything that is missing, without repeats.
fn missing_packages() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for need in NEEDS.iter().filter(|n| !(n.present)(n.what)) {
        eprintln!("missing: {}", need.what);
        for p in need.packages {
            if !out.contains(p) {
                out.push(p);
            }
        }
    }
    out
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The standard library for the kernel's target must be in the sysroot.
pub fn ensure_rust_target() -> Result<()> {
    if rust_target_installed()? {
        return Ok(());
    }
    let add = format!("rustup target add {KERNEL_TARGET}");
    if !ws::on_path("rustup") {
        bail!("the Rust target {KERNEL_TARGET} is not installed; run `{add}`");
    }
    ws::run(Command::new("rustup").args(["target", "add", KERNEL_TARGET]))
        .with_context(|| format!("could not install the Rust target; run `{add}`"))?;
    if !rust_target_installed()? {
        bail!("the Rust target {KERNEL_TARGET} is still missing; run `{add}`");
    }
    Ok(())
}

fn rust_target_installed() -> Result<bool> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .context("cannot run rustc --print sysroot")?;
    if !out.status.success() {
        bail!("rustc --print sysroot failed");
    }
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(Path::new(&sysroot).join("lib/rustlib").join(KERNEL_TARGET).join("lib").is_dir())
}
