//! The AMD-V back end of the internal vCPU interface (`crate::virt::vcpu`).

use ipc::vcpu::Action;

use super::run as svm;
use crate::obj::pool::Ref;
use crate::obj::vcpu::Vcpu;
use crate::virt::vcpu::{apply_regs, take_staged, Entry};

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
