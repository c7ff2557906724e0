//! The one internal interface to a hardware vCPU, with two back ends:
//! VT-x (`vmx::vcpu`) and AMD-V (`svm::vcpu`). The scheduler's vCPU loop
//! (`crate::vm`) only sees this: prepare an entry, enter, a vendor-neutral
//! exit, and interrupt injection.

use ipc::vcpu::{Action, ExitReason};

use super::Virt;
use crate::obj::pool::Ref;
use crate::obj::vcpu::{GuestRegs, Vcpu};

pub use crate::hwdata::guest::{Entry, HwExit};

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

/// A port access's reason and qualification (`ipc::vcpu::Exit`): `port`
/// (its low 16 bits), `size` bytes, and the IN, string and REP bits of the
/// vendor's `info` (`bits`, in that order).
pub(super) fn port(port: u64, size: u64, info: u64, [input, string, rep]: [u64; 3]) -> (ExitReason, u64) {
    let flag = |bit: u64, flag: u64| if info & bit != 0 { flag } else { 0 };
    let q =
        (port & 0xFFFF) | size << 16 | flag(string, ipc::vcpu::PORT_STRING) | flag(rep, ipc::vcpu::PORT_REP);
    (if info & input != 0 { ExitReason::PortIn } else { ExitReason::PortOut }, q)
}

/// General register `i` of `regs` in the x86 encoding's order
/// (`ipc::vstate::reg`); None for rsp, which the VMCS or VMCB holds.
pub(super) fn gpr(regs: &mut GuestRegs, i: usize) -> Option<&mut u64> {
    use ipc::vstate::reg::RSP;
    // The registers but rsp, in order: rsp's place skipped.
    let i = match i {
        RSP => return None,
        i if i > RSP => i - 1,
        i => i,
    };
    let r = regs;
    let low = [&mut r.rax, &mut r.rcx, &mut r.rdx, &mut r.rbx, &mut r.rbp, &mut r.rsi, &mut r.rdi, &mut r.r8];
    let high = [&mut r.r9, &mut r.r10, &mut r.r11, &mut r.r12, &mut r.r13, &mut r.r14, &mut r.r15];
    low.into_iter().chain(high).nth(i)
}

/// The general registers of `regs` in the x86 encoding's order, rsp given.
pub(super) fn gprs(regs: &GuestRegs, rsp: u64) -> [u64; 16] {
    let r = regs;
    [
        r.rax, r.rcx, r.rdx, r.rbx, rsp, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14,
        r.r15,
    ]
}

/// Takes vCPU `v`'s staged write (`VcpuStateWrite`): its general
/// registers into `v.regs`; returns (rsp, rip, rflags) where asked for,
/// for the back end to write into the VMCS or VMCB. Out of line and cold:
/// an entry pays only the check that there is one.
#[cold]
#[inline(never)]
pub(super) fn take_staged(v: &mut Vcpu) -> (Option<u64>, Option<u64>, Option<u64>) {
    let Some(w) = v.staged.take() else { return (None, None, None) };
    for i in 0..16 {
        if w.mask & (1 << i) != 0 {
            if let Some(r) = gpr(&mut v.regs, i) {
                *r = w.gprs[i];
            }
        }
    }
    let rsp = (w.mask & (1 << ipc::vstate::reg::RSP) != 0).then_some(w.gprs[ipc::vstate::reg::RSP]);
    let rip = (w.mask & ipc::vstate::WRITE_RIP != 0).then_some(w.rip);
    let rflags = (w.mask & ipc::vstate::WRITE_RFLAGS != 0).then_some(w.rflags);
    (rsp, rip, rflags)
}

/// The state of vCPU `v`, which is in an exit (not running) and ran last
/// on CPU `cpu_of`; None where this CPU cannot read it (VT-x: a VMCS is
/// readable only on the CPU that caches it).
pub fn state_read(v: &Vcpu, cpu_of: usize) -> Option<ipc::vstate::State> {
    let mut s = match super::available() {
        Virt::Vmx if cpu_of == crate::arch::cpu::current_index() => super::vmx::vcpu::state_read(v)?,
        // A VMCB is plain memory: any CPU reads it.
        Virt::Svm => super::svm::run::Vmcb::at(v.vmcs.as_u64()).read_state(),
        _ => return None,
    };
    s.gprs = gprs(&v.regs, s.gprs[ipc::vstate::reg::RSP]);
    s.cr2 = v.regs.cr2;
    Some(s)
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
        Virt::Svm => super::svm::run::enter(e),
        _ => super::vmx::run::enter(e),
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
