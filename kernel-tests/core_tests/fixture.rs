//! A child of the root holding a capability of every kind, and the table
//! of every syscall's capability arguments.

use ipc::msg::{IpcCall, Message};
use ipc::syscall::{Call, Nr, UserAddr, UserBuf, Width};
use ipc::{CapSlot, ObjectType, Rights};

use super::sim::{Child, Out, Sim};
use crate::obj::pool::Ref;

/// Where the fixture maps its buffer page.
pub const BUF_VA: u64 = 0x20_0000;
/// Guest port of the fixture's doorbell.
pub const BELL_PORT: u16 = 0x500;

/// A child (on CPU 1) with one capability of each kind (its slots).
pub struct Fix {
    pub c: Child,
    pub t: Ref,
    /// A page mapped read-write at [`BUF_VA`].
    pub mem: CapSlot,
    pub ep: CapSlot,
    pub ntfn: CapSlot,
    pub guest: CapSlot,
    pub virq: CapSlot,
    pub bell: CapSlot,
    /// A vCPU of `guest` (exits to `ep`).
    pub vcpu: CapSlot,
    /// A second thread of its own, on CPU 1.
    pub thread: CapSlot,
    /// Ports 0x60..0x68 (READ, WRITE, GRANT), from the root.
    pub ports: CapSlot,
    /// Interrupt line 1 (CONTROL), from the root.
    pub irq: CapSlot,
    /// A mapped user buffer.
    pub buf: UserBuf,
    /// PCI segment 0 (CONTROL), from the root.
    pub pci: CapSlot,
    /// The fake's function 00:04.0 (READ, WRITE), made by the root for it.
    pub dev: CapSlot,
}

pub fn fixture(s: &mut Sim) -> Fix {
    let c = s.child(1024, Some(1));
    let t = c.thread;
    let me = c.me;
    let mem = s.call(t, Call::MemoryCreate { domain: me, pages: 1 }).slot();
    let va = UserAddr::page(BUF_VA).expect("va");
    s.call(t, Call::MemoryMap { memory: mem, domain: me, va, rights: Rights::READ | Rights::WRITE }).ok();
    let ep = s.call(t, Call::EndpointCreate { domain: me }).slot();
    let ntfn = s.call(t, Call::NotificationCreate { domain: me }).slot();
    let guest = s.call(t, Call::GuestCreate { quota_pages: 64 }).slot();
    let virq = s.call(t, Call::VirqCreate { guest, vector: 40 }).slot();
    let bell = s.call(t, Call::DoorbellCreate { guest, port: BELL_PORT, ntfn, bits: 1 }).slot();
    let vcpu = s
        .call(t, Call::VcpuCreate { guest, exit: ep, entry: 0x1000, arg: 0, sipi: None, cpu: Some(1) })
        .slot();
    let entry = UserAddr::new(super::sim::ENTRY).expect("entry");
    let stack = UserAddr::new(super::sim::STACK).expect("stack");
    let thread = s.call(t, Call::ThreadCreate { domain: me, entry, stack, arg: 0, cpu: Some(1) }).slot();
    let r = s.root_thread;
    let all = s.caps.ioports;
    let ports = s.call(r, Call::IoPortsCreate { ports: all, base: 0x60, count: 8 }).slot();
    let rw = Rights::READ | Rights::WRITE | Rights::GRANT;
    let ports = s.call(r, Call::CapGrant { domain: c.slot, slot: ports, rights: rw }).slot();
    let irq = s.caps.irqs[1];
    let irq = s.call(r, Call::CapGrant { domain: c.slot, slot: irq, rights: Rights::CONTROL }).slot();
    let buf = UserBuf::new(BUF_VA, 16, 4096).expect("buf");
    let pci = s.call(r, Call::CapGrant { domain: c.slot, slot: s.caps.pci, rights: Rights::CONTROL }).slot();
    let function = crate::hw::fake::PCI_FUNCTION;
    let dev = s.call(r, Call::DeviceCreate { pci: s.caps.pci, domain: c.slot, function, dma: true }).slot();
    let dev =
        s.call(r, Call::CapGrant { domain: c.slot, slot: dev, rights: Rights::READ | Rights::WRITE }).slot();
    Fix { c, t, mem, ep, ntfn, guest, virq, bell, vcpu, thread, ports, irq, buf, pci, dev }
}

/// A syscall of either kind.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Sys(Call),
    Ipc(IpcCall),
}

impl Sim {
    /// Thread `t` makes `op`.
    #[track_caller]
    pub fn op(&mut self, t: Ref, op: Op) -> Out {
        match op {
            Op::Sys(c) => self.call(t, c),
            Op::Ipc(c) => self.ipc(t, c),
        }
    }
}

/// A capability argument: the kind it must name (`None`: any) and the
/// rights it needs, and the fixture's slot that satisfies both.
pub struct Arg {
    pub kind: Option<ObjectType>,
    pub needs: Rights,
    pub good: CapSlot,
}

/// Builds a syscall from the slots of its capability arguments.
pub type Make = Box<dyn Fn(&[CapSlot]) -> Op>;

/// One syscall with its capability arguments, built from their slots.
pub struct Case {
    pub nr: u64,
    pub args: Vec<Arg>,
    pub make: Make,
}

fn arg(kind: ObjectType, needs: Rights, good: CapSlot) -> Arg {
    Arg { kind: Some(kind), needs, good }
}

fn any(needs: Rights, good: CapSlot) -> Arg {
    Arg { kind: None, needs, good }
}

/// Every syscall that takes capabilities (all of `Nr::ALL` but `Exit`,
/// `Yield`, `DomainCreate`, `DomainWait`, `GuestCreate`, `Stats`, which
/// take none) and the message verbs, each with valid other arguments.
pub fn cases(f: &Fix) -> Vec<Case> {
    use ObjectType as O;
    let (r, w, c, g) = (Rights::READ, Rights::WRITE, Rights::CONTROL, Rights::GRANT);
    let none = Rights::empty();
    let va = UserAddr::page(BUF_VA).expect("va");
    let far = UserAddr::page(0x30_0000).expect("va");
    let entry = UserAddr::new(super::sim::ENTRY).expect("entry");
    let stack = UserAddr::new(super::sim::STACK).expect("stack");
    let buf = f.buf;
    let me = f.c.me;
    let msg = Message::default();
    let case = |nr: Nr, args: Vec<Arg>, make: Make| Case { nr: nr as u64, args, make };
    let sys = |f: fn(&[CapSlot]) -> Call| -> Make { Box::new(move |s| Op::Sys(f(s))) };
    vec![
        case(
            Nr::ConsoleWrite,
            vec![arg(O::Console, w, f.c.console)],
            Box::new(move |s| Op::Sys(Call::ConsoleWrite { console: s[0], buf })),
        ),
        case(
            Nr::CapDerive,
            vec![any(none, f.mem)],
            sys(|s| Call::CapDerive { slot: s[0], rights: Rights::empty() }),
        ),
        case(
            Nr::CapGrant,
            vec![arg(O::Domain, c, me), any(g, f.ep)],
            sys(|s| Call::CapGrant { domain: s[0], slot: s[1], rights: Rights::empty() }),
        ),
        case(Nr::CapDelete, vec![any(none, f.mem)], sys(|s| Call::CapDelete { slot: s[0] })),
        case(
            Nr::CapRevoke,
            vec![arg(O::Memory, Rights::REVOKE, f.mem)],
            sys(|s| Call::CapRevoke { slot: s[0] }),
        ),
        case(Nr::CapInfo, vec![any(none, f.mem)], sys(|s| Call::CapInfo { slot: s[0] })),
        case(
            Nr::DomainDestroy,
            vec![arg(O::Domain, c, f.guest)],
            sys(|s| Call::DomainDestroy { domain: s[0] }),
        ),
        case(Nr::DomainInfo, vec![arg(O::Domain, c, me)], sys(|s| Call::DomainInfo { domain: s[0] })),
        case(
            Nr::GuestExits,
            vec![arg(O::Domain, c, f.guest)],
            sys(|s| Call::GuestExits { guest: s[0], first: 1 }),
        ),
        case(
            Nr::MemoryCreate,
            vec![arg(O::Domain, c, me)],
            sys(|s| Call::MemoryCreate { domain: s[0], pages: 1 }),
        ),
        case(
            Nr::MemoryMap,
            vec![arg(O::Memory, r, f.mem), arg(O::Domain, c, me)],
            Box::new(move |s| Op::Sys(Call::MemoryMap { memory: s[0], domain: s[1], va: far, rights: r })),
        ),
        case(
            Nr::MemoryUnmap,
            vec![arg(O::Memory, none, f.mem), arg(O::Domain, c, me)],
            Box::new(move |s| Op::Sys(Call::MemoryUnmap { memory: s[0], domain: s[1], va })),
        ),
        case(
            Nr::ThreadCreate,
            vec![arg(O::Domain, c, me)],
            Box::new(move |s| Op::Sys(Call::ThreadCreate { domain: s[0], entry, stack, arg: 0, cpu: None })),
        ),
        case(
            Nr::VcpuCreate,
            vec![arg(O::Domain, c, f.guest), arg(O::Endpoint, w, f.ep)],
            sys(|s| Call::VcpuCreate {
                guest: s[0],
                exit: s[1],
                entry: 0x1000,
                arg: 0,
                sipi: None,
                cpu: Some(1),
            }),
        ),
        case(
            Nr::VirqCreate,
            vec![arg(O::Domain, c, f.guest)],
            sys(|s| Call::VirqCreate { guest: s[0], vector: 41 }),
        ),
        case(Nr::VirqRaise, vec![arg(O::VirqLine, w, f.virq)], sys(|s| Call::VirqRaise { virq: s[0] })),
        case(
            Nr::DoorbellCreate,
            vec![arg(O::Domain, c, f.guest), arg(O::Notification, w, f.ntfn)],
            sys(|s| Call::DoorbellCreate { guest: s[0], port: 0x501, ntfn: s[1], bits: 2 }),
        ),
        case(
            Nr::VcpuInterrupt,
            vec![arg(O::Thread, c, f.vcpu)],
            sys(|s| Call::VcpuInterrupt { vcpu: s[0], vector: 48 }),
        ),
        case(
            Nr::VcpuStateRead,
            vec![arg(O::Thread, c, f.vcpu)],
            Box::new(move |s| {
                let buf = UserBuf { addr: va, len: ipc::vstate::STATE_BYTES };
                Op::Sys(Call::VcpuStateRead { vcpu: s[0], buf })
            }),
        ),
        case(
            Nr::VcpuStateWrite,
            vec![arg(O::Thread, c, f.vcpu)],
            Box::new(move |s| {
                let buf = UserBuf { addr: va, len: ipc::vstate::WRITE_BYTES };
                Op::Sys(Call::VcpuStateWrite { vcpu: s[0], buf })
            }),
        ),
        case(
            Nr::IoPortRead,
            vec![arg(O::IoPorts, r, f.ports)],
            sys(|s| Call::IoPortRead { ports: s[0], port: 0x60, width: Width::Byte }),
        ),
        case(
            Nr::IoPortWrite,
            vec![arg(O::IoPorts, w, f.ports)],
            sys(|s| Call::IoPortWrite { ports: s[0], port: 0x61, width: Width::Byte, value: 7 }),
        ),
        case(
            Nr::IoPortsCreate,
            vec![arg(O::IoPorts, none, f.ports)],
            sys(|s| Call::IoPortsCreate { ports: s[0], base: 0x60, count: 2 }),
        ),
        case(Nr::IrqWait, vec![arg(O::Irq, c, f.irq)], sys(|s| Call::IrqWait { irq: s[0] })),
        case(Nr::EndpointCreate, vec![arg(O::Domain, c, me)], sys(|s| Call::EndpointCreate { domain: s[0] })),
        case(
            Nr::NotificationCreate,
            vec![arg(O::Domain, c, me)],
            sys(|s| Call::NotificationCreate { domain: s[0] }),
        ),
        case(
            Nr::Signal,
            vec![arg(O::Notification, w, f.ntfn)],
            sys(|s| Call::Signal { ntfn: s[0], bits: 1 }),
        ),
        case(Nr::Wait, vec![arg(O::Notification, r, f.ntfn)], sys(|s| Call::Wait { ntfn: s[0] })),
        case(Nr::Poll, vec![arg(O::Notification, r, f.ntfn)], sys(|s| Call::Poll { ntfn: s[0] })),
        case(
            Nr::IrqBind,
            vec![arg(O::Irq, c, f.irq), arg(O::Notification, w, f.ntfn)],
            sys(|s| Call::IrqBind { irq: s[0], ntfn: s[1], bits: 4 }),
        ),
        case(
            Nr::CapMint,
            vec![arg(O::Endpoint, c, f.ep)],
            sys(|s| Call::CapMint { slot: s[0], rights: Rights::empty(), badge: 9 }),
        ),
        case(
            Nr::SchedSet,
            vec![arg(O::Domain, c, f.guest)],
            sys(|s| Call::SchedSet { domain: s[0], weight: 100, cap_percent: 0 }),
        ),
        case(
            Nr::DomainPause,
            vec![arg(O::Domain, c, f.guest)],
            sys(|s| Call::DomainPause { domain: s[0], paused: false }),
        ),
        case(
            Nr::ThreadSetCpu,
            vec![arg(O::Thread, c, f.thread)],
            sys(|s| Call::ThreadSetCpu { thread: s[0], cpu: 1 }),
        ),
        case(
            Nr::DomainNotify,
            vec![arg(O::Domain, c, f.guest), arg(O::Notification, w, f.ntfn)],
            sys(|s| Call::DomainNotify { domain: s[0], ntfn: s[1], bits: 8 }),
        ),
        case(
            Nr::TimerSet,
            vec![arg(O::Notification, w, f.ntfn)],
            sys(|s| Call::TimerSet { ntfn: s[0], bits: 16, delay_us: 0, period_us: 0 }),
        ),
        case(
            Nr::NotificationBind,
            vec![arg(O::Notification, r, f.ntfn)],
            sys(|s| Call::NotificationBind { ntfn: s[0] }),
        ),
        case(
            Nr::DeviceCreate,
            vec![arg(O::Device, c, f.pci), arg(O::Domain, c, me)],
            sys(|s| Call::DeviceCreate {
                pci: s[0],
                domain: s[1],
                function: crate::hw::fake::PCI_OTHER,
                dma: false,
            }),
        ),
        case(
            Nr::DeviceConfigRead,
            vec![arg(O::Device, r, f.dev)],
            sys(|s| Call::DeviceConfigRead { dev: s[0], width: Width::Word, offset: 0 }),
        ),
        case(
            Nr::DeviceConfigWrite,
            vec![arg(O::Device, w, f.dev)],
            sys(|s| Call::DeviceConfigWrite { dev: s[0], width: Width::Byte, offset: 0x3c, value: 11 }),
        ),
        case(
            Nr::DeviceMap,
            vec![arg(O::Device, Rights::READ | Rights::WRITE, f.dev)],
            sys(|s| Call::DeviceMap { dev: s[0], bar: 0, va: UserAddr::page(0x7000_0000).expect("va") }),
        ),
        case(
            Nr::DevicePorts,
            vec![arg(O::Device, Rights::READ | Rights::WRITE, f.dev)],
            sys(|s| Call::DevicePorts { dev: s[0], bar: 1 }),
        ),
        case(
            Nr::DeviceIrqBind,
            vec![arg(O::Device, Rights::READ | Rights::WRITE, f.dev), arg(O::Notification, w, f.ntfn)],
            sys(|s| Call::DeviceIrqBind { dev: s[0], entry: 0, ntfn: s[1], bits: 4 }),
        ),
        case(
            Nr::DeviceDma,
            vec![arg(O::Device, Rights::READ | Rights::WRITE, f.dev), arg(O::Memory, w, f.mem)],
            sys(|s| Call::DeviceDma { dev: s[0], memory: s[1] }),
        ),
        case_ipc(ipc::msg::nr::CALL, arg(O::Endpoint, w, f.ep), move |s| IpcCall::Call { ep: s[0], msg }),
        case_ipc(ipc::msg::nr::RECV, arg(O::Endpoint, r, f.ep), |s| IpcCall::Recv { ep: s[0] }),
        case_ipc(ipc::msg::nr::REPLY_RECV, arg(O::Endpoint, r, f.ep), move |s| IpcCall::ReplyRecv {
            ep: s[0],
            msg,
        }),
    ]
}

fn case_ipc(nr: u64, a: Arg, make: impl Fn(&[CapSlot]) -> IpcCall + 'static) -> Case {
    Case { nr, args: vec![a], make: Box::new(move |s| Op::Ipc(make(s))) }
}
