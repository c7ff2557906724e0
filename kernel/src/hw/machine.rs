//! The hardware interface on the machine: forwarding to `arch`, `virt` and
//! `mem::kspace`, every call inlined into its caller (or a re-export of the
//! function itself), so that the core's code is what it was when it called
//! those modules directly.

pub mod cpu {
    use core::sync::atomic::Ordering;

    use crate::arch::cpu::{self as arch, PerCpu};

    pub use crate::arch::cpu::{is_online, rdtsc as now, tsc_per_us, MAX_CPUS};

    /// The running CPU, for what concerns it alone: found once per entry
    /// (a GS read), then passed along.
    #[derive(Clone, Copy)]
    pub struct Here(pub(in crate::hw) &'static PerCpu);

    /// The running CPU.
    #[inline(always)]
    pub fn this() -> Here {
        Here(arch::current())
    }

    /// The running CPU's index.
    pub use crate::arch::cpu::current_index as current;

    /// The guest root CPU `c` runs now (0: none).
    #[inline(always)]
    pub fn running_guest(c: usize) -> u64 {
        arch::cpu(c).map_or(0, |p| p.running_guest.load(Ordering::SeqCst))
    }

    /// The address of the last page fault (CR2).
    #[inline(always)]
    pub fn fault_address() -> u64 {
        x86_64::registers::control::Cr2::read_raw()
    }

    /// Waits for an interrupt, interrupts on, then turns them off again;
    /// true when the CPU is to look for work again (always, here).
    #[inline(always)]
    pub fn idle() -> bool {
        arch::idle();
        x86_64::instructions::interrupts::disable();
        true
    }

    /// Interrupts off.
    pub use x86_64::instructions::interrupts::disable as interrupts_off;

    /// The kernel's first timer is due at TSC `due` (`u64::MAX`: none):
    /// this CPU's timer interrupt comes then if sooner than its tick.
    pub use crate::arch::apic::timer_due;

    /// A timer interrupt from user mode: whether it is the scheduler's
    /// tick (else a kernel timer's only).
    #[inline(always)]
    pub fn timer_tick() -> bool {
        crate::arch::apic::timer_tick(arch::rdtsc())
    }

    /// Restarts this CPU's timer after its interrupt, once the timers due
    /// have fired: for the first timer's time if before the next tick.
    #[inline(always)]
    pub fn timer_rearm() {
        crate::arch::apic::timer_rearm(arch::rdtsc());
    }

    impl Here {
        /// In the kernel (true) or about to run user code or a guest.
        #[inline(always)]
        pub fn set_in_kernel(self, on: bool) {
            self.0.in_kernel.store(on, Ordering::SeqCst);
        }

        /// Counts a timer interrupt.
        #[inline(always)]
        pub fn tick(self) {
            self.0.ticks.fetch_add(1, Ordering::Relaxed);
        }

        /// Timer interrupts taken.
        #[inline(always)]
        pub fn ticks(self) -> u64 {
            self.0.ticks.load(Ordering::Relaxed)
        }

        /// The guest root this CPU is about to run (0: none).
        #[inline(always)]
        pub fn set_running_guest(self, root: u64) {
            self.0.running_guest.store(root, Ordering::SeqCst);
        }
    }
}

pub mod irq {
    pub use crate::arch::apic::eoi;

    /// An MSI message (address low, high, data, vector control unmasked)
    /// for `vector`, fixed delivery, edge, to this CPU's local APIC, from
    /// function `source`: under interrupt remapping naming the entry made
    /// for it (VT-d §5.1.5.2), else directly (SDM Vol. 3A 11.11.1-2).
    /// `None`: the entry could not be made.
    pub fn msi_message(vector: u8, source: u16) -> Option<[u32; 4]> {
        let apic = crate::arch::apic::id();
        let remapped = crate::arch::iommu::remap(vector, Some((apic, Some(source), false)))?;
        let address =
            if remapped { vtd::msi_address(vector.into()) } else { 0xfee0_0000 | (apic & 0xff) << 12 };
        Some([address, 0, u32::from(vector), 0])
    }

    pub use crate::arch::ioapic::set_masked;
    /// The binding of `vector` ended: its remapping entry goes.
    pub fn msi_unroute(vector: u8) {
        let _ = crate::arch::iommu::remap(vector, None);
    }
    use crate::platform::vtd;

    pub use crate::arch::cpu::kick;
}

pub mod space {
    use core::sync::atomic::Ordering;

    use x86_64::{PhysAddr, VirtAddr};

    use crate::arch::cpu;
    use crate::mem::kspace;
    use crate::mem::paging::{Ept, EptTable, MapError, MapFlags, Npt, NptTable, PageTable};

    /// Guests' second-level tables are AMD's nested page tables (else EPT).
    #[inline(always)]
    fn npt() -> bool {
        crate::virt::available() == crate::virt::Virt::Svm
    }

    /// A new address space: a domain's (its lower half empty, the kernel's
    /// upper half shared) or a guest's (an empty EPT or NPT). Its root and
    /// the frames its tables took.
    pub fn create(guest: bool) -> Option<(PhysAddr, u64)> {
        let made = if !guest {
            kspace::uspace_new().map(|(t, n)| (t.root(), n))
        } else if npt() {
            kspace::gspace_new::<Npt>().map(|(t, n)| (t.root(), n))
        } else {
            kspace::gspace_new::<Ept>().map(|(t, n)| (t.root(), n))
        };
        made.ok()
    }

    /// Frees an address space's tables (not what they map); returns how
    /// many frames that gave back.
    pub fn destroy(guest: bool, root: PhysAddr) -> u64 {
        if !guest {
            kspace::uspace_destroy(PageTable::from_root(root))
        } else if npt() {
            kspace::gspace_destroy(NptTable::from_root(root))
        } else {
            kspace::gspace_destroy(EptTable::from_root(root))
        }
    }

    /// Maps one page into a domain's tables, or a guest's; returns the
    /// table frames it took.
    pub fn map(guest: bool, root: PhysAddr, va: u64, pa: PhysAddr, flags: MapFlags) -> Result<u64, MapError> {
        if guest && npt() {
            kspace::uspace_map(&NptTable::from_root(root), VirtAddr::new(va), pa, flags)
        } else if guest {
            kspace::uspace_map(&EptTable::from_root(root), VirtAddr::new(va), pa, flags)
        } else {
            kspace::uspace_map(&PageTable::from_root(root), VirtAddr::new(va), pa, flags)
        }
    }

    /// Unmaps one page. The caller shoots down stale translations.
    pub fn unmap(guest: bool, root: PhysAddr, va: u64) -> Result<PhysAddr, MapError> {
        if guest && npt() {
            kspace::uspace_unmap(&NptTable::from_root(root), VirtAddr::new(va))
        } else if guest {
            kspace::uspace_unmap(&EptTable::from_root(root), VirtAddr::new(va))
        } else {
            kspace::uspace_unmap(&PageTable::from_root(root), VirtAddr::new(va))
        }
    }

    /// Where a domain's address leads, and with what rights.
    pub fn translate(root: PhysAddr, va: u64) -> Option<(PhysAddr, MapFlags)> {
        kspace::uspace_translate(&PageTable::from_root(root), VirtAddr::new(va))
    }

    /// Loads page tables `root` at TLB epoch `epoch` on this CPU unless
    /// they are loaded (from that epoch) already.
    #[inline(always)]
    pub fn switch(root: u64, epoch: u64) {
        let me = cpu::current();
        if me.loaded_root.load(Ordering::Relaxed) != root || me.loaded_epoch.load(Ordering::Relaxed) != epoch
        {
            cpu::load_root(root, epoch);
        }
    }

    pub use crate::arch::cpu::load_kernel_root as load_kernel;

    /// Obeys another CPU's request to leave the current address space
    /// (it is about to free it).
    #[inline(always)]
    pub fn obey_leave() {
        if cpu::current().leave_address_space.swap(false, Ordering::SeqCst) {
            load_kernel();
        }
    }

    /// Makes sure no other CPU uses stale translations of the address space
    /// `root`: CPUs running it in user mode or in a guest are interrupted and
    /// waited for. False if a CPU did not answer: then it may still cache
    /// them, and nothing they reached may be freed.
    #[must_use]
    pub fn shootdown(root: u64) -> bool {
        use crate::mem::shootdown::{completed, Peer};
        let me = cpu::current_index();
        let peers = (0..cpu::MAX_CPUS).filter(|&c| c != me).filter_map(|c| {
            let pc = cpu::cpu(c)?;
            let uses = pc.loaded_root.load(Ordering::SeqCst) == root
                || pc.running_guest.load(Ordering::SeqCst) == root;
            Some(Peer { cpu: c, online: pc.online.load(Ordering::SeqCst), uses })
        });
        completed(peers, |c| crate::arch::cpu::wait_until(c, |pc| pc.in_kernel.load(Ordering::SeqCst)))
    }

    /// Makes every CPU leave the page tables `root` (about to be freed);
    /// false if one did not answer (then they must never be freed).
    #[must_use]
    pub fn unload(root: u64) -> bool {
        let mut unloaded = true;
        for c in 0..cpu::MAX_CPUS {
            let Some(pc) = cpu::cpu(c) else { continue };
            if pc.loaded_root.load(Ordering::SeqCst) == root {
                if c == cpu::current_index() {
                    load_kernel();
                } else {
                    pc.leave_address_space.store(true, Ordering::SeqCst);
                    unloaded &=
                        crate::arch::cpu::wait_until(c, |pc| pc.loaded_root.load(Ordering::SeqCst) != root);
                }
            }
        }
        unloaded
    }
}

pub mod frames {
    pub use crate::mem::kspace::{
        alloc_contiguous as alloc, free_contiguous as free, free_frames as free_count, leak, names_memory,
        phys_to_virt as to_virt,
    };
}

pub mod vm {
    use x86_64::PhysAddr;

    use super::cpu::Here;
    use crate::virt::{self, Virt};

    pub use crate::virt::grave::{reap, retire};
    pub use crate::virt::state::restore_dr6;
    pub use crate::virt::vcpu::{
        enter, inject_interrupt, interruptible, interrupts_on, prepare, state_read, want_window,
    };

    /// Whether guests can run here.
    #[inline(always)]
    pub fn supported() -> bool {
        virt::available() != Virt::None
    }

    /// Makes the hardware state of a new vCPU in its fresh frames at `hw`
    /// (`crate::obj::vcpu::HW_FRAMES` of them): its state frame, and a VMCS's
    /// revision id.
    pub fn init(hw: PhysAddr) {
        virt::state::init_frame(crate::obj::vcpu::state_frame(hw.as_u64()));
        if virt::available() == Virt::Vmx {
            let revision = virt::vmx::revision();
            let va = crate::mem::kspace::phys_to_virt(hw);
            // SAFETY: a fresh frame of the caller's, mapped at `va`; the VMCS
            // region starts with the revision id (SDM Vol. 3C 24.2).
            unsafe { core::ptr::write_volatile(va.as_mut_ptr::<u32>(), revision) };
        }
    }

    /// Loads the vCPU state frame `pa` into this CPU's registers.
    #[inline(always)]
    pub fn load_state(me: Here, pa: u64) {
        virt::state::load(me.0, pa);
    }

    /// After an exit for a host interrupt: a stopping system halts on the
    /// NMI; the interrupt, still pending, is taken now.
    #[inline(always)]
    pub fn take_interrupt(nmi: bool) {
        if nmi {
            crate::arch::trap::nmi_in_guest();
        }
        x86_64::instructions::interrupts::enable();
        x86_64::instructions::nop();
        x86_64::instructions::interrupts::disable();
    }

    /// Sets the guest's XCR0 to `value` (XSETBV of the vCPU that just exited
    /// here) if a guest may; false if not.
    #[inline(always)]
    pub fn set_xcr0(value: u64) -> bool {
        let ok = virt::state::xcr0_valid(value);
        if ok {
            virt::state::set_xcr0(value);
        }
        ok
    }
}

pub mod console {
    pub use crate::klog::write_raw as write;
}

pub mod io {
    use ipc::syscall::Width;
    use x86_64::instructions::port::Port;

    /// Reads I/O port `port`.
    #[inline(always)]
    pub fn read(port: u16, width: Width) -> u32 {
        // SAFETY: the caller holds a capability for this port, so reading it
        // is its business; port reads cannot touch kernel memory.
        unsafe {
            match width {
                Width::Byte => u32::from(Port::<u8>::new(port).read()),
                Width::Word => u32::from(Port::<u16>::new(port).read()),
                Width::Dword => Port::<u32>::new(port).read(),
            }
        }
    }

    /// Writes I/O port `port` (`value` fits `width`).
    #[inline(always)]
    pub fn write(port: u16, width: Width, value: u32) {
        // SAFETY: as in `read`; the value fits the width (decode checked).
        unsafe {
            match width {
                Width::Byte => Port::<u8>::new(port).write(value as u8),
                Width::Word => Port::<u16>::new(port).write(value as u16),
                Width::Dword => Port::<u32>::new(port).write(value),
            }
        }
    }
}

pub mod pci {
    use ipc::syscall::Width;

    pub use crate::arch::ecam::{present, read, write};

    /// PCI Local Bus 3.0 §6.2.2: the command register's bus master bit.
    const COMMAND: u16 = 0x04;
    const BUS_MASTER: u32 = 1 << 2;

    /// The kernel's mappings of MSI-X table pages, by physical page: a BAR
    /// stays where it is for the machine's life, so each is made once.
    static TABLES: spin::Mutex<heapless::Vec<(u64, u64), 32>> = spin::Mutex::new(heapless::Vec::new());

    /// Writes an MSI-X table entry at physical `pa` (16-aligned, in a BAR
    /// the caller checked lies in no memory): address, data, then vector
    /// control last (PCI 3.0 §6.8.2.9: unmasked only once complete). False
    /// if no mapping could be made.
    pub fn msix_write(pa: u64, words: [u32; 4]) -> bool {
        if pa % 16 != 0 {
            return false; // the entry could straddle the page mapped below
        }
        let page = pa & !0xfff;
        let mut tables = TABLES.lock();
        let va = match tables.iter().find(|t| t.0 == page) {
            Some(&(_, va)) => va,
            None => {
                let Ok(va) = crate::mem::kspace::map_mmio(page, 4096) else { return false };
                if tables.push((page, va.as_u64())).is_err() {
                    return false;
                }
                va.as_u64()
            }
        };
        let entry = (va + (pa & 0xfff)) as *mut u32;
        for (i, w) in [3, 0, 1, 2, 3].into_iter().zip([1, words[0], words[1], words[2], words[3]]) {
            // SAFETY: `entry` is in the kernel's uncached mapping of the
            // table's page (made above for `page`), 16-aligned, so its
            // four dwords lie inside it.
            unsafe { core::ptr::write_volatile(entry.add(i), w) };
        }
        true
    }

    /// Turns off function `f`'s bus mastering: its DMA stops.
    pub fn stop_dma(f: u16) {
        let command = read(f, COMMAND, Width::Word);
        write(f, COMMAND, Width::Word, command & !BUS_MASTER);
    }
}

/// The IOMMU: a device's own DMA space, what is mapped in it, and the
/// invalidations that make the unit forget it (`arch::iommu`).
pub mod iommu {
    pub use crate::arch::iommu::{attach, detach, flush, map, unmap};
}

pub mod power {
    use crate::arch::power::{self, Status};

    /// Stops every CPU and ends the run, successfully or not.
    pub fn off(success: bool) -> ! {
        crate::arch::trap::stop_others();
        power::exit(if success { Status::Success } else { Status::Failure })
    }
}

/// The object windows (`obj::window`) on the machine: each at a constant
/// address of the kernel's half, backed by `kspace`.
///
/// The kernel touches a window only with the kernel lock held, and the
/// unmapping CPU holds it: so a shootdown asks every other online CPU to
/// flush its TLB (global entries too) and waits, boundedly, for each to
/// do it; a CPU kicked out of user mode or a guest, or waking from idle,
/// comes to the lock and obeys while it waits there (`obey_flush`). The
/// unmapping CPU flushed its own pages at once (`kspace::window_unmap`).
/// One that does not answer fails the shootdown: the chunk is retired.
/// Nothing of this is on the paths that take the lock uncontended.
pub mod window {
    use core::sync::atomic::Ordering;

    use crate::arch::cpu;
    use crate::mem::{kspace, layout};
    use crate::obj::window::{Backing, MAX_CHUNK_PAGES};

    /// Object window number `ID`.
    pub struct Window<const ID: usize>;

    impl<const ID: usize> Window<ID> {
        const BASE: u64 = {
            assert!((ID as u64) < layout::WINDOWS, "no such object window");
            layout::OBJECTS_BASE + ID as u64 * layout::WINDOW_SPAN
        };
    }

    impl<const ID: usize> Backing for Window<ID> {
        #[inline(always)]
        fn base(&self) -> *mut u8 {
            Self::BASE as *mut u8
        }

        fn back(&mut self, offset: usize, pages: usize) -> bool {
            kspace::window_back(Self::BASE + offset as u64, pages)
        }

        fn unmap(&mut self, offset: usize, pages: usize, frames: &mut [u64; MAX_CHUNK_PAGES]) {
            kspace::window_unmap(Self::BASE + offset as u64, &mut frames[..pages.min(MAX_CHUNK_PAGES)]);
        }

        fn shootdown(&mut self) -> bool {
            let me = cpu::current_index();
            let others = || {
                (0..cpu::MAX_CPUS)
                    .filter(move |&c| c != me)
                    .filter_map(|c| cpu::cpu(c).map(|pc| (c, pc)))
                    .filter(|(_, pc)| pc.online.load(Ordering::SeqCst))
            };
            for (_, pc) in others() {
                pc.flush_windows.store(true, Ordering::SeqCst);
            }
            others()
                .all(|(c, _)| crate::arch::cpu::wait_until(c, |pc| !pc.flush_windows.load(Ordering::SeqCst)))
        }

        fn free(&mut self, frames: &[u64]) {
            for &f in frames.iter().filter(|&&f| f != 0) {
                kspace::free_contiguous(x86_64::PhysAddr::new(f), 1);
            }
        }

        fn retire(&mut self, frames: &[u64]) {
            kspace::leak(frames.len() as u64, "an object window");
        }
    }

    /// Obeys another CPU's request to flush the windows' translations
    /// (waiting for the lock: it holds it, and waits for this).
    #[inline(always)]
    pub fn obey_flush() {
        let me = cpu::current();
        if me.flush_windows.load(Ordering::SeqCst) {
            cpu::flush_global_tlb();
            me.flush_windows.store(false, Ordering::SeqCst);
        }
    }
}
