//! `cargo xtask sizes`: the kernel's lines of code against its budget (past
//! it the command fails, and so does `cargo xtask lint`), and its binary's size.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::ws::Ws;
use crate::{elf, image, loc};

/// The kernel's size budget in lines of Rust (DESIGN.md: mechanism only).
pub const LINE_BUDGET: usize = 10_000;

/// The kernel's lines: every line of code (non-blank, not only a comment)
/// of every Rust file in the kernel's package directory (`kernel/`),
/// nothing left out. Its host tests and the fake hardware are not there
/// but in `kernel-tests/` (issue #10: fakes and tests do not count); the
/// kernel's files only point at them from `#[cfg(test)]` hooks, which count.
#[derive(Debug, Default)]
pub struct Count {
    /// By top-level module: (files, lines of code).
    pub groups: BTreeMap<String, (usize, usize)>,
    pub total: usize,
    /// Every line, blank and comment lines too.
    pub raw: usize,
    /// Each `#[path]` of a kernel file that does not sit under
    /// `#[cfg(test)]`: code of the kernel's kept outside its directory.
    pub outside: Vec<String>,
}

pub fn count(ws: &Ws) -> Result<Count> {
    let kernel = ws.kernel_dir();
    let mut files = Vec::new();
    rust_files(&kernel, &mut files)?;
    let mut c = Count::default();
    for f in &files {
        let text = fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        let rel = f.strip_prefix(&kernel).unwrap_or(f);
        let n = loc::code_lines(&text);
        c.total += n;
        c.raw += text.lines().count();
        let g = c.groups.entry(group_of(rel)).or_default();
        g.0 += 1;
        g.1 += n;
        let mut test_only = false;
        for (k, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.starts_with("#[path") && !test_only {
                c.outside.push(format!("kernel/{}:{}", rel.display(), k + 1));
            }
            if l.starts_with("#[") {
                test_only |= l == "#[cfg(test)]";
            } else {
                test_only = false;
            }
        }
    }
    Ok(c)
}

/// Whether the kernel is within its budget, saying why not (for `lint`).
pub fn check(ws: &Ws) -> Result<bool> {
    let c = count(ws)?;
    for o in &c.outside {
        println!("sizes: {o}: a #[path] outside #[cfg(test)]: the kernel's code belongs in kernel/");
    }
    if c.total > LINE_BUDGET {
        println!("sizes: the kernel has {} lines of code, over its budget of {LINE_BUDGET}", c.total);
    }
    Ok(c.total <= LINE_BUDGET && c.outside.is_empty())
}

pub fn sizes(ws: &Ws) -> Result<ExitCode> {
    let c = count(ws)?;
    println!("kernel lines of Rust (non-blank, non-comment) of every file in kernel/, by top-level module:");
    for (name, (nfiles, n)) in &c.groups {
        println!("  {name:<28} {n:>6}  ({nfiles} file{})", if *nfiles == 1 { "" } else { "s" });
    }
    let pct = c.total as f64 * 100.0 / LINE_BUDGET as f64;
    let over = c.total > LINE_BUDGET;
    println!(
        "  {:<28} {:>6}  of the budget of {LINE_BUDGET} ({pct:.1}%){}",
        "total",
        c.total,
        if over { "  OVER BUDGET" } else { "" }
    );
    println!(
        "  ({} lines with blank and comment lines; the host tests and fakes are in kernel-tests/)",
        c.raw
    );
    for o in &c.outside {
        println!("  {o}: a #[path] outside #[cfg(test)]: the kernel's code belongs in kernel/");
    }
    println!();

    match image::build_kernel(ws, false) {
        Ok(elf_path) => binary_sizes(&elf_path)?,
        Err(e) => println!("kernel binary: not available, the build failed: {e:#}"),
    }
    Ok(if over || !c.outside.is_empty() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `src/arch/x.rs` → `src/arch/`, `src/main.rs` → `src/main.rs`, `build.rs` → `build.rs`.
fn group_of(rel: &Path) -> String {
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [src, dir, _, ..] if src == "src" => format!("src/{dir}/"),
        [src, file] if src == "src" => format!("src/{file}"),
        [dir, _, ..] => format!("{dir}/"),
        _ => parts.join("/"),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let ty = e.file_type()?;
        if ty.is_dir() && e.file_name() != "target" {
            rust_files(&path, out)?;
        } else if ty.is_file() && path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn binary_sizes(path: &Path) -> Result<()> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let sections = elf::sections(&bytes)?;
    println!("kernel binary {} ({} bytes on disk)", path.display(), bytes.len());
    // Loadable sections, summed by kind: `.text.foo` counts as `.text`.
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    let mut loaded = 0;
    for s in sections.iter().filter(|s| s.alloc) {
        let kind = [".text", ".rodata", ".data", ".bss"]
            .into_iter()
            .find(|k| s.name == *k || s.name.starts_with(&format!("{k}.")))
            .unwrap_or("other");
        *kinds.entry(kind).or_default() += s.size;
        loaded += s.size;
    }
    for k in [".text", ".rodata", ".data", ".bss", "other"] {
        if let Some(n) = kinds.get(k) {
            println!("  {k:<10} {n:>10} bytes");
        }
    }
    println!("  {:<10} {loaded:>10} bytes in memory", "total");
    println!("  loadable sections:");
    for s in sections.iter().filter(|s| s.alloc) {
        let note = if s.nobits { " (zero-filled)" } else { "" };
        println!("    {:<24} {:>10}{note}", s.name, s.size);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::group_of;
    use std::path::Path;

    #[test]
    fn groups_by_top_level_module() {
        assert_eq!(group_of(Path::new("src/arch/x86/gdt.rs")), "src/arch/");
        assert_eq!(group_of(Path::new("src/main.rs")), "src/main.rs");
        assert_eq!(group_of(Path::new("build.rs")), "build.rs");
        assert_eq!(group_of(Path::new("tests/boot.rs")), "tests/");
    }
}
