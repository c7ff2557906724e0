//! What a domain finds when it starts: a read-only page at [`START_INFO_VA`]
//! (its address also in `rdi`) naming the capabilities it was given. The
//! kernel writes one for the root domain; `mgmt` writes one for every domain
//! it starts.

/// Where the start page is mapped in every domain.
pub const START_INFO_VA: u64 = 0x7FFF_FFFF_F000;
/// The top of the first thread's stack (a guard page lies above it).
pub const STACK_TOP: u64 = 0x7FFF_FFFF_0000;
/// The highest address an image's segments may reach.
pub const IMAGE_END: u64 = 0x7F00_0000_0000;

/// "RYOKAN01".
pub const START_MAGIC: u64 = 0x3130_4E41_4B4F_5952;
pub const START_VERSION: u32 = 1;
/// The most capabilities a start page names.
pub const START_CAPS: usize = 48;

/// One capability given at start, by name ("console", "self",
/// "module:mgmt", "shared:ring", …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct NamedCap {
    pub name: [u8; 32],
    /// The slot (a [`crate::CapSlot`] value).
    pub slot: u32,
    /// The object type (a [`crate::ObjectType`] value).
    pub kind: u32,
    /// For memory: its size in bytes (a module's exact length).
    pub size: u64,
}

/// The start page.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct StartInfo {
    pub magic: u64,
    pub version: u32,
    pub ncaps: u32,
    /// The domain's name, NUL-padded.
    pub name: [u8; 32],
    /// Pages of memory quota the domain holds at start.
    pub quota_pages: u64,
    /// Which start of this domain this is (0 first, then 1, 2 … on restart).
    pub generation: u64,
    /// Time-stamp counter ticks per millisecond (0 if unknown).
    pub tsc_per_ms: u64,
    pub caps: [NamedCap; START_CAPS],
}

const _: () = assert!(core::mem::size_of::<StartInfo>() <= 4096);

fn name32(s: &str) -> [u8; 32] {
    let mut n = [0u8; 32];
    let len = s.len().min(32);
    n[..len].copy_from_slice(&s.as_bytes()[..len]);
    n
}

fn str32(n: &[u8; 32]) -> &str {
    let len = n.iter().position(|&b| b == 0).unwrap_or(32);
    core::str::from_utf8(&n[..len]).unwrap_or("")
}

impl NamedCap {
    pub const EMPTY: NamedCap = NamedCap { name: [0; 32], slot: 0, kind: 0, size: 0 };

    pub fn name(&self) -> &str {
        str32(&self.name)
    }
}

impl StartInfo {
    /// An empty start page for `name`.
    pub fn new(name: &str, quota_pages: u64, generation: u64, tsc_per_ms: u64) -> Self {
        Self {
            magic: START_MAGIC,
            version: START_VERSION,
            ncaps: 0,
            name: name32(name),
            quota_pages,
            generation,
            tsc_per_ms,
            caps: [NamedCap::EMPTY; START_CAPS],
        }
    }

    /// Adds a named capability; false if the page is full or the name too long.
    pub fn push(&mut self, name: &str, slot: u32, kind: u32, size: u64) -> bool {
        let i = self.ncaps as usize;
        if i >= START_CAPS || name.len() > 32 {
            return false;
        }
        self.caps[i] = NamedCap { name: name32(name), slot, kind, size };
        self.ncaps += 1;
        true
    }

    /// Whether the page is one this ABI understands.
    pub fn is_valid(&self) -> bool {
        self.magic == START_MAGIC && self.version == START_VERSION && self.ncaps as usize <= START_CAPS
    }

    pub fn name(&self) -> &str {
        str32(&self.name)
    }

    /// The capabilities given, in order.
    pub fn caps(&self) -> &[NamedCap] {
        &self.caps[..(self.ncaps as usize).min(START_CAPS)]
    }

    /// The capability named `name`.
    pub fn cap(&self, name: &str) -> Option<&NamedCap> {
        self.caps().iter().find(|c| c.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_caps_are_found() {
        let mut s = StartInfo::new("mgmt", 100, 0, 1000);
        assert!(s.push("console", 1, 6, 0));
        assert!(s.push("module:hello", 7, 3, 12345));
        assert!(!s.push("a-name-that-is-far-too-long-for-it", 1, 1, 0));
        assert!(s.is_valid());
        assert_eq!(s.name(), "mgmt");
        assert_eq!(s.cap("module:hello").map(|c| (c.slot, c.size)), Some((7, 12345)));
        assert!(s.cap("missing").is_none());
        for i in 2..START_CAPS {
            assert!(s.push("x", i as u32, 1, 0));
        }
        assert!(!s.push("y", 0, 1, 0), "full");
        s.ncaps = 1000;
        assert!(!s.is_valid());
        assert_eq!(s.caps().len(), START_CAPS);
    }
}
