//! Intel VT-d's in-memory structures and register fields (VT-d spec rev.
//! 3.x, ch. 5 and 9-11): root and context entries, interrupt remapping
//! table entries and the remappable messages that name them, invalidation
//! descriptors, fault records. Pure encoding, tested on the host;
//! `arch::vtd` writes them.

/// Register offsets (§11.4).
pub const CAP: usize = 0x08;
pub const ECAP: usize = 0x10;
pub const GCMD: usize = 0x18;
pub const GSTS: usize = 0x1c;
pub const RTADDR: usize = 0x20;
pub const FSTS: usize = 0x34;
pub const FECTL: usize = 0x38;
/// The invalidation queue's tail and address, the interrupt remapping
/// table's address (§11.4.9-10).
pub const IQT: usize = 0x88;
pub const IQA: usize = 0x90;
pub const IRTA: usize = 0xb8;
/// Global command and status bits (§11.4.4-5): translation enable, set
/// root table pointer, queued invalidation enable, interrupt remapping
/// enable, set interrupt remap table pointer.
pub const TE: u32 = 1 << 31;
pub const SRTP: u32 = 1 << 30;
pub const QIE: u32 = 1 << 26;
pub const IRE: u32 = 1 << 25;
pub const SIRTP: u32 = 1 << 24;
/// The bits of GSTS that stay set by writing them back to GCMD (§11.4.4:
/// one-shot commands excluded, and CFI, bit 23: compatibility-format
/// interrupts are never let through, whatever firmware left).
pub const PERSISTENT: u32 = 0x967f_ffff;
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
    /// Interrupt remapping (ECAP.IR).
    pub remaps: bool,
}

impl Caps {
    /// The unit's capabilities, if it can serve the kernel's tables and
    /// has queued invalidation (ECAP.QI).
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
        (ecap & 0b10 != 0).then_some(Caps { levels, domains, faults, remaps: ecap & 0b1000 != 0 })
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

/// A recorded fault (§11.4.14) in record `lo`, `hi`, if its F bit says it
/// holds one: the requester (`bus << 8 | devfn`), the page it asked for
/// (of an interrupt request, reasons 20h-26h: its handle), why, and
/// whether it read.
pub fn fault(lo: u64, hi: u64) -> Option<(u16, u64, u8, bool)> {
    let (why, at) = ((hi >> 32) as u8, if hi >> 36 & 0xf == 2 { lo >> 48 } else { lo & !0xfff });
    (hi >> 63 != 0).then_some((hi as u16, at, why, hi >> 62 & 1 != 0))
}

/// A present remapping table entry (§9.10): `vector`, fixed delivery, edge
/// (or level), to the local APIC `apic` in physical mode (xAPIC format),
/// for requests whose requester id is all of `source`'s (SVT 01, SQ 00;
/// `None`: any requester's).
pub fn irte(vector: u8, apic: u32, level: bool, source: Option<u16>) -> [u64; 2] {
    let lo = 1 | u64::from(level) << 4 | u64::from(vector) << 16 | u64::from(apic & 0xff) << 40;
    [lo, source.map_or(0, |s| u64::from(s) | 1 << 18)]
}

/// The address of a remappable-format MSI naming `handle` (§5.1.5.2:
/// handle[14:0] at bits 19:5, the format bit 4, no subhandle, handle[15]
/// at bit 2).
pub fn msi_address(handle: u16) -> u32 {
    0xfee0_0000 | u32::from(handle & 0x7fff) << 5 | 1 << 4 | u32::from(handle >> 15) << 2
}

/// An I/O APIC redirection entry's remappable-format fields (§5.1.5.1):
/// handle[14:0] at bits 63:49, the format bit 48, handle[15] at bit 11.
pub fn ioapic_handle(handle: u16) -> u64 {
    u64::from(handle & 0x7fff) << 49 | 1 << 48 | u64::from(handle >> 15) << 11
}

/// Invalidation descriptors (§6.5.2): the context cache, globally; the
/// IOTLB for domain `did` (`None`: every domain), reads and writes
/// drained; the interrupt entry cache at `handle` (`None`: all of it); a
/// wait that writes 1 to the dword at `status` when those before it are
/// done.
pub const QI_CONTEXT: [u64; 2] = [1 | 1 << 4, 0];
pub fn qi_iotlb(did: Option<u16>) -> [u64; 2] {
    [2 | 3 << 6 | did.map_or(1 << 4, |d| 2 << 4 | u64::from(d) << 16), 0]
}
pub fn qi_iec(handle: Option<u16>) -> [u64; 2] {
    [4 | handle.map_or(0, |h| 1 << 4 | u64::from(h) << 32), 0]
}
pub fn qi_wait(status: u64) -> [u64; 2] {
    [5 | 1 << 5 | 1 << 32, status & !3]
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/platform/vtd.rs"]
mod tests;
