//! The VT-x back end of the internal vCPU interface (`crate::virt::vcpu`).

use core::sync::atomic::Ordering;

use ipc::vcpu::Action;

use super::run;
use super::vmcs;
use crate::arch::cpu;
use crate::obj::pool::Ref;
use crate::obj::vcpu::Vcpu;
use crate::virt::vcpu::{apply_regs, take_staged, Entry};

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
