//! `[[guest]]` tables: lowered to `ipc::manifest::GuestSpec`, every value
//! checked here at its key (so that `Manifest::validate`, which knows only
//! "a guest" is wrong, never has to find the culprit), and their names:
//! unique among domains and guests, and images that no domain image or
//! module of the boot image already names (each image is a module called
//! by its name).
//!
//! A guest's `modules` are files; each distinct file (as written) becomes
//! one boot module, `guest-module.<k>` in order of first use, which every
//! guest naming that file is given. Its `initrd` is a module file too, put
//! first. A guest names its kernel by `image` (a binary of `tests/guests`,
//! a boot module of that name) or by `kernel`, a file: each distinct
//! kernel file becomes one boot module, `guest-kernel.<k>`, the guest's
//! image (`cargo xtask build` judges the file: `vmm::kernel`).

use std::ops::Range;

use ipc::guest::{ModuleString, MAX_GUEST_MEMORY_KIB, MAX_GUEST_MODULES, MODULE_STRING_MAX, VMM_IMAGE};
use ipc::manifest::{GuestModule, GuestSpec, Name, Restart};
use toml::Spanned;

use super::lower::{self, RESERVED_IMAGES};
use super::schema::{GuestTable, SystemFile};
use super::{Located, Source};

/// The boot modules holding guests' module files are named this and a number.
pub const MODULE_IMAGE_PREFIX: &str = "guest-module.";
/// The boot modules holding guests' kernel files are named this and a number.
pub const KERNEL_IMAGE_PREFIX: &str = "guest-kernel.";

/// How a guest names its kernel.
pub enum KernelOf<'a> {
    /// A binary of `tests/guests` (a boot module of that name).
    Image(&'a Spanned<String>),
    /// A file, relative to the system file.
    File(&'a Spanned<String>),
}

/// The kernel `t` names: by `image` or by `kernel`, exactly one.
pub fn kernel_of(t: &GuestTable) -> Result<KernelOf<'_>, Located> {
    match (&t.image, &t.kernel) {
        (Some(i), None) => Ok(KernelOf::Image(i)),
        (None, Some(k)) if k.get_ref().is_empty() => Err(Located::new(k.span(), "empty kernel file name")),
        (None, Some(k)) => Ok(KernelOf::File(k)),
        (Some(_), Some(k)) => Err(Located::new(
            k.span(),
            "a guest boots one kernel: `image` (a binary of tests/guests) or `kernel` (a file), not both",
        )),
        (None, None) => Err(Located::new(
            t.name.span(),
            "a guest needs its kernel: `image` (a binary of tests/guests) or `kernel` (a file)",
        )),
    }
}

/// The distinct kernel files of the guests of `f`, in order of first use.
pub fn kernel_files(f: &SystemFile) -> Vec<ModuleFile> {
    let mut files: Vec<ModuleFile> = Vec::new();
    for k in f.guest.iter().filter_map(|g| g.get_ref().kernel.as_ref()) {
        if !files.iter().any(|x| x.file == *k.get_ref()) {
            let name = format!("{KERNEL_IMAGE_PREFIX}{}", files.len());
            files.push(ModuleFile { name, file: k.get_ref().clone(), span: k.span() });
        }
    }
    files
}

/// A file some guest has as a module: the boot module holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFile {
    /// Its boot module's name (`guest-module.<k>`).
    pub name: String,
    /// As written, relative to the system file.
    pub file: String,
    /// Where it is first named.
    pub span: Range<usize>,
}

/// The distinct module files of the guests of `f`, in order of first use.
pub fn module_files(f: &SystemFile) -> Vec<ModuleFile> {
    let mut files: Vec<ModuleFile> = Vec::new();
    let each = f.guest.iter().flat_map(|g| {
        let g = g.get_ref();
        g.initrd.iter().chain(g.modules.iter().map(|m| &m.get_ref().file))
    });
    for file in each {
        if !files.iter().any(|x| x.file == *file.get_ref()) {
            let name = format!("{MODULE_IMAGE_PREFIX}{}", files.len());
            files.push(ModuleFile { name, file: file.get_ref().clone(), span: file.span() });
        }
    }
    files
}

/// Whether the boot image names a module `image` for something else than
/// a domain's or guest's image.
pub fn reserved_image(image: &str) -> bool {
    RESERVED_IMAGES.contains(&image)
        || image == VMM_IMAGE
        || image.starts_with(MODULE_IMAGE_PREFIX)
        || image.starts_with(KERNEL_IMAGE_PREFIX)
}

fn modules(
    t: &GuestTable,
    files: &[ModuleFile],
) -> Result<heapless::Vec<GuestModule, MAX_GUEST_MODULES>, Located> {
    let mut out = heapless::Vec::new();
    if let Some(initrd) = &t.initrd {
        if initrd.get_ref().is_empty() {
            return Err(Located::new(initrd.span(), "empty initrd file name"));
        }
        let file = files.iter().find(|f| f.file == *initrd.get_ref());
        let module = file.and_then(|f| Name::try_from(f.name.as_str()).ok()).ok_or_else(|| {
            Located::new(initrd.span(), "too many distinct module files for their boot modules' names")
        })?;
        // `push` on an empty vector of capacity MAX_GUEST_MODULES (> 0).
        let _ = out.push(GuestModule { module, string: ModuleString::new() });
    }
    for m in &t.modules {
        let (m, span) = (m.get_ref(), m.span());
        if m.file.get_ref().is_empty() {
            return Err(Located::new(m.file.span(), "empty module file name"));
        }
        let string: ModuleString = match &m.cmdline {
            None => ModuleString::new(),
            Some(c) if !ipc::guest::printable(c.get_ref()) => {
                return Err(Located::new(c.span(), "a module's cmdline is printable ASCII"))
            }
            Some(c) => ModuleString::try_from(c.get_ref().as_str()).map_err(|_| {
                Located::new(c.span(), format!("a module's cmdline is at most {MODULE_STRING_MAX} bytes"))
            })?,
        };
        let file = files.iter().find(|f| f.file == *m.file.get_ref());
        let module = file.and_then(|f| Name::try_from(f.name.as_str()).ok()).ok_or_else(|| {
            Located::new(m.file.span(), "too many distinct module files for their boot modules' names")
        })?;
        out.push(GuestModule { module, string }).map_err(|_| {
            Located::new(span, format!("too many modules: a guest has at most {MAX_GUEST_MODULES}"))
        })?;
    }
    Ok(out)
}

/// The least RAM a guest has (the Multiboot information and a kernel at 1 MiB).
const MIN_MEMORY_KIB: u32 = 2048;
/// The longest command line (`GuestSpec::cmdline`).
const CMDLINE_MAX: usize = 128;
const MAX_VCPUS: i64 = 16;

/// `t` as a manifest guest; its modules are among `files` ([`module_files`]),
/// its kernel file, if it names one, among `kernels` ([`kernel_files`]).
pub fn lower(t: &GuestTable, files: &[ModuleFile], kernels: &[ModuleFile]) -> Result<GuestSpec, Located> {
    let image = match kernel_of(t)? {
        KernelOf::Image(i) => lower::name(i)?,
        KernelOf::File(k) => {
            let file = kernels.iter().find(|f| f.file == *k.get_ref());
            file.and_then(|f| Name::try_from(f.name.as_str()).ok()).ok_or_else(|| {
                Located::new(k.span(), "too many distinct kernel files for their boot modules' names")
            })?
        }
    };
    let kib = t.memory.get_ref().kib;
    if !(MIN_MEMORY_KIB..=MAX_GUEST_MEMORY_KIB).contains(&kib) || kib % 4 != 0 {
        return Err(Located::new(
            t.memory.span(),
            format!(
                "memory of {kib} KiB: a guest has a multiple of 4K from {}M to {}G of RAM",
                MIN_MEMORY_KIB >> 10,
                MAX_GUEST_MEMORY_KIB >> 20
            ),
        ));
    }
    let vcpus = match &t.vcpus {
        None => 1,
        Some(v) => u8::try_from(*v.get_ref())
            .ok()
            .filter(|&n| (1..=MAX_VCPUS).contains(&i64::from(n)))
            .ok_or_else(|| {
                Located::new(v.span(), format!("vcpus = {}: a guest has 1 to {MAX_VCPUS} vCPUs", v.get_ref()))
            })?,
    };
    let weight = lower::weight(t.weight.as_ref())?;
    if weight == 0 {
        let span = t.weight.as_ref().map_or(t.name.span(), |w| w.span());
        return Err(Located::new(span, lower::weight_message(0)));
    }
    let cap_percent = lower::cpu_cap(t.cap.as_ref())?;
    if cap_percent > 100 {
        let span = t.cap.as_ref().map_or(t.name.span(), |c| c.span());
        return Err(Located::new(span, lower::cpu_cap_message(i64::from(cap_percent))));
    }
    let restart = lower::restart(t.restart.as_ref());
    if let Restart::Backoff { initial_ms, max_ms, .. } = restart {
        if initial_ms > max_ms {
            let span = t.restart.as_ref().map_or(t.name.span(), |r| r.span());
            return Err(Located::new(
                span,
                format!("backoff starts at initial_ms = {initial_ms}, above max_ms = {max_ms}"),
            ));
        }
    }
    Ok(GuestSpec {
        name: lower::name(&t.name)?,
        image,
        cmdline: cmdline(t.cmdline.as_ref())?,
        memory_kib: kib,
        vcpus,
        restart,
        weight,
        cap_percent,
        cpu: lower::cpu(t.cpu.as_ref())?,
        modules: modules(t, files)?,
        disks: heapless::Vec::new(), // `super::disk::lower`, which needs the file's devices
    })
}

fn cmdline(c: Option<&Spanned<String>>) -> Result<heapless::String<CMDLINE_MAX>, Located> {
    let Some(c) = c else { return Ok(heapless::String::new()) };
    let s = c.get_ref();
    if !s.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Err(Located::new(c.span(), "a command line is printable ASCII"));
    }
    heapless::String::try_from(s.as_str())
        .map_err(|_| Located::new(c.span(), format!("a command line is at most {CMDLINE_MAX} bytes")))
}

/// Names and images: spelled well, not taken, not a module of something else.
pub fn check_names(src: &Source<'_>, f: &SystemFile) -> Result<(), Located> {
    for (i, g) in f.guest.iter().enumerate() {
        let t = g.get_ref();
        lower::spelling("bad guest name", &t.name)?;
        let image = match kernel_of(t)? {
            KernelOf::Image(i) => Some(i),
            KernelOf::File(_) => None,
        };
        if let Some(i) = image {
            lower::spelling("bad image name", i)?;
        }
        let name = t.name.get_ref();
        if name.is_empty() {
            return Err(Located::new(t.name.span(), "empty guest name"));
        }
        if name == "mgmt" {
            return Err(Located::new(t.name.span(), "`mgmt` is the root domain's name; pick another"));
        }
        let domain = f.domain.iter().map(|d| &d.get_ref().name).find(|n| n.get_ref() == name);
        let guest = f.guest[..i].iter().map(|o| &o.get_ref().name).find(|n| n.get_ref() == name);
        if let Some(first) = domain.or(guest) {
            return Err(Located::new(
                t.name.span(),
                format!(
                    "a domain or guest named `{name}` is already defined at {}",
                    src.at(first.span().start)
                ),
            ));
        }
        let Some(spanned) = image else { continue };
        let image = spanned.get_ref();
        if image.is_empty() {
            return Err(Located::new(spanned.span(), "empty image name"));
        }
        if reserved_image(image) {
            return Err(Located::new(spanned.span(), reserved_message(image)));
        }
        if let Some(d) = f.domain.iter().map(|d| &d.get_ref().image).find(|d| d.get_ref() == image) {
            return Err(Located::new(
                spanned.span(),
                format!(
                    "`{image}` is a domain's image (at {}), not a guest kernel: each image is one module",
                    src.at(d.span().start)
                ),
            ));
        }
    }
    Ok(())
}

/// Why `image` cannot be an image's name.
pub fn reserved_message(image: &str) -> String {
    format!(
        "image name `{image}` is reserved: the boot image has modules {}, {VMM_IMAGE}, {MODULE_IMAGE_PREFIX}<n> and {KERNEL_IMAGE_PREFIX}<n>",
        RESERVED_IMAGES.join(", ")
    )
}
