//! The shape of a system file (`system.toml`) as serde sees it, with the spans of its parts.
//!
//! Every table denies unknown keys. Sizes are strings with a binary unit
//! (`"4K"`, `"1M"`, `"1G"`; `"1MiB"` too); a restart policy is `"never"` or
//! `{ policy = "backoff", max_restarts, initial_ms, max_ms }`; a capability is
//! `"console"` or a one-key table (`{ ioports = { base, count } }`,
//! `{ irq = N }`, `{ shared = "region", writable = bool }`, `{ domain = "name" }`).

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

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
}

/// One `[[shared]]` region.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedTable {
    pub name: Spanned<String>,
    pub size: Spanned<Size>,
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

/// A capability as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cap {
    Console,
    IoPorts { base: u16, count: u16 },
    Irq(u8),
    Shared { name: String, writable: bool },
    Domain(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ports {
    base: u16,
    count: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapTable {
    ioports: Option<Ports>,
    irq: Option<u8>,
    shared: Option<String>,
    writable: Option<bool>,
    domain: Option<String>,
}

impl CapTable {
    fn resolve(self) -> Result<Cap, String> {
        let kinds =
            [self.ioports.is_some(), self.irq.is_some(), self.shared.is_some(), self.domain.is_some()];
        if kinds.iter().filter(|&&k| k).count() != 1 {
            return Err("a capability table names exactly one of ioports, irq, shared, domain".to_string());
        }
        if self.writable.is_some() && self.shared.is_none() {
            return Err("`writable` goes only with `shared`".to_string());
        }
        Ok(match (self.ioports, self.irq, self.shared, self.domain) {
            (Some(p), ..) => Cap::IoPorts { base: p.base, count: p.count },
            (_, Some(line), ..) => Cap::Irq(line),
            (_, _, Some(name), _) => Cap::Shared { name, writable: self.writable.unwrap_or(false) },
            (.., Some(name)) => Cap::Domain(name),
            (None, None, None, None) => return Err("empty capability table".to_string()),
        })
    }
}

impl<'de> Deserialize<'de> for Cap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"console\" or a table { ioports | irq | shared | domain = … }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Cap, E> {
                match s {
                    "console" => Ok(Cap::Console),
                    other => Err(E::custom(format!(
                        "unknown capability `{other}`: \"console\" or a table {{ ioports | irq | shared | domain = … }}"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Cap, A::Error> {
                let t = CapTable::deserialize(MapAccessDeserializer::new(map))?;
                t.resolve().map_err(de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}
