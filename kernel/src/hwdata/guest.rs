//! What the core and a hardware vCPU back end (`virt::vmx`, `virt::svm`;
//! on the host, the fake) exchange: an entry prepared under the lock, and
//! the exit it ended with, with the vendor taken out. Pure data.

use ipc::vcpu::Exit;

use crate::obj::vcpu::GuestRegs;

/// A guest exit, with the vendor taken out.
pub enum HwExit {
    /// A host interrupt or NMI: the kernel's.
    Interrupt { nmi: bool },
    /// A virtualization instruction: #UD, as on a CPU without VT-x or AMD-V.
    Undefined,
    /// The guest can take an interrupt now.
    Window,
    /// Its time slice is over (VT-x's preemption timer).
    SliceOver,
    /// A spin-wait (PAUSE-loop exiting, AMD-V's PAUSE filter) at a PAUSE
    /// of `len` bytes, not yet run: the vCPU gives way, as at a yield
    /// (`crate::vm`), and goes on after it.
    Spin { len: u64 },
    /// An intercepted #DB or #AC, given back to the guest (after the
    /// instruction of `len` bytes, for ICEBP): intercepted so that their
    /// delivery cannot loop inside the CPU, which takes no interrupt then.
    Reflect { vector: u8, error: Option<u32>, len: u64 },
    /// WBINVD or INVD of `len` bytes: done (a guest without devices has
    /// nothing to flush that the host's coherent memory does not keep).
    Skip { len: u64 },
    /// XSETBV of `len` bytes in ring 0: the kernel checks and keeps the
    /// guest's XCR0 (`crate::virt::state`).
    Xsetbv { len: u64 },
    /// For the VMM.
    Vmm(Exit),
}

/// What entering needs, read under the lock.
pub struct Entry {
    pub hw: u64,
    pub regs: GuestRegs,
    pub launched: bool,
    pub root: u64,
}
