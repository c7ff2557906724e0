//! Turning what `Manifest::validate` found into a message at the table or key at fault.

use std::ops::Range;

use ipc::manifest::{
    CapSpec, Manifest, ManifestError, Problem, Restart, MANIFEST_VERSION, MAX_MEMORY_KIB, MAX_SHARERS,
};

use super::lower;
use super::schema::SystemFile;
use super::{Located, Source};

/// The first prefix of `items` whose manifest (built by `with`) fails as `want`:
/// `validate` stops at the first problem, so that prefix ends at the culprit.
fn culprit(len: usize, want: ManifestError, with: impl Fn(usize) -> Manifest) -> Option<usize> {
    (0..len).find(|&k| with(k + 1).validate() == Err(want))
}

pub fn locate(src: &Source<'_>, f: &SystemFile, m: &Manifest, e: ManifestError) -> Located {
    let whole_file: Range<usize> = 0..0;
    let Some(i) = e.domain else {
        return match e.problem {
            Problem::WrongVersion => {
                let (span, v) =
                    f.version.as_ref().map_or((whole_file, m.version), |v| (v.span(), *v.get_ref()));
                Located::new(
                    span,
                    format!("manifest version {v} is not supported: this build writes {MANIFEST_VERSION}"),
                )
            }
            Problem::NoDomains => {
                Located::new(whole_file, "no [[domain]]: a system runs at least one domain")
            }
            problem => shared_problem(src, f, m, e, problem),
        };
    };
    let (Some(d), Some(t)) = (m.domains.get(i), f.domain.get(i)) else {
        return Located::new(whole_file, format!("domain {i}: {:?}", e.problem));
    };
    let t = t.get_ref();
    match e.problem {
        Problem::EmptyName if d.name.is_empty() => Located::new(t.name.span(), "empty domain name"),
        Problem::EmptyName => Located::new(t.image.span(), "empty image name"),
        Problem::DuplicateName => {
            let first = f.domain.iter().position(|o| o.get_ref().name.get_ref() == t.name.get_ref());
            let at = first.map_or(0, |j| f.domain[j].get_ref().name.span().start);
            Located::new(
                t.name.span(),
                format!("a domain named `{}` is already defined at {}", d.name, src.at(at)),
            )
        }
        Problem::BadMemorySize => Located::new(
            t.memory.span(),
            format!(
                "memory of {} KiB: a domain needs a non-zero multiple of 4K, at most {}M",
                d.memory_kib,
                MAX_MEMORY_KIB >> 10
            ),
        ),
        Problem::BadBackoff => {
            let span = t.restart.as_ref().map_or(whole_file, |r| r.span());
            let why = match d.restart {
                Restart::Backoff { initial_ms, max_ms, .. } => {
                    format!("backoff starts at initial_ms = {initial_ms}, above max_ms = {max_ms}")
                }
                Restart::Never => "bad backoff".to_string(),
            };
            Located::new(span, why)
        }
        Problem::BadSchedule => {
            let (key, message) = if d.weight == 0 {
                (t.weight.as_ref().map(|w| w.span()), lower::weight_message(0))
            } else {
                (t.cap.as_ref().map(|c| c.span()), lower::cpu_cap_message(i64::from(d.cap_percent)))
            };
            Located::new(key.unwrap_or_else(|| d_span(f, i)), message)
        }
        Problem::BadPortRange
        | Problem::BadIrq
        | Problem::UnknownChannel
        | Problem::UnknownShared
        | Problem::UnknownDomain
        | Problem::WrongVersion
        | Problem::TooManySharers
        | Problem::BadModule
        | Problem::BadDevice
        | Problem::BadDisk
        | Problem::NoDomains => {
            let with = |k: usize| {
                let mut m = m.clone();
                m.domains[i].caps.truncate(k);
                m
            };
            let Some(k) = culprit(d.caps.len(), e, with) else {
                return Located::new(d_span(f, i), format!("domain `{}`: {:?}", d.name, e.problem));
            };
            Located::new(t.caps[k].span(), cap_message(m, i, &d.caps[k], e.problem))
        }
    }
}

fn d_span(f: &SystemFile, i: usize) -> Range<usize> {
    f.domain.get(i).map_or(0..0, |d| d.span())
}

fn cap_message(m: &Manifest, i: usize, cap: &CapSpec, problem: Problem) -> String {
    match cap {
        CapSpec::IoPorts { base, count } => {
            format!("I/O ports {base:#x} + {count}: the range must be non-empty and end at or below 0x10000")
        }
        CapSpec::Irq { line } => format!("IRQ line {line} does not exist: lines are 0 to 23"),
        CapSpec::Shared { name, .. } => format!("no [[shared]] region named `{name}`"),
        CapSpec::Domain { name } if m.domains.get(i).is_some_and(|d| d.name == *name) => {
            format!("domain `{name}` cannot be given control of itself")
        }
        CapSpec::Domain { name } => format!("no other [[domain]] named `{name}`"),
        CapSpec::Endpoint { name, .. } => format!("no [[endpoint]] named `{name}`"),
        CapSpec::Notification { name, .. } => format!("no [[notification]] named `{name}`"),
        CapSpec::Console => format!("{problem:?}"),
    }
}

fn shared_problem(
    src: &Source<'_>,
    f: &SystemFile,
    m: &Manifest,
    e: ManifestError,
    problem: Problem,
) -> Located {
    let with = |k: usize| {
        let mut m = m.clone();
        m.shared.truncate(k);
        m
    };
    let Some(k) = culprit(m.shared.len(), e, with) else {
        return Located::new(0..0, format!("{problem:?}"));
    };
    let (s, t) = (&m.shared[k], f.shared[k].get_ref());
    match problem {
        Problem::EmptyName => Located::new(t.name.span(), "empty region name"),
        Problem::DuplicateName => {
            let first = f.shared.iter().position(|o| o.get_ref().name.get_ref() == t.name.get_ref());
            let at = first.map_or(0, |j| f.shared[j].get_ref().name.span().start);
            Located::new(
                t.name.span(),
                format!("a region named `{}` is already defined at {}", s.name, src.at(at)),
            )
        }
        Problem::BadMemorySize => Located::new(
            t.size.span(),
            format!(
                "size of {} KiB: a region is a non-zero multiple of 4K, at most {}M",
                s.kib,
                MAX_MEMORY_KIB >> 10
            ),
        ),
        Problem::TooManySharers => Located::new(
            t.name.span(),
            format!("region `{}` is given to more than {MAX_SHARERS} domains", s.name),
        ),
        other => Located::new(f.shared[k].span(), format!("{other:?}")),
    }
}
