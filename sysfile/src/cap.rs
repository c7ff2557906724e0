//! A capability as a system file writes it: `"console"` or a one-key table
//! with its options (`{ shared = "mailbox", writable = true }`,
//! `{ endpoint = "pp", badge = 7 }`, …). Options that do not go with the
//! kind are refused, so that a misplaced one is not silently ignored.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A capability as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cap {
    Console,
    IoPorts { base: u16, count: u16 },
    Irq(u8),
    Shared { name: String, writable: bool },
    Domain(String),
    Endpoint { name: String, server: bool, badge: u64 },
    Notification { name: String, wait: bool },
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
    endpoint: Option<String>,
    server: Option<bool>,
    badge: Option<u64>,
    notification: Option<String>,
    wait: Option<bool>,
}

const KINDS: &str = "ioports, irq, shared, domain, endpoint, notification";

impl CapTable {
    fn resolve(self) -> Result<Cap, String> {
        let kinds = [
            self.ioports.is_some(),
            self.irq.is_some(),
            self.shared.is_some(),
            self.domain.is_some(),
            self.endpoint.is_some(),
            self.notification.is_some(),
        ];
        if kinds.iter().filter(|&&k| k).count() != 1 {
            return Err(format!("a capability table names exactly one of {KINDS}"));
        }
        let only_with = |key: &str, set: bool, kind: &str, of: bool| match set && !of {
            true => Err(format!("`{key}` goes only with `{kind}`")),
            false => Ok(()),
        };
        only_with("writable", self.writable.is_some(), "shared", self.shared.is_some())?;
        only_with("server", self.server.is_some(), "endpoint", self.endpoint.is_some())?;
        only_with("badge", self.badge.is_some(), "endpoint", self.endpoint.is_some())?;
        only_with("wait", self.wait.is_some(), "notification", self.notification.is_some())?;
        let server = self.server.unwrap_or(false);
        if server && self.badge.is_some() {
            return Err("a badge marks a client's calls: a server's endpoint takes none".to_string());
        }
        Ok(if let Some(p) = self.ioports {
            Cap::IoPorts { base: p.base, count: p.count }
        } else if let Some(line) = self.irq {
            Cap::Irq(line)
        } else if let Some(name) = self.shared {
            Cap::Shared { name, writable: self.writable.unwrap_or(false) }
        } else if let Some(name) = self.domain {
            Cap::Domain(name)
        } else if let Some(name) = self.endpoint {
            Cap::Endpoint { name, server, badge: self.badge.unwrap_or(0) }
        } else if let Some(name) = self.notification {
            Cap::Notification { name, wait: self.wait.unwrap_or(false) }
        } else {
            return Err("empty capability table".to_string());
        })
    }
}

impl<'de> Deserialize<'de> for Cap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"console\" or a table { ioports | irq | shared | domain | endpoint | notification = … }")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Cap, E> {
                match s {
                    "console" => Ok(Cap::Console),
                    other => Err(E::custom(format!(
                        "unknown capability `{other}`: \"console\" or a table {{ {} = … }}",
                        KINDS.replace(", ", " | ")
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
