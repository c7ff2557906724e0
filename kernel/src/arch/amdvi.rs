//! AMD-Vi DMA and interrupt remapping (AMD IOMMU spec rev. 3.x), behind
//! the interface `arch::iommu` names. Every unit the IVRS names gets, at
//! boot, a device table of all 64 Ki requester ids, each entry valid and
//! translated with no access (a function without a DMA space of its own
//! reaches nothing; an entry left invalid would pass its DMA through), a
//! command buffer and an event log; a Device with DMA gets its entry
//! pointed at a 4-level I/O page table of its own (`attach`), in which
//! `DeviceDma` maps its owner's memory.
//!
//! Interrupt remapping where the IVRS names the kernel's I/O APIC (a
//! special device entry; QEMU's `amd-iommu` gives one with `intremap=on`
//! only): every requester's interrupts are aborted (IntCtl 00b) but those
//! of a function or the I/O APIC given a table of its own (2,048 entries
//! of 32 bits, kept for the machine's life like VT-d's context tables),
//! whose entry `v` delivers vector `v` once bound (`remap`), so that a
//! device's write into 0xFEEx_xxxx raises nothing but its own bindings.
//! Messages keep the compatibility format: the unit finds the entry by
//! the vector in their data. QEMU 7.2's model delivers a remapped
//! interrupt as edge-triggered whatever the I/O APIC said (a level line
//! then stays pending at the I/O APIC: none of this kernel's tests uses
//! one under it).
//!
//! Commands (§2.4) are followed by a completion wait storing to a qword
//! of the unit's own; a unit that does not finish in time is reported as
//! the VT-d one is (`detach` keeps the tables). Events are read at the
//! bootstrap CPU's tick from the head to the tail the unit wrote, each
//! logged once as VT-d's faults are; an overflowed log is restarted
//! empty. Not yet done (the design is silent; these choices are this
//! file's): several PCI segments, the IVHD's device ranges and aliases
//! (every IVHD is taken to cover every function), the exclusion range
//! (left off), and x2APIC destinations above 255.

use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, Ordering};

use heapless::Vec;
use ipc::Error;
use x86_64::PhysAddr;

use crate::mem::kspace;
use crate::mem::paging::{Amdvi, AmdviTable};
use crate::platform::amdvi;
use crate::platform::iommu::{self, Units, MAX_UNITS};

/// A unit's memory: the device table (64 Ki entries of 32 bytes), then the
/// command buffer, the event log and the qword its waits store to.
const DEV_PAGES: u64 = 512;
const CMD: u64 = DEV_PAGES;
const LOG: u64 = DEV_PAGES + 1;
const DONE: u64 = DEV_PAGES + 2;
/// The most requesters with an interrupt table of their own.
const MAX_TABLES: usize = 32;

/// A unit the kernel drives: its registers (mapped) and memory.
struct Unit {
    regs: u64,
    mem: PhysAddr,
}

struct State {
    units: Units,
    on: Vec<Unit, MAX_UNITS>,
    /// Interrupt remapping, on: the I/O APIC's requester id.
    ioapic: Option<u16>,
    /// The interrupt tables made: requester, table (two pages).
    tables: Vec<(u16, PhysAddr), MAX_TABLES>,
}

static STATE: spin::Mutex<State> =
    spin::Mutex::new(State { units: Vec::new(), on: Vec::new(), ioapic: None, tables: Vec::new() });
static ON: AtomicBool = AtomicBool::new(false);

/// Whether AMD-Vi units are what the kernel drives.
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

impl Unit {
    fn read(&self, reg: usize) -> u64 {
        // SAFETY: `regs` is the kernel's uncached mapping of this unit's
        // 16 KiB of registers (`init`), `reg` one of them.
        unsafe { read_volatile((self.regs + reg as u64) as *const u64) }
    }
    fn write(&self, reg: usize, v: u64) {
        // SAFETY: as in `read`.
        unsafe { write_volatile((self.regs + reg as u64) as *mut u64, v) }
    }

    /// Where page `i` of the unit's memory is seen.
    fn at(&self, i: u64) -> u64 {
        kspace::phys_to_virt(self.mem + i * 4096).as_u64()
    }

    /// Has the unit run commands `cs`, then a completion wait, and waits
    /// (boundedly) for it; false if it did not finish.
    fn run(&self, cs: &[[u64; 2]]) -> bool {
        let done = self.at(DONE) as *mut u64;
        // SAFETY: the unit's own qword (`init`), through the direct map.
        unsafe { write_volatile(done, 0) };
        let mut tail = self.read(amdvi::CMD_TAIL) % 4096;
        for c in cs.iter().chain(&[amdvi::cmd_wait(self.mem.as_u64() + DONE * 4096)]) {
            // SAFETY: an entry of the unit's command buffer (`init`), 16-aligned.
            unsafe { write_volatile((self.at(CMD) + tail) as *mut [u64; 2], *c) };
            tail = (tail + 16) % 4096;
        }
        self.write(amdvi::CMD_TAIL, tail);
        // SAFETY: as above; the unit stores to it.
        (0..10_000_000).any(|_| unsafe { read_volatile(done) } == 1)
    }

    /// Writes device `devid`'s table entry `e` (its first qword, which
    /// grants DMA, last if it grants, first if not) and has the unit forget
    /// the old one and domain `did`'s translations.
    fn set(&self, devid: u16, e: [u64; 4], did: u16) -> bool {
        let at = (self.at(0) + 32 * u64::from(devid)) as *mut u64;
        let order = if e[0] >> 61 != 0 { [3, 2, 1, 0] } else { [0, 1, 2, 3] };
        // SAFETY: the entry of `devid` in the unit's device table (`init`).
        order.iter().for_each(|&i| unsafe { write_volatile(at.add(i), e[i]) });
        self.run(&[amdvi::cmd_for(amdvi::DTE, devid), amdvi::cmd_pages(did)])
    }
}

/// Turns on DMA remapping on every unit of `units` that can serve, and
/// interrupt remapping if they name the I/O APIC `ioapic`.
pub fn init(units: &Units, ioapic: Option<u8>) {
    let mut s = STATE.lock();
    let apic = units.iter().find_map(|u| u.ioapic.filter(|a| Some(a.0) == ioapic)).map(|a| a.1);
    for u in units {
        let regs = kspace::map_mmio(u.base, 0x4000).map(|v| v.as_u64());
        let (Ok(regs), Some(mem)) = (regs, kspace::alloc_contiguous(DEV_PAGES + 3)) else {
            log::warn!("iommu: AMD-Vi unit at {:#x} cannot serve: left off", u.base);
            continue;
        };
        let unit = Unit { regs, mem };
        let (blocked, table) = (amdvi::dte(None, 0, apic.map(|_| None)), unit.at(0) as *mut [u64; 4]);
        // SAFETY: the entries of the device table just allocated, 64 Ki of them.
        (0..=u16::MAX).for_each(|d| unsafe { write_volatile(table.add(usize::from(d)), blocked) });
        amdvi::start(mem.as_u64(), DEV_PAGES).into_iter().for_each(|(r, v)| unit.write(r, v));
        let all = unit.read(amdvi::EFR) & amdvi::IA_SUP != 0;
        let on = unit.run(if all { &[amdvi::CMD_ALL] } else { &[] });
        log::info!("iommu: AMD-Vi unit at {:#x}: DMA remapping {}", u.base, if on { "on" } else { "FAILED" });
        if on && s.on.push(unit).is_ok() {
            let _ = s.units.push(u.clone());
        }
    }
    ON.store(!s.on.is_empty(), Ordering::Relaxed);
    s.ioapic = apic.filter(|_| !s.on.is_empty());
    match s.ioapic {
        Some(a) => {
            log::info!("iommu: interrupt remapping on: own tables, others aborted (I/O APIC {a:#06x})")
        }
        None => log::warn!(
            "iommu: no interrupt remapping (no I/O APIC in the IVRS): devices may raise any vector"
        ),
    }
}

impl State {
    /// The unit that translates `devid`.
    fn unit(&self, devid: u16) -> Option<&Unit> {
        iommu::unit_of(&self.units, devid).and_then(|i| self.on.get(i))
    }

    /// The interrupt entries of `devid`'s table entry: its own table
    /// (made, and the entry pointed at it, if it had none), else aborted
    /// (out of memory); `None`: no remapping.
    fn ints(&mut self, devid: u16) -> Option<Option<u64>> {
        self.ioapic?;
        if let Some(t) = self.tables.iter().find(|t| t.0 == devid) {
            return Some(Some(t.1.as_u64()));
        }
        let t = kspace::alloc_contiguous(2).filter(|&t| self.tables.push((devid, t)).is_ok());
        if let (Some(t), Some(u)) = (t, self.unit(devid)) {
            let ints = amdvi::dte(None, 0, Some(Some(t.as_u64())))[2];
            // SAFETY: the third qword of `devid`'s entry in its unit's device table.
            unsafe { write_volatile((u.at(0) + 32 * u64::from(devid) + 16) as *mut u64, ints) };
            u.run(&[amdvi::cmd_for(amdvi::DTE, devid)]);
        }
        Some(t.map(|t| t.as_u64()))
    }
}

/// Points interrupt entry `vector` of function `source`'s table (`None`:
/// the I/O APIC's) at `vector` on local APIC `dest`, if `to` is
/// `Some((dest, source, level))`; else takes entry `vector` away from
/// every table (its binding ended). `Some(false)`: done, or no remapping
/// (the message keeps the compatibility format either way); `None`: the
/// table could not be made, or a unit did not finish.
pub fn remap(vector: u8, to: Option<(u32, Option<u16>, bool)>) -> Option<bool> {
    let mut s = STATE.lock();
    let Some(ioapic) = s.ioapic else { return Some(false) };
    let (entry, only) =
        to.map_or((0, None), |(dest, source, _)| (amdvi::irte(vector, dest), source.or(Some(ioapic))));
    if let Some(devid) = only {
        s.ints(devid)??;
    }
    let done = s.tables.iter().filter(|t| only.is_none_or(|d| d == t.0)).all(|&(devid, t)| {
        let at = kspace::phys_to_virt(t + 4 * u64::from(vector)).as_mut_ptr::<u32>();
        // SAFETY: entry `vector` (below 256 of 2,048) of a table this file made.
        unsafe { write_volatile(at, entry) };
        s.unit(devid).is_some_and(|u| u.run(&[amdvi::cmd_for(amdvi::IRT, devid)]))
    });
    done.then_some(false)
}

/// Gives function `bdf` a DMA space of its own, domain id `did`: its root
/// and the frames it took. `Ok(None)` where no unit is on.
pub fn attach(bdf: u16, did: u16) -> Result<Option<(PhysAddr, u64)>, Error> {
    let mut s = STATE.lock();
    if s.on.is_empty() {
        return Ok(None);
    }
    let ints = s.ints(bdf);
    let unit = s.unit(bdf).filter(|_| ints != Some(None)).ok_or(Error::QuotaExceeded)?;
    let (table, taken) = kspace::gspace_new::<Amdvi>().map_err(|_| Error::QuotaExceeded)?;
    let done = unit.set(bdf, amdvi::dte(Some(table.root().as_u64()), did, ints), did);
    done.then_some(Some((table.root(), taken))).ok_or(Error::Busy) // its tables kept
}

/// Takes function `bdf`'s DMA space (root `root`, domain id `did`) away:
/// its entry blocks again, the unit forgets it, then its tables are freed.
/// Returns the frames freed; `None` (tables kept for good) if the unit did
/// not finish.
pub fn detach(bdf: u16, did: u16, root: PhysAddr) -> Option<u64> {
    let mut s = STATE.lock();
    let ints = s.ints(bdf);
    if s.unit(bdf).is_some_and(|u| u.set(bdf, amdvi::dte(None, 0, ints), did)) {
        return Some(kspace::gspace_destroy(AmdviTable::from_root(root)));
    }
    log::warn!("iommu: invalidation for {bdf:#06x} did not finish: its tables are kept");
    None
}

/// Makes function `bdf`'s unit forget domain `did`'s translations; false
/// if it did not finish.
#[must_use]
pub fn flush(bdf: u16, did: u16) -> bool {
    STATE.lock().unit(bdf).is_some_and(|u| u.run(&[amdvi::cmd_pages(did)]))
}

/// Reads and logs every event the units wrote since the last call (at
/// the bootstrap CPU's tick; a unit with none costs two register reads).
pub fn poll_faults() {
    let Some(s) = STATE.try_lock() else { return };
    for u in &s.on {
        let (mut head, tail) = (u.read(amdvi::EVT_HEAD) % 4096, u.read(amdvi::EVT_TAIL) % 4096);
        while head != tail {
            // SAFETY: an entry of the unit's event log (`init`), 16-aligned.
            let (b, addr, code, write, irq) =
                amdvi::event(unsafe { read_volatile((u.at(LOG) + head) as *const _) });
            let what = if irq { "interrupt fault" } else { "DMA fault" };
            let rw = if write { "write" } else { "read" };
            let (bus, dev, func) = (b >> 8, b >> 3 & 0x1f, b & 7);
            log::warn!("iommu: {what}: device {bus:02x}:{dev:02x}.{func} {rw} at {addr:#x} blocked (event {code:#x})");
            head = (head + 16) % 4096;
        }
        u.write(amdvi::EVT_HEAD, head);
        if u.read(amdvi::STATUS) & amdvi::EVT_OVERFLOW != 0 {
            log::warn!("iommu: AMD-Vi event log overflowed: events lost, logging restarted");
            let control = u.read(amdvi::CONTROL);
            u.write(amdvi::CONTROL, control & !amdvi::EVT_LOG_EN);
            u.write(amdvi::STATUS, amdvi::EVT_OVERFLOW); // written 1 to clear
            u.write(amdvi::CONTROL, control);
        }
    }
}
