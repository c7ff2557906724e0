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
use crate::guests;
use crate::image::{self, Module};
use crate::system::{self, Compiled};
use crate::ws::Ws;

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
    Ok(Plan { src, compiled, bins, guests })
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
