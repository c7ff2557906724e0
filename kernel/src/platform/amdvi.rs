//! AMD-Vi's in-memory structures and register fields (AMD I/O
//! Virtualization Technology (IOMMU) Specification rev. 3.x, ch. 2-3):
//! device table entries, interrupt remapping table entries (the 32-bit
//! format), commands, event log entries. Pure encoding, tested on the
//! host; `arch::amdvi` writes them. The I/O page tables are
//! `mem::paging::Amdvi`.

/// Register offsets (§3.4): device table, command buffer and event log
/// bases, control; the command buffer's head and tail, the event log's,
/// status.
pub const DEV_TABLE: usize = 0x00;
/// The extended feature register (§3.4.5) and its INVALIDATE_IOMMU_ALL bit.
pub const EFR: usize = 0x30;
pub const IA_SUP: u64 = 1 << 6;
pub const CMD_BASE: usize = 0x08;
pub const EVT_BASE: usize = 0x10;
pub const CONTROL: usize = 0x18;
pub const CMD_TAIL: usize = 0x2008;
pub const EVT_HEAD: usize = 0x2010;
pub const EVT_TAIL: usize = 0x2018;
pub const STATUS: usize = 0x2020;
/// Control bits (§3.4.3): IOMMU, event log and command buffer enables.
pub const IOMMU_EN: u64 = 1 << 0;
pub const EVT_LOG_EN: u64 = 1 << 2;
pub const CMD_BUF_EN: u64 = 1 << 12;
/// Status (§3.4.13): the event log overflowed (written 1 to clear).
pub const EVT_OVERFLOW: u64 = 1 << 0;
/// The register writes that start a unit whose memory is at `mem`: a
/// device table of `pages` pages (1 to 512), then a command buffer and an
/// event log of a page each (256 entries of 16 bytes: length field 8);
/// the unit off first, then on with both.
pub fn start(mem: u64, pages: u64) -> [(usize, u64); 5] {
    let (ring, on) = (|page: u64| (mem + page * 4096) & ADDR | 8 << 56, IOMMU_EN | EVT_LOG_EN | CMD_BUF_EN);
    let (cmd, log) = (ring(pages), ring(pages + 1));
    [(CONTROL, 0), (DEV_TABLE, mem & ADDR | (pages - 1)), (CMD_BASE, cmd), (EVT_BASE, log), (CONTROL, on)]
}

const ADDR: u64 = 0x000f_ffff_ffff_f000;
/// A device table entry's valid and translation-valid bits; its I/O
/// read and write permissions (bits 61, 62).
const V_TV: u64 = 0b11;
const IR_IW: u64 = 0b11 << 61;

/// A device table entry (§2.2.2.1). `Some(table)`: DMA translated through
/// the 4-level I/O page table at `table` (Mode 4, reads and writes as its
/// entries say), domain id `did`; `None`: valid and translated, with no
/// access (every DMA request blocked). `irt`: fixed and arbitrated
/// interrupts remapped through the 2048-entry table there (IntCtl 10b),
/// or, `Some(None)`, aborted (IntCtl 00b); `None`: not remapped (IV 0).
pub fn dte(table: Option<u64>, did: u16, irt: Option<Option<u64>>) -> [u64; 4] {
    let dma = table.map_or(0, |t| 4 << 9 | t & ADDR | IR_IW);
    let ints = irt.map_or(0, |t| t.map_or(1, |t| 1 | 11 << 1 | t & 0x000f_ffff_ffff_ffc0 | 2 << 60));
    [V_TV | dma, u64::from(did), ints, 0]
}

/// A remapping table entry (§2.2.5.1, the 32-bit format): `vector`,
/// fixed, physical destination local APIC `apic` (xAPIC ids).
pub fn irte(vector: u8, apic: u32) -> u32 {
    1 | (apic & 0xff) << 8 | u32::from(vector) << 16
}

/// Commands (§2.4): every cache forgotten (where EFR says IA_SUP); a
/// wait that stores 1 to the qword at `status` when the commands before
/// it are done; a device's table entry, or its interrupt remapping
/// table, forgotten (`cmd_for`); every page of domain `did` forgotten,
/// its table entries too.
pub const CMD_ALL: [u64; 2] = [8 << 60, 0];
pub fn cmd_wait(status: u64) -> [u64; 2] {
    [1 << 60 | status & 0x000f_ffff_ffff_fff8 | 1, 1]
}
/// The opcodes of the commands naming a device: INVALIDATE_DEVTAB_ENTRY,
/// INVALIDATE_INTERRUPT_TABLE.
pub const DTE: u64 = 2;
pub const IRT: u64 = 5;
pub fn cmd_for(op: u64, devid: u16) -> [u64; 2] {
    [op << 60 | u64::from(devid), 0]
}
pub fn cmd_pages(did: u16) -> [u64; 2] {
    [3 << 60 | u64::from(did) << 32, 0x7fff_ffff_ffff_f000 | 0b11]
}

/// The event in log entry `e` (§2.5; its flags in the second dword's
/// bits 27:16): the device it names, the address, its code (2: an I/O
/// page fault, 1: an illegal device table entry, ...), whether a write,
/// and whether an interrupt request (flag I).
pub fn event(e: [u64; 2]) -> (u16, u64, u8, bool, bool) {
    (e[0] as u16, e[1], (e[0] >> 60) as u8, e[0] >> 53 & 1 != 0, e[0] >> 51 & 1 != 0)
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/platform/amdvi.rs"]
mod tests;
