//! A guest's RDMSR and WRMSR of an MSR the kernel keeps (`ipc::msr`), on
//! AMD-V: in the VMCB's save area (EFER, loaded by VMRUN; the segment
//! bases, KERNEL_GS_BASE, STAR, LSTAR, CSTAR, SFMASK and SYSENTER_*,
//! loaded by VMLOAD; PAT as G_PAT, nested paging's), TSC_AUX in the MSR
//! frame (`virt::msrs`), switched around VMRUN by the entry stub
//! (`run::svm_enter`) when it is not the host's 0.
//!
//! Long mode: the guest sets LME here and CR0.PG itself (not intercepted);
//! the CPU sets LMA in the VMCB's EFER, which keeps SVME, hidden from the
//! guest's RDMSR (`run::Vmcb::msr`).

use ipc::msr::{self, Kept, Mode};

use super::run::Vmcb;
use crate::obj::vcpu::{msr_frame, GuestRegs};
use crate::virt::msrs;
use crate::virt::vcpu::HwExit;

/// Does the guest's RDMSR (`write` false) or WRMSR of `m` of `len` bytes,
/// with its registers `regs`, on the vCPU whose VMCB `vmcb` is at `hw`;
/// a write the CPU would refuse is #GP. Out of line: the exits a VMM
/// answers pay nothing for it.
#[cold]
#[inline(never)]
pub fn exit(vmcb: &Vmcb, m: Kept, write: bool, regs: &mut GuestRegs, hw: u64, len: u64) -> HwExit {
    let frame = msr_frame(hw);
    if write {
        let value = (regs.rdx << 32) | (regs.rax & 0xFFFF_FFFF);
        let mode = Mode { efer: vmcb.msr(Kept::Efer), paging: vmcb.paging() };
        let Some(v) = msr::check_write(m, value, mode) else {
            return HwExit::Reflect { vector: 13, error: Some(0), len: 0 };
        };
        if m == Kept::TscAux {
            msrs::set_guest(frame, 0, v);
        } else {
            vmcb.set_msr(m, v);
        }
    } else {
        let v = if m == Kept::TscAux { msrs::guest(frame, 0) } else { vmcb.msr(m) };
        regs.rax = v & 0xFFFF_FFFF;
        regs.rdx = v >> 32;
    }
    HwExit::Skip { len }
}
