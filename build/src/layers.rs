//! `cargo xtask layers`: the kernel's top-level modules and which use which,
//! and every cycle among them (issue #10: layers point one way, entry stubs
//! → core → interfaces; nothing below calls up).
//!
//! A module `a` uses `b` when a file of `a` names `crate::b` outside a
//! comment and outside its `#[cfg(test)]` modules: in a path
//! (`crate::b::f()`), in a `use crate::b…`, or in a `use crate::{…, b…}`
//! group. `super::` paths stay inside a module and are not edges; the
//! crate roots (`lib.rs`, `main.rs`) are above everything and not counted.
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

pub fn layers(ws: &Ws) -> Result<ExitCode> {
    let src = ws.kernel_dir().join("src");
    let mut files = Vec::new();
    collect(&src, &src, &mut files)?;
    let mut edges: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
    for (rel, text) in &files {
        let Some(from) = module_of(rel) else { continue };
        for (to, line) in uses(&loc::without_tests(text)) {
            if to != from && files_have_module(&files, &to) {
                edges.entry((from.clone(), to)).or_insert((rel.clone(), line));
            }
        }
    }
    let edges: Vec<Edge> = edges.into_iter().map(|((from, to), at)| Edge { from, to, at }).collect();
    let mut modules: BTreeSet<String> = files.iter().filter_map(|(rel, _)| module_of(rel)).collect();
    modules.extend(edges.iter().flat_map(|e| [e.from.clone(), e.to.clone()]));
    println!("kernel modules and what each uses:");
    for m in &modules {
        let to: Vec<&str> = edges.iter().filter(|e| &e.from == m).map(|e| e.to.as_str()).collect();
        println!("  {m:<10} -> {}", if to.is_empty() { "(nothing)".to_string() } else { to.join(", ") });
    }
    let cycles = cycles(&modules, &edges);
    if cycles.is_empty() {
        println!("no cycles: the modules are layered");
        return Ok(ExitCode::SUCCESS);
    }
    for c in &cycles {
        println!("CYCLE among {}:", c.join(", "));
        for e in edges.iter().filter(|e| c.contains(&e.from) && c.contains(&e.to)) {
            println!("  {} -> {}  (src/{}:{})", e.from, e.to, e.at.0, e.at.1);
        }
    }
    Ok(ExitCode::FAILURE)
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

/// The top-level module a file belongs to (`sched.rs` → `sched`,
/// `virt/vmx/run.rs` → `virt`); None for the crate roots.
pub fn module_of(rel: &str) -> Option<String> {
    let first = rel.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

fn files_have_module(files: &[(String, String)], m: &str) -> bool {
    files.iter().any(|(rel, _)| module_of(rel).as_deref() == Some(m))
}

/// The top-level modules `text` names through `crate::`, with the line of
/// each mention (comments skipped; groups `crate::{a, b::c}` opened).
pub fn uses(text: &str) -> Vec<(String, usize)> {
    let code = strip_comments(text);
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while let Some(k) = code[i..].find("crate::") {
        let at = i + k;
        let before_ok = at == 0 || !is_ident(bytes[at - 1]) && bytes[at - 1] != b':';
        i = at + "crate::".len();
        if !before_ok {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        if bytes.get(i) == Some(&b'{') {
            let end = matching_brace(&code, i).unwrap_or(code.len());
            for name in group_heads(&code[i + 1..end]) {
                out.push((name, line));
            }
            i = end;
        } else {
            let name: String = code[i..].chars().take_while(|&c| c.is_alphanumeric() || c == '_').collect();
            if !name.is_empty() {
                out.push((name, line));
            }
        }
    }
    out
}

/// The first path segment of each item of a top-level `{…}` group.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let (mut depth, mut start) = (0usize, true);
    let mut name = String::new();
    for c in group.chars() {
        match c {
            '{' => {
                depth += 1;
                start = false;
            }
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                if !name.is_empty() {
                    heads.push(std::mem::take(&mut name));
                }
                start = true;
            }
            c if depth == 0 && start && (c.is_alphanumeric() || c == '_') => name.push(c),
            c if depth == 0 && start && !c.is_whitespace() => {
                if !name.is_empty() {
                    heads.push(std::mem::take(&mut name));
                }
                start = false;
            }
            _ => {}
        }
    }
    if !name.is_empty() {
        heads.push(name);
    }
    heads.retain(|h| h != "self");
    heads
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
        let mut got: Vec<String> = uses(text).into_iter().map(|(m, _)| m).collect();
        got.sort();
        got.dedup();
        assert_eq!(got, ["fake", "hw", "klog", "obj", "sched", "state"]);
        assert_eq!(uses("\n\nlet k = crate::cap::get();")[0], ("cap".to_string(), 3));
    }

    #[test]
    fn modules_are_the_first_path_component() {
        assert_eq!(module_of("sched.rs").as_deref(), Some("sched"));
        assert_eq!(module_of("virt/vmx/run.rs").as_deref(), Some("virt"));
        assert_eq!(module_of("lib.rs"), None);
        assert_eq!(module_of("main.rs"), None);
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
