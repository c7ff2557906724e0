//! vCPUs through the scheduler's vCPU loop (`crate::vm`) with scripted
//! exits: to the VMM and back, the exits the kernel keeps, interrupts,
//! idling, and a VMM's death.

use ipc::msg::{IpcCall, Message};
use ipc::syscall::Call;
use ipc::vcpu::{Action, Exit, ExitReason, Reply};
use ipc::Error;

use super::fixture::{fixture, Fix, BELL_PORT};
use super::sim::{run, Out, Sim};
use crate::hw::fake::Event;
use crate::hw::guest::HwExit;
use crate::obj::pool::Ref;
use crate::obj::thread::ThreadState;

const RAM: usize = 8192;

fn exit(reason: ExitReason, qualification: u64) -> HwExit {
    HwExit::Vmm(Exit { reason, rip: 0x1000, len: 2, qualification, gpa: 0, regs: [1, 2, 3, 4] })
}

/// The fixture's vCPU thread, its hardware frame, and the VMM thread (the
/// fixture's second thread, receiving on the exit endpoint): the vCPU runs
/// its script (its first exit, if for the VMM, either found the VMM
/// receiving or waited for it); the fixture's first thread waits.
fn vmm(s: &mut Sim, f: &Fix, script: Vec<HwExit>) -> (Ref, u64, Ref) {
    let v = s.obj(f.c.domain, f.vcpu);
    let hw = s.k().threads.get(v).and_then(|t| t.vcpu.as_ref()).map(|x| x.vmcs.as_u64()).expect("vcpu");
    s.m(|m| m.exits.insert(hw, script.into()));
    let n = s.call(f.t, Call::NotificationCreate { domain: f.c.me }).slot();
    assert_eq!(s.call(f.t, Call::Wait { ntfn: n }), Out::Off);
    let vmm = s.obj(f.c.domain, f.thread);
    match s.ipc(vmm, IpcCall::Recv { ep: f.ep }) {
        Out::Off | Out::Ok(_) => {}
        other => panic!("the VMM's receive: {other:?}"),
    }
    (v, hw, vmm)
}

#[test]
fn an_exit_travels_to_the_vmm_and_its_checked_reply_back() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (v, hw, vmm) = vmm(s, &f, vec![exit(ExitReason::Cpuid, 0)]);
        assert_eq!(s.running(vmm), Some(1), "the VMM has the exit");
        let got =
            Exit::from_message(&Message::from_regs(&s.message(vmm)).expect("message")).expect("an exit");
        assert_eq!((got.reason, got.rip, got.regs), (ExitReason::Cpuid, 0x1000, [1, 2, 3, 4]));
        assert_eq!(s.state(v), Some(ThreadState::AwaitingReply(vmm)));
        // A reply asking for what a VMM may not set is refused; the vCPU waits on.
        let bad = Message { label: 1 << 40, ..Message::default() };
        assert_eq!(s.ipc(vmm, IpcCall::Reply { msg: bad }).err(), Error::InvalidArgument);
        assert_eq!(s.state(v), Some(ThreadState::AwaitingReply(vmm)));
        let reply = Reply { regs: [0xAA, 0, 0, 0], ..Reply::only(Action::ADVANCE | Action::SET_RAX) };
        assert_eq!(s.ipc(vmm, IpcCall::ReplyRecv { ep: f.ep, msg: reply.to_message() }), Out::Off);
        // The guest ran on with the reply applied, then halted (its script done).
        assert_eq!(s.m(|m| m.replies.get(&hw).cloned()), Some(vec![reply]));
        assert_eq!(s.k().threads.get(v).and_then(|t| t.vcpu.as_ref()).map(|x| x.regs.rax), Some(0xAA));
        assert_eq!(s.state(v), Some(ThreadState::Halted));
        assert_eq!(s.m(|m| m.entries.get(&hw).copied()), Some(2));
    });
}

#[test]
fn a_doorbell_write_signals_without_the_vmm() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (v, _, vmm) = vmm(s, &f, vec![exit(ExitReason::PortOut, u64::from(BELL_PORT) | 1 << 16)]);
        assert_eq!(s.state(v), Some(ThreadState::Halted));
        assert!(matches!(s.state(vmm), Some(ThreadState::Receiving(_))), "no message for the VMM");
        let n = s.obj(f.c.domain, f.ntfn);
        assert_eq!(s.k().notifications.get(n).map(|x| x.word), Some(1), "the doorbell's bits");
        // One doorbell per port; CapInfo names it.
        let r = s.root_thread;
        let (guest, ntfn, mine) = (
            s.lend(f.c.domain, f.guest, s.root),
            s.lend(f.c.domain, f.ntfn, s.root),
            s.lend(f.c.domain, f.bell, s.root),
        );
        let bell = Call::DoorbellCreate { guest, port: BELL_PORT, ntfn, bits: 2 };
        assert_eq!(s.call(r, bell).err(), Error::AlreadyMapped);
        let info = s.call(r, Call::CapInfo { slot: mine }).ok();
        assert_eq!(info[0], ipc::ObjectType::Doorbell as u64);
    });
}

/// The exit counts of `guest` as `GuestExits` gives them, by reason.
fn counts(s: &mut Sim, t: Ref, guest: ipc::CapSlot) -> Vec<u64> {
    let mut all = Vec::new();
    for first in (1..=ipc::vcpu::EXIT_REASONS as u64).step_by(4) {
        let r = s.call(t, Call::GuestExits { guest, first }).ok();
        all.extend(r.iter().take(ipc::vcpu::EXIT_REASONS + 1 - first as usize));
    }
    all
}

#[test]
fn exits_are_counted_by_reason() {
    run(2, RAM, |s| {
        let f = fixture(s);
        assert_eq!(counts(s, f.t, f.guest), vec![0; ipc::vcpu::EXIT_REASONS], "none before it ran");
        let bell = || exit(ExitReason::PortOut, u64::from(BELL_PORT) | 1 << 16);
        // Kept (a doorbell, an idle HLT at the script's end, an #UD) or not
        // (the CPUID the VMM answers), each is counted once by its reason.
        let (v, _, vmm) = vmm(s, &f, vec![bell(), bell(), HwExit::Undefined, exit(ExitReason::Cpuid, 0)]);
        // The fixture's thread now waits: the root asks, with a copy.
        let (r, guest) = (s.root_thread, s.lend(f.c.domain, f.guest, s.root));
        assert_eq!(s.running(vmm), Some(1), "the VMM has the CPUID");
        let mut want = vec![0; ipc::vcpu::EXIT_REASONS];
        want[ExitReason::Cpuid.index()] = 1;
        want[ExitReason::PortOut.index()] = 2;
        assert_eq!(counts(s, r, guest), want);
        let reply = Reply::only(Action::ADVANCE);
        assert_eq!(s.ipc(vmm, IpcCall::ReplyRecv { ep: f.ep, msg: reply.to_message() }), Out::Off);
        assert_eq!(s.state(v), Some(ThreadState::Halted));
        want[ExitReason::Hlt.index()] = 1;
        assert_eq!(counts(s, r, guest), want, "the idle HLT the kernel kept");
        // The last call's words past the last reason are 0.
        let last = s.call(r, Call::GuestExits { guest, first: 12 }).ok();
        assert_eq!(last[1..], [0, 0, 0]);
        // Only a guest has exits; CONTROL on it is needed (the fixture's
        // table checks stale, forged and weakened slots).
        let native = f.c.slot;
        assert_eq!(s.call(r, Call::GuestExits { guest: native, first: 1 }).err(), Error::WrongType);
        let weak = s.call(r, Call::CapDerive { slot: guest, rights: ipc::Rights::GRANT }).slot();
        let refused = s.call(r, Call::GuestExits { guest: weak, first: 1 }).err();
        assert_eq!(refused, Error::InsufficientRights);
        // A bad reason number is refused before any capability is looked at.
        assert_eq!(s.raw(r, 25, [0, 13, 0, 0, 0, 0]), Out::Err(Error::InvalidArgument, 2));
    });
}

/// The kept exits' effects, as the replies the kernel made for each (the
/// next entry applies them); XSETBV with the guest's rax = `xcr0`.
fn kept(xcr0: u64) -> (Vec<Reply>, u64) {
    let out = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), 0)));
    let o = out.clone();
    run(2, RAM, move |s| {
        let f = fixture(s);
        let v = s.obj(f.c.domain, f.vcpu);
        if let Some(x) = s.k().threads.get_mut(v).and_then(|t| t.vcpu.as_mut()) {
            x.regs.rax = xcr0;
        }
        let script = vec![
            HwExit::Undefined,
            HwExit::Xsetbv { len: 3 },
            HwExit::Reflect { vector: 1, error: None, len: 0 },
            HwExit::Skip { len: 2 },
        ];
        let (v, hw, vmm) = vmm(s, &f, script);
        assert!(matches!(s.state(vmm), Some(ThreadState::Receiving(_))), "none reached the VMM");
        assert_eq!(s.state(v), Some(ThreadState::Halted));
        assert_eq!(s.m(|m| m.entries.get(&hw).copied()), Some(5));
        // The halt's ADVANCE waits for the next entry.
        let pending = s.k().threads.get(v).and_then(|t| t.vcpu.as_ref()).and_then(|x| x.reply);
        assert_eq!(pending, Some(Reply::only(Action::ADVANCE)));
        *o.lock().expect("lock") =
            (s.m(|m| m.replies.get(&hw).cloned().unwrap_or_default()), s.m(|m| m.xcr0));
    });
    let r = out.lock().expect("lock").clone();
    r
}

#[test]
fn exits_the_kernel_keeps() {
    let inject = |v, e| Reply { inject: Some((v, e)), ..Reply::only(Action::INJECT) };
    let (replies, xcr0) = kept(3);
    assert_eq!(
        replies,
        vec![inject(6, None), Reply::only(Action::ADVANCE), inject(1, None), Reply::only(Action::ADVANCE)]
    );
    assert_eq!(xcr0, 3, "x87 and SSE: a valid XCR0, set");
    // AVX without SSE: #GP, XCR0 unchanged.
    let (replies, xcr0) = kept(5);
    assert_eq!(replies[1], inject(13, Some(0)));
    assert_eq!(xcr0, 1);
}

#[test]
fn a_halted_vcpu_wakes_for_its_interrupts() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (v, hw, _) = vmm(s, &f, vec![]);
        assert_eq!(s.state(v), Some(ThreadState::Halted));
        let t2 = s.obj(f.c.domain, f.thread);
        let _ = t2;
        // The root interrupts it through a capability the child grants it.
        let r = s.root_thread;
        let to_root = s.lend(f.c.domain, f.vcpu, s.root);
        s.seen.clear();
        s.call(r, Call::VcpuInterrupt { vcpu: to_root, vector: 48 }).ok();
        assert!(s.seen.contains(&Event::Injected { hw, vector: 48 }), "{:?}", s.seen);
        assert_eq!(s.state(v), Some(ThreadState::Halted), "and halted again");
        // A guest's VirqLine goes to its first vCPU.
        let virq = s.lend(f.c.domain, f.virq, s.root);
        s.seen.clear();
        s.call(r, Call::VirqRaise { virq }).ok();
        assert!(s.seen.contains(&Event::Injected { hw, vector: 40 }), "{:?}", s.seen);
        // Not a vCPU: refused.
        let thread = s.lend(f.c.domain, f.thread, s.root);
        assert_eq!(s.call(r, Call::VcpuInterrupt { vcpu: thread, vector: 48 }).err(), Error::WrongType);
    });
}

#[test]
fn a_vcpu_whose_vmm_dies_stops() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (v, _, vmm) = vmm(s, &f, vec![exit(ExitReason::Hypercall, 0)]);
        assert_eq!(s.state(v), Some(ThreadState::AwaitingReply(vmm)));
        s.fault(vmm, 13, 0, 0);
        // Released with PeerDead, it never enters its guest again.
        assert_eq!(s.state(v), Some(ThreadState::Dead));
    });
}

#[test]
fn a_failed_entry_stops_the_vcpu_after_telling_the_vmm() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (v, hw, vmm) = vmm(s, &f, vec![exit(ExitReason::EntryFailed, 33), exit(ExitReason::Cpuid, 0)]);
        let got =
            Exit::from_message(&Message::from_regs(&s.message(vmm)).expect("message")).expect("an exit");
        assert_eq!((got.reason, got.qualification), (ExitReason::EntryFailed, 33));
        s.ipc(vmm, IpcCall::ReplyRecv { ep: f.ep, msg: Reply::only(Action::ADVANCE).to_message() });
        assert_eq!(s.state(v), Some(ThreadState::Dead));
        assert_eq!(s.m(|m| m.entries.get(&hw).copied()), Some(1), "never entered again");
    });
}

/// The fixture's vCPU with `script` (each entry 100 µs; a slice is 1 ms)
/// and its second thread, both runnable on CPU 1, its first thread
/// waiting: the vCPU thread, its hardware frame and the second thread.
fn beside(s: &mut Sim, f: &Fix, script: impl Iterator<Item = HwExit>) -> (Ref, u64, Ref) {
    s.m(|m| m.guest_time = 100);
    let t2 = s.obj(f.c.domain, f.thread);
    let v = s.obj(f.c.domain, f.vcpu);
    let hw = s.k().threads.get(v).and_then(|t| t.vcpu.as_ref()).map(|x| x.vmcs.as_u64()).expect("vcpu");
    s.m(|m| m.exits.insert(hw, script.collect()));
    let n = s.call(f.t, Call::NotificationCreate { domain: f.c.me }).slot();
    assert_eq!(s.call(f.t, Call::Wait { ntfn: n }), Out::Off);
    (v, hw, t2)
}

#[test]
fn kept_exits_end_their_slice() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (v, hw, t2) = beside(s, &f, (0..100).map(|_| HwExit::Skip { len: 2 }));
        // CPU 1 runs t2 or the vCPU; a tick makes it choose.
        s.schedule_in(t2);
        let left = s.m(|m| m.exits.get(&hw).map_or(0, |q| q.len()));
        assert!(left > 0 && left < 100, "the vCPU ran part of its script only: {left} left");
        assert_eq!(s.state(v), Some(ThreadState::Runnable));
    });
}

/// A vCPU that spins (PAUSE-loop exiting) gives way at each spin to the
/// CPU's other runnable thread, which may be what it waits for (its VMM
/// serving a sibling vCPU). Without it the spinner ran its whole slice,
/// ten 100 µs entries, whenever credit chose it.
#[test]
fn a_spinning_vcpu_gives_way() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (v, hw, t2) = beside(s, &f, (0..100).map(|_| HwExit::Spin { len: 2 }));
        let left = |s: &mut Sim| s.m(|m| m.exits.get(&hw).map_or(0, |q| q.len()));
        s.schedule_in(t2);
        let before = left(s);
        for tick in 1..=20 {
            s.tick(1, 1000);
            assert_eq!(s.running(t2), Some(1), "the spinner kept the CPU at tick {tick}");
        }
        let spun = before - left(s);
        assert!((1..=20).contains(&spun), "at most one spin a tick, and some: {spun}");
        assert_eq!(s.state(v), Some(ThreadState::Runnable));
        // Alone on its CPU, the spinner runs on to its script's end.
        let other = s.call(t2, Call::NotificationCreate { domain: f.c.me }).slot();
        assert_eq!(s.call(t2, Call::Wait { ntfn: other }), Out::Off);
        assert_eq!(left(s), 0);
        assert_eq!(s.state(v), Some(ThreadState::Halted));
        // Each spin went on after its PAUSE.
        let replies = s.m(|m| m.replies.get(&hw).cloned()).unwrap_or_default();
        assert_eq!(replies.len(), 100);
        assert!(replies.iter().all(|r| *r == Reply::only(Action::ADVANCE)), "{replies:?}");
    });
}

/// The kernel's timers fire at a tick that ends a guest's entry, as at a
/// tick taken from user mode. They did not: a CPU that only ran guests
/// never fired them, so with every CPU in a guest no timer fired at all
/// (Linux with 2 vCPUs hung in its second CPU's `calibrate_delay`, each
/// vCPU spinning on its own CPU while the VMM's APIC timer, a kernel
/// timer, never fired again).
#[test]
fn timers_fire_while_a_guest_holds_the_cpu() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let v = s.obj(f.c.domain, f.vcpu);
        let hw = s.k().threads.get(v).and_then(|t| t.vcpu.as_ref()).map(|x| x.vmcs.as_u64()).expect("vcpu");
        // A guest that spins: each entry runs 1 ms and ends at a tick.
        s.m(|m| {
            m.guest_time = 1000;
            m.tick_in_guest = true;
            m.exits.insert(hw, (0..50).map(|_| HwExit::Interrupt { nmi: false }).collect());
        });
        let t2 = s.obj(f.c.domain, f.thread);
        let other = s.call(t2, Call::NotificationCreate { domain: f.c.me }).slot();
        assert_eq!(s.call(t2, Call::Wait { ntfn: other }), Out::Off);
        // CPU 1's last thread waits for a timer; CPU 0 takes no tick.
        let n = s.call(f.t, Call::NotificationCreate { domain: f.c.me }).slot();
        s.call(f.t, Call::TimerSet { ntfn: n, bits: 8, delay_us: 5000, period_us: 0 }).ok();
        s.call(f.t, Call::Wait { ntfn: n });
        assert!(
            matches!(s.state(f.t), Some(ThreadState::Runnable | ThreadState::Running(1))),
            "the timer fired while the guest ran: {:?}",
            s.state(f.t)
        );
        assert_eq!(s.result(f.t), Out::Ok([8, 0, 0, 0]));
        let left = s.m(|m| m.exits.get(&hw).map_or(0, |q| q.len()));
        assert!(left > 0, "the guest ran its whole script: the timer fired only once it halted");
    });
}

/// A VMM serving its guest's exit runs on the vCPU's time (`sched::payer`);
/// pausing that guest must not stop the VMM with it. (It did: the VMM's
/// payer was paused, so the VMM was never picked again; found by
/// domains_hostile's random calls, which froze in a `DomainPause`.)
#[test]
fn a_vmm_pausing_the_guest_whose_exit_it_serves_runs_on() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (v, hw, vmm) = vmm(s, &f, vec![exit(ExitReason::Cpuid, 0)]);
        assert_eq!(s.running(vmm), Some(1), "the VMM has the exit");
        s.call(vmm, Call::DomainPause { domain: f.guest, paused: true }).ok();
        s.tick(1, 1000);
        assert_eq!(s.running(vmm), Some(1), "the VMM runs on");
        let reply = Reply::only(Action::ADVANCE).to_message();
        assert!(matches!(s.ipc(vmm, IpcCall::Reply { msg: reply }), Out::Ok(_)));
        // The vCPU, paused, does not run until resumed.
        for _ in 0..3 {
            s.tick(1, 1000);
        }
        assert_eq!(s.m(|m| m.entries.get(&hw).copied()), Some(1), "a paused vCPU entered its guest");
        s.call(vmm, Call::DomainPause { domain: f.guest, paused: false }).ok();
        for _ in 0..3 {
            s.tick(1, 1000);
        }
        assert_eq!(s.m(|m| m.entries.get(&hw).copied()), Some(2), "the resumed vCPU ran");
        assert_eq!(s.state(v), Some(ThreadState::Halted));
    });
}

/// A VMM thread on CPU 0 serving an exit of a vCPU homed on CPU 1 runs on
/// that vCPU's credit (`sched::payer`). A vCPU in debt when it exited was
/// topped up only by CPU 1's credit resets, which an idle CPU never makes:
/// the VMM waited for good beside a busy thread of CPU 0 (guest_smp hung so
/// in 3 runs of 10, its VMM serving vCPU 1 while vCPU 0 counted).
#[test]
fn a_server_paid_by_a_caller_of_an_idle_cpu_is_not_starved() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let v = s.obj(f.c.domain, f.vcpu);
        let hw = s.k().threads.get(v).and_then(|t| t.vcpu.as_ref()).map(|x| x.vmcs.as_u64()).expect("vcpu");
        s.m(|m| m.exits.insert(hw, vec![exit(ExitReason::Cpuid, 0)].into()));
        let vmm = s.thread(f.c.slot, Some(0));
        let busy = s.thread(f.c.slot, Some(0));
        assert_eq!(s.ipc(vmm, IpcCall::Recv { ep: f.ep }), Out::Off);
        // CPU 1 left to the vCPU: the fixture's threads wait.
        for t in [f.t, s.obj(f.c.domain, f.thread)] {
            let n = s.call(t, Call::NotificationCreate { domain: f.c.me }).slot();
            assert_eq!(s.call(t, Call::Wait { ntfn: n }), Out::Off);
        }
        for _ in 0..3 {
            s.tick(1, 1000);
        }
        assert_eq!(s.state(v), Some(ThreadState::AwaitingReply(vmm)), "the exit reached the VMM");
        assert!(s.idle(1), "CPU 1 idles");
        // The vCPU in debt (as after a long run), its VMM queued beside a
        // busy thread on CPU 0.
        if let Some(t) = s.k().threads.get_mut(v) {
            t.credit = -5_000;
        }
        assert!(s.running(busy).is_some() || s.state(busy) == Some(ThreadState::Runnable));
        assert_eq!(s.schedule_in(vmm), 0, "the VMM runs");
    });
}

/// `VcpuStateRead` and `VcpuStateWrite` on a vCPU in an exit: the state
/// read, a write staged (seen by the next read) and applied at the next
/// entry before the reply; a refused value is `Malformed` with no
/// argument index (an `InvalidArgument` must name an argument: the
/// hostile fuzzer's rule), a bad buffer `BadAddress`, a vCPU out of its
/// exit `Busy`, and none of them changes anything.
#[test]
fn a_vmm_reads_and_writes_a_vcpu_in_its_exit() {
    use ipc::syscall::UserBuf;
    use ipc::vstate::{reg, State, Write, STATE_BYTES, WRITE_BYTES, WRITE_RIP};
    run(2, RAM, |s| {
        let f = fixture(s);
        let (v, hw, vmm) = vmm(s, &f, vec![exit(ExitReason::Cpuid, 0)]);
        let va = super::fixture::BUF_VA;
        let d = f.c.domain;
        let read_at = |at: u64| Call::VcpuStateRead {
            vcpu: f.vcpu,
            buf: UserBuf::new(at, STATE_BYTES, STATE_BYTES).expect("buf"),
        };
        let write = Call::VcpuStateWrite {
            vcpu: f.vcpu,
            buf: UserBuf::new(va, WRITE_BYTES, WRITE_BYTES).expect("buf"),
        };
        let state = |s: &mut Sim| {
            assert_eq!(s.call(vmm, read_at(va)), Out::Ok([0; 4]));
            let mut b = [0u8; STATE_BYTES as usize];
            s.k().copy_from_user(d, va, &mut b).expect("read back");
            State::from_bytes(&b)
        };
        let st = state(s);
        let regs = s.k().threads.get(v).and_then(|t| t.vcpu.as_ref()).map(|x| x.regs).expect("regs");
        assert_eq!(
            [st.gprs[reg::RAX], st.gprs[reg::RBX], st.gprs[reg::RCX], st.gprs[reg::RDX]],
            [regs.rax, regs.rbx, regs.rcx, regs.rdx]
        );
        // Unmapped (or read-only) buffers: BadAddress, nothing written.
        assert_eq!(s.call(vmm, read_at(0x70_0000)), Out::Err(Error::BadAddress, 0));
        // Values the write refuses: Malformed, never InvalidArgument with rdi 0.
        let mut bad = Write::none().with_rip(0x8000_0000_0000).to_bytes();
        for (what, word, value) in [("rip", 0, WRITE_RIP), ("mask", 0, 1 << 18), ("rflags", 0, 1 << 17)] {
            bad[word..word + 8].copy_from_slice(&value.to_le_bytes());
            if what == "rflags" {
                bad[18 * 8..19 * 8].copy_from_slice(&(1u64 << 3).to_le_bytes());
            }
            s.k().copy_to_user(d, va, &bad).expect("poke");
            assert_eq!(s.call(vmm, write), Out::Err(Error::Malformed, 0), "{what}");
        }
        assert!(s.k().threads.get(v).and_then(|t| t.vcpu.as_ref()).is_some_and(|x| x.staged.is_none()));
        // A good write: staged, read back, applied at entry before the reply.
        let good = Write::none().gpr(reg::RBX, 0x55).gpr(reg::RAX, 0x11).with_rip(0x2000);
        s.k().copy_to_user(d, va, &good.to_bytes()).expect("poke");
        assert_eq!(s.call(vmm, write), Out::Ok([0; 4]));
        let st = state(s);
        assert_eq!((st.gprs[reg::RBX], st.gprs[reg::RAX], st.rip), (0x55, 0x11, 0x2000));
        let reply = Reply { regs: [0xAA, 0, 0, 0], ..Reply::only(Action::ADVANCE | Action::SET_RAX) };
        assert_eq!(s.ipc(vmm, IpcCall::ReplyRecv { ep: f.ep, msg: reply.to_message() }), Out::Off);
        assert_eq!(s.m(|m| m.state_writes.get(&hw).cloned()), Some(vec![good]));
        let regs = s.k().threads.get(v).and_then(|t| t.vcpu.as_ref()).map(|x| (x.regs.rax, x.regs.rbx));
        assert_eq!(regs, Some((0xAA, 0x55)), "the reply's rax over the write's");
        // Out of its exit (halted now): Busy, for the VMM or anyone.
        assert_eq!(s.state(v), Some(ThreadState::Halted));
        let t = s.thread(f.c.slot, Some(1));
        s.k().copy_to_user(d, va, &good.to_bytes()).expect("poke");
        assert_eq!(s.call(t, read_at(va)), Out::Err(Error::Busy, 0));
        assert_eq!(s.call(t, write), Out::Err(Error::Busy, 0));
        // A thread that is no vCPU.
        let not = Call::VcpuStateRead {
            vcpu: f.thread,
            buf: UserBuf::new(va, STATE_BYTES, STATE_BYTES).expect("b"),
        };
        assert_eq!(s.call(t, not), Out::Err(Error::WrongType, 0));
    });
}
