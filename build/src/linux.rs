//! `cargo xtask linux-payload`: the Linux test payload, real and
//! unmodified. Debian bookworm's cloud kernel (the package
//! `linux-image-cloud-amd64` depends on, resolved with `apt-cache depends`
//! as Debian's security updates move it) and `busybox-static`, fetched
//! with `apt-get download` and unpacked with `dpkg -x` into a cache under
//! `target/ryokan/linux/` (never committed); and an initramfs built here
//! (cpio newc, gzip) from busybox, [`INIT`] and the kernel's own virtio
//! modules ([`MODULES`], for the virtio devices to come).
//!
//! A download or unpacking happens only when its result is missing; each
//! is made in a temporary place and renamed, so a run that is cut short
//! leaves nothing half-made behind. The initramfs is rebuilt every time
//! (it takes a moment, and so follows the init script).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::cpio::Cpio;
use crate::ws::{self, Ws};

/// The metapackage whose dependency names the current cloud kernel.
pub const KERNEL_METAPACKAGE: &str = "linux-image-cloud-amd64";
pub const BUSYBOX_PACKAGE: &str = "busybox-static";
/// Bookworm's kernels: `linux-image-6.1.0-<abi>-cloud-amd64`.
const KERNEL_PREFIX: &str = "linux-image-6.1.0-";
const KERNEL_SUFFIX: &str = "-cloud-amd64";
/// The initramfs's /init.
pub const INIT: &str = include_str!("linux/init.sh");
/// The kernel's modules packed into the initramfs (under
/// `lib/modules/<release>/kernel/`), in an order in which each one's
/// dependencies come before it.
pub const MODULES: &[&str] = &[
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "drivers/virtio/virtio_mmio.ko",
    "drivers/block/virtio_blk.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
    "drivers/char/virtio_console.ko",
];
/// How the xtask tells the vmm crate's test of the real kernel
/// (`domains/vmm/tests/debian_kernel.rs`) where the payload is.
pub const KERNEL_ENV: &str = "RYOKAN_LINUX_KERNEL";
pub const INITRD_ENV: &str = "RYOKAN_LINUX_INITRD";

/// The payload's kernel and initramfs under stable names in
/// `target/ryokan/linux/`, for system files to name; a build that needs
/// one of them ([`is_payload_file`]) fetches the payload first.
pub const STABLE_KERNEL: &str = "vmlinuz";
pub const STABLE_INITRD: &str = "initrd.gz";

/// Whether `path` (absolute or relative to the current directory) names
/// one of the payload's stable files in `ws`.
pub fn is_payload_file(ws: &Ws, path: &Path) -> bool {
    let root = ws.out_dir().join("linux");
    normalised(path).is_some_and(|clean| [STABLE_KERNEL, STABLE_INITRD].iter().any(|n| clean == root.join(n)))
}

/// `path` made absolute, its `.` and `..` taken out (None if it cannot be).
pub fn normalised(path: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(path).ok()?;
    let mut clean = PathBuf::new();
    for c in abs.components() {
        match c {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    Some(clean)
}

/// The payload's files.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The kernel's release, e.g. `6.1.0-57-cloud-amd64`.
    pub release: String,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The kernel's modules: `lib/modules/<release>` of its package.
    pub modules: PathBuf,
}

/// The kernel package `apt-cache depends linux-image-cloud-amd64` prints.
pub fn kernel_package(depends: &str) -> Option<&str> {
    depends
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p.ends_with(KERNEL_SUFFIX))
}

/// A bookworm cloud kernel's package name, as safe to use as a path part.
fn check_package(p: &str) -> Result<&str> {
    let abi = p.strip_prefix(KERNEL_PREFIX).and_then(|r| r.strip_suffix(KERNEL_SUFFIX));
    match abi {
        Some(abi) if !abi.is_empty() && abi.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => bail!(
            "apt resolves {KERNEL_METAPACKAGE} to `{p}`, not bookworm's {KERNEL_PREFIX}N{KERNEL_SUFFIX}: the \
             test payload is Debian 12's 6.1 kernel (DESIGN.md §5); use a bookworm host or its apt sources"
        ),
    }
}

fn apt_cache_depends() -> Result<String> {
    let out = Command::new("apt-cache").args(["depends", KERNEL_METAPACKAGE]).output().context(
        "cannot run apt-cache: the Linux payload comes from Debian's archive (apt-get, apt-cache, dpkg)",
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The current cloud kernel's package; as root, `apt-get update` first if
/// apt's lists do not know the metapackage yet.
fn resolve() -> Result<String> {
    let mut text = apt_cache_depends()?;
    if kernel_package(&text).is_none() && is_root() {
        eprintln!("apt does not know {KERNEL_METAPACKAGE} yet: updating its lists");
        ws::run(Command::new("apt-get").arg("update"))?;
        text = apt_cache_depends()?;
    }
    let Some(p) = kernel_package(&text) else {
        bail!(
            "`apt-cache depends {KERNEL_METAPACKAGE}` names no kernel; run `sudo apt-get update` (got: {:?})",
            text.trim()
        );
    };
    Ok(check_package(p)?.to_string())
}

/// The `.deb` of `package` in `debs`, downloading it if it is not there.
fn deb(debs: &Path, package: &str) -> Result<PathBuf> {
    let find = || -> Result<Option<PathBuf>> {
        for e in fs::read_dir(debs).with_context(|| format!("cannot read {}", debs.display()))? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{package}_")) && name.ends_with("_amd64.deb") {
                return Ok(Some(debs.join(name)));
            }
        }
        Ok(None)
    };
    if let Some(found) = find()? {
        return Ok(found);
    }
    let tmp = debs.join(format!("download-{}", std::process::id()));
    fs::create_dir_all(&tmp)?;
    ws::run(Command::new("apt-get").args(["download", package]).current_dir(&tmp))?;
    for e in fs::read_dir(&tmp)? {
        let e = e?;
        fs::rename(e.path(), debs.join(e.file_name()))?;
    }
    fs::remove_dir(&tmp)?;
    find()?.with_context(|| format!("apt-get download {package} left no {package}_*_amd64.deb"))
}

/// `deb` unpacked at `dest`, unless it already is.
fn unpack(deb: &Path, dest: &Path) -> Result<()> {
    if dest.is_dir() {
        return Ok(());
    }
    let tmp = dest.with_extension("tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    ws::run(Command::new("dpkg").arg("-x").arg(deb).arg(&tmp))?;
    fs::rename(&tmp, dest)?;
    Ok(())
}

/// The initramfs's cpio archive: busybox as /bin/busybox (and /bin/sh),
/// /init, the directories init mounts on, /dev/console, and [`MODULES`]
/// (their order in `lib/modules/order`, for init's `insmod`).
pub fn initramfs(busybox: &[u8], modules: &Path, release: &str) -> Result<Vec<u8>> {
    let mut c = Cpio::new();
    for d in ["bin", "dev", "proc", "sys", "tmp", "lib", "lib/modules"] {
        c.dir(d)?;
    }
    c.file("bin/busybox", 0o755, busybox)?;
    c.symlink("bin/sh", "busybox")?;
    c.file("init", 0o755, INIT.as_bytes())?;
    // The kernel opens it as init's stdin, stdout and stderr before
    // devtmpfs is mounted (Documentation/admin-guide/devices.txt: 5, 1).
    c.char_dev("dev/console", 0o600, 5, 1)?;
    let base = format!("lib/modules/{release}/kernel");
    // Every directory above a module, parents first (a prefix sorts first).
    let mut dirs = BTreeSet::new();
    for m in MODULES {
        let full = format!("{base}/{m}");
        let mut up = Path::new(&full).parent();
        while let Some(d) = up.filter(|d| d.as_os_str().len() > "lib/modules".len()) {
            dirs.insert(d.to_string_lossy().into_owned());
            up = d.parent();
        }
    }
    for d in &dirs {
        c.dir(d)?;
    }
    // The order init loads them in (`insmod`, each after its dependencies).
    let order: String = MODULES.iter().map(|m| format!("{m}\n")).collect();
    c.file("lib/modules/order", 0o644, order.as_bytes())?;
    for m in MODULES {
        let path = modules.join("kernel").join(m);
        let bytes = fs::read(&path)
            .with_context(|| format!("the kernel package has no module {}", path.display()))?;
        c.file(&format!("{base}/{m}"), 0o644, &bytes)?;
    }
    Ok(c.finish())
}

/// `data` gzip-compressed by `gzip -9n` (no name or time: same input,
/// same bytes).
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run gzip")?;
    let mut stdin = child.stdin.take().context("gzip's stdin")?;
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer.join().map_err(|_| anyhow::anyhow!("writing to gzip panicked"))??;
    if !out.status.success() {
        bail!("gzip failed ({})", out.status);
    }
    Ok(out.stdout)
}

/// Makes sure the payload is in the cache, and says where it is.
pub fn payload(ws: &Ws) -> Result<Payload> {
    let root = ws.out_dir().join("linux");
    let debs = root.join("debs");
    fs::create_dir_all(&debs).with_context(|| format!("cannot create {}", debs.display()))?;
    let package = resolve()?;
    let release = package.trim_start_matches("linux-image-").to_string();
    let dir = root.join(&release);
    fs::create_dir_all(&dir)?;
    unpack(&deb(&debs, &package)?, &dir.join("kernel"))?;
    unpack(&deb(&debs, BUSYBOX_PACKAGE)?, &dir.join("busybox"))?;
    let kernel = dir.join("kernel/boot").join(format!("vmlinuz-{release}"));
    if !kernel.is_file() {
        bail!("{package} holds no {}", kernel.display());
    }
    let modules = dir.join("kernel/lib/modules").join(&release);
    let busybox_path = dir.join("busybox/bin/busybox");
    let busybox =
        fs::read(&busybox_path).with_context(|| format!("cannot read {}", busybox_path.display()))?;
    let archive = gzip(&initramfs(&busybox, &modules, &release)?)?;
    let initrd = dir.join("initrd.gz");
    let tmp = dir.join("initrd.gz.tmp");
    fs::write(&tmp, archive)?;
    fs::rename(&tmp, &initrd)?;
    // The names system files use (tests/systems/linux.toml,
    // systems/linux.toml), whatever the release.
    for (from, name) in [(&kernel, STABLE_KERNEL), (&initrd, STABLE_INITRD)] {
        let tmp = root.join(format!("{name}.tmp"));
        fs::copy(from, &tmp).with_context(|| format!("cannot copy {}", from.display()))?;
        fs::rename(&tmp, root.join(name))?;
    }
    Ok(Payload { release, kernel, initrd, modules })
}

#[cfg(test)]
mod tests;
