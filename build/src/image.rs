//! Building the kernel and packing it with its modules into a GRUB Multiboot2 ISO.
//!
//! A kernel-only ISO (`ryokan.iso`, `ryokan-fault.iso`) carries just the test
//! module; a system ISO (`<system>.iso`, see [`sysimage`]) adds `mgmt`, the
//! manifest and the domain images.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use ryokan_systest::{Emulator, Image};

use crate::sysimage;
use crate::ws::{self, Ws, KERNEL_PACKAGE, KERNEL_TARGET};

/// A Multiboot2 module: the file at `path`, loaded as `/boot/<name>` with
/// command line `<name>`.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    pub path: PathBuf,
}

/// File names of a kernel-only image under `target/ryokan/`.
struct Names {
    kernel: &'static str,
    iso_dir: &'static str,
    iso: &'static str,
    log: &'static str,
}

/// The kernel-only ISOs' names: no system file may take them.
pub const BARE_ISOS: [&str; 2] = ["ryokan", "ryokan-fault"];

fn names(fault_test: bool) -> Names {
    if fault_test {
        Names {
            kernel: "kernel-fault.elf",
            iso_dir: "iso-fault",
            iso: "ryokan-fault.iso",
            log: "grub-mkrescue-fault.log",
        }
    } else {
        Names { kernel: "kernel.elf", iso_dir: "iso", iso: "ryokan.iso", log: "grub-mkrescue.log" }
    }
}

/// Builds the release kernel for the target (the fault-test variant if
/// asked) and copies it out of cargo's directory (the feature variants share
/// it); returns the copy.
pub fn build_kernel(ws: &Ws, fault_test: bool) -> Result<PathBuf> {
    let mut cmd = ws.cargo();
    cmd.args(["build", "-p", KERNEL_PACKAGE, "--bin", KERNEL_PACKAGE, "--release"]);
    cmd.args(["--target", KERNEL_TARGET]);
    // Each variant in a target directory of its own: a concurrent build of
    // the other variant can never swap the binary under this one.
    let target_dir = ws.root.join("target").join(if fault_test { "kernel-fault" } else { "kernel" });
    cmd.arg("--target-dir").arg(&target_dir);
    if fault_test {
        cmd.args(["--features", "fault-test"]);
    }
    // The kernel alone is built with whole-program optimisation: its hot
    // paths cross into `ipc` (message and exit encodings), which only LTO
    // inlines. (Not the domains: LTO there conflicts with their small code
    // model against the prebuilt `core`.)
    cmd.env("CARGO_PROFILE_RELEASE_LTO", "fat").env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1");
    ws::run(&mut cmd)?;
    let out = ws.out_dir();
    fs::create_dir_all(&out)?;
    let copy = out.join(names(fault_test).kernel);
    let built = target_dir.join(KERNEL_TARGET).join("release").join(KERNEL_PACKAGE);
    fs::copy(&built, &copy).with_context(|| format!("cannot copy the kernel to {}", copy.display()))?;
    Ok(copy)
}

/// The modules every image carries; writes their files under `target/ryokan/`.
pub fn default_modules(ws: &Ws) -> Result<Vec<Module>> {
    let path = ws.out_dir().join(ryokan_systest::TESTBLOB_NAME);
    fs::create_dir_all(ws.out_dir())?;
    fs::write(&path, ryokan_systest::testblob())?;
    Ok(vec![Module { name: ryokan_systest::TESTBLOB_NAME.to_string(), path }])
}

/// Builds a kernel-only image (no `mgmt`): the kernel checks the machine
/// and powers off. Returns the ISO's path.
pub fn build_bare(ws: &Ws, fault_test: bool) -> Result<PathBuf> {
    let kernel = build_kernel(ws, fault_test)?;
    let modules = default_modules(ws)?;
    let n = names(fault_test);
    let out = ws.out_dir();
    let iso = out.join(n.iso);
    make_iso(&kernel, &modules, &out.join(n.iso_dir), &iso, &out.join(n.log))?;
    Ok(iso)
}

/// Builds one image; returns the ISO's path.
pub fn build_image(ws: &Ws, image: Image) -> Result<PathBuf> {
    let (_, result) = build_images(ws, &[image]).into_iter().next().context("nothing was built")?;
    result.map_err(|e| anyhow!(e))
}

/// Builds every image asked for (each kernel variant once, every domain
/// image in one cargo run); a failure fails only the images it concerns.
pub fn build_images(ws: &Ws, images: &[Image]) -> Vec<(Image, Result<PathBuf, String>)> {
    let systems: Vec<&'static str> =
        images.iter().filter_map(|i| if let Image::System(s) = i { Some(*s) } else { None }).collect();
    let mut built = sysimage::build_systems(ws, &systems).into_iter();
    images
        .iter()
        .map(|&image| {
            let result = match image {
                Image::Normal => build_bare(ws, false).map_err(|e| format!("{e:#}")),
                Image::FaultTest => build_bare(ws, true).map_err(|e| format!("{e:#}")),
                Image::System(_) => built.next().unwrap_or_else(|| Err("not built".to_string())),
            };
            (image, result)
        })
        .collect()
}

/// `emulator` with the PCI devices `image`'s system file names (QEMU
/// only: Bochs has no virtio and the devices' tests do not run there).
pub fn with_devices(ws: &Ws, image: Image, emulator: Emulator) -> Result<Emulator> {
    match (image, emulator) {
        (Image::System(file), Emulator::Qemu(q)) => {
            let (_, compiled) = sysimage::compile(ws, file)?;
            Ok(Emulator::Qemu(q.with_pci(&compiled.manifest.devices).map_err(|e| anyhow!("{file}: {e}"))?))
        }
        (_, emulator) => Ok(emulator),
    }
}

/// What an image is, in words.
pub fn describe(image: Image) -> String {
    match image {
        Image::Normal => "the kernel-only image".to_string(),
        Image::FaultTest => "the fault-test kernel image".to_string(),
        Image::System(file) => format!("the image of {file}"),
    }
}

/// The GRUB configuration that boots `/boot/kernel` with the modules.
pub fn grub_cfg(modules: &[Module]) -> Result<String> {
    let mut cfg =
        String::from("set timeout=0\nset default=0\nmenuentry \"ryokan\" {\n  multiboot2 /boot/kernel\n");
    for m in modules {
        check_module_name(&m.name)?;
        cfg.push_str(&format!("  module2 /boot/{0} {0}\n", m.name));
    }
    cfg.push_str("  boot\n}\n");
    Ok(cfg)
}

fn check_module_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name != "kernel"
        && name != "grub"
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if !ok {
        bail!("bad module name `{name}`: use [A-Za-z0-9._-], not `kernel` or `grub`");
    }
    Ok(())
}

/// Lays out `iso_dir` and runs `grub-mkrescue -o iso iso_dir`, its output to `log`.
pub fn make_iso(kernel: &Path, modules: &[Module], iso_dir: &Path, iso: &Path, log: &Path) -> Result<()> {
    let cfg = grub_cfg(modules)?;
    if iso_dir.exists() {
        fs::remove_dir_all(iso_dir)?;
    }
    let boot = iso_dir.join("boot");
    fs::create_dir_all(boot.join("grub"))?;
    fs::copy(kernel, boot.join("kernel")).with_context(|| format!("cannot copy {}", kernel.display()))?;
    for m in modules {
        fs::copy(&m.path, boot.join(&m.name))
            .with_context(|| format!("cannot copy module {}", m.path.display()))?;
    }
    fs::write(boot.join("grub/grub.cfg"), cfg)?;

    let log_file = File::create(log)?;
    let mut cmd = Command::new("grub-mkrescue");
    cmd.arg("-o").arg(iso).arg(iso_dir);
    cmd.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
    eprintln!("$ {} > {}", ws::show(&cmd), log.display());
    let status = cmd.status().context("cannot run grub-mkrescue")?;
    if !status.success() || !iso.is_file() {
        let text = fs::read_to_string(log).unwrap_or_default();
        bail!("grub-mkrescue failed ({status}); its output:\n{text}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_boots_kernel_with_modules() {
        let modules = vec![
            Module { name: "testblob".into(), path: PathBuf::from("/x") },
            Module { name: "mgmt".into(), path: PathBuf::from("/y") },
        ];
        assert_eq!(
            grub_cfg(&modules).expect("cfg"),
            "set timeout=0\nset default=0\nmenuentry \"ryokan\" {\n  multiboot2 /boot/kernel\n  \
             module2 /boot/testblob testblob\n  module2 /boot/mgmt mgmt\n  boot\n}\n"
        );
    }

    #[test]
    fn bad_module_names_are_refused() {
        for name in ["", "a b", "../x", "kernel", "grub", ".hidden", "x;y"] {
            let m = [Module { name: name.into(), path: PathBuf::new() }];
            assert!(grub_cfg(&m).is_err(), "{name:?}");
        }
    }
}
