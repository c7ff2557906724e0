//! Per-CPU state, reached through GS: the CPU's index, its local APIC id,
//! whether it is online, its timer ticks and its descriptor tables.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use spin::Once;
use x86_64::registers::model_specific::GsBase;
use x86_64::structures::gdt::GlobalDescriptorTable;
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

/// The most CPUs this kernel drives; more in the MADT are left offline.
pub use crate::platform::MAX_CPUS;

/// One CPU's kernel state.
#[repr(C, align(64))]
pub struct PerCpu {
    /// This CPU's index: must stay the first field (read as `gs:[0]`).
    index: AtomicUsize,
    /// Top of the kernel stack for entries from user mode (`gs:[8]`).
    pub kstack_top: AtomicU64,
    /// The user stack pointer during `syscall` entry (`gs:[16]`).
    pub user_rsp: AtomicU64,
    /// False while the CPU runs user code: a CPU changing an address space
    /// the CPU runs must interrupt it and wait for this to turn true.
    pub in_kernel: AtomicBool,
    /// The root page table loaded in CR3.
    pub loaded_root: AtomicU64,
    /// The address-space epoch of the loaded root when it was loaded.
    pub loaded_epoch: AtomicU64,
    /// Set by another CPU: switch to the kernel's own page tables (the
    /// loaded ones are about to be freed).
    pub leave_address_space: AtomicBool,
    /// The EPT root of the guest this CPU runs now (0: none).
    pub running_guest: AtomicU64,
    /// The VMCS current on this CPU (0: none).
    pub current_vmcs: AtomicU64,
    /// Where VMSAVE keeps the host's hidden state around VMRUN (AMD-V).
    pub svm_host: AtomicU64,
    /// The state frame of the vCPU whose FPU, XCR0 and debug registers
    /// this CPU holds (0: none; `crate::virt::state`).
    pub guest_state: AtomicU64,
    /// Set by another CPU: flush the TLB, global entries too (it unmapped
    /// part of an object window, `hw::window`); cleared once done.
    pub flush_windows: AtomicBool,
    /// The local APIC id.
    pub apic_id: AtomicU32,
    /// Set by the CPU itself once it has finished its start-up.
    pub online: AtomicBool,
    /// Local APIC timer interrupts taken.
    pub ticks: AtomicU64,
    /// The TSC of this CPU's next scheduler tick, and the TSC by which its
    /// local APIC timer fires next (`apic::timer_rearm`).
    pub tick_at: AtomicU64,
    pub timer_at: AtomicU64,
    /// The CPU's task state segment (interrupt stacks).
    pub tss: Once<TaskStateSegment>,
    /// The CPU's GDT (its TSS descriptor points at `tss`).
    pub gdt: Once<GlobalDescriptorTable<8>>,
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            index: AtomicUsize::new(0),
            kstack_top: AtomicU64::new(0),
            user_rsp: AtomicU64::new(0),
            in_kernel: AtomicBool::new(true),
            loaded_root: AtomicU64::new(0),
            loaded_epoch: AtomicU64::new(0),
            leave_address_space: AtomicBool::new(false),
            running_guest: AtomicU64::new(0),
            current_vmcs: AtomicU64::new(0),
            svm_host: AtomicU64::new(0),
            guest_state: AtomicU64::new(0),
            flush_windows: AtomicBool::new(false),
            apic_id: AtomicU32::new(0),
            online: AtomicBool::new(false),
            ticks: AtomicU64::new(0),
            tick_at: AtomicU64::new(0),
            timer_at: AtomicU64::new(0),
            tss: Once::new(),
            gdt: Once::new(),
        }
    }

    /// The CPU's index (0 = the bootstrap CPU).
    pub fn index(&self) -> usize {
        self.index.load(Ordering::Relaxed)
    }
}

static CPUS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];

/// CPU `i`'s state, if `i` is in range.
pub fn cpu(i: usize) -> Option<&'static PerCpu> {
    CPUS.get(i)
}

/// Makes the running CPU CPU number `i` (`i < MAX_CPUS`): its GS base then
/// points at `CPUS[i]`. The first thing every CPU does.
pub fn set_current(i: usize) {
    let i = i.min(MAX_CPUS - 1);
    CPUS[i].index.store(i, Ordering::Relaxed);
    GsBase::write(VirtAddr::from_ptr(&CPUS[i]));
}

/// The running CPU's index.
pub fn current_index() -> usize {
    let i: usize;
    // SAFETY: GS points at this CPU's `PerCpu` (set_current runs first on
    // every CPU), whose first field is the index.
    unsafe { asm!("mov {}, gs:[0]", out(reg) i, options(nostack, readonly, preserves_flags)) };
    i.min(MAX_CPUS - 1)
}

/// Whether CPU `i` exists and is online.
pub fn is_online(i: usize) -> bool {
    cpu(i).is_some_and(|p| p.online.load(Ordering::Acquire))
}

/// The running CPU's state.
pub fn current() -> &'static PerCpu {
    &CPUS[current_index()]
}

/// Stops this CPU for good: interrupts off, halted (NMIs wake it only to
/// halt again).
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}

/// Waits for an interrupt with interrupts enabled (atomically: `sti; hlt`).
pub fn idle() {
    x86_64::instructions::interrupts::enable_and_hlt();
}

/// The time-stamp counter. Under deterministic emulation it counts
/// instructions (EMULATORS.md).
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC only reads the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The offsets of the fields the entry stubs read through GS.
pub const GS_KSTACK_TOP: usize = 8;
pub const GS_USER_RSP: usize = 16;
const _: () = assert!(core::mem::offset_of!(PerCpu, kstack_top) == GS_KSTACK_TOP);
const _: () = assert!(core::mem::offset_of!(PerCpu, user_rsp) == GS_USER_RSP);

/// Loads page tables `root` (flushing non-global translations) and records it.
pub fn load_root(root: u64, epoch: u64) {
    let me = current();
    // SAFETY: `root` is a PML4 whose upper half is the kernel's (every
    // address space shares it), so the kernel keeps running unchanged.
    unsafe { asm!("mov cr3, {}", in(reg) root, options(nostack, preserves_flags)) };
    me.loaded_root.store(root, Ordering::SeqCst);
    me.loaded_epoch.store(epoch, Ordering::SeqCst);
}

/// The kernel's own PML4, loaded by CPUs with no user thread.
static KERNEL_ROOT: AtomicU64 = AtomicU64::new(0);

/// Records the kernel's own page tables.
pub fn set_kernel_root(root: u64) {
    KERNEL_ROOT.store(root, Ordering::Relaxed);
}

/// Switches this CPU to the kernel's own page tables.
pub fn load_kernel_root() {
    let root = KERNEL_ROOT.load(Ordering::Relaxed);
    if root != 0 && current().loaded_root.load(Ordering::Relaxed) != root {
        load_root(root, 0);
    }
}

/// TSC ticks per microsecond (at least 1).
static TSC_PER_US: AtomicU64 = AtomicU64::new(1);

/// TSC ticks per microsecond.
pub fn tsc_per_us() -> u64 {
    TSC_PER_US.load(Ordering::Relaxed)
}

/// Records the TSC rate, for charging time.
pub fn set_tsc_rate(tsc_per_ms: u64) {
    TSC_PER_US.store((tsc_per_ms / 1000).max(1), Ordering::Relaxed);
}

/// Flushes every translation from this CPU's TLB, global ones too: turning
/// CR4.PGE off and on again does (SDM Vol. 3A, 4.10.4.1).
pub fn flush_global_tlb() {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    // SAFETY: only CR4.PGE changes, and back: the mappings stay as they
    // are, only their cached copies go.
    unsafe {
        Cr4::update(|f| f.remove(Cr4Flags::PAGE_GLOBAL));
        Cr4::update(|f| f.insert(Cr4Flags::PAGE_GLOBAL));
    }
}

/// Interrupts CPU `c` (not the running one) so that it enters the kernel.
#[inline(always)]
pub fn kick(c: usize) {
    if let Some(pc) = cpu(c) {
        super::apic::send_fixed(pc.apic_id.load(Ordering::Relaxed), super::trap::vector::KICK);
    }
}

/// Kicks CPU `c` and waits (boundedly) until `done` holds for it; false if
/// it did not answer in time. The caller then frees nothing that CPU may
/// still use (a shootdown that did not complete must never free memory).
#[must_use]
pub fn wait_until(c: usize, done: impl Fn(&PerCpu) -> bool) -> bool {
    let Some(pc) = cpu(c) else { return true };
    for i in 0..100_000_000u64 {
        if done(pc) {
            return true;
        }
        if i % 100_000 == 0 && c != current_index() {
            kick(c);
        }
        core::hint::spin_loop();
    }
    log::error!("cpu {c} did not answer a shootdown");
    false
}
