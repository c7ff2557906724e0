//! From the parsed file to `ipc`'s manifest types: capacities, name lengths, and the names' spelling.

use ipc::manifest::{
    CapSpec, DomainSpec, Manifest, Name, Restart, SharedSpec, MANIFEST_VERSION, MAX_CAPS, MAX_DOMAINS,
    MAX_SHARED,
};
use toml::Spanned;

use super::schema::{self, SystemFile};
use super::Located;

/// Module names the build gives to other things than domain images.
pub const RESERVED_IMAGES: [&str; 5] = ["kernel", "grub", "mgmt", "manifest", "testblob"];

fn name(s: &Spanned<String>) -> Result<Name, Located> {
    name_at(s.get_ref(), s.span())
}

fn name_at(s: &str, span: std::ops::Range<usize>) -> Result<Name, Located> {
    Name::try_from(s).map_err(|_| {
        Located::new(span, format!("name `{s}` is longer than {} bytes", Name::new().capacity()))
    })
}

/// Builds the manifest; `validate` has not run yet.
pub fn lower(f: &SystemFile) -> Result<Manifest, Located> {
    let mut m = Manifest {
        version: f.version.as_ref().map_or(MANIFEST_VERSION, |v| *v.get_ref()),
        domains: heapless::Vec::new(),
        shared: heapless::Vec::new(),
    };
    for s in &f.shared {
        let t = s.get_ref();
        let spec = SharedSpec { name: name(&t.name)?, kib: t.size.get_ref().kib };
        m.shared.push(spec).map_err(|_| {
            Located::new(s.span(), format!("too many [[shared]] regions: at most {MAX_SHARED}"))
        })?;
    }
    for d in &f.domain {
        let t = d.get_ref();
        let mut caps = heapless::Vec::new();
        for c in &t.caps {
            caps.push(cap(c)?).map_err(|_| {
                Located::new(
                    c.span(),
                    format!("too many capabilities: a domain starts with at most {MAX_CAPS}"),
                )
            })?;
        }
        let restart = match t.restart.as_ref().map(|r| *r.get_ref()) {
            None | Some(schema::Restart::Never) => Restart::Never,
            Some(schema::Restart::Backoff { max_restarts, initial_ms, max_ms }) => {
                Restart::Backoff { max_restarts, initial_ms, max_ms }
            }
        };
        let spec = DomainSpec {
            name: name(&t.name)?,
            image: name(&t.image)?,
            memory_kib: t.memory.get_ref().kib,
            restart,
            caps,
        };
        m.domains
            .push(spec)
            .map_err(|_| Located::new(d.span(), format!("too many [[domain]]s: at most {MAX_DOMAINS}")))?;
    }
    Ok(m)
}

fn cap(c: &Spanned<schema::Cap>) -> Result<CapSpec, Located> {
    Ok(match c.get_ref() {
        schema::Cap::Console => CapSpec::Console,
        schema::Cap::IoPorts { base, count } => CapSpec::IoPorts { base: *base, count: *count },
        schema::Cap::Irq(line) => CapSpec::Irq { line: *line },
        schema::Cap::Shared { name, writable } => {
            CapSpec::Shared { name: name_at(name, c.span())?, writable: *writable }
        }
        schema::Cap::Domain(name) => CapSpec::Domain { name: name_at(name, c.span())? },
    })
}

/// Whether `s` may name a domain, a region or a boot module: it shows in log
/// lines (`[name] …`) and GRUB command lines.
fn well_spelled(s: &str) -> bool {
    !s.starts_with(['.', '-']) && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn spelling(what: &str, s: &Spanned<String>) -> Result<(), Located> {
    if well_spelled(s.get_ref()) {
        return Ok(());
    }
    Err(Located::new(
        s.span(),
        format!("{what} `{}`: use letters, digits, `-`, `_` and `.`, not first `-` or `.`", s.get_ref()),
    ))
}

/// What `validate` leaves to the build: how names are spelled, and names
/// that the boot image already uses.
pub fn check_names(f: &SystemFile) -> Result<(), Located> {
    for s in &f.shared {
        spelling("bad region name", &s.get_ref().name)?;
    }
    for d in &f.domain {
        let t = d.get_ref();
        spelling("bad domain name", &t.name)?;
        spelling("bad image name", &t.image)?;
        if t.name.get_ref() == "mgmt" {
            return Err(Located::new(t.name.span(), "`mgmt` is the root domain's name; pick another"));
        }
        if RESERVED_IMAGES.contains(&t.image.get_ref().as_str()) {
            return Err(Located::new(
                t.image.span(),
                format!(
                    "image name `{}` is reserved: the boot image has modules {}",
                    t.image.get_ref(),
                    RESERVED_IMAGES.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
