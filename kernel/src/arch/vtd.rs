//! Intel VT-d DMA remapping (VT-d spec rev. 3.x): every unit the DMAR
//! names gets a root table and translation on at boot, so that a function
//! with no context entry reaches nothing; a Device with DMA gets a context
//! entry and a second-level table of its own (`attach`), in which
//! `DeviceDma` maps its owner's memory.
//!
//! Interrupt remapping (ch. 5), where every unit has it (ECAP.IR, and
//! queued invalidation, ECAP.QI, which its entry cache needs): one table
//! of 256 entries that every unit reads, entry (handle) `v` delivering
//! vector `v`, for requests from one requester id only (SVT 01: the
//! function a binding's MSI-X entry is of, or the I/O APIC the DMAR names
//! for its lines); compatibility-format requests are blocked (CFI clear).
//! So a device's write into 0xFEEx_xxxx raises nothing but what its own
//! entries say. An entry is made when a vector is bound (`remap`) and
//! taken away when its binding ends (`unremap`), the units' entry caches
//! told each time.
//!
//! Invalidation is queued (§6.5.2; a unit without ECAP.QI is not used:
//! the interrupt entry cache has no register-based invalidation): global
//! for the context cache and domain-selective for the IOTLB. Faults, of DMA (reasons below 20h) and
//! of interrupt requests (20h-26h), are read by polling the fault
//! recording registers at the bootstrap CPU's tick, each logged once with
//! requester and address or handle, and cleared.
//!
//! Not yet done: non-coherent units (ECAP.C = 0: the tables would need
//! cache flushes; such a unit is used with a warning), RMRRs (firmware
//! DMA, e.g. USB legacy emulation, is blocked), scopes by bridge path,
//! and x2APIC destinations above 255 (EIME). AMD-Vi is `arch::amdvi`, both
//! behind `arch::iommu`.

use ipc::Error;
use x86_64::PhysAddr;

use crate::mem::kspace;
use crate::mem::paging::{Vtd, VtdTable};
use crate::platform::iommu::{self, Units, MAX_UNITS};
use crate::platform::vtd::{self, Caps};

/// A unit the kernel drives: its registers (mapped), capabilities, and
/// root table, which the pages of its invalidation queue (256
/// descriptors) and of the dword its waits write follow.
struct Unit {
    regs: u64,
    caps: Caps,
    root: PhysAddr,
}

/// Interrupt remapping, on: the table, and the requester id of the I/O
/// APIC's requests (`None`: the DMAR names it not; its entries any's).
type Remapping = (PhysAddr, Option<u16>);

static UNITS: spin::Mutex<(Units, heapless::Vec<Unit, MAX_UNITS>, Option<Remapping>)> =
    spin::Mutex::new((heapless::Vec::new(), heapless::Vec::new(), None));

impl Unit {
    /// Register `reg`, a `T` (u32 or u64) at its natural alignment.
    fn read<T: Copy>(&self, reg: usize) -> T {
        // SAFETY: `regs` is the kernel's uncached mapping of this unit's
        // register page (`init`), `reg` one of its registers (below 4 KiB).
        unsafe { core::ptr::read_volatile((self.regs + reg as u64) as *const T) }
    }
    fn write<T>(&self, reg: usize, v: T) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.regs + reg as u64) as *mut T, v) }
    }

    /// Waits, boundedly, until `done` holds of the unit.
    fn wait(&self, done: impl Fn(&Self) -> bool) -> bool {
        (0..10_000_000).any(|_| done(self)) // each try a register read
    }

    /// Issues global command `bit` (keeping what is on) and waits for
    /// its status bit.
    fn command(&self, bit: u32) -> bool {
        self.write(vtd::GCMD, self.read::<u32>(vtd::GSTS) & vtd::PERSISTENT | bit);
        self.wait(|u| u.read::<u32>(vtd::GSTS) & bit != 0)
    }

    /// Invalidates the context cache and domain `did`'s IOTLB entries
    /// (`None`: every domain's); false if the unit did not finish.
    fn invalidate(&self, did: Option<u16>) -> bool {
        self.queued(&[vtd::QI_CONTEXT, vtd::qi_iotlb(did)])
    }

    /// Has the unit run descriptors `ds` from its queue, and waits until
    /// it has; false if it did not finish.
    fn queued(&self, ds: &[[u64; 2]]) -> bool {
        let q = self.root + 4096u64;
        let status = kspace::phys_to_virt(q + 4096u64).as_mut_ptr::<u32>();
        // SAFETY: the first dword of the page after the queue, the unit's
        // own (`init`), through the direct map; the unit writes it.
        unsafe { core::ptr::write_volatile(status, 0) };
        let mut tail = self.read::<u64>(vtd::IQT) % 4096;
        for d in ds.iter().chain(&[vtd::qi_wait(q.as_u64() + 4096)]) {
            put(Unit::entry(q, tail as usize / 16), *d);
            tail = (tail + 16) % 4096;
        }
        self.write(vtd::IQT, tail);
        // SAFETY: as above.
        self.wait(|_| unsafe { core::ptr::read_volatile(status) } == 1)
    }

    /// The 16-byte entry `i` of the table at `table`, through the direct map.
    fn entry(table: PhysAddr, i: usize) -> *mut [u64; 2] {
        (kspace::phys_to_virt(table).as_u64() + 16 * i as u64) as *mut [u64; 2]
    }
}

/// Writes entry `e`: its present bit (bit 0) last if set, first if clear.
fn put(at: *mut [u64; 2], e: [u64; 2]) {
    for i in if e[0] & 1 != 0 { [1, 0] } else { [0, 1] } {
        // SAFETY: `at` is an entry of a table or queue the kernel
        // allocated (`Unit::entry`), reached through the direct map; the
        // unit reads it, so the halves are written volatile.
        unsafe { core::ptr::write_volatile(&mut (*at)[i], e[i]) };
    }
}

/// Turns on DMA remapping on every unit of `units` that can serve, and
/// interrupt remapping if every one can (`ioapic`: the id of the I/O APIC
/// the kernel drives).
pub fn init(units: &Units, ioapic: Option<u8>) {
    let mut all = UNITS.lock();
    for u in units {
        let Ok(regs) = kspace::map_mmio(u.base, 4096).map(|v| v.as_u64()) else { continue };
        let probe = Unit { regs, caps: Caps::default(), root: PhysAddr::zero() };
        let (cap, ecap): (u64, u64) = (probe.read(vtd::CAP), probe.read(vtd::ECAP));
        let caps = Caps::decode(cap, ecap).filter(|c| c.faults.0 + 16 * c.faults.1 <= 4096);
        let (Some(caps), Some(root)) = (caps, kspace::alloc_contiguous(3)) else {
            log::warn!("iommu: VT-d unit at {:#x} cannot serve (CAP {cap:#x}): left off", u.base);
            continue;
        };
        let unit = Unit { regs, caps, root };
        unit.write(vtd::FECTL, vtd::IM);
        unit.write(vtd::RTADDR, root.as_u64());
        unit.write(vtd::IQA, root.as_u64() + 4096); // 256 descriptors of 128 bits
        let on = unit.command(vtd::QIE) && unit.command(vtd::SRTP);
        let on = on && unit.invalidate(None) && unit.command(vtd::TE);
        let (on, coherent) = (if on { "on" } else { "FAILED" }, if ecap & 1 != 0 { "" } else { "not " });
        let (base, levels, records) = (u.base, caps.levels, caps.faults.1);
        log::info!("iommu: VT-d unit at {base:#x}: DMA remapping {on}, {levels}-level tables, {records} fault records, {coherent}coherent (tables not flushed from caches)");
        if on == "on" && all.1.push(unit).is_ok() {
            let _ = all.0.push(u.clone());
        }
    }
    let every = !all.1.is_empty() && all.1.iter().all(|u| u.caps.remaps);
    let Some(table) = every.then(|| kspace::alloc_contiguous(1)).flatten() else {
        return log::warn!("iommu: no interrupt remapping (a unit lacks it): devices may raise any vector");
    };
    let on = all.1.iter().all(|u| {
        u.write(vtd::IRTA, table.as_u64() | 7); // 2^(7+1) entries (§11.4.10.1)
        u.command(vtd::SIRTP) && u.queued(&[vtd::qi_iec(None)]) && u.command(vtd::IRE)
    });
    let ioapic = all.0.iter().find_map(|u| u.ioapic.filter(|a| Some(a.0) == ioapic)).map(|a| a.1);
    let state = if on { "on: compatibility format blocked" } else { "FAILED" };
    log::info!("iommu: interrupt remapping {state}; entries for one requester (the I/O APIC: {ioapic:x?})");
    all.2 = on.then_some((table, ioapic));
}

/// Points interrupt handle `vector` at `vector` on local APIC `dest`,
/// edge or `level`, for requests of function `source` alone (`None`: the
/// I/O APIC's), if `to` is `Some((dest, source, level))`; else takes the
/// entry away (its binding ended: its requests fault from now on). The
/// units' entry caches are told. `Some(true)`: the handle is the vector;
/// `Some(false)`: no remapping (the compatibility format is used);
/// `None`: a unit did not finish invalidating (an entry taken away may
/// then still be cached, for its function alone, whose MSI-X the caller
/// masked first).
pub fn remap(vector: u8, to: Option<(u32, Option<u16>, bool)>) -> Option<bool> {
    let all = UNITS.lock();
    let Some((table, ioapic)) = all.2 else { return Some(false) };
    let entry = to.map_or([0, 0], |(dest, source, level)| vtd::irte(vector, dest, level, source.or(ioapic)));
    put(Unit::entry(table, usize::from(vector)), entry);
    all.1.iter().all(|u| u.queued(&[vtd::qi_iec(Some(u16::from(vector)))])).then_some(true)
}

/// Runs `f` on the unit that translates function `bdf`, if one does.
fn with_unit<R>(bdf: u16, f: impl FnOnce(&Unit) -> R) -> Option<R> {
    let all = UNITS.lock();
    iommu::unit_of(&all.0, bdf).and_then(|i| all.1.get(i)).map(f)
}

impl Unit {
    /// Function `bdf`'s context entry; its bus's context table made first
    /// if `make` (then kept for the machine's life, as the root table).
    fn context(&self, bdf: u16, make: bool) -> Option<*mut [u64; 2]> {
        let root_entry = Unit::entry(self.root, usize::from(bdf >> 8));
        // SAFETY: an entry of the unit's root table (`Unit::entry`).
        let mut context = unsafe { core::ptr::read_volatile(root_entry) }[0];
        if context & 1 == 0 {
            context = if make { kspace::alloc_contiguous(1)?.as_u64() } else { return None };
            put(root_entry, vtd::root_entry(context));
        }
        Some(Unit::entry(PhysAddr::new(context & !0xfff), usize::from(bdf & 0xff)))
    }
}

/// Gives function `bdf` a DMA space of its own, domain id `did`: its root
/// and the frames it took. `Ok(None)` where no IOMMU translates.
pub fn attach(bdf: u16, did: u16) -> Result<Option<(PhysAddr, u64)>, Error> {
    if UNITS.lock().1.is_empty() {
        return Ok(None);
    }
    with_unit(bdf, |u| {
        if u32::from(did) >= u.caps.domains || did == 0 {
            return Err(Error::OutOfObjects);
        }
        let at = u.context(bdf, true).ok_or(Error::QuotaExceeded)?;
        let (table, mut taken) = kspace::gspace_new::<Vtd>().map_err(|_| Error::QuotaExceeded)?;
        // A 3-level unit walks from what the 4-level table's first entry
        // holds: device addresses stay below 512 GiB.
        let top = match u.caps.levels {
            3 => kspace::gspace_first(&table).inspect(|_| taken += 1),
            _ => Some(table.root()),
        };
        let Some(top) = top else {
            kspace::gspace_destroy(table);
            return Err(Error::QuotaExceeded);
        };
        put(at, vtd::context_entry(top.as_u64(), u.caps.levels, did));
        u.invalidate(Some(did));
        Ok(Some((table.root(), taken)))
    })
    .unwrap_or(Err(Error::NotSupported))
}

/// Takes function `bdf`'s DMA space (root `root`, domain id `did`) away:
/// its context entry cleared and invalidated, then its tables freed.
/// Returns the frames freed; `None` (tables kept for good) if the unit did
/// not finish invalidating.
pub fn detach(bdf: u16, did: u16, root: PhysAddr) -> Option<u64> {
    let forgot = with_unit(bdf, |u| {
        if let Some(at) = u.context(bdf, false) {
            put(at, [0, 0]);
        }
        u.invalidate(Some(did))
    });
    if forgot != Some(true) {
        log::warn!("iommu: invalidation for {bdf:#06x} did not finish: its tables are kept");
        return None;
    }
    Some(kspace::gspace_destroy(VtdTable::from_root(root)))
}

/// Makes function `bdf`'s unit forget domain `did`'s translations; false
/// if it did not finish (what they reached must then never be reused).
#[must_use]
pub fn flush(bdf: u16, did: u16) -> bool {
    with_unit(bdf, |u| u.invalidate(Some(did))) == Some(true)
}

/// Reads, logs and clears every recorded fault (called at the bootstrap
/// CPU's tick; a unit that recorded none costs one register read).
pub fn poll_faults() {
    let Some(all) = UNITS.try_lock() else { return };
    for u in &all.1 {
        if u.read::<u32>(vtd::FSTS) & 0b11 == 0 {
            continue;
        }
        let (at, n) = u.caps.faults;
        for i in 0..n {
            let reg = at + 16 * i;
            let Some((b, addr, why, read)) = vtd::fault(u.read(reg), u.read(reg + 8)) else { continue };
            let (bus, dev, func) = (b >> 8, b >> 3 & 0x1f, b & 7);
            let kind = if why >= 0x20 { "interrupt" } else { "DMA" };
            let what = if why >= 0x20 {
                "request for handle"
            } else if read {
                "read at"
            } else {
                "write at"
            };
            log::warn!("iommu: {kind} fault: device {bus:02x}:{dev:02x}.{func} {what} {addr:#x} blocked (reason {why:#x})");
            u.write(reg + 12, 1u32 << 31); // F, written 1 to clear
        }
        u.write(vtd::FSTS, vtd::PFO);
    }
}
