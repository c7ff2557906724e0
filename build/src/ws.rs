//! The workspace on disk: where things are, and running commands in it.

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The bare-metal target the kernel binary is built for.
pub const KERNEL_TARGET: &str = "x86_64-unknown-none";
/// The kernel's package and binary name.
pub const KERNEL_PACKAGE: &str = "ryokan-kernel";

/// Paths of the workspace this tool was built from.
#[derive(Debug, Clone)]
pub struct Ws {
    pub root: PathBuf,
}

impl Ws {
    pub fn locate() -> Result<Ws> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("build/ has no parent directory")?
            .to_path_buf();
        Ok(Ws { root })
    }

    /// Cargo's target directory (honours `CARGO_TARGET_DIR`).
    pub fn target_dir(&self) -> PathBuf {
        match env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => self.root.join(dir),
            None => self.root.join("target"),
        }
    }

    /// Where this tool puts its outputs: kernels, ISOs, test runs.
    pub fn out_dir(&self) -> PathBuf {
        self.target_dir().join("ryokan")
    }

    pub fn kernel_dir(&self) -> PathBuf {
        self.root.join("kernel")
    }

    /// A `cargo` command run at the workspace root.
    pub fn cargo(&self) -> Command {
        let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let mut cmd = Command::new(cargo);
        cmd.current_dir(&self.root);
        cmd
    }
}

/// A command as one would type it, with the environment variables it sets.
pub fn show(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!("{}=\"{}\" ", k.to_string_lossy(), v.to_string_lossy()));
        }
    }
    let program = cmd.get_program().to_string_lossy();
    s.push_str(if program.ends_with("/cargo") { "cargo" } else { &program });
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command with inherited stdio, echoing it first; fails on a non-zero status.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = show(cmd);
    eprintln!("$ {shown}");
    let status = cmd.status().with_context(|| format!("cannot run `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Whether `name` is an executable on `PATH`.
pub fn on_path(name: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = env::var_os("PATH") else {
        return false;
    };
    env::split_paths(&path).any(|dir| {
        std::fs::metadata(dir.join(name))
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}
