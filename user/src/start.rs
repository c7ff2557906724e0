//! Reading the capabilities a domain was given at start, by name.

use ipc::boot::StartInfo;
use ipc::CapSlot;

use crate::layout;

/// The name prefix of a shared region's capability: `shared:<region>`.
pub const SHARED_PREFIX: &str = "shared:";
/// The name prefix of another domain's capability: `domain:<domain>`.
pub const DOMAIN_PREFIX: &str = "domain:";
/// The name prefix of an interrupt line's capability: `irq:<line>`.
pub const IRQ_PREFIX: &str = "irq:";
/// The name prefix of an endpoint's capability: `endpoint:<endpoint>`.
pub const ENDPOINT_PREFIX: &str = "endpoint:";
/// The name prefix of a notification's capability: `notification:<name>`.
pub const NOTIFICATION_PREFIX: &str = "notification:";
/// The name prefix of a boot module's capability (root domain only).
pub const MODULE_PREFIX: &str = "module:";

/// A shared memory region as its domain finds it: already mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharedRegion {
    pub slot: CapSlot,
    /// Where it is mapped.
    pub va: u64,
    /// Its size in bytes.
    pub len: u64,
}

/// Lookups of the start page's capabilities.
pub trait Caps {
    /// The slot of the capability named `name`.
    fn slot(&self, name: &str) -> Option<CapSlot>;

    /// The domain's own capability (`self`).
    fn self_domain(&self) -> Option<CapSlot> {
        self.slot("self")
    }

    /// The debug console (`console`).
    fn console(&self) -> Option<CapSlot> {
        self.slot("console")
    }

    /// The shared region `name` (the capability `shared:<name>`), mapped at
    /// [`layout::shared_va`] of its ordinal among the shared capabilities.
    fn shared(&self, name: &str) -> Option<SharedRegion>;

    /// The slot of the capability named `<prefix><name>`.
    fn prefixed(&self, prefix: &str, name: &str) -> Option<CapSlot>;

    /// The endpoint `name` (the capability `endpoint:<name>`): READ|WRITE
    /// for its server, WRITE (badged) for a client.
    fn endpoint(&self, name: &str) -> Option<CapSlot> {
        self.prefixed(ENDPOINT_PREFIX, name)
    }

    /// The notification `name` (the capability `notification:<name>`):
    /// READ|WRITE for its waiter, WRITE for a signaller.
    fn notification(&self, name: &str) -> Option<CapSlot> {
        self.prefixed(NOTIFICATION_PREFIX, name)
    }
}

impl Caps for StartInfo {
    fn slot(&self, name: &str) -> Option<CapSlot> {
        self.cap(name).map(|c| CapSlot(c.slot))
    }

    fn prefixed(&self, prefix: &str, name: &str) -> Option<CapSlot> {
        let named = |c: &&ipc::boot::NamedCap| c.name().strip_prefix(prefix) == Some(name);
        self.caps().iter().find(named).map(|c| CapSlot(c.slot))
    }

    fn shared(&self, name: &str) -> Option<SharedRegion> {
        let shared = self.caps().iter().filter(|c| c.name().starts_with(SHARED_PREFIX));
        shared
            .enumerate()
            .find(|(_, c)| c.name().strip_prefix(SHARED_PREFIX) == Some(name))
            .map(|(i, c)| SharedRegion { slot: CapSlot(c.slot), va: layout::shared_va(i), len: c.size })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_regions_are_found_by_ordinal() {
        let mut s = StartInfo::new("a", 10, 0, 0);
        assert!(s.push("self", 1, 1, 0));
        assert!(s.push("shared:ring", 5, 3, 8192));
        assert!(s.push("console", 2, 6, 0));
        assert!(s.push("shared:mailbox", 7, 3, 4096));
        assert_eq!(s.self_domain(), Some(CapSlot(1)));
        assert_eq!(s.console(), Some(CapSlot(2)));
        assert_eq!(
            s.shared("mailbox"),
            Some(SharedRegion { slot: CapSlot(7), va: layout::shared_va(1), len: 4096 })
        );
        assert_eq!(s.shared("ring").map(|r| r.va), Some(layout::SHARED_BASE));
        assert_eq!(s.shared("nope"), None);
        assert_eq!(s.slot("shared:ring"), Some(CapSlot(5)));
    }

    #[test]
    fn channels_are_found_by_name() {
        let mut s = StartInfo::new("a", 10, 0, 0);
        assert!(s.push("endpoint:pp", 3, 7, 0));
        assert!(s.push("notification:pp", 4, 8, 0));
        assert_eq!(s.endpoint("pp"), Some(CapSlot(3)));
        assert_eq!(s.notification("pp"), Some(CapSlot(4)));
        assert_eq!(s.endpoint("p"), None);
        assert_eq!(s.notification("doorbell"), None);
    }
}
