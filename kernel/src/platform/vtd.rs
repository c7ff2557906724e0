//! Intel VT-d's in-memory structures and register fields (VT-d spec rev.
//! 3.x, ch. 9-11): root and context entries, invalidation commands, fault
//! records. Pure encoding, tested on the host; `arch::vtd` writes them.

/// Register offsets (§11.4).
pub const CAP: usize = 0x08;
pub const ECAP: usize = 0x10;
pub const GCMD: usize = 0x18;
pub const GSTS: usize = 0x1c;
pub const RTADDR: usize = 0x20;
pub const CCMD: usize = 0x28;
pub const FSTS: usize = 0x34;
pub const FECTL: usize = 0x38;
/// Global command and status bits (§11.4.4-5): translation enable, set
/// root table pointer.
pub const TE: u32 = 1 << 31;
pub const SRTP: u32 = 1 << 30;
/// The bits of GSTS that stay set by writing them back to GCMD (§11.4.4:
/// one-shot commands excluded).
pub const PERSISTENT: u32 = 0x96ff_ffff;
/// FSTS's primary fault overflow bit, written 1 to clear (§11.4.9.1).
pub const PFO: u32 = 1 << 0;
/// FECTL's interrupt mask: fault events are read by polling (§11.4.9.2).
pub const IM: u32 = 1 << 31;

/// What a unit's capability registers say (§11.4.2-3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// Table levels of the second-level tables to use: 4 (48-bit) where
    /// supported, else 3 (39-bit).
    pub levels: u8,
    /// Domain ids below this.
    pub domains: u32,
    /// Fault recording registers: their offset and how many.
    pub faults: (usize, usize),
    /// The IOTLB invalidate register's offset.
    pub iotlb: usize,
}

impl Caps {
    /// The unit's capabilities, if it can serve the kernel's tables.
    pub fn decode(cap: u64, ecap: u64) -> Option<Self> {
        let sagaw = cap >> 8 & 0x1f;
        let levels = if sagaw & 0b100 != 0 {
            4
        } else if sagaw & 0b010 != 0 {
            3
        } else {
            return None;
        };
        let domains = 1 << (4 + 2 * (cap & 7));
        let faults = ((cap >> 24 & 0x3ff) as usize * 16, (cap >> 40 & 0xff) as usize + 1);
        Some(Caps { levels, domains, faults, iotlb: (ecap >> 8 & 0x3ff) as usize * 16 + 8 })
    }
}

/// A present root entry for bus tables at `context` (§9.1).
pub fn root_entry(context: u64) -> [u64; 2] {
    [context & !0xfff | 1, 0]
}

/// A present context entry (§9.3): requests translated through the
/// second-level table at `table` of `levels` levels, domain id `did`,
/// faults recorded.
pub fn context_entry(table: u64, levels: u8, did: u16) -> [u64; 2] {
    [table & !0xfff | 1, u64::from(levels - 2) | u64::from(did) << 8]
}

/// Context-command register: invalidate the context cache globally
/// (§11.4.7: ICC, CIRG 01).
pub const CCMD_GLOBAL: u64 = 1 << 63 | 1 << 61;

/// IOTLB invalidate register: every entry of domain `did`, reads and
/// writes drained first (§11.4.8.1: IVT, IIRG 10, DR, DW).
pub fn iotlb_domain(did: u16) -> u64 {
    1 << 63 | 2 << 60 | 1 << 49 | 1 << 48 | u64::from(did) << 32
}

/// Bit 63 of CCMD and of the IOTLB register: the command is still running.
pub const BUSY: u64 = 1 << 63;

/// A recorded fault (§11.4.14) in record `lo`, `hi`, if its F bit says it
/// holds one: the requester (`bus << 8 | devfn`), the page it asked for,
/// why, and whether it read.
pub fn fault(lo: u64, hi: u64) -> Option<(u16, u64, u8, bool)> {
    (hi >> 63 != 0).then_some((hi as u16, lo & !0xfff, (hi >> 32) as u8, hi >> 62 & 1 != 0))
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/platform/vtd.rs"]
mod tests;
