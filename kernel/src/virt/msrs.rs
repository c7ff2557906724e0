//! The guest MSRs the kernel keeps (`ipc::msr`) where neither VMCS nor
//! VMCB has a field for them: each vCPU's MSR frame (`obj::vcpu::msr_frame`).
//!
//! - VT-x: KERNEL_GS_BASE, STAR, LSTAR, CSTAR, SFMASK, PAT and TSC_AUX in
//!   a list the CPU loads at every VM entry and stores back at every exit
//!   (the VM-entry MSR-load and VM-exit MSR-store areas, one list, SDM Vol.
//!   3C 24.7.2, 24.8.2), and the host's values in a second list the CPU
//!   loads at every exit (the VM-exit MSR-load area) before the first host
//!   instruction: the host's SYSCALL MSRs are back before any of its code
//!   runs. EFER, FS_BASE, GS_BASE and SYSENTER_* are VMCS guest fields.
//! - AMD-V: only TSC_AUX (entry 0), switched around VMRUN by the entry
//!   stub (`svm::run::svm_enter`, interrupts off) when the guest's is not
//!   the host's; the rest are in the VMCB, switched by VMRUN and VMLOAD/VMSAVE
//!   (`svm::run::svm_enter`).
//!
//! The host's TSC_AUX is 0 on every CPU ([`host_init`]), so a guest that
//! never sets its own costs an exit two compares.

use core::sync::atomic::{AtomicBool, Ordering};

use ipc::msr::Kept;
use x86_64::registers::model_specific::Msr;
use x86_64::PhysAddr;

use crate::mem::kspace;

/// The MSRs of a VT-x list, in order (TSC_AUX last: left out of the lists
/// on a CPU without RDTSCP, where writing it faults).
pub const LISTED: [Kept; 7] =
    [Kept::KernelGsBase, Kept::Star, Kept::Lstar, Kept::Cstar, Kept::Sfmask, Kept::Pat, Kept::TscAux];
/// Where the host's list starts in the frame (the guest's at 0).
pub const HOST_LIST_AT: usize = 2048;

static RDTSCP: AtomicBool = AtomicBool::new(false);

/// Whether the CPU has RDTSCP, and with it TSC_AUX.
pub fn rdtscp() -> bool {
    RDTSCP.load(Ordering::Relaxed)
}

/// On every CPU, when virtualization is on: learns whether TSC_AUX
/// exists and makes the host's 0.
pub fn host_init() {
    let ext = core::arch::x86_64::__cpuid(0x8000_0000).eax;
    let has = ext >= 0x8000_0001 && core::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 27) != 0;
    if has {
        RDTSCP.store(true, Ordering::Relaxed);
        // SAFETY: CPUID says TSC_AUX exists; the kernel does not use it.
        unsafe { Msr::new(ipc::msr::index::TSC_AUX).write(0) };
    }
}

/// The kept MSR `msr` names, if the kernel keeps it on this CPU (TSC_AUX
/// only with RDTSCP: without it the MSR does not exist, and the VMM's
/// answer to it is #GP).
#[inline]
pub fn kept(msr: u64) -> Option<Kept> {
    Kept::of(msr).filter(|&m| m != Kept::TscAux || rdtscp())
}

/// How many MSRs a VT-x list holds on this CPU.
pub fn listed() -> usize {
    if rdtscp() {
        LISTED.len()
    } else {
        LISTED.len() - 1
    }
}

/// Where `m` sits in a list, if it is listed.
pub fn slot(m: Kept) -> Option<usize> {
    LISTED.iter().position(|&l| l == m)
}

/// A pointer to the value of entry `i` of the list at `at` of MSR frame `frame`.
fn value(frame: u64, at: usize, i: usize) -> *mut u64 {
    let va = kspace::phys_to_virt(PhysAddr::new(frame)).as_mut_ptr::<u8>();
    // SAFETY: the frame is a vCPU's MSR frame (4 KiB, in the direct map);
    // a list has at most `LISTED.len()` entries of 16 bytes from `at`.
    unsafe { va.add(at + 16 * i + 8).cast::<u64>() }
}

/// Makes the lists of a new vCPU's MSR frame `frame`: the guest's as at
/// reset (PAT's default memory types, the rest 0), the host's as this CPU
/// runs now (its SYSCALL MSRs, PAT, KERNEL_GS_BASE; TSC_AUX 0).
pub fn init_lists(frame: u64) {
    let va = kspace::phys_to_virt(PhysAddr::new(frame)).as_mut_ptr::<u8>();
    for (i, m) in LISTED.into_iter().enumerate() {
        // SAFETY: as in `value`: entry i of either list is inside the frame.
        unsafe {
            va.add(16 * i).cast::<u32>().write_volatile(m.index());
            va.add(HOST_LIST_AT + 16 * i).cast::<u32>().write_volatile(m.index());
        }
        let host = match m {
            Kept::TscAux => 0,
            // SAFETY: the others exist on every x86-64 CPU.
            _ => unsafe { Msr::new(m.index()).read() },
        };
        let guest = if m == Kept::Pat { ipc::msr::PAT_RESET } else { 0 };
        // SAFETY: `value` points into the frame.
        unsafe {
            value(frame, 0, i).write_volatile(guest);
            value(frame, HOST_LIST_AT, i).write_volatile(host);
        }
    }
}

/// The guest's value of listed MSR `i` (VT-x), or of TSC_AUX (AMD-V, i = 0).
pub fn guest(frame: u64, i: usize) -> u64 {
    // SAFETY: `value` points into the frame.
    unsafe { value(frame, 0, i).read_volatile() }
}

/// Sets the guest's value of listed MSR `i` (VT-x), or of TSC_AUX (AMD-V, i = 0).
pub fn set_guest(frame: u64, i: usize, v: u64) {
    // SAFETY: `value` points into the frame.
    unsafe { value(frame, 0, i).write_volatile(v) }
}

/// AMD-V: the guest TSC_AUX of the vCPU whose VMCB is at `hw` (entry 0 of
/// its MSR frame), for the entry stub. On every entry: one load. (Done in
/// Rust around the stub's call, the switch cost every exit 40 to 60
/// instructions under QEMU, `guest_bench`: the loop around it compiled
/// worse; in the stub it is a test and a branch each way.)
#[inline(always)]
pub fn tsc_aux(hw: u64) -> u64 {
    let at = crate::obj::vcpu::msr_frame(hw) + crate::mem::layout::PHYS_OFFSET + 8;
    // SAFETY: `hw` is a vCPU's VMCB, whose MSR frame the kernel owns and
    // maps in the direct map at PHYS_OFFSET; entry 0's value is aligned.
    unsafe { core::ptr::read_volatile(at as *const u64) }
}
