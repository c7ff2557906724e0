//! `cargo xtask layers`: the kernel's top-level modules and which use which,
//! and every cycle among them (issue #10: layers point one way, entry stubs
//! → core → interfaces; nothing below calls up).
//!
//! A module `a` uses `b` when a file of `a` names `crate::b` outside a
//! comment and outside its `#[cfg(test)]` modules: in a path
//! (`crate::b::f()`), in a `use crate::b…`, or in a `use crate::{…, b…}`
//! group; `super::` paths are resolved from the file's place (they are
//! edges only where they leave a module, e.g. out of `arch::entry`). The
//! crate roots (`lib.rs`, `main.rs`) are above everything and not counted.
//!
//! The modules are the top-level ones, except [`OWN_LAYER`]: `arch::entry`
//! is a layer of its own. It holds the machine's entry points (the boot
//! of every CPU, the interrupt and exception stubs, the syscall entry),
//! which are `asm!` and so in `arch/` (the charter), but which are the top
//! of the kernel: they call the core, which calls the hardware interface
//! (`hw`), which the rest of `arch` (and `virt`) implements. A use of
//! `arch::entry` from the rest of `arch` is an edge like any other.
//! The cycles are the strongly connected components of more than one
//! module (Tarjan's algorithm), each shown with one place per edge.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::loc;
use crate::ws::Ws;

/// One use of module `to` by a file of module `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// Where (file relative to `kernel/src`, line), the first such place.
    pub at: (String, usize),
}

/// Submodules that are a layer (a node of the graph) of their own.
pub const OWN_LAYER: [(&str, &str); 1] = [("arch", "entry")];

/// The kernel's modules and the edges between them.
fn graph(ws: &Ws) -> Result<(BTreeSet<String>, Vec<Edge>)> {
    let src = ws.kernel_dir().join("src");
    let mut files = Vec::new();
    collect(&src, &src, &mut files)?;
    let mut edges: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
    for (rel, text) in &files {
        let Some(from) = module_of(rel) else { continue };
        for (to, line) in uses(rel, &loc::without_tests(text)) {
            if to != from && files_have_module(&files, &to) {
                edges.entry((from.clone(), to)).or_insert((rel.clone(), line));
            }
        }
    }
    let edges: Vec<Edge> = edges.into_iter().map(|((from, to), at)| Edge { from, to, at }).collect();
    let mut modules: BTreeSet<String> = files.iter().filter_map(|(rel, _)| module_of(rel)).collect();
    modules.extend(edges.iter().flat_map(|e| [e.from.clone(), e.to.clone()]));
    Ok((modules, edges))
}

/// Prints every cycle with one place per edge; true if there is none.
fn report_cycles(modules: &BTreeSet<String>, edges: &[Edge]) -> bool {
    let cycles = cycles(modules, edges);
    for c in &cycles {
        println!("CYCLE among {}:", c.join(", "));
        for e in edges.iter().filter(|e| c.contains(&e.from) && c.contains(&e.to)) {
            println!("  {} -> {}  (src/{}:{})", e.from, e.to, e.at.0, e.at.1);
        }
    }
    cycles.is_empty()
}

/// Whether the kernel's modules are layered (for `lint`), naming any cycle.
pub fn check(ws: &Ws) -> Result<bool> {
    let (modules, edges) = graph(ws)?;
    Ok(report_cycles(&modules, &edges))
}

pub fn layers(ws: &Ws) -> Result<ExitCode> {
    let (modules, edges) = graph(ws)?;
    println!("kernel modules and what each uses:");
    for m in &modules {
        let to: Vec<&str> = edges.iter().filter(|e| &e.from == m).map(|e| e.to.as_str()).collect();
        println!("  {m:<11} -> {}", if to.is_empty() { "(nothing)".to_string() } else { to.join(", ") });
    }
    if report_cycles(&modules, &edges) {
        println!("no cycles: the modules are layered");
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::FAILURE)
    }
}

/// Every `.rs` file under `dir`, as (path relative to `root`, text).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        if e.file_type()?.is_dir() {
            collect(root, &path, out)?;
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text =
                fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().replace('\\', "/");
            out.push((rel, text));
        }
    }
    Ok(())
}

/// The module path of a file: `arch/entry/mod.rs` → `arch::entry`,
/// `sched.rs` → `sched`.
fn path_of(rel: &str) -> Vec<String> {
    let mut p: Vec<String> = rel.trim_end_matches(".rs").split('/').map(String::from).collect();
    if p.len() > 1 && p.last().is_some_and(|l| l == "mod") {
        p.pop();
    }
    p
}

/// The node of the graph a module path belongs to: its top-level module, or
/// one of [`OWN_LAYER`].
fn node(path: &[String]) -> Option<String> {
    let first = path.first()?;
    match path.get(1) {
        Some(second) if OWN_LAYER.contains(&(first.as_str(), second.as_str())) => {
            Some(format!("{first}::{second}"))
        }
        _ => Some(first.clone()),
    }
}

/// The module a file belongs to (`sched.rs` → `sched`, `virt/vmx/run.rs`
/// → `virt`, `arch/entry/idt.rs` → `arch::entry`); None for the crate roots.
pub fn module_of(rel: &str) -> Option<String> {
    let p = path_of(rel);
    if p == ["lib"] || p == ["main"] {
        return None;
    }
    node(&p)
}

fn files_have_module(files: &[(String, String)], m: &str) -> bool {
    files.iter().any(|(rel, _)| module_of(rel).as_deref() == Some(m))
}

/// The modules file `rel` names through `crate::` or `super::` paths, with
/// the line of each mention (comments skipped; groups `crate::{a, b::c}`
/// opened).
pub fn uses(rel: &str, text: &str) -> Vec<(String, usize)> {
    let code = strip_comments(text);
    let own = path_of(rel);
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let start = i;
        let prefix = if rest.starts_with("crate::") {
            i += "crate::".len();
            Some(Vec::new())
        } else if rest.starts_with("super::") {
            let mut n = 0;
            while code[i..].starts_with("super::") {
                i += "super::".len();
                n += 1;
            }
            own.len().checked_sub(n).map(|k| own[..k].to_vec())
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let before_ok = start == 0 || !is_ident(bytes[start - 1]) && bytes[start - 1] != b':';
        let Some(prefix) = prefix.filter(|_| before_ok) else { continue };
        let line = code[..start].matches('\n').count() + 1;
        let mut paths = Vec::new();
        expand(&code[i..], prefix, &mut paths);
        out.extend(paths.iter().filter_map(|p| node(p)).map(|n| (n, line)));
    }
    out
}

/// The paths (their first two segments) that `s`, the rest of a path after
/// `prefix::`, names: one, or one per item of a `{…}` group.
fn expand(s: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let s = s.trim_start();
    if s.starts_with('{') {
        let end = matching_brace(s, 0).unwrap_or(s.len());
        for item in split_top(&s[1..end]) {
            expand(item, prefix.clone(), out);
        }
        return;
    }
    let name: String = s.chars().take_while(|&c| c.is_alphanumeric() || c == '_').collect();
    if name.is_empty() || name == "self" {
        if !prefix.is_empty() {
            out.push(prefix);
        }
        return;
    }
    let mut path = prefix;
    path.push(name.clone());
    match s[name.len()..].strip_prefix("::") {
        Some(more) if path.len() < 2 => expand(more, path, out),
        _ => out.push(path),
    }
}

/// The items of a group's inside, split at its top-level commas.
fn split_top(group: &str) -> Vec<&str> {
    let (mut items, mut depth, mut from) = (Vec::new(), 0usize, 0);
    for (k, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&group[from..k]);
                from = k + 1;
            }
            _ => {}
        }
    }
    items.push(&group[from..]);
    items.into_iter().filter(|x| !x.trim().is_empty()).collect()
}

fn matching_brace(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, c) in s[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + k);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `text` with `//` line comments (docs too) blanked, newlines kept; block
/// comments are not used in the kernel's code paths that matter here.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match find_comment(l) {
            Some(k) => &l[..k],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a `//` comment starts in a line, outside a string literal.
fn find_comment(line: &str) -> Option<usize> {
    let b = line.as_bytes();
    let mut in_str = false;
    let mut k = 0;
    while k < b.len() {
        match b[k] {
            b'\\' if in_str => k += 1,
            b'"' => in_str = !in_str,
            b'/' if !in_str && b.get(k + 1) == Some(&b'/') => return Some(k),
            _ => {}
        }
        k += 1;
    }
    None
}

/// The strongly connected components of more than one module, each sorted.
pub fn cycles(modules: &BTreeSet<String>, edges: &[Edge]) -> Vec<Vec<String>> {
    let names: Vec<&String> = modules.iter().collect();
    let index = |m: &str| names.iter().position(|n| n.as_str() == m);
    let n = names.len();
    let mut adj = vec![Vec::new(); n];
    for e in edges {
        if let (Some(a), Some(b)) = (index(&e.from), index(&e.to)) {
            adj[a].push(b);
        }
    }
    let mut t = Tarjan {
        adj,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    let mut out: Vec<Vec<String>> = t
        .out
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut c: Vec<String> = c.into_iter().map(|v| names[v].clone()).collect();
            c.sort();
            c
        })
        .collect();
    out.sort();
    out
}

struct Tarjan {
    adj: Vec<Vec<usize>>,
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    out: Vec<Vec<usize>>,
}

impl Tarjan {
    fn visit(&mut self, v: usize) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on[v] = true;
        for k in 0..self.adj[v].len() {
            let w = self.adj[v][k];
            match self.index[w] {
                None => {
                    self.visit(w);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut c = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on[w] = false;
                c.push(w);
                if w == v {
                    break;
                }
            }
            self.out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(a: &str, b: &str) -> Edge {
        Edge { from: a.into(), to: b.into(), at: (String::new(), 0) }
    }

    #[test]
    fn uses_are_found_in_paths_uses_and_groups_but_not_comments() {
        let text = "use crate::sched::{self, Kernel};\n\
                    use crate::{obj::{Ref, Pool}, state, hw::guest as g};\n\
                    // crate::vm in a comment\n\
                    /// [`crate::boot`] in a doc\n\
                    fn f() { crate::klog::say(\"crate::fake in a string // not a comment\"); x::crate::no(); }\n";
        let mut got: Vec<String> = uses("vm.rs", text).into_iter().map(|(m, _)| m).collect();
        got.sort();
        got.dedup();
        assert_eq!(got, ["fake", "hw", "klog", "obj", "sched", "state"]);
        assert_eq!(uses("vm.rs", "\n\nlet k = crate::cap::get();")[0], ("cap".to_string(), 3));
    }

    #[test]
    fn super_paths_and_own_layers_are_resolved() {
        let names = |rel: &str, text: &str| -> Vec<String> {
            let mut v: Vec<String> = uses(rel, text).into_iter().map(|(m, _)| m).collect();
            v.sort();
            v.dedup();
            v
        };
        // Inside a module: no edge to another module.
        assert_eq!(names("arch/cpu.rs", "use super::apic;"), ["arch"]);
        // Into and out of `arch::entry`.
        assert_eq!(names("arch/cpu.rs", "use super::entry::run_cpu;"), ["arch::entry"]);
        assert_eq!(names("arch/entry/mod.rs", "use super::{cpu, gdt};"), ["arch"]);
        assert_eq!(names("arch/entry/idt.rs", "use super::trap::dispatch;"), ["arch::entry"]);
        assert_eq!(names("arch/entry/trap.rs", "use super::super::apic;"), ["arch"]);
        assert_eq!(
            names("sched.rs", "use crate::arch::{cpu, entry::idt}; use crate::{arch::entry, hw};"),
            ["arch", "arch::entry", "hw"]
        );
    }

    #[test]
    fn modules_are_the_first_path_component() {
        assert_eq!(module_of("sched.rs").as_deref(), Some("sched"));
        assert_eq!(module_of("virt/vmx/run.rs").as_deref(), Some("virt"));
        assert_eq!(module_of("lib.rs"), None);
        assert_eq!(module_of("main.rs"), None);
        assert_eq!(module_of("arch/entry/idt.rs").as_deref(), Some("arch::entry"));
        assert_eq!(module_of("arch/entry/mod.rs").as_deref(), Some("arch::entry"));
        assert_eq!(module_of("arch/mod.rs").as_deref(), Some("arch"));
    }

    #[test]
    fn cycles_are_the_strong_components() {
        let m: BTreeSet<String> = ["a", "b", "c", "d", "e"].iter().map(|s| s.to_string()).collect();
        let layered = [edge("a", "b"), edge("b", "c"), edge("a", "c"), edge("d", "e")];
        assert!(cycles(&m, &layered).is_empty());
        let looped =
            [edge("a", "b"), edge("b", "c"), edge("c", "a"), edge("d", "e"), edge("e", "d"), edge("c", "d")];
        assert_eq!(cycles(&m, &looped), vec![vec!["a", "b", "c"], vec!["d", "e"]]);
    }
}
