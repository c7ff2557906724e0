//! Bringing the machine up: from the boot loader's hand-off to every CPU
//! online with its descriptor tables, timer and virtualization enabled.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use multiboot2::{BootInformation, BootInformationHeader, MemoryAreaType};
use raw_cpuid::CpuId;

use super::{idt, multiboot as early};
use crate::arch::power::{self, Status};
use crate::arch::trap::vector;
use crate::arch::{apic, cpu, gdt, pit, smp};
use crate::mem::kspace;
use crate::mem::layout::{IST_COUNT, KERNEL_VMA};
use crate::mem::memmap::{self, Region, RegionKind, Reservation};
use crate::platform::tables::{self, Ecam, Iommu};
use crate::{klog, virt};

const MULTIBOOT2_MAGIC: u32 = 0x36D7_6289;
/// Timer interrupts per second on every CPU.
const TIMER_HZ: u32 = 1000;
/// Ticks each CPU must see before the boot counts its timer as working.
const TICKS_WANTED: u64 = 3;

/// The APIC timer count for one tick, shared with the APs.
static TIMER_COUNT: AtomicU64 = AtomicU64::new(0);
/// TSC ticks per millisecond, shared with the APs.
static TSC_PER_MS: AtomicU64 = AtomicU64::new(0);
/// CPUs whose timer has been seen ticking.
static TIMERS_OK: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" {
    static __kernel_phys_start: u8;
    static __kernel_phys_end: u8;
}

/// Logs an unrecoverable boot error and ends the run as failed.
fn fail(what: &str, why: impl core::fmt::Debug) -> ! {
    log::error!("boot: {what}: {why:?}");
    power::exit(Status::Failure)
}

/// The bootstrap CPU's entry from `multiboot`, on the boot page tables.
pub extern "C" fn kernel_start(magic: u32, info: u32) -> ! {
    cpu::set_current(0);
    idt::load();
    klog::init();
    log::info!("Ryokan {} starting", env!("CARGO_PKG_VERSION"));
    if magic != MULTIBOOT2_MAGIC {
        fail("not started by a Multiboot2 loader", magic);
    }
    let info_va = kspace::phys_to_virt(x86_64::PhysAddr::new(u64::from(info)));
    // SAFETY: the loader passed the boot information's physical address, below
    // 4 GiB, which the boot page tables map at PHYS_OFFSET; `load` checks its
    // header before reading tags.
    let mbi = unsafe { BootInformation::load(info_va.as_ptr::<BootInformationHeader>()) }
        .unwrap_or_else(|e| fail("bad boot information", e));

    let regions = memory_map(&mbi);
    let mut reserved = reservations(&mbi, info, &regions);
    let (free, usable) = kspace::init_frames(&regions, &mut reserved).unwrap_or_else(|e| fail("frames", e));
    for r in &reserved {
        log::info!("reserved: [{:#018x}, {:#018x}) {}", r.start, r.end, r.what);
    }
    log::info!("frames: {free} free of {usable} usable");

    let huge =
        CpuId::new().get_extended_processor_and_feature_identifiers().is_some_and(|f| f.has_1gib_pages());
    kspace::build(&regions, early::boot_stack_guard_page(), huge).unwrap_or_else(|e| fail("page tables", e));
    crate::arch::cpu::set_kernel_root(kspace::root().map_or(0, |r| r.as_u64()));
    log::info!(
        "paging: kernel on its own page tables (W^X, NX direct map, {} pages)",
        if huge { "1 GiB" } else { "2 MiB" }
    );
    cpu_tables(0);

    let rsdt = mbi
        .rsdp_v2_tag()
        .map(|t| (t.revision(), t.xsdt_address() as u64))
        .or_else(|| mbi.rsdp_v1_tag().map(|t| (t.revision(), t.rsdt_address() as u64)));
    let platform = tables::discover(rsdt).unwrap_or_else(|e| fail("ACPI", e));
    report_platform(&platform);
    ecam(&platform);
    match (&platform.iommu, platform.io_apics.first().map(|a| a.0)) {
        (tables::Iommu::Dmar(units), ioapic) => crate::arch::vtd::init(units, ioapic),
        (tables::Iommu::Ivrs(units), ioapic) => crate::arch::amdvi::init(units, ioapic),
        _ => {}
    }

    pit::disable_pic(vector::PIC_BASE);
    #[cfg_attr(feature = "fault-test", allow(unused_variables))]
    let irq_lines = io_apic(&platform);
    let lapic = kspace::map_mmio(platform.lapic_base, 4096).unwrap_or_else(|e| fail("local APIC mapping", e));
    apic::set_base(lapic.as_u64());
    apic::init_cpu();
    let bsp_apic = apic::id();
    cpu::current().apic_id.store(bsp_apic, Ordering::Relaxed);
    let cal = pit::calibrate();
    log::info!("timer: TSC {} kHz, local APIC timer {} kHz (/16)", cal.tsc_per_ms, cal.apic_per_ms);
    TSC_PER_MS.store(cal.tsc_per_ms, Ordering::Relaxed);
    crate::arch::cpu::set_tsc_rate(cal.tsc_per_ms);
    TIMER_COUNT.store(u64::from(cal.apic_per_ms * 1000 / TIMER_HZ), Ordering::Relaxed);

    cpu_start();
    let online = start_aps(&platform, bsp_apic, cal.tsc_per_ms);
    log::info!("smp: {online} of {} CPUs online", platform.cpus.len());
    wait_for_timers(online, cal.tsc_per_ms);

    #[cfg(feature = "fault-test")]
    fault_test::trigger(cal.tsc_per_ms);
    #[cfg(not(feature = "fault-test"))]
    {
        let modules = modules(&mbi);
        let Some(root) = modules.iter().find(|m| m.name == "mgmt") else {
            log::info!("boot: complete; no root domain (module mgmt) given: shutting down");
            power::exit(Status::Success)
        };
        // Interrupts off while the kernel lock is held, as everywhere.
        let started = x86_64::instructions::interrupts::without_interrupts(|| {
            let mut k = crate::state::KERNEL.lock();
            crate::loader::start_root(&mut k, root, &modules, irq_lines, cal.tsc_per_ms)
        });
        match started {
            Ok(d) => log::info!("boot: complete; root domain {:#x} started", crate::obj::domain::id(d).0),
            Err(e) => fail("root domain", e),
        }
        crate::arch::entry::run_cpu()
    }
}

/// An application processor's entry from the start-up code, on its own
/// stack and the kernel's page tables.
pub extern "C" fn ap_entry(index: usize) -> ! {
    cpu::set_current(index);
    cpu_tables(index);
    idt::load();
    apic::init_cpu();
    cpu::current().apic_id.store(apic::id(), Ordering::Relaxed);
    cpu_start();
    timer_check(cpu::rdtsc() + 2000 * TSC_PER_MS.load(Ordering::Relaxed));
    #[cfg(feature = "fault-test")]
    loop {
        cpu::idle();
        fault_test::poll();
    }
    #[cfg(not(feature = "fault-test"))]
    crate::arch::entry::run_cpu()
}

/// This CPU's GDT and TSS, with its interrupt stacks (mapped by the BSP for
/// APs before they start).
fn cpu_tables(index: usize) {
    let top = |n| kspace::map_stack(index, n).unwrap_or_else(|e| fail("stack", e));
    let ist = [top(1), top(2), top(3)];
    let kstack = top(0);
    cpu::current().kstack_top.store(kstack.as_u64(), Ordering::Relaxed);
    gdt::init(cpu::current(), kstack, ist);
    crate::arch::entry::init_syscall();
    debug_assert_eq!(IST_COUNT, 3);
}

/// The last steps of every CPU's start: virtualization, the timer, online.
/// The FPU and SSE stay off: their state is not yet saved per thread, so a
/// domain using them faults (#NM, #UD) instead of seeing another's registers.
fn cpu_start() {
    // SAFETY: EM makes x87 instructions fault; clearing OSFXSR/OSXMMEXCPT
    // makes SSE instructions fault; the kernel is built without either.
    unsafe {
        use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
        Cr0::update(|f| {
            f.insert(Cr0Flags::EMULATE_COPROCESSOR);
            f.remove(Cr0Flags::MONITOR_COPROCESSOR);
        });
        Cr4::update(|f| f.remove(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE | Cr4Flags::OSXSAVE));
    }
    virt::state::init();
    virt::enable();
    apic::timer_periodic(TIMER_COUNT.load(Ordering::Relaxed) as u32);
    cpu::current().online.store(true, Ordering::Release);
    x86_64::instructions::interrupts::enable();
}

fn start_aps(platform: &tables::Platform, bsp_apic: u32, tsc_per_ms: u64) -> usize {
    if platform.cpus_ignored > 0 {
        log::warn!("smp: {} CPUs beyond the {} supported left offline", platform.cpus_ignored, cpu::MAX_CPUS);
    }
    if platform.cpus.len() > 1 {
        smp::install().unwrap_or_else(|e| fail("AP start-up code", e));
    }
    let cr3 = kspace::root().map_or(0, |r| r.as_u64());
    let mut online = 1;
    for (index, &id) in
        platform.cpus.iter().filter(|&&id| id != bsp_apic).enumerate().map(|(i, id)| (i + 1, id))
    {
        for n in 1..=IST_COUNT {
            kspace::map_stack(index, n).unwrap_or_else(|e| fail("stack", e));
        }
        let stack = kspace::map_stack(index, 0).unwrap_or_else(|e| fail("stack", e));
        // The AP starts a page below its stack top: the top is the slot for
        // its user-mode frame (see `arch::entry`).
        if smp::start(index, id, stack.as_u64() - 4096, cr3, ap_entry as *const () as u64, tsc_per_ms) {
            online += 1;
        } else {
            log::warn!("smp: CPU {index} (APIC id {id}) did not start");
        }
    }
    if platform.cpus.len() > 1 {
        kspace::unmap_identity(smp::TRAMPOLINE).unwrap_or_else(|e| fail("AP start-up code", e));
    }
    online
}

/// Waits (interrupts on) until this CPU's timer has ticked a few times, then
/// says so; false if it did not before `deadline`.
fn timer_check(deadline: u64) -> bool {
    let me = cpu::current();
    while me.ticks.load(Ordering::Relaxed) < TICKS_WANTED && cpu::rdtsc() < deadline {
        cpu::idle();
    }
    let ticks = me.ticks.load(Ordering::Relaxed);
    if ticks < TICKS_WANTED {
        log::error!("timer: only {ticks} ticks: local APIC timer interrupts missing");
        return false;
    }
    log::info!("timer: ticking at {TIMER_HZ} Hz ({ticks} ticks)");
    TIMERS_OK.fetch_add(1, Ordering::SeqCst);
    true
}

/// Waits until every online CPU has reported its timer working.
fn wait_for_timers(online: usize, tsc_per_ms: u64) {
    let deadline = cpu::rdtsc() + 2000 * tsc_per_ms;
    if !timer_check(deadline) {
        fail("timer", "no interrupts on the bootstrap CPU");
    }
    while TIMERS_OK.load(Ordering::SeqCst) < online && cpu::rdtsc() < deadline {
        cpu::idle();
    }
    let ok = TIMERS_OK.load(Ordering::SeqCst);
    if ok < online {
        fail("timer interrupts missing on some CPUs (working, online)", (ok, online));
    }
}

fn memory_map(mbi: &BootInformation) -> heapless::Vec<Region, { memmap::MAX_RANGES }> {
    let tag = mbi.memory_map_tag().unwrap_or_else(|| fail("boot information", "no memory map"));
    let mut regions = heapless::Vec::new();
    for a in tag.memory_areas() {
        let kind = match a.typ() {
            MemoryAreaType::Available => RegionKind::Available,
            MemoryAreaType::Reserved => RegionKind::Reserved,
            MemoryAreaType::AcpiAvailable => RegionKind::AcpiReclaimable,
            MemoryAreaType::ReservedHibernate => RegionKind::AcpiNvs,
            MemoryAreaType::Defective => RegionKind::Defective,
            MemoryAreaType::Custom(_) => RegionKind::Unknown,
        };
        let r = Region { start: a.start_address(), end: a.end_address(), kind };
        log::info!("memmap: [{:#018x}, {:#018x}) {}", r.start, r.end, kind.name());
        if regions.push(r).is_err() {
            fail("memory map", "too many entries");
        }
    }
    regions
}

type Reservations = heapless::Vec<Reservation, 64>;

/// The boot modules, named by their command lines.
#[cfg(not(feature = "fault-test"))]
fn modules<'a>(mbi: &'a BootInformation) -> heapless::Vec<crate::loader::Module<'a>, 32> {
    mbi.module_tags()
        .map(|m| crate::loader::Module {
            name: m.cmdline().unwrap_or("?"),
            start: u64::from(m.start_address()),
            end: u64::from(m.end_address()),
        })
        .take(32)
        .collect()
}

fn reservations(mbi: &BootInformation, info: u32, regions: &[Region]) -> Reservations {
    let mut r = Reservations::new();
    let (kstart, kend) =
        (core::ptr::addr_of!(__kernel_phys_start) as u64, core::ptr::addr_of!(__kernel_phys_end) as u64);
    let kend = if kend >= KERNEL_VMA { kend - KERNEL_VMA } else { kend };
    let mut add = |start: u64, end: u64, what| {
        if r.push(Reservation { start, end, what }).is_err() {
            fail("reservations", "too many");
        }
    };
    add(0, 0x10_0000, "low memory (firmware, AP start-up code)");
    add(kstart, kend, "kernel image");
    add(u64::from(info), u64::from(info) + mbi.total_size() as u64, "boot information");
    for m in mbi.module_tags() {
        let name = m.cmdline().unwrap_or("?");
        let (s, e) = (u64::from(m.start_address()), u64::from(m.end_address()));
        log::info!("module: {name} [{s:#018x}, {e:#018x}) {} bytes", e.saturating_sub(s));
        add(s, e, "boot module");
    }
    for c in memmap::conflicts(regions) {
        add(c.start, c.end, "firmware conflict");
    }
    r
}

/// Takes over the first I/O APIC: every line routed to the bootstrap CPU,
/// masked until a thread waits for it. Returns the number of lines.
fn io_apic(p: &tables::Platform) -> u32 {
    let Some(&(id, base, gsi_base)) = p.io_apics.first() else {
        log::warn!("ioapic: none: interrupt lines unavailable");
        return 0;
    };
    let va = kspace::map_mmio(base, 4096).unwrap_or_else(|e| fail("I/O APIC mapping", e));
    let pins = crate::arch::ioapic::init(va.as_u64(), gsi_base);
    let lines = (gsi_base + pins).min(crate::state::MAX_IRQS as u32);
    for gsi in gsi_base..lines {
        let (level, low) = p.trigger(gsi);
        crate::arch::ioapic::route(gsi, vector::IRQ_BASE + gsi as u8, apic::id(), level, low);
    }
    log::info!("ioapic: I/O APIC {id}: {pins} lines from GSI {gsi_base}, masked until waited for");
    lines
}

/// Maps segment 0's configuration space, for the Device objects.
fn ecam(p: &tables::Platform) {
    let Some(e) = p.ecam.iter().find(|e| e.segment == 0 && e.buses.0 <= e.buses.1) else { return };
    let (first, last) = e.buses;
    let len = (u64::from(last - first) + 1) << 20;
    match kspace::map_mmio(e.base + (u64::from(first) << 20), len) {
        Ok(va) => crate::arch::ecam::init(va.as_u64(), first, last),
        Err(err) => log::warn!("pci: ECAM not mapped ({err:?}): no devices"),
    }
}

fn report_platform(p: &tables::Platform) {
    let (cpus, lapic, io_apics) = (p.cpus.len(), p.lapic_base, p.io_apics.len());
    log::info!("acpi: MADT: {cpus} CPUs, local APIC at {lapic:#x}, {io_apics} I/O APIC(s)");
    for &(id, base, gsi) in &p.io_apics {
        log::info!("acpi: I/O APIC {id} at {base:#x}, GSI base {gsi}");
    }
    match p.ecam.first() {
        Some(&Ecam { base, segment, buses: (first, last) }) => {
            log::info!("acpi: MCFG: PCIe ECAM segment {segment} buses {first}-{last} at {base:#x}")
        }
        None => log::info!("acpi: no MCFG: no PCIe ECAM"),
    }
    match &p.iommu {
        Iommu::Dmar(u) => log::info!("iommu: DMAR found: Intel VT-d, {} remapping unit(s)", u.len()),
        Iommu::Ivrs(u) => log::info!("iommu: IVRS found: AMD-Vi, {} unit(s)", u.len()),
        Iommu::Malformed(t, e) => {
            log::warn!("iommu: {t} table malformed ({e:?}): treated as no IOMMU")
        }
        Iommu::None => {
            log::info!("iommu: none (no DMAR or IVRS table): DMA-capable devices only by explicit consent")
        }
    }
}

/// Test builds only: a kernel that faults on purpose, to prove that a kernel
/// fault is reported with the CPU it happened on, stops every CPU and ends
/// the run as a failure. The last CPU started takes the fault (an AP where
/// there is one); the bootstrap CPU must then be stopped by it.
#[cfg(feature = "fault-test")]
mod fault_test {
    use core::sync::atomic::{AtomicUsize, Ordering};

    use crate::arch::cpu;

    static VICTIM: AtomicUsize = AtomicUsize::new(usize::MAX);

    pub fn trigger(tsc_per_ms: u64) -> ! {
        let victim = (0..cpu::MAX_CPUS)
            .rev()
            .find(|&i| cpu::cpu(i).is_some_and(|c| c.online.load(Ordering::Acquire)))
            .unwrap_or(0);
        log::info!("fault-test: CPU {victim} will read an address nothing maps");
        if victim == 0 {
            fault();
        }
        VICTIM.store(victim, Ordering::SeqCst);
        let deadline = cpu::rdtsc() + 2000 * tsc_per_ms;
        while cpu::rdtsc() < deadline {
            cpu::idle();
        }
        super::fail("fault-test", "the faulting CPU did not stop this one")
    }

    pub fn poll() {
        if VICTIM.load(Ordering::SeqCst) == cpu::current_index() {
            fault();
        }
    }

    fn fault() -> ! {
        let bad = x86_64::VirtAddr::new(0xdead_b000);
        // SAFETY: not sound, on purpose: this read must fault. It is built
        // only with the test-only `fault-test` feature.
        let v = unsafe { core::ptr::read_volatile(bad.as_ptr::<u64>()) };
        super::fail("fault-test: the read did not fault", v)
    }
}
