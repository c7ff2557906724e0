//! Guest verbs: create a guest (a domain whose memory is its EPT), create a
//! virtual CPU in it.

use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::cap::Cap;
use crate::hw;
use crate::obj::pool::Ref;
use crate::obj::thread::{Context, Thread};
use crate::obj::vcpu::{GuestRegs, Vcpu, HW_FRAMES};
use crate::state::Kernel;

/// Multiboot's hand-off value in eax.
const MULTIBOOT_MAGIC: u64 = 0x2BAD_B002;

/// A guest: a domain whose memory is its EPT or NPT.
pub fn guest_create(k: &mut Kernel, c: Caller, quota_pages: u64) -> Result<Next, Error> {
    if !hw::vm::supported() {
        return Err(Error::NotSupported);
    }
    super::domain::make(k, c, quota_pages, true)
}

/// How a new vCPU starts (see `ipc::syscall::Call::VcpuCreate`).
pub struct Start {
    pub entry: u64,
    pub arg: u64,
    pub sipi: Option<u8>,
}

pub fn vcpu_create(
    k: &mut Kernel,
    c: Caller,
    guest: CapSlot,
    exit: CapSlot,
    start: Start,
    cpu: Option<u16>,
) -> Result<Next, Error> {
    let target = cpu.map(super::online).transpose()?;
    let g = k.cap(c.domain, guest, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    let ep = k.cap(c.domain, exit, ObjectType::Endpoint, Rights::WRITE)?;
    if !k.living(g)?.guest {
        return Err(Error::WrongType);
    }
    k.domain_mut(g)?.quota.charge(HW_FRAMES)?;
    // Its hardware frames given back, should it not be made after all.
    let undo = move |k: &mut Kernel, vmcs: Option<x86_64::PhysAddr>| {
        if let Some(vmcs) = vmcs {
            hw::frames::free(vmcs, HW_FRAMES);
        }
        if let Ok(d) = k.domain_mut(g) {
            d.quota.release(HW_FRAMES);
        }
    };
    let Some(vmcs) = hw::frames::alloc(HW_FRAMES) else {
        undo(k, None);
        return Err(Error::QuotaExceeded);
    };
    hw::vm::init(vmcs);
    let vcpu = Vcpu {
        vmcs,
        launched: false,
        entry: start.entry,
        sipi: start.sipi,
        exit_ep: ep.obj.at,
        badge: ep.badge,
        regs: match start.sipi {
            None => GuestRegs { rax: MULTIBOOT_MAGIC, rbx: start.arg, ..GuestRegs::default() },
            Some(_) => GuestRegs::default(),
        },
        reply: None,
        exit_len: 0,
        stopped: false,
        unsent: false,
        ept_epoch: u64::MAX,
        host_cr3: 0,
        window: false,
        pending: [0; 4],
        exits: [0; ipc::vcpu::EXIT_REASONS],
        staged: None,
    };
    // By default on the VMM thread's CPU: an exit and its reply then switch
    // directly between the two, with no IPI.
    let cpu = target.unwrap_or_else(|| k.threads.get(c.thread).map_or(c.cpu, |t| t.cpu));
    let mut th = Thread::new(g, Context::default(), cpu);
    th.vcpu = Some(vcpu);
    let t = k.create_thread(th).inspect_err(|_| undo(k, Some(vmcs)))?;
    let s = k.give_or(c.domain, Cap::new(ObjectType::Thread, t, Rights::CONTROL), |k| {
        k.remove_thread(t);
        undo(k, Some(vmcs));
    })?;
    k.wake(t);
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

pub fn virq_create(k: &mut Kernel, c: Caller, guest: CapSlot, vector: u8) -> Result<Next, Error> {
    let g = k.cap(c.domain, guest, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    if !k.living(g)?.guest {
        return Err(Error::WrongType);
    }
    let v = k.add_virq(crate::obj::virq::VirqLine { guest: g, vector })?;
    let s = k.give_or(c.domain, Cap::new(ObjectType::VirqLine, v, Rights::WRITE | Rights::GRANT), |k| {
        k.destroy_virq(v)
    })?;
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

/// Marks the vector pending in the guest and gets a running vCPU of it out
/// of the guest so that it is injected at once.
pub fn virq_raise(k: &mut Kernel, c: Caller, virq: CapSlot) -> Result<Next, Error> {
    let at = k.cap(c.domain, virq, ObjectType::VirqLine, Rights::WRITE)?.obj.at;
    let line = k.virqs.get(at).ok_or(Error::StaleCapability)?;
    let (g, vector) = (line.guest, line.vector);
    let dom = k.domain_mut(g)?;
    dom.pending_irqs[usize::from(vector / 64)] |= 1 << (vector % 64);
    let root = dom.root.as_u64();
    if let Some(first) = k.first_vcpu(g) {
        if k.threads.get(first).is_some_and(|th| th.state == crate::obj::thread::ThreadState::Halted) {
            k.wake(first);
        }
    }
    for cpu in 0..hw::cpu::MAX_CPUS {
        if hw::cpu::running_guest(cpu) == root {
            crate::state::kick(cpu);
        }
    }
    Ok(Next::Return([0; 4]))
}

pub fn vcpu_interrupt(k: &mut Kernel, c: Caller, vcpu: CapSlot, vector: u8) -> Result<Next, Error> {
    let t = k.cap(c.domain, vcpu, ObjectType::Thread, Rights::CONTROL)?.obj.at;
    let th = k.threads.get_mut(t).ok_or(Error::StaleCapability)?;
    let v = th.vcpu.as_mut().ok_or(Error::WrongType)?;
    v.pending[usize::from(vector / 64)] |= 1 << (vector % 64);
    match th.state {
        // In its guest there (or about to be): the kick makes it exit and
        // take the interrupt at its next entry.
        crate::obj::thread::ThreadState::Running(cpu) => crate::state::kick(cpu),
        crate::obj::thread::ThreadState::Halted => k.wake(t),
        _ => {}
    }
    Ok(Next::Return([0; 4]))
}

pub fn doorbell_create(
    k: &mut Kernel,
    c: Caller,
    guest: CapSlot,
    port: u16,
    ntfn: CapSlot,
    bits: u64,
) -> Result<Next, Error> {
    let g = k.cap(c.domain, guest, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    let n = k.cap(c.domain, ntfn, ObjectType::Notification, Rights::WRITE)?.obj.at;
    if !k.living(g)?.guest {
        return Err(Error::WrongType);
    }
    if Kernel::doorbell_at(&k.domains, &k.doorbells, g, port).is_some() {
        return Err(Error::AlreadyMapped);
    }
    let bell = crate::obj::virq::Doorbell { guest: g, port, ntfn: n, bits, next: Ref::NONE };
    let b = k.add_doorbell(bell)?;
    let s = k.give_or(c.domain, Cap::new(ObjectType::Doorbell, b, Rights::CONTROL), |k| {
        k.destroy_first_doorbell(g); // `b`, made first on its list
    })?;
    Ok(Next::Return([u64::from(s.0), 0, 0, 0]))
}

/// The exit counts of reasons `first..first + 4` of guest `guest`'s vCPUs
/// (`ipc::syscall::Call::GuestExits`).
pub fn guest_exits(k: &mut Kernel, c: Caller, guest: CapSlot, first: u64) -> Result<Next, Error> {
    let g = k.cap(c.domain, guest, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    if !k.domain(g)?.guest {
        return Err(Error::WrongType);
    }
    let mut out = [0u64; 4];
    let from = usize::try_from(first).map_err(|_| Error::InvalidArgument)?.saturating_sub(1);
    for (_, th) in k.threads.iter().filter(|(_, th)| th.domain == g) {
        let Some(v) = th.vcpu.as_ref() else { continue };
        for (o, n) in out.iter_mut().zip(v.exits.iter().skip(from)) {
            *o = o.wrapping_add(*n);
        }
    }
    Ok(Next::Return(out))
}
