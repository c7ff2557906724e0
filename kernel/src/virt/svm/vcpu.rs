//! The AMD-V back end of the internal vCPU interface (`crate::virt::vcpu`).

use core::sync::atomic::Ordering;

use ipc::vcpu::{Action, Exit, ExitReason};

use super::run::{self as svm, SvmExit};
use crate::arch::cpu;
use crate::obj::pool::Ref;
use crate::obj::vcpu::Vcpu;
use crate::virt::msrs;
use crate::virt::vcpu::{apply_regs, take_staged, Entry, HwExit};

pub fn prepare(v: &mut Vcpu, root: u64, epoch: u64, t: Ref) -> Option<Entry> {
    let pa = v.vmcs.as_u64();
    let vmcb = svm::Vmcb::at(pa);
    if !v.launched {
        let rip = if v.sipi.is_some() { 0 } else { v.entry };
        if !svm::setup(&vmcb, rip, v.regs.rax, root, u32::from(t.index) + 1, v.sipi) {
            return None;
        }
        v.launched = true;
        v.ept_epoch = epoch;
    }
    if v.staged.is_some() {
        let (rsp, rip, rflags) = take_staged(v);
        vmcb.set_state(rsp, rip, rflags);
    }
    if let Some(r) = v.reply.take() {
        let (rip, _) = svm::rip(&vmcb);
        if r.actions.contains(Action::ADVANCE) {
            svm::set_rip(&vmcb, rip + v.exit_len.min(15));
            svm::end_shadow(&vmcb);
        }
        if r.actions.contains(Action::SET_RIP) {
            svm::set_rip(&vmcb, r.rip);
        }
        apply_regs(v, &r);
        if let Some((vector, error)) = r.inject {
            svm::inject(&vmcb, vector, error);
        }
    }
    if v.ept_epoch != epoch {
        svm::flush_tlb(&vmcb);
        v.ept_epoch = epoch;
    }
    Some(Entry { hw: pa, regs: v.regs, launched: true, root })
}

pub fn enter(e: &mut Entry) -> HwExit {
    let vmcb = svm::Vmcb::at(e.hw);
    let host = cpu::current().svm_host.load(Ordering::Relaxed);
    let exit = svm::enter(&vmcb, e.hw, &mut e.regs, host, msrs::tsc_aux(e.hw));
    // After a failed VMRUN the VMCB's rip is the host's (`svm::enter`).
    let (rip, next) = if exit == SvmExit::Invalid { (0, 0) } else { svm::rip(&vmcb) };
    let regs = [e.regs.rax, e.regs.rbx, e.regs.rcx, e.regs.rdx];
    // Without next-RIP saving (QEMU TCG) the length comes from the
    // instruction each exit implies (EMULATORS.md).
    let len = |fixed: u64| if next > rip && next - rip <= 15 { next - rip } else { fixed };
    let vmm =
        |reason, len, qualification, gpa| HwExit::Vmm(Exit { reason, rip, len, qualification, gpa, regs });
    match exit {
        SvmExit::Interrupt => HwExit::Interrupt { nmi: false },
        SvmExit::InterruptWindow => HwExit::Window,
        SvmExit::Nmi => HwExit::Interrupt { nmi: true },
        SvmExit::SvmInstruction => HwExit::Undefined,
        SvmExit::Exception { vector, in_delivery: true, .. } => {
            vmm(ExitReason::ExceptionLoop, 0, u64::from(vector), 0)
        }
        SvmExit::Exception { vector, error, .. } => HwExit::Reflect { vector, error, len: 0 },
        SvmExit::DrWrite { dr, info1, next_rip } => {
            super::debugreg::write(&vmcb, e.root, &e.regs, dr, info1, next_rip)
        }
        SvmExit::CacheFlush => HwExit::Skip { len: len(2) },
        SvmExit::Pause => HwExit::Spin { len: len(2) },
        SvmExit::Xsetbv { cpl: 0 } => HwExit::Xsetbv { len: len(3) },
        SvmExit::Xsetbv { .. } => HwExit::Reflect { vector: 13, error: Some(0), len: 0 },
        SvmExit::Cpuid => vmm(ExitReason::Cpuid, len(2), 0, 0),
        SvmExit::Hlt => vmm(ExitReason::Hlt, len(1), 0, 0),
        SvmExit::Io { port, size, input, string, rep, next_rip } => {
            let q = u64::from(port)
                | u64::from(size) << 16
                | if string { ipc::vcpu::PORT_STRING } else { 0 }
                | if rep { ipc::vcpu::PORT_REP } else { 0 };
            let l = next_rip.wrapping_sub(rip).min(15);
            vmm(if input { ExitReason::PortIn } else { ExitReason::PortOut }, l, q, 0)
        }
        SvmExit::Msr { write } => match msrs::kept(e.regs.rcx) {
            Some(m) => super::msrs::exit(&vmcb, m, write, &mut e.regs, e.hw, len(2)),
            None => vmm(if write { ExitReason::MsrWrite } else { ExitReason::MsrRead }, len(2), 0, 0),
        },
        SvmExit::NestedPageFault { gpa, access } => vmm(ExitReason::MemoryFault, 0, access, gpa),
        SvmExit::Shutdown => vmm(ExitReason::TripleFault, 0, 0, 0),
        SvmExit::Vmmcall => vmm(ExitReason::Hypercall, len(3), 0, 0),
        SvmExit::Invalid => vmm(ExitReason::EntryFailed, 0, u64::MAX, 0),
        SvmExit::Other(raw) => vmm(ExitReason::Other, 0, raw, 0),
    }
}
