//! The VT-x back end of the internal vCPU interface (`crate::virt::vcpu`).

use core::sync::atomic::Ordering;

use ipc::vcpu::{Action, Exit, ExitReason};

use super::run::{self, VmxExit};
use super::vmcs;
use crate::arch::cpu;
use crate::obj::pool::Ref;
use crate::obj::vcpu::Vcpu;
use crate::virt::vcpu::{apply_regs, take_staged, Entry, HwExit};

pub fn prepare(v: &mut Vcpu, root: u64, epoch: u64, t: Ref) -> Option<Entry> {
    let me = cpu::current();
    let pa = v.vmcs.as_u64();
    if !v.launched {
        if !(vmcs::clear(pa) && vmcs::load(pa)) {
            return None;
        }
        me.current_vmcs.store(pa, Ordering::Relaxed);
        let rip = if v.sipi.is_some() { 0 } else { v.entry };
        let msrs = crate::obj::vcpu::msr_frame(pa);
        crate::virt::msrs::init_lists(msrs);
        if !run::setup(rip, root, t.index + 1, v.sipi, msrs) {
            log::warn!("vcpu: the CPU refused a VMCS field");
        }
    } else if me.current_vmcs.load(Ordering::Relaxed) != pa {
        vmcs::load(pa);
        me.current_vmcs.store(pa, Ordering::Relaxed);
    }
    // An exit returns to the address space loaded now (the VMM's, usually).
    let cr3 = x86_64::registers::control::Cr3::read_raw().0.start_address().as_u64();
    if v.host_cr3 != cr3 && vmcs::write(x86::vmx::vmcs::host::CR3, cr3) {
        v.host_cr3 = cr3;
    }
    if v.staged.is_some() {
        let (rsp, rip, rflags) = take_staged(v);
        run::set_state(rsp, rip, rflags);
    }
    if let Some(r) = v.reply.take() {
        if r.actions.contains(Action::ADVANCE) {
            run::set_rip(run::rip() + v.exit_len.min(15));
            run::end_shadow();
        }
        if r.actions.contains(Action::SET_RIP) {
            run::set_rip(r.rip);
        }
        apply_regs(v, &r);
        if let Some((vector, error)) = r.inject {
            run::inject(vector, error);
        }
    }
    if v.ept_epoch != epoch {
        vmcs::invept_all();
        v.ept_epoch = epoch;
    }
    // A slice of one scheduler tick from each entry.
    run::slice_start();
    let launched = v.launched;
    v.launched = true;
    Some(Entry { hw: pa, regs: v.regs, launched, root })
}

pub fn enter(e: &mut Entry) -> HwExit {
    let exit = run::enter(&mut e.regs, e.launched);
    // After a failed entry nothing of the VMCS is read (its exit fields are
    // an older exit's), as on AMD-V (`ipc::vcpu::ExitReason::EntryFailed`).
    let (rip, len) = if let VmxExit::EntryFailed(_) = exit {
        (0, 0)
    } else {
        // DR6 stays in the CPU: kept in the state frame for
        // when a domain's single step clobbers it (`state::restore_dr6`).
        crate::virt::state::save_dr6(crate::obj::vcpu::state_frame(e.hw));
        run::rip_and_len()
    };
    let regs = [e.regs.rax, e.regs.rbx, e.regs.rcx, e.regs.rdx];
    let vmm = |reason, qualification, gpa| HwExit::Vmm(Exit { reason, rip, len, qualification, gpa, regs });
    match exit {
        VmxExit::ExternalInterrupt => HwExit::Interrupt { nmi: false },
        VmxExit::InterruptWindow => HwExit::Window,
        VmxExit::PreemptionTimer => HwExit::SliceOver,
        VmxExit::Pause => HwExit::Spin { len },
        VmxExit::Nmi => HwExit::Interrupt { nmi: true },
        VmxExit::VmxInstruction => HwExit::Undefined,
        VmxExit::Exception { vector, in_delivery: true, .. } => {
            vmm(ExitReason::ExceptionLoop, u64::from(vector), 0)
        }
        VmxExit::Exception { vector, error, dr6, software, .. } => {
            if vector == 1 {
                run::debug_status(dr6);
            }
            HwExit::Reflect { vector, error, len: if software { len } else { 0 } }
        }
        VmxExit::CacheFlush => HwExit::Skip { len },
        // A fault of CPL > 0 precedes the exit (SDM Vol. 3C 25.1.1); checked
        // anyway.
        VmxExit::Xsetbv if run::ring0() => HwExit::Xsetbv { len },
        VmxExit::Xsetbv => HwExit::Reflect { vector: 13, error: Some(0), len: 0 },
        VmxExit::Cpuid => vmm(ExitReason::Cpuid, 0, 0),
        VmxExit::Hlt => vmm(ExitReason::Hlt, 0, 0),
        VmxExit::Io { port, size, input, string, rep } => {
            let q = u64::from(port)
                | u64::from(size) << 16
                | if string { ipc::vcpu::PORT_STRING } else { 0 }
                | if rep { ipc::vcpu::PORT_REP } else { 0 };
            vmm(if input { ExitReason::PortIn } else { ExitReason::PortOut }, q, 0)
        }
        VmxExit::Rdmsr | VmxExit::Wrmsr => match crate::virt::msrs::kept(e.regs.rcx) {
            Some(m) => super::msrs::exit(m, exit == VmxExit::Wrmsr, &mut e.regs, e.hw, len),
            None if exit == VmxExit::Wrmsr => vmm(ExitReason::MsrWrite, 0, 0),
            None => vmm(ExitReason::MsrRead, 0, 0),
        },
        VmxExit::EptViolation { gpa, access } => vmm(ExitReason::MemoryFault, access, gpa),
        VmxExit::TripleFault => vmm(ExitReason::TripleFault, 0, 0),
        VmxExit::Vmcall => vmm(ExitReason::Hypercall, 0, 0),
        VmxExit::EntryFailed(code) => vmm(ExitReason::EntryFailed, code, 0),
        VmxExit::Other(raw) => vmm(ExitReason::Other, raw, 0),
    }
}

/// The state of vCPU `v`, in an exit, whose VMCS this CPU caches (made
/// current here if it is not), but its registers the VMCS does not hold;
/// None if the CPU refused it.
pub fn state_read(v: &Vcpu) -> Option<ipc::vstate::State> {
    let me = cpu::current();
    let pa = v.vmcs.as_u64();
    if me.current_vmcs.load(Ordering::Relaxed) != pa {
        if !vmcs::load(pa) {
            return None;
        }
        me.current_vmcs.store(pa, Ordering::Relaxed);
    }
    Some(run::read_state())
}
