//! The guest kernels: the binaries of `tests/guests` (crate `ryokan-guests`,
//! one `src/bin/<name>.rs` each), built for the target with their own
//! linker script (a Multiboot kernel at 1 MiB, `tests/guests/link.ld`) in
//! their own target directory, `target/guests`, and checked as the VMM
//! checks what it boots (`vmm::multiboot::check`), not as a domain image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::ws::{self, Ws, KERNEL_TARGET};

/// The crate of the guest kernels.
pub const PACKAGE: &str = "ryokan-guests";

fn dir(ws: &Ws) -> PathBuf {
    ws.root.join("tests/guests")
}

/// The guest kernels there are: the binaries `src/bin/<name>.rs`.
pub fn names(ws: &Ws) -> Result<Vec<String>> {
    let bin = dir(ws).join("src/bin");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&bin).with_context(|| format!("cannot list {}", bin.display()))? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "rs") {
            if let Some(stem) = path.file_stem() {
                names.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// The flags the guests are built (and linted) with.
pub fn rustflags(ws: &Ws) -> Result<String> {
    crate::domains::static_flags(ws, &dir(ws).join("link.ld"), "the guests")
}

/// `cargo <sub> -p ryokan-guests --target x86_64-unknown-none --target-dir target/guests`.
pub fn cargo(ws: &Ws, sub: &str) -> Result<Command> {
    let mut cmd = ws.cargo();
    cmd.env("RUSTFLAGS", rustflags(ws)?).env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd.args([sub, "-p", PACKAGE, "--target", KERNEL_TARGET, "--target-dir"]);
    cmd.arg(ws.target_dir().join("guests"));
    Ok(cmd)
}

/// Builds the guest kernels `names` (release, one cargo run); returns each one's path.
pub fn build(ws: &Ws, names: &[String]) -> Result<BTreeMap<String, PathBuf>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut cmd = cargo(ws, "build")?;
    cmd.arg("--release");
    for n in names {
        cmd.args(["--bin", n]);
    }
    ws::run(&mut cmd).context("the guest kernels did not build")?;
    let out = ws.target_dir().join("guests").join(KERNEL_TARGET).join("release");
    Ok(names.iter().map(|n| (n.clone(), out.join(n))).collect())
}

/// Applies the VMM's checks to a guest kernel for `memory_kib` of RAM.
pub fn check(path: &Path, memory_kib: u32) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let ram = vmm::ram::RAM_START..u64::from(memory_kib) * 1024;
    if let Err(e) = vmm::multiboot::check(&bytes, ram) {
        bail!("{} is refused by the VMM's checks (vmm::multiboot::check): {e}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guests_are_found_and_garbage_is_refused() {
        let ws = Ws::locate().unwrap();
        let names = names(&ws).unwrap();
        for n in [
            "guest-hello",
            "guest-spin",
            "guest-probe",
            "guest-triple",
            "guest-vmx",
            "guest-bench",
            "guest-mods",
            "guest-smp",
            "guest-timer",
            "guest-shadow",
            "guest-storm",
            "guest-long",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
        }
        let dir = std::env::temp_dir().join(format!("ryokan-guests-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("junk");
        std::fs::write(&path, b"\x7fELF but no Multiboot header").unwrap();
        let e = check(&path, 8192).unwrap_err().to_string();
        assert!(e.contains("no Multiboot header"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
