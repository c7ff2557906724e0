//! `[[guest]]` tables: lowered to `ipc::manifest::GuestSpec`, every value
//! checked here at its key (so that `Manifest::validate`, which knows only
//! "a guest" is wrong, never has to find the culprit), and their names:
//! unique among domains and guests, and images that no domain image or
//! module of the boot image already names (each image is a module called
//! by its name).

use ipc::guest::{MAX_GUEST_MEMORY_KIB, VMM_IMAGE};
use ipc::manifest::{GuestSpec, Restart};
use toml::Spanned;

use super::lower::{self, RESERVED_IMAGES};
use super::schema::{GuestTable, SystemFile};
use super::{Located, Source};

/// The least RAM a guest has (the Multiboot information and a kernel at 1 MiB).
const MIN_MEMORY_KIB: u32 = 2048;
/// The longest command line (`GuestSpec::cmdline`).
const CMDLINE_MAX: usize = 128;
const MAX_VCPUS: i64 = 16;

pub fn lower(t: &GuestTable) -> Result<GuestSpec, Located> {
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
        image: lower::name(&t.image)?,
        cmdline: cmdline(t.cmdline.as_ref())?,
        memory_kib: kib,
        vcpus,
        restart,
        weight,
        cap_percent,
        cpu: lower::cpu(t.cpu.as_ref())?,
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
        lower::spelling("bad image name", &t.image)?;
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
        let image = t.image.get_ref();
        if image.is_empty() {
            return Err(Located::new(t.image.span(), "empty image name"));
        }
        if RESERVED_IMAGES.contains(&image.as_str()) || image == VMM_IMAGE {
            return Err(Located::new(
                t.image.span(),
                format!(
                    "image name `{image}` is reserved: the boot image has modules {} and {VMM_IMAGE}",
                    RESERVED_IMAGES.join(", ")
                ),
            ));
        }
        if let Some(d) = f.domain.iter().map(|d| &d.get_ref().image).find(|d| d.get_ref() == image) {
            return Err(Located::new(
                t.image.span(),
                format!(
                    "`{image}` is a domain's image (at {}), not a guest kernel: each image is one module",
                    src.at(d.span().start)
                ),
            ));
        }
    }
    Ok(())
}
