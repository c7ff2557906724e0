//! The domain images: the crates that build them, building them for the target, checking them.
//!
//! Every workspace crate under `user/` (the runtime) or `domains/` (the domain
//! binaries) is *user-side*: `no_std` code for `x86_64-unknown-none`, built
//! with its own flags (static, small code model, `user/link.ld`) in its own
//! target directory, `target/user`, so that neither the kernel's target
//! flags (`.cargo/config.toml`) apply to it nor the two builds evict each
//! other. A domain image is a `[[bin]]` of a crate under `domains/`; its name
//! is the image name a system file uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::ws::{self, Ws, KERNEL_TARGET};

/// The root domain's image, in every system ISO.
pub const MGMT: &str = "mgmt";

/// A user-side crate of the workspace.
#[derive(Debug, Clone)]
pub struct UserCrate {
    pub package: String,
    /// Under `domains/` (domain binaries) rather than `user/`.
    pub is_domain: bool,
    pub bins: Vec<String>,
    /// Its library's tests, and its integration tests (`tests/`), run on the
    /// host; `[package.metadata.ryokan] host-tests = false` opts out.
    pub host_tests: bool,
    pub integration_tests: bool,
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// The user-side crates of the workspace (from `cargo metadata`).
pub fn user_crates(ws: &Ws) -> Result<Vec<UserCrate>> {
    let mut cmd = ws.cargo();
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
    let out = cmd.output().context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: Metadata =
        serde_json::from_slice(&out.stdout).context("cannot read cargo metadata's output")?;
    let (user, domains) = (ws.root.join("user"), ws.root.join("domains"));
    let mut crates: Vec<UserCrate> = meta
        .packages
        .into_iter()
        .filter(|p| p.manifest_path.starts_with(&user) || p.manifest_path.starts_with(&domains))
        .map(|p| {
            let has = |k: &str| p.targets.iter().any(|t| t.kind.iter().any(|x| x == k));
            let opted_out = p
                .metadata
                .as_ref()
                .and_then(|m| m.pointer("/ryokan/host-tests"))
                .is_some_and(|v| v == &serde_json::Value::Bool(false));
            UserCrate {
                is_domain: p.manifest_path.starts_with(&domains),
                bins: p
                    .targets
                    .iter()
                    .filter(|t| t.kind.iter().any(|k| k == "bin"))
                    .map(|t| t.name.clone())
                    .collect(),
                host_tests: has("lib") && !opted_out,
                integration_tests: has("test") && !opted_out,
                package: p.name,
            }
        })
        .collect();
    crates.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(crates)
}

/// Where each image comes from: package and binary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bin {
    pub package: String,
    pub bin: String,
}

/// Finds the domain binary for `image`: a `[[bin]]` of that name (`-` and
/// `_` taken as equal) in a crate under `domains/`.
pub fn find(crates: &[UserCrate], image: &str) -> Option<Bin> {
    let norm = |s: &str| s.replace('_', "-");
    let domain_bins =
        || crates.iter().filter(|c| c.is_domain).flat_map(|c| c.bins.iter().map(move |b| (c, b)));
    let hit = domain_bins()
        .find(|(_, b)| *b == image)
        .or_else(|| domain_bins().find(|(_, b)| norm(b) == norm(image)));
    hit.map(|(c, b)| Bin { package: c.package.clone(), bin: b.clone() })
}

/// Every domain binary's name, for messages.
pub fn all_bins(crates: &[UserCrate]) -> String {
    let names: Vec<&str> =
        crates.iter().filter(|c| c.is_domain).flat_map(|c| c.bins.iter().map(String::as_str)).collect();
    if names.is_empty() {
        "none yet".to_string()
    } else {
        names.join(", ")
    }
}

/// Why the root domain cannot be built, in words a newcomer can act on.
pub fn mgmt_missing(ws: &Ws, crates: &[UserCrate]) -> String {
    if !ws.root.join("domains/mgmt").join("Cargo.toml").is_file() {
        return "domains/mgmt does not exist yet: a system image needs the root domain `mgmt`, \
                a [[bin]] named mgmt in a workspace crate under domains/ (the kernel-only image, \
                `cargo xtask build --bare`, does not)"
            .to_string();
    }
    format!(
        "no workspace crate under domains/ has a [[bin]] named `mgmt` (is domains/mgmt a member of the \
         workspace in Cargo.toml?); domain binaries found: {}",
        all_bins(crates)
    )
}

/// The target directory of the user-side build.
pub fn target_dir(ws: &Ws) -> PathBuf {
    ws.target_dir().join("user")
}

/// The flags every user-side crate is built (and linted) with; they replace
/// the kernel's target flags of `.cargo/config.toml`. The code model stays
/// the target's (`kernel`: symbols reached by sign-extended 32-bit
/// addresses), which the prebuilt `core` has too, so that whole-program
/// optimisation can merge them: it serves images linked low
/// (`user/link.ld`: 4 MiB up, far below 2 GiB) as well as the top 2 GiB.
pub fn rustflags(ws: &Ws) -> Result<String> {
    static_flags(ws, &ws.root.join("user/link.ld"), "the domain images")
}

/// RUSTFLAGS for static freestanding binaries laid out by `script` (for
/// `what`): the domains' and the test guests'.
pub fn static_flags(ws: &Ws, script: &Path, what: &str) -> Result<String> {
    if !script.is_file() {
        bail!("{} does not exist: {what} have no linker script", script.display());
    }
    let shown = script.display().to_string();
    if shown.chars().any(char::is_whitespace) {
        bail!("the workspace path {} contains whitespace, which RUSTFLAGS cannot carry", ws.root.display());
    }
    Ok(format!("-C relocation-model=static -C link-arg=-T{shown} -C link-arg=-zmax-page-size=4096"))
}

/// `cargo <sub> --target x86_64-unknown-none --target-dir target/user` with the user-side flags.
pub fn cargo(ws: &Ws, sub: &str) -> Result<Command> {
    let mut cmd = ws.cargo();
    cmd.env("RUSTFLAGS", rustflags(ws)?).env_remove("CARGO_ENCODED_RUSTFLAGS");
    cmd.arg(sub).args(["--target", KERNEL_TARGET, "--target-dir"]).arg(target_dir(ws));
    Ok(cmd)
}

/// Builds the binaries (release, one cargo run) and checks each as the loader
/// will; returns the path of each binary, by binary name.
pub fn build(ws: &Ws, bins: &[Bin]) -> Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    if bins.is_empty() {
        return Ok(out);
    }
    let mut cmd = cargo(ws, "build")?;
    cmd.arg("--release");
    // Whole-program optimisation, as for the kernel: a VMM's exit loop
    // crosses into `ipc` and `user` on every exit.
    cmd.env("CARGO_PROFILE_RELEASE_LTO", "fat").env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    let mut packages: Vec<&str> = bins.iter().map(|b| b.package.as_str()).collect();
    packages.sort_unstable();
    packages.dedup();
    for p in packages {
        cmd.args(["-p", p]);
    }
    for b in bins {
        cmd.args(["--bin", &b.bin]);
    }
    ws::run(&mut cmd).context("the domain images did not build")?;
    let dir = target_dir(ws).join(KERNEL_TARGET).join("release");
    for b in bins {
        let path = dir.join(&b.bin);
        check(&path).with_context(|| format!("domain image `{}`", b.bin))?;
        out.insert(b.bin.clone(), path);
    }
    Ok(out)
}

/// Applies the loader's checks (`ipc::elf::parse`) to an image.
pub fn check(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let range = ipc::syscall::USER_MIN..ipc::boot::IMAGE_END;
    if let Err(e) = ipc::elf::parse(&bytes, range.clone()) {
        bail!(
            "{} is refused by the loader's checks (ipc::elf::parse, addresses {:#x}..{:#x}): {e:?}",
            path.display(),
            range.start,
            range.end
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(package: &str, is_domain: bool, bins: &[&str]) -> UserCrate {
        UserCrate {
            package: package.into(),
            is_domain,
            bins: bins.iter().map(|b| b.to_string()).collect(),
            host_tests: false,
            integration_tests: false,
        }
    }

    #[test]
    fn images_are_found_by_binary_name() {
        let crates =
            [krate("ryokan-user", false, &["hello"]), krate("samples", true, &["shm_a", "hello", "shm-b"])];
        let bin = |p: &str, b: &str| Some(Bin { package: p.into(), bin: b.into() });
        assert_eq!(find(&crates, "hello"), bin("samples", "hello"));
        assert_eq!(find(&crates, "shm-a"), bin("samples", "shm_a"));
        assert_eq!(find(&crates, "shm-b"), bin("samples", "shm-b"));
        assert_eq!(find(&crates, "mgmt"), None);
        assert_eq!(all_bins(&crates), "shm_a, hello, shm-b");
        assert_eq!(all_bins(&crates[..1]), "none yet");
    }

    #[test]
    fn garbage_is_not_an_image() {
        let dir = std::env::temp_dir().join(format!("ryokan-build-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("junk");
        std::fs::write(&path, b"\x7fELF but not really").unwrap();
        let e = check(&path).unwrap_err().to_string();
        assert!(e.contains("refused by the loader's checks"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
