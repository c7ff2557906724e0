//! System ISOs: the kernel, `mgmt`, the manifest compiled from a system file,
//! its domain images and its guests' kernels.
//!
//! `system.toml` becomes `target/ryokan/system.iso`, `tests/systems/faults.toml`
//! `target/ryokan/faults.iso`; what goes into each is kept in
//! `target/ryokan/systems/<name>/`. Modules, by GRUB command line: `testblob`
//! (the kernel's own check of module reservation), `mgmt`, `manifest`, then one
//! per distinct domain image the manifest names (and `vmm` if it has guests),
//! then one per distinct guest kernel, each called by its image name.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::domains::{self, Bin, UserCrate};
use crate::image::{self, Module};
use crate::ws::Ws;
use crate::{guests, linux};
use sysfile::{self as system, Compiled};

/// The system file booted when none is named.
pub const DEFAULT_SYSTEM: &str = "system.toml";

/// A system file found on disk.
#[derive(Debug, Clone)]
pub struct SystemSource {
    pub path: PathBuf,
    /// How messages name it: as given.
    pub shown: String,
    /// Its file name without `.toml`: the ISO's name.
    pub stem: String,
}

/// Finds a system file: an absolute path, or relative to the current
/// directory, or else to the workspace root.
pub fn locate(ws: &Ws, spec: &str) -> Result<SystemSource> {
    let given = Path::new(spec);
    let path = if given.is_absolute() || given.exists() { given.to_path_buf() } else { ws.root.join(given) };
    if !path.is_file() {
        bail!("system file {spec} not found (looked in the current directory and in {})", ws.root.display());
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ok =
        !stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok || image::BARE_ISOS.contains(&stem.as_str()) {
        bail!("system file {spec}: its name `{stem}` cannot name an ISO; rename the file");
    }
    Ok(SystemSource { path, shown: spec.to_string(), stem })
}

/// Where a system's ISO goes.
pub fn iso_path(ws: &Ws, stem: &str) -> PathBuf {
    ws.out_dir().join(format!("{stem}.iso"))
}

/// Compiles a system file, failing with `FILE:LINE:COL: message` if it is wrong.
pub fn compile(ws: &Ws, spec: &str) -> Result<(SystemSource, Compiled)> {
    let src = locate(ws, spec)?;
    let compiled = system::compile_file(&src.path, &src.shown)?;
    Ok((src, compiled))
}

/// A compiled system with the binary behind each of its modules.
struct Plan {
    src: SystemSource,
    compiled: Compiled,
    /// `(module name, binary)`: `mgmt` first, then each image.
    bins: Vec<(String, Bin)>,
    /// The guest kernels (binaries of `tests/guests`), each its module's name.
    guests: Vec<String>,
    /// The guests' module files: `(module name, path)`.
    modules: Vec<(String, PathBuf)>,
}

fn plan(
    ws: &Ws,
    crates: &[UserCrate],
    kernels: &[String],
    src: SystemSource,
    compiled: Compiled,
) -> Result<Plan, String> {
    let mgmt = domains::find(crates, domains::MGMT).ok_or_else(|| domains::mgmt_missing(ws, crates))?;
    let mut bins = vec![(domains::MGMT.to_string(), mgmt)];
    for use_ in &compiled.images {
        let bin = domains::find(crates, &use_.name).ok_or_else(|| {
            format!(
                "{}: no domain binary named `{}` (a [[bin]] of a workspace crate under domains/); there are: {}",
                use_.at,
                use_.name,
                domains::all_bins(crates)
            )
        })?;
        bins.push((use_.name.clone(), bin));
    }
    let vmm = ipc::guest::VMM_IMAGE;
    if !compiled.manifest.guests.is_empty() && !bins.iter().any(|(n, _)| n == vmm) {
        let bin = domains::find(crates, vmm).ok_or_else(|| {
            format!("{}: the guests need the VMM, a domain binary named `{vmm}` (domains/vmm)", src.shown)
        })?;
        bins.push((vmm.to_string(), bin));
    }
    for use_ in &compiled.guest_images {
        if !kernels.contains(&use_.name) {
            return Err(format!(
                "{}: no guest kernel named `{}` (a binary of tests/guests); there are: {}",
                use_.at,
                use_.name,
                kernels.join(", ")
            ));
        }
    }
    let guests = compiled.guest_images.iter().map(|u| u.name.clone()).collect();
    fetch_payload(ws, &src, &compiled)?;
    let mut modules = module_files(&src, &compiled)?;
    modules.extend(kernel_files(&src, &compiled)?);
    Ok(Plan { src, compiled, bins, guests, modules })
}

/// Makes the Linux test payload (fetched, or found cached; the initramfs
/// made anew from the init script) if a guest's kernel or module file is
/// one of its files ([`linux::is_payload_file`]), so that `cargo xtask test linux_boot` and `cargo xtask run
/// --system systems/linux.toml` work on a fresh checkout; and the kernel
/// files made to fail ([`crate::badkernel`]) that a guest names.
fn fetch_payload(ws: &Ws, src: &SystemSource, compiled: &Compiled) -> Result<(), String> {
    let dir = src.path.parent().unwrap_or(Path::new("."));
    let files =
        compiled.guest_kernels.iter().map(|k| &k.file).chain(compiled.guest_modules.iter().map(|m| &m.file));
    let paths: Vec<PathBuf> = files.map(|f| dir.join(f)).collect();
    if paths.iter().any(|p| linux::is_payload_file(ws, p)) {
        linux::payload(ws).map_err(|e| format!("{}: the Linux payload: {e:#}", src.shown))?;
    }
    crate::badkernel::make_if_named(ws, &paths).map_err(|e| format!("{}: {e:#}", src.shown))
}

/// The guests' module files, found relative to the system file: each must
/// be a non-empty file, and a guest's modules must fit in its RAM above
/// 1 MiB (the VMM checks exactly, with the kernel's place known).
fn module_files(src: &SystemSource, compiled: &Compiled) -> Result<Vec<(String, PathBuf)>, String> {
    let dir = src.path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for m in &compiled.guest_modules {
        let path = dir.join(&m.file);
        let len =
            fs::metadata(&path).ok().filter(|md| md.is_file()).map(|md| md.len()).ok_or_else(|| {
                format!("{}: module file `{}` not found ({})", m.at, m.file, path.display())
            })?;
        if len == 0 {
            return Err(format!("{}: module file `{}` is empty", m.at, m.file));
        }
        out.push((m.name.clone(), path, len));
    }
    for g in &compiled.manifest.guests {
        let pages: u64 = g
            .modules
            .iter()
            .filter_map(|gm| out.iter().find(|(n, _, _)| *n == gm.module.as_str()))
            .map(|(_, _, len)| len.div_ceil(4096))
            .sum();
        let room = (u64::from(g.memory_kib) - 1024) / 4;
        if pages > room {
            return Err(format!(
                "{}: guest `{}`: its modules take {} KiB, more than its {} KiB of RAM above 1 MiB",
                src.shown,
                g.name,
                pages * 4,
                room * 4
            ));
        }
    }
    Ok(out.into_iter().map(|(n, p, _)| (n, p)).collect())
}

/// The guests' kernel files (`kernel = …`), found relative to the system
/// file and judged for each guest that boots one, with its RAM
/// (`vmm::kernel`, as the VMM will judge it): a wrong file is refused
/// here, at its `kernel = …`, with the reason.
fn kernel_files(src: &SystemSource, compiled: &Compiled) -> Result<Vec<(String, PathBuf)>, String> {
    let dir = src.path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for k in &compiled.guest_kernels {
        let path = dir.join(&k.file);
        let bytes = fs::read(&path).map_err(|e| {
            format!("{}: kernel file `{}` cannot be read ({}): {e}", k.at, k.file, path.display())
        })?;
        for g in compiled.manifest.guests.iter().filter(|g| g.image.as_str() == k.name) {
            let ram_end = u64::from(g.memory_kib) * 1024;
            match vmm::kernel::identify(&bytes, ram_end) {
                Ok(_) => {}
                Err(e) => return Err(format!("{}: kernel `{}`: {e}", k.at, k.file)),
            }
        }
        out.push((k.name.clone(), path));
    }
    Ok(out)
}

/// Builds the ISO of each system file (kernel once, domain images in one
/// cargo run); returns each ISO or why it could not be made, in order.
pub fn build_systems(ws: &Ws, specs: &[&str]) -> Vec<Result<PathBuf, String>> {
    if specs.is_empty() {
        return Vec::new();
    }
    let fail_all = |e: String| specs.iter().map(|_| Err(e.clone())).collect();
    let compiled: Vec<Result<(SystemSource, Compiled), String>> =
        specs.iter().map(|s| compile(ws, s).map_err(|e| format!("{e:#}"))).collect();
    if compiled.iter().all(Result::is_err) {
        return compiled.into_iter().map(|r| r.map(|_| PathBuf::new())).collect();
    }
    let crates = match domains::user_crates(ws) {
        Ok(c) => c,
        Err(e) => return fail_all(format!("{e:#}")),
    };
    let kernels = match guests::names(ws) {
        Ok(k) => k,
        Err(e) => return fail_all(format!("{e:#}")),
    };
    let plans: Vec<Result<Plan, String>> =
        compiled.into_iter().map(|r| r.and_then(|(src, c)| plan(ws, &crates, &kernels, src, c))).collect();
    if plans.iter().all(Result::is_err) {
        return plans.into_iter().map(|r| r.map(|_| PathBuf::new())).collect();
    }
    let kernel = match image::build_kernel(ws, false) {
        Ok(k) => k,
        Err(e) => return fail_all(format!("the kernel did not build: {e:#}")),
    };
    let wanted = |plans: &mut dyn Iterator<Item = &Plan>| {
        let mut bins: Vec<Bin> = plans.flat_map(|p| p.bins.iter().map(|(_, b)| b.clone())).collect();
        bins.sort();
        bins.dedup();
        bins
    };
    let all = domains::build(ws, &wanted(&mut plans.iter().flatten()));
    if all.is_err() && plans.iter().flatten().count() > 1 {
        // One broken image should not cost the systems that do not use it.
        eprintln!("the domain images did not all build: building them system by system");
    }
    let mut kernels: Vec<String> = plans.iter().flatten().flat_map(|p| p.guests.iter().cloned()).collect();
    kernels.sort();
    kernels.dedup();
    let guest_kernels = guests::build(ws, &kernels).map_err(|e| format!("{e:#}"));
    plans
        .into_iter()
        .map(|p| {
            let p = p?;
            let built = match &all {
                Ok(b) => b.clone(),
                Err(_) => {
                    domains::build(ws, &wanted(&mut std::iter::once(&p))).map_err(|e| format!("{e:#}"))?
                }
            };
            let no_kernels = BTreeMap::new();
            let kernels = if p.guests.is_empty() { &no_kernels } else { guest_kernels.as_ref()? };
            pack(ws, &kernel, &p, &built, kernels).map_err(|e| format!("{e:#}"))
        })
        .collect()
}

/// Lays out one system's modules and makes its ISO: `built` are the domain
/// images, `kernels` the guest kernels, by binary name.
fn pack(
    ws: &Ws,
    kernel: &Path,
    p: &Plan,
    built: &BTreeMap<String, PathBuf>,
    kernels: &BTreeMap<String, PathBuf>,
) -> Result<PathBuf> {
    let dir = ws.out_dir().join("systems").join(&p.src.stem);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let manifest = dir.join("manifest");
    fs::write(&manifest, &p.compiled.bytes)
        .with_context(|| format!("cannot write {}", manifest.display()))?;
    let mut modules = image::default_modules(ws)?;
    let mut push = |name: &str, path: PathBuf| modules.push(Module { name: name.to_string(), path });
    let (mgmt_name, mgmt) = &p.bins[0];
    push(mgmt_name, bin_path(built, mgmt)?);
    push("manifest", manifest);
    for (name, bin) in &p.bins[1..] {
        push(name, bin_path(built, bin)?);
    }
    for name in &p.guests {
        let path = kernels.get(name).with_context(|| format!("the guest kernel `{name}` was not built"))?;
        for g in p.compiled.manifest.guests.iter().filter(|g| g.image.as_str() == name) {
            guests::check(path, g.memory_kib)
                .with_context(|| format!("guest `{}`: kernel `{name}`", g.name))?;
        }
        push(name, path.clone());
    }
    for (name, path) in &p.modules {
        push(name, path.clone());
    }
    let iso = iso_path(ws, &p.src.stem);
    image::make_iso(kernel, &modules, &dir.join("iso"), &iso, &dir.join("grub-mkrescue.log"))?;
    eprintln!(
        "{}: {} domain(s), {} guest(s), images {}, manifest {} bytes",
        p.src.shown,
        p.compiled.manifest.domains.len(),
        p.compiled.manifest.guests.len(),
        p.bins[1..]
            .iter()
            .map(|(n, _)| n.as_str())
            .chain(p.guests.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(", "),
        p.compiled.bytes.len()
    );
    Ok(iso)
}

fn bin_path(built: &BTreeMap<String, PathBuf>, bin: &Bin) -> Result<PathBuf> {
    built.get(&bin.bin).cloned().with_context(|| format!("the binary `{}` was not built", bin.bin))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A system file in a fresh directory with `files` beside it; what
    /// `module_files` makes of it.
    /// The boot modules of a system's files, or why not.
    type Files = Result<Vec<(String, PathBuf)>, String>;

    /// Runs `judge` (module_files, kernel_files) on the system file `text`
    /// in a fresh directory with `files` (name, bytes) beside it.
    fn judged_in_dir(
        text: &str,
        files: &[(&str, &[u8])],
        judge: fn(&SystemSource, &Compiled) -> Files,
    ) -> Files {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ryokan-sysimage-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            fs::write(dir.join(name), bytes).unwrap();
        }
        let path = dir.join("s.toml");
        fs::write(&path, text).unwrap();
        let src = SystemSource { path, shown: "s.toml".to_string(), stem: "s".to_string() };
        let compiled = system::compile("s.toml", text).unwrap();
        let r = judge(&src, &compiled);
        fs::remove_dir_all(&dir).unwrap();
        r
    }

    /// What `module_files` makes of `text` with files of these sizes beside it.
    fn modules_of(text: &str, files: &[(&str, usize)]) -> Result<Vec<(String, PathBuf)>, String> {
        let bytes: Vec<(&str, Vec<u8>)> = files.iter().map(|&(n, len)| (n, vec![7u8; len])).collect();
        let files: Vec<(&str, &[u8])> = bytes.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        judged_in_dir(text, &files, module_files)
    }

    const GUEST: &str = "[[guest]]\nname = \"g\"\nimage = \"guest-mods\"\nmemory = \"2M\"\n";

    /// What `kernel_files` makes of one guest booting `kernel` with
    /// `memory`, `file` (its name and bytes) beside the system file.
    fn kernels_of(kernel: &str, memory: &str, file: (&str, &[u8])) -> Result<Vec<(String, PathBuf)>, String> {
        let text = format!("[[guest]]\nname = \"g\"\nkernel = \"{kernel}\"\nmemory = \"{memory}\"\n");
        judged_in_dir(&text, &[file], kernel_files)
    }

    #[test]
    fn a_kernel_file_is_judged_at_its_key() {
        let mb = vmm::samples::multiboot(3);
        let got = kernels_of("k.elf", "16M", ("k.elf", &mb)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.as_str(), got[0].1.file_name().unwrap()), ("guest-kernel.0", "k.elf".as_ref()));
        let e = kernels_of("notes.txt", "16M", ("notes.txt", b"not a kernel at all")).unwrap_err();
        assert_eq!(e, "s.toml:3:10: kernel `notes.txt`: not a bzImage or Multiboot kernel");
        let e = kernels_of("gone.elf", "16M", ("k.elf", &mb)).unwrap_err();
        assert!(e.starts_with("s.toml:3:10: kernel file `gone.elf` cannot be read ("), "{e}");
        let mut bad_sum = mb.clone();
        bad_sum[0x1008] ^= 1; // the Multiboot header's checksum
        let e = kernels_of("k.elf", "16M", ("k.elf", &bad_sum)).unwrap_err();
        assert!(e.starts_with("s.toml:3:10: kernel `k.elf`: a Multiboot kernel the VMM refuses: "), "{e}");
        let got = kernels_of("vmlinuz", "64M", ("vmlinuz", &vmm::samples::bzimage())).unwrap();
        assert_eq!(got[0].1.file_name().unwrap(), "vmlinuz", "a bzImage is packed");
        let e = kernels_of("vmlinuz", "8M", ("vmlinuz", &vmm::samples::bzimage())).unwrap_err();
        assert!(e.contains("kernel `vmlinuz`: a bzImage that needs guest RAM up to "), "{e}");
        let mut broken = vmm::samples::bzimage();
        broken[0x206] = 0x0A; // boot protocol 2.10
        let e = kernels_of("vmlinuz", "64M", ("vmlinuz", &broken)).unwrap_err();
        assert!(e.contains("kernel `vmlinuz`: a bzImage the VMM refuses: "), "{e}");
    }

    #[test]
    fn module_files_are_found_beside_the_system_file() {
        let text = format!("{GUEST}modules = [{{ file = \"a.bin\" }}, {{ file = \"b.bin\" }}]\n");
        let got = modules_of(&text, &[("a.bin", 5), ("b.bin", 4096)]).unwrap();
        let names: Vec<_> =
            got.iter().map(|(n, p)| (n.as_str(), p.file_name().unwrap().to_owned())).collect();
        assert_eq!(names, [("guest-module.0", "a.bin".into()), ("guest-module.1", "b.bin".into())]);
    }

    #[test]
    fn missing_empty_or_oversized_module_files_are_refused() {
        let one = |f: &str| format!("{GUEST}modules = [{{ file = \"{f}\" }}]\n");
        let e = modules_of(&one("nope.bin"), &[]).unwrap_err();
        assert!(e.contains("s.toml:5:21: module file `nope.bin` not found"), "{e}");
        let e = modules_of(&one("empty.bin"), &[("empty.bin", 0)]).unwrap_err();
        assert!(e.contains("module file `empty.bin` is empty"), "{e}");
        let e = modules_of(&one("big.bin"), &[("big.bin", (1 << 20) + 1)]).unwrap_err();
        assert!(e.contains("guest `g`: its modules take 1028 KiB, more than its 1024 KiB"), "{e}");
        assert!(modules_of(&one("fits.bin"), &[("fits.bin", 1 << 20)]).is_ok());
    }
}
