//! The one internal interface to a hardware vCPU, with two back ends:
//! VT-x (`vmx::vcpu`) and AMD-V (`svm::vcpu`). The scheduler's vCPU loop
//! (`crate::vm`) only sees this: prepare an entry, enter, a vendor-neutral
//! exit, and interrupt injection.

use ipc::vcpu::Action;

use super::Virt;
use crate::obj::pool::Ref;
use crate::obj::vcpu::Vcpu;

pub use crate::hw::guest::{Entry, HwExit};

/// The regs-affecting part of a VMM's reply (the vendor part is applied by
/// the caller).
pub(super) fn apply_regs(v: &mut Vcpu, r: &ipc::vcpu::Reply) {
    let regs = [&mut v.regs.rax, &mut v.regs.rbx, &mut v.regs.rcx, &mut v.regs.rdx];
    let flags = [Action::SET_RAX, Action::SET_RBX, Action::SET_RCX, Action::SET_RDX];
    for ((reg, flag), value) in regs.into_iter().zip(flags).zip(r.regs) {
        if r.actions.contains(flag) {
            *reg = value;
        }
    }
}

/// Readies vCPU `v` (thread `t`) of a guest with second-level root `root`
/// at TLB epoch `epoch` for entry: first-launch set-up, the VMM's checked
/// reply, a translation flush after unmaps.
pub fn prepare(v: &mut Vcpu, root: u64, epoch: u64, t: Ref) -> Option<Entry> {
    match super::available() {
        Virt::Vmx => super::vmx::vcpu::prepare(v, root, epoch, t),
        Virt::Svm => super::svm::vcpu::prepare(v, root, epoch, t),
        Virt::None => None,
    }
}

/// Runs the guest until it exits.
pub fn enter(e: &mut Entry) -> HwExit {
    match super::available() {
        Virt::Svm => super::svm::vcpu::enter(e),
        _ => super::vmx::vcpu::enter(e),
    }
}

/// Whether the prepared vCPU (`hw`) can take an external interrupt now.
pub fn interruptible(hw: u64) -> bool {
    match super::available() {
        Virt::Svm => super::svm::run::interruptible(&super::svm::run::Vmcb::at(hw)),
        _ => super::vmx::run::interruptible(),
    }
}

/// Whether the guest of the prepared vCPU (`hw`) has interrupts on
/// (RFLAGS.IF), whatever shadow an STI or MOV SS casts.
pub fn interrupts_on(hw: u64) -> bool {
    match super::available() {
        Virt::Svm => super::svm::run::interrupts_on(&super::svm::run::Vmcb::at(hw)),
        _ => super::vmx::run::interrupts_on(),
    }
}

/// Queues external interrupt `vector` for the next entry.
pub fn inject_interrupt(hw: u64, vector: u8) {
    match super::available() {
        Virt::Svm => super::svm::run::inject_interrupt(&super::svm::run::Vmcb::at(hw), vector),
        _ => super::vmx::run::inject_interrupt(vector),
    }
}

/// Asks (or stops asking) for an exit as soon as the guest can take an
/// interrupt.
pub fn want_window(hw: u64, on: bool) {
    match super::available() {
        Virt::Svm => super::svm::run::want_window(&super::svm::run::Vmcb::at(hw), on),
        _ => super::vmx::run::want_window(on),
    }
}

/// Whether a vCPU's hardware state may be cached by the CPU it last ran on
/// (a VMCS is; a VMCB is plain memory).
pub fn cached_by_cpu() -> bool {
    super::available() == Virt::Vmx
}

/// Releases the CPU's hold on a vCPU's hardware state before its frame is
/// freed (VMCLEAR); must run on the CPU that last ran it.
pub fn release(hw: u64) {
    if cached_by_cpu() {
        super::vmx::vmcs::clear(hw);
    }
}
