//! The shape of a system file (`system.toml`) as serde sees it, with the spans of its parts.
//!
//! Every table denies unknown keys. Sizes are strings with a binary unit
//! (`"4K"`, `"1M"`, `"1G"`; `"1MiB"` too); a restart policy is `"never"` or
//! `{ policy = "backoff", max_restarts, initial_ms, max_ms }`; a capability is
//! `"console"` or a one-key table (`{ ioports = { base, count } }`,
//! `{ irq = N }`, `{ shared = "region", writable = bool }`, `{ domain = "name" }`,
//! `{ endpoint = "name", server = bool, badge = N }`,
//! `{ notification = "name", wait = bool }`). A domain's CPU share is
//! `weight` (1 to 65535, 256 if absent), `cap` (percent of one CPU: `25` or
//! `"25%"`; 0 or absent for none) and `cpu` (the CPU its first thread runs
//! on). `[[endpoint]]` and `[[notification]]` tables (`name` only) declare
//! the channels `mgmt` creates. A `[[guest]]` is a virtual machine: `name`,
//! its kernel, either `image` (a Multiboot kernel, a binary of
//! `tests/guests`) or `kernel` (a file, relative to the system file: a
//! bzImage or a Multiboot kernel), `initrd` (a file, given to the kernel as
//! its first module), `cmdline`,
//! `memory` (its RAM), `vcpus` (1 if absent), `modules` (Multiboot modules:
//! `[{ file = "initrd.img", cmdline = "…" }]`, each file relative to the
//! system file, up to 4) and the same `restart`, `weight`, `cap` and `cpu`
//! as a domain's. A `[[device]]` hands the PCI function at `pci`
//! (`"BB:DD.F"`) to the `[[domain]]` named by `domain`, optionally saying
//! its `model` (`"virtio-blk"`, `"virtio-net"`: checked against its IDs at
//! boot, and what the xtask puts there in QEMU) and `unconfined_dma = true`
//! (handed out even without an IOMMU to confine its DMA).

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

pub use super::cap::Cap;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemFile {
    /// The manifest format; 1 if absent.
    pub version: Option<Spanned<u32>>,
    #[serde(default)]
    pub domain: Vec<Spanned<DomainTable>>,
    #[serde(default)]
    pub shared: Vec<Spanned<SharedTable>>,
    #[serde(default)]
    pub endpoint: Vec<Spanned<ChannelTable>>,
    #[serde(default)]
    pub notification: Vec<Spanned<ChannelTable>>,
    #[serde(default)]
    pub guest: Vec<Spanned<GuestTable>>,
    #[serde(default)]
    pub device: Vec<Spanned<DeviceTable>>,
}

/// One `[[device]]`: a PCI function handed to a native domain. Checked
/// when lowered (`super::device`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceTable {
    /// Its address, `BB:DD.F` in hexadecimal as `lspci` shows it.
    pub pci: Spanned<String>,
    /// The `[[domain]]` that drives it.
    pub domain: Spanned<String>,
    /// What must be there (`"virtio-blk"`, `"virtio-net"`); anything if absent.
    pub model: Option<Spanned<String>>,
    /// Hand it out even where no IOMMU confines its DMA; false if absent.
    pub unconfined_dma: Option<Spanned<bool>>,
}

/// One `[[guest]]`. Checked for range when lowered (`super::guest`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestTable {
    pub name: Spanned<String>,
    /// The guest kernel it boots by name, a binary of `tests/guests` (and
    /// its boot module); or, instead, `kernel`.
    pub image: Option<Spanned<String>>,
    /// The guest kernel it boots as a file, relative to the system file;
    /// or, instead, `image`.
    pub kernel: Option<Spanned<String>>,
    /// A file given to the kernel as its initrd: its first module.
    pub initrd: Option<Spanned<String>>,
    /// The kernel's command line; empty if absent.
    pub cmdline: Option<Spanned<String>>,
    /// Its RAM.
    pub memory: Spanned<Size>,
    /// 1 if absent.
    pub vcpus: Option<Spanned<i64>>,
    pub restart: Option<Spanned<Restart>>,
    pub weight: Option<Spanned<i64>>,
    pub cap: Option<Spanned<Percent>>,
    pub cpu: Option<Spanned<i64>>,
    /// Its Multiboot modules, in order; none if absent.
    #[serde(default)]
    pub modules: Vec<Spanned<ModuleTable>>,
    /// Its virtual disks, in order; none if absent (`super::disk`).
    #[serde(default)]
    pub disks: Vec<Spanned<DiskTable>>,
}

/// One of a guest's `disks`: a region of the physical disk a `[[domain]]`
/// drives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskTable {
    /// The `[[domain]]` driving the physical disk (a `[[device]]`'s).
    pub blk: Spanned<String>,
    /// Where the region starts on the physical disk; 0 if absent.
    pub start: Option<Spanned<Size>>,
    /// Its size; the rest of the physical disk if absent.
    pub size: Option<Spanned<Size>>,
    /// False if absent.
    pub read_only: Option<Spanned<bool>>,
}

/// One of a guest's `modules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleTable {
    /// The file, relative to the system file.
    pub file: Spanned<String>,
    /// The module's string; empty if absent.
    pub cmdline: Option<Spanned<String>>,
}

/// One `[[domain]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainTable {
    pub name: Spanned<String>,
    /// The domain binary (and boot module) it runs.
    pub image: Spanned<String>,
    pub memory: Spanned<Size>,
    /// `"never"` if absent.
    pub restart: Option<Spanned<Restart>>,
    #[serde(default)]
    pub caps: Vec<Spanned<Cap>>,
    /// CPU weight; 256 if absent. Checked for range when lowered.
    pub weight: Option<Spanned<i64>>,
    /// CPU cap; none if absent.
    pub cap: Option<Spanned<Percent>>,
    /// The CPU its first thread runs on; the kernel's choice if absent.
    pub cpu: Option<Spanned<i64>>,
}

/// One `[[shared]]` region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedTable {
    pub name: Spanned<String>,
    pub size: Spanned<Size>,
}

/// One `[[endpoint]]` or `[[notification]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelTable {
    pub name: Spanned<String>,
}

/// A percentage as written: `25` or `"25%"`. Checked for range when lowered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent(pub i64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Percent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage: 25 or \"25%\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percent, E> {
                Ok(Percent(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percent, E> {
                Ok(Percent(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Percent, E> {
                let digits = s.trim().strip_suffix('%').map(str::trim_end);
                match digits.map(str::parse::<i64>) {
                    Some(Ok(v)) => Ok(Percent(v)),
                    _ => Err(E::custom(format!("bad percentage `{s}`: write a number, e.g. 25 or \"25%\""))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A size, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub kib: u32,
}

/// Parses `"<n>K"`, `"<n>M"`, `"<n>G"` (or with `iB`): binary units.
pub fn parse_size(s: &str) -> Result<Size, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(digits_end);
    let shift = match unit.trim_start() {
        "K" | "KiB" => 0,
        "M" | "MiB" => 10,
        "G" | "GiB" => 20,
        _ => {
            return Err(format!("bad size `{s}`: write a number and a unit K, M or G, e.g. \"4K\" or \"1M\""))
        }
    };
    let too_large = || format!("size `{s}` is too large");
    let n: u64 = match digits.parse() {
        Ok(n) => n,
        Err(_) if digits.is_empty() => return Err(format!("bad size `{s}`: no number before the unit")),
        Err(_) => return Err(too_large()),
    };
    let kib = n.checked_mul(1 << shift).and_then(|k| u32::try_from(k).ok()).ok_or_else(too_large)?;
    Ok(Size { kib })
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size with a unit, e.g. \"4K\", \"1M\" or \"1G\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Size, E> {
                parse_size(s).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A restart policy as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Never,
    Backoff { max_restarts: u32, initial_ms: u32, max_ms: u32 },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestartTable {
    policy: String,
    max_restarts: Option<u32>,
    initial_ms: Option<u32>,
    max_ms: Option<u32>,
}

impl RestartTable {
    fn resolve(self) -> Result<Restart, String> {
        match (self.policy.as_str(), self.max_restarts, self.initial_ms, self.max_ms) {
            ("never", None, None, None) => Ok(Restart::Never),
            ("never", ..) => Err("policy \"never\" takes no max_restarts, initial_ms or max_ms".to_string()),
            ("backoff", Some(max_restarts), Some(initial_ms), Some(max_ms)) => {
                Ok(Restart::Backoff { max_restarts, initial_ms, max_ms })
            }
            ("backoff", ..) => {
                Err("policy \"backoff\" needs max_restarts, initial_ms and max_ms".to_string())
            }
            (other, ..) => Err(format!("unknown restart policy `{other}`: \"never\" or \"backoff\"")),
        }
    }
}

impl<'de> Deserialize<'de> for Restart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Restart;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"never\" or { policy = \"backoff\", max_restarts, initial_ms, max_ms }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Restart, E> {
                match s {
                    "never" => Ok(Restart::Never),
                    "backoff" => Err(E::custom(
                        "a backoff policy is a table: { policy = \"backoff\", max_restarts, initial_ms, max_ms }",
                    )),
                    other => Err(E::custom(format!("unknown restart policy `{other}`: \"never\" or a table"))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Restart, A::Error> {
                let t = RestartTable::deserialize(MapAccessDeserializer::new(map))?;
                t.resolve().map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}
