//! Compiling a system file (`system.toml`) into the manifest `mgmt` reads at boot,
//! for the xtask's build and for `ryokan create` (a snippet holding one entry:
//! [`compile_entry`]) alike, so both report the same errors.
//!
//! Every problem — TOML syntax, an unknown key, a value of the wrong type, or
//! an inconsistency that [`Manifest::validate`] finds — is reported as
//! `FILE:LINE:COL: message`, pointing at the table or key at fault, and fails
//! the build. The file format is described in [`schema`].

mod cap;
#[cfg(test)]
mod channel_tests;
mod device;
#[cfg(test)]
mod device_tests;
mod disk;
#[cfg(test)]
mod disk_tests;
mod guest;
#[cfg(test)]
mod guest_tests;
mod locate;
mod lower;
mod schema;
#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;
use std::path::Path;

use anyhow::{Context, Result};
use ipc::manifest::Manifest;

/// A compiled system file.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub manifest: Manifest,
    /// The manifest, postcard-encoded: the boot module `manifest`.
    pub bytes: Vec<u8>,
    /// The distinct images the domains run, in order of first use.
    pub images: Vec<ImageUse>,
    /// The distinct kernel images the guests boot, in order of first use.
    pub guest_images: Vec<ImageUse>,
    /// The distinct files the guests have as modules, in order of first
    /// use, each with its boot module's name; `at` is where it is first named.
    pub guest_modules: Vec<ModuleUse>,
    /// The distinct files the guests boot as kernels (`kernel = …`), in
    /// order of first use, each with its boot module's name.
    pub guest_kernels: Vec<ModuleUse>,
}

/// A file a guest has as a module: the boot module holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleUse {
    /// The boot module's name.
    pub name: String,
    /// As written: relative to the system file.
    pub file: String,
    /// `FILE:LINE:COL` of its first `file = …`.
    pub at: String,
}

/// An image a domain runs, and where the file first names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    pub name: String,
    /// `FILE:LINE:COL` of its first `image = …`.
    pub at: String,
}

/// A problem in a system file, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// The offending line of the file, for the caret display.
    pub source_line: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)?;
        if !self.source_line.trim().is_empty() {
            let pad = " ".repeat(self.col.saturating_sub(1));
            write!(f, "\n    {}\n    {pad}^", self.source_line)?;
        }
        Ok(())
    }
}

impl std::error::Error for CompileError {}

/// A problem at a byte range of the file, before it is given a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Located {
    span: Range<usize>,
    message: String,
}

impl Located {
    fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Located { span, message: message.into() }
    }
}

/// The text of a system file and the name it is shown by.
struct Source<'a> {
    file: &'a str,
    text: &'a str,
}

impl Source<'_> {
    /// 1-based line and column (in characters) of byte `offset`.
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    fn at(&self, offset: usize) -> String {
        let (line, col) = self.line_col(offset);
        format!("{}:{line}:{col}", self.file)
    }

    fn error(&self, e: Located) -> CompileError {
        let (line, col) = self.line_col(e.span.start);
        let source_line = self.text.lines().nth(line - 1).unwrap_or_default().to_string();
        CompileError { file: self.file.to_string(), line, col, message: e.message, source_line }
    }
}

/// Compiles the text of a system file; `file` is the name errors show.
pub fn compile(file: &str, text: &str) -> Result<Compiled, CompileError> {
    compile_with(file, text, false)
}

/// Compiles a snippet for `ryokan create`: a system file holding exactly
/// one `[[domain]]` or one `[[guest]]` and nothing it would share with
/// others (no `[[shared]]`, `[[endpoint]]` or `[[notification]]`: those of
/// the running system are not the snippet's to name).
pub fn compile_entry(file: &str, text: &str) -> Result<Compiled, CompileError> {
    compile_with(file, text, true)
}

/// Where a snippet holds more or other than one entry.
fn not_one_entry(parsed: &schema::SystemFile) -> Option<Located> {
    let shared = parsed.shared.first().map(toml::Spanned::span);
    let channel = parsed.endpoint.first().or(parsed.notification.first()).map(toml::Spanned::span);
    if let Some(span) = shared.or(channel) {
        return Some(Located::new(
            span,
            "a snippet for `ryokan create` cannot make shared regions, endpoints or notifications",
        ));
    }
    if let Some(d) = parsed.device.first() {
        return Some(Located::new(
            d.span(),
            "a snippet for `ryokan create` cannot hand out devices: they are the boot system's",
        ));
    }
    let entries: Vec<_> = parsed
        .domain
        .iter()
        .map(toml::Spanned::span)
        .chain(parsed.guest.iter().map(toml::Spanned::span))
        .collect();
    match entries.len() {
        1 => None,
        0 => Some(Located::new(0..0, "a snippet for `ryokan create` needs one [[domain]] or [[guest]]")),
        _ => Some(Located::new(
            entries.iter().map(|s| s.start).max().map_or(0..0, |at| at..at),
            "a snippet for `ryokan create` holds one [[domain]] or [[guest]], not more",
        )),
    }
}

fn compile_with(file: &str, text: &str, entry_only: bool) -> Result<Compiled, CompileError> {
    let src = Source { file, text };
    let parsed: schema::SystemFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let mut message = e.message().trim_end().replace('\n', "; ");
        if message.ends_with("expected a sequence") {
            message.push_str(
                " (arrays of tables: [[domain]], [[shared]], [[endpoint]], [[notification]], [[guest]], [[device]])",
            );
        }
        src.error(Located::new(span, message))
    })?;
    if let Some(e) = not_one_entry(&parsed).filter(|_| entry_only) {
        return Err(src.error(e));
    }
    let manifest = lower::lower(&parsed).map_err(|e| src.error(e))?;
    // Names first: a duplicate channel name is found here, at its key,
    // whether or not `validate` also knows the problem.
    lower::check_names(&src, &parsed).map_err(|e| src.error(e))?;
    guest::check_names(&src, &parsed).map_err(|e| src.error(e))?;
    device::check(&src, &parsed).map_err(|e| src.error(e))?;
    disk::check_overlaps(&src, &parsed).map_err(|e| src.error(e))?;
    if let Err(problem) = manifest.validate() {
        return Err(src.error(locate::locate(&src, &parsed, &manifest, problem)));
    }

    let mut buf = vec![0u8; 64 * 1024];
    let bytes = manifest
        .encode(&mut buf)
        .map_err(|e| src.error(Located::new(0..0, format!("the manifest does not encode: {e:?}"))))?
        .to_vec();
    // What mgmt will see must be what was written.
    if Manifest::decode(&bytes).as_ref() != Ok(&manifest) {
        return Err(src.error(Located::new(0..0, "the encoded manifest does not decode to itself")));
    }

    let uses = |images: &mut Vec<ImageUse>, image: &toml::Spanned<String>| {
        if !images.iter().any(|i| i.name == *image.get_ref()) {
            images.push(ImageUse { name: image.get_ref().clone(), at: src.at(image.span().start) });
        }
    };
    let (mut images, mut guest_images) = (Vec::new(), Vec::new());
    for d in &parsed.domain {
        uses(&mut images, &d.get_ref().image);
    }
    for g in &parsed.guest {
        if let Some(image) = &g.get_ref().image {
            uses(&mut guest_images, image);
        }
    }
    let file_uses = |files: Vec<guest::ModuleFile>| -> Vec<ModuleUse> {
        files
            .into_iter()
            .map(|m| ModuleUse { name: m.name, file: m.file, at: src.at(m.span.start) })
            .collect()
    };
    let guest_modules = file_uses(guest::module_files(&parsed));
    let guest_kernels = file_uses(guest::kernel_files(&parsed));
    Ok(Compiled { manifest, bytes, images, guest_images, guest_modules, guest_kernels })
}

/// Reads and compiles a system file; `shown` is the name errors use.
pub fn compile_file(path: &Path, shown: &str) -> Result<Compiled> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(compile(shown, &text)?)
}
