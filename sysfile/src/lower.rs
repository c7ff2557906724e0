//! From the parsed file to `ipc`'s manifest types: capacities, name lengths, and the names' spelling.

use ipc::boot::NamedCap;
use ipc::manifest::{
    CapSpec, DomainSpec, Manifest, Name, Restart, SharedSpec, MANIFEST_VERSION, MAX_CAPS, MAX_DOMAINS,
    MAX_SHARED,
};
use toml::Spanned;

use super::schema::{self, SystemFile};
use super::{Located, Source};

/// What `mgmt` calls a domain's endpoint and notification capabilities in
/// its start page (`user::start::ENDPOINT_PREFIX`, `NOTIFICATION_PREFIX`).
pub const CHANNEL_PREFIXES: [(&str, &str); 2] =
    [("endpoint", "endpoint:"), ("notification", "notification:")];

/// The default CPU weight, which `mgmt` leaves as the kernel set it.
pub const DEFAULT_WEIGHT: u16 = 256;

/// Why a weight is refused (here if it is no `u16`, by `validate` if 0).
pub fn weight_message(w: i64) -> String {
    format!("weight {w}: a weight is 1 to 65535 (256 if absent)")
}

/// Why a cap is refused (here if it is no `u8`, by `validate` if above 100).
pub fn cpu_cap_message(c: i64) -> String {
    format!("cap of {c}%: a cap is 1 to 100 percent of one CPU, or 0 for none")
}

/// Module names the build gives to other things than domain images.
pub const RESERVED_IMAGES: [&str; 5] = ["kernel", "grub", "mgmt", "manifest", "testblob"];

pub fn name(s: &Spanned<String>) -> Result<Name, Located> {
    name_at(s.get_ref(), s.span())
}

fn name_at(s: &str, span: std::ops::Range<usize>) -> Result<Name, Located> {
    Name::try_from(s).map_err(|_| {
        Located::new(span, format!("name `{s}` is longer than {} bytes", Name::new().capacity()))
    })
}

/// Builds the manifest; `validate` has not run yet.
pub fn lower(f: &SystemFile) -> Result<Manifest, Located> {
    let files = super::guest::module_files(f);
    let kernels = super::guest::kernel_files(f);
    let mut m = Manifest {
        guests: heapless::Vec::new(),
        devices: heapless::Vec::new(),
        version: f.version.as_ref().map_or(MANIFEST_VERSION, |v| *v.get_ref()),
        domains: heapless::Vec::new(),
        shared: heapless::Vec::new(),
        endpoints: heapless::Vec::new(),
        notifications: heapless::Vec::new(),
    };
    for (kind, tables, list) in
        [("endpoint", &f.endpoint, &mut m.endpoints), ("notification", &f.notification, &mut m.notifications)]
    {
        for t in tables {
            list.push(name(&t.get_ref().name)?)
                .map_err(|_| Located::new(t.span(), format!("too many [[{kind}]]s: at most {MAX_SHARED}")))?;
        }
    }
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
        let restart = restart(t.restart.as_ref());
        let spec = DomainSpec {
            name: name(&t.name)?,
            image: name(&t.image)?,
            memory_kib: t.memory.get_ref().kib,
            restart,
            caps,
            weight: weight(t.weight.as_ref())?,
            cap_percent: cpu_cap(t.cap.as_ref())?,
            cpu: cpu(t.cpu.as_ref())?,
        };
        m.domains
            .push(spec)
            .map_err(|_| Located::new(d.span(), format!("too many [[domain]]s: at most {MAX_DOMAINS}")))?;
    }
    for g in &f.guest {
        let mut spec = super::guest::lower(g.get_ref(), &files, &kernels)?;
        spec.disks = super::disk::lower(g.get_ref(), f)?;
        m.guests.push(spec).map_err(|_| {
            Located::new(g.span(), format!("too many [[guest]]s: at most {}", ipc::manifest::MAX_GUESTS))
        })?;
    }
    m.devices = super::device::lower(f)?;
    Ok(m)
}

/// A CPU weight as the manifest has it (0 passes: `validate` refuses it).
pub fn weight(w: Option<&Spanned<i64>>) -> Result<u16, Located> {
    match w {
        None => Ok(DEFAULT_WEIGHT),
        Some(w) => {
            u16::try_from(*w.get_ref()).map_err(|_| Located::new(w.span(), weight_message(*w.get_ref())))
        }
    }
}

/// A CPU cap as the manifest has it (above 100 passes: `validate` refuses it).
pub fn cpu_cap(c: Option<&Spanned<schema::Percent>>) -> Result<u8, Located> {
    match c {
        None => Ok(0),
        Some(c) => {
            u8::try_from(c.get_ref().0).map_err(|_| Located::new(c.span(), cpu_cap_message(c.get_ref().0)))
        }
    }
}

/// The CPU a domain's or guest's first thread runs on.
pub fn cpu(c: Option<&Spanned<i64>>) -> Result<Option<u16>, Located> {
    c.map(|c| {
        u16::try_from(*c.get_ref())
            .map_err(|_| Located::new(c.span(), format!("cpu {}: a CPU number is 0 to 65535", c.get_ref())))
    })
    .transpose()
}

/// A restart policy as the manifest has it.
pub fn restart(r: Option<&Spanned<schema::Restart>>) -> Restart {
    match r.map(|r| *r.get_ref()) {
        None | Some(schema::Restart::Never) => Restart::Never,
        Some(schema::Restart::Backoff { max_restarts, initial_ms, max_ms }) => {
            Restart::Backoff { max_restarts, initial_ms, max_ms }
        }
    }
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
        schema::Cap::Endpoint { name, server, badge } => {
            CapSpec::Endpoint { name: name_at(name, c.span())?, server: *server, badge: *badge }
        }
        schema::Cap::Notification { name, wait } => {
            CapSpec::Notification { name: name_at(name, c.span())?, wait: *wait }
        }
    })
}

/// Whether `s` may name a domain, a region or a boot module: it shows in log
/// lines (`[name] …`) and GRUB command lines.
fn well_spelled(s: &str) -> bool {
    !s.starts_with(['.', '-']) && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub fn spelling(what: &str, s: &Spanned<String>) -> Result<(), Located> {
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
pub fn check_names(src: &Source<'_>, f: &SystemFile) -> Result<(), Located> {
    for s in &f.shared {
        spelling("bad region name", &s.get_ref().name)?;
    }
    let channels = [(CHANNEL_PREFIXES[0], &f.endpoint), (CHANNEL_PREFIXES[1], &f.notification)];
    for ((kind, prefix), tables) in channels {
        for (i, t) in tables.iter().enumerate() {
            check_channel(src, kind, prefix, &tables[..i], &t.get_ref().name)?;
        }
    }
    for d in &f.domain {
        let t = d.get_ref();
        spelling("bad domain name", &t.name)?;
        spelling("bad image name", &t.image)?;
        if t.name.get_ref() == "mgmt" {
            return Err(Located::new(t.name.span(), "`mgmt` is the root domain's name; pick another"));
        }
        if super::guest::reserved_image(t.image.get_ref()) && t.image.get_ref() != ipc::guest::VMM_IMAGE {
            return Err(Located::new(t.image.span(), super::guest::reserved_message(t.image.get_ref())));
        }
    }
    Ok(())
}

/// An endpoint's or notification's name: spelled well, not empty, not
/// taken by an `earlier` one of its kind, and short enough that
/// `<prefix><name>` fits a start page's name.
fn check_channel(
    src: &Source<'_>,
    kind: &str,
    prefix: &str,
    earlier: &[Spanned<schema::ChannelTable>],
    name: &Spanned<String>,
) -> Result<(), Located> {
    let n = name.get_ref();
    if n.is_empty() {
        return Err(Located::new(name.span(), format!("empty {kind} name")));
    }
    spelling(&format!("bad {kind} name"), name)?;
    if let Some(first) = earlier.iter().find(|o| o.get_ref().name.get_ref() == n) {
        let at = src.at(first.get_ref().name.span().start);
        return Err(Located::new(name.span(), format!("{kind} `{n}` is already defined at {at}")));
    }
    let room = NamedCap::EMPTY.name.len() - prefix.len();
    if n.len() > room {
        return Err(Located::new(
            name.span(),
            format!(
                "{kind} name `{n}` is longer than {room} bytes: `{prefix}{n}` must fit a start page's 32"
            ),
        ));
    }
    Ok(())
}
