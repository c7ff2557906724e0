//! Every syscall through the real entry: its success and its error paths.

use std::collections::BTreeSet;

use ipc::event::Event as Death;
use ipc::msg::{IpcCall, Message, NO_CAP};
use ipc::syscall::{Call, Nr, UserAddr, UserBuf, Width};
use ipc::{CapSlot, Error, ObjectType, Rights};

use super::fixture::{cases, fixture, BUF_VA};
use super::sim::{run, Out, Sim, ENTRY, STACK};
use crate::hw::fake::Event;
use crate::obj::thread::ThreadState;

const RAM: usize = 8192;

fn page(va: u64) -> UserAddr {
    UserAddr::page(va).expect("a page address")
}

fn rights_of(s: &mut Sim, t: crate::obj::pool::Ref, slot: CapSlot) -> Rights {
    Rights::from_bits_truncate(s.call(t, Call::CapInfo { slot }).ok()[1] as _)
}

#[test]
fn every_capability_argument_is_checked() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let t = f.t;
        let mut covered = BTreeSet::new();
        for case in cases(&f) {
            covered.insert(case.nr);
            for (i, a) in case.args.iter().enumerate() {
                let good: Vec<CapSlot> = case.args.iter().map(|a| a.good).collect();
                let with = |x: CapSlot| {
                    let mut v = good.clone();
                    v[i] = x;
                    (case.make)(&v)
                };
                let what = |how: &str| format!("syscall {} argument {i}: {how}", case.nr);
                let never = CapSlot::new(4000, 0);
                assert_eq!(s.op(t, with(never)).err(), Error::InvalidCapability, "{}", what("out of range"));
                let future = CapSlot::new(a.good.index(), a.good.generation() + 1);
                assert_eq!(
                    s.op(t, with(future)).err(),
                    Error::InvalidCapability,
                    "{}",
                    what("forged generation")
                );
                let copy = s.call(t, Call::CapDerive { slot: a.good, rights: Rights::empty() }).slot();
                s.call(t, Call::CapDelete { slot: copy }).ok();
                assert_eq!(s.op(t, with(copy)).err(), Error::StaleCapability, "{}", what("deleted"));
                if let Some(kind) = a.kind {
                    let other = if kind == ObjectType::Console { f.mem } else { f.c.console };
                    assert_eq!(s.op(t, with(other)).err(), Error::WrongType, "{}", what("wrong type"));
                }
                if !a.needs.is_empty() {
                    let held = rights_of(s, t, a.good) - Rights::REVOKE;
                    let weak = s.call(t, Call::CapDerive { slot: a.good, rights: held - a.needs }).slot();
                    assert_eq!(s.op(t, with(weak)).err(), Error::InsufficientRights, "{}", what("rights"));
                    s.call(t, Call::CapDelete { slot: weak }).ok();
                }
            }
        }
        let capless = [Nr::Exit, Nr::Yield, Nr::DomainCreate, Nr::DomainWait, Nr::GuestCreate, Nr::Stats];
        for nr in Nr::ALL {
            assert!(covered.contains(&(nr as u64)) || capless.contains(&nr), "{nr:?} is not in the table");
        }
    });
}

#[test]
fn unknown_numbers_and_bad_arguments_are_refused() {
    run(1, RAM, |s| {
        let r = s.root_thread;
        for nr in [0, 4, 79, 84, 103, 999, u64::MAX] {
            assert_eq!(s.raw(r, nr, [0; 6]), Out::Err(Error::UnknownSyscall, 0), "nr {nr}");
        }
        // The 1-based index of the bad argument comes back in rdi.
        assert_eq!(s.raw(r, Nr::DomainWait as u64, [2, 0, 0, 0, 0, 0]), Out::Err(Error::InvalidArgument, 1));
        assert_eq!(
            s.raw(r, Nr::MemoryCreate as u64, [0, 0, 0, 0, 0, 0]),
            Out::Err(Error::InvalidArgument, 2)
        );
        let wx = (Rights::READ | Rights::WRITE | Rights::EXEC).bits() as u64;
        assert_eq!(
            s.raw(r, Nr::MemoryMap as u64, [0, 0, 0x1000, wx, 0, 0]),
            Out::Err(Error::InvalidArgument, 4)
        );
        assert_eq!(
            s.raw(r, ipc::msg::nr::CALL, [1 << 40, 0, NO_CAP, 0, 0, 0]),
            Out::Err(Error::InvalidArgument, 1)
        );
        assert_eq!(
            s.raw(r, ipc::msg::nr::REPLY, [0, 0, 1 << 40, 0, 0, 0]),
            Out::Err(Error::InvalidArgument, 3)
        );
        // The caller goes on after each.
        assert_eq!(s.running(r), Some(0));
    });
}

#[test]
fn console_write_copies_the_callers_mapped_bytes() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let m = s.obj(f.c.domain, f.mem);
        let base = s.k().memory.get(m).map(|m| m.base.as_u64()).expect("memory");
        s.m(|m| m.poke(base, b"hello, console!\n"));
        s.call(f.t, Call::ConsoleWrite { console: f.c.console, buf: f.buf }).ok();
        assert_eq!(s.m(|m| std::mem::take(&mut m.console)), b"hello, console!\n");
        // Unmapped, or running past the mapped page: refused, nothing written.
        let unmapped = UserBuf::new(0x30_0000, 4, 4096).expect("buf");
        assert_eq!(
            s.call(f.t, Call::ConsoleWrite { console: f.c.console, buf: unmapped }).err(),
            Error::BadAddress
        );
        let across = UserBuf::new(BUF_VA + 4090, 16, 4096).expect("buf");
        assert_eq!(
            s.call(f.t, Call::ConsoleWrite { console: f.c.console, buf: across }).err(),
            Error::BadAddress
        );
        assert!(s.m(|m| m.console.is_empty()));
        // Too long, or outside user space: the decoder refuses.
        assert_eq!(
            s.raw(f.t, Nr::ConsoleWrite as u64, [u64::from(f.c.console.0), BUF_VA, 4097, 0, 0, 0]),
            Out::Err(Error::InvalidArgument, 2)
        );
    });
}

#[test]
fn exit_is_reported_to_the_supervisor_once() {
    run(2, RAM, |s| {
        let c = s.child(64, Some(1));
        let r = s.root_thread;
        assert_eq!(s.call(r, Call::DomainWait { block: false }).err(), Error::WouldBlock);
        assert_eq!(s.call(c.thread, Call::Exit { code: 7 }), Out::Off);
        assert_eq!(s.state(c.thread), Some(ThreadState::Dead));
        let got = Death::decode(s.call(r, Call::DomainWait { block: false }).ok());
        assert_eq!(got, Some(Death::Exited { domain: crate::obj::domain::id(c.domain), code: 7 }));
        assert_eq!(s.call(r, Call::DomainWait { block: false }).err(), Error::WouldBlock, "reported once");
        let info = s.call(r, Call::DomainInfo { domain: c.slot }).ok();
        assert_eq!(info[3], 0, "no longer alive");
        // Destroyed, its capability is stale.
        s.call(r, Call::DomainDestroy { domain: c.slot }).ok();
        assert_eq!(s.call(r, Call::DomainInfo { domain: c.slot }).err(), Error::StaleCapability);
        // With no child left, a blocking wait would never end.
        assert_eq!(s.call(r, Call::DomainWait { block: true }).err(), Error::WouldBlock);
    });
}

#[test]
fn the_roots_exit_ends_the_run() {
    run(1, RAM, |s| {
        let r = s.root_thread;
        let out =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.call(r, Call::Exit { code: 0 })));
        let payload = out.expect_err("the machine powers off");
        assert_eq!(
            payload.downcast_ref::<crate::hw::fake::PowerOff>(),
            Some(&crate::hw::fake::PowerOff { success: true })
        );
    });
}

#[test]
fn a_blocked_domain_wait_ends_with_a_fault() {
    run(2, RAM, |s| {
        let c = s.child(64, Some(1));
        let r = s.root_thread;
        let r2 = s.thread(s.caps.me, Some(0));
        assert_eq!(s.call(r, Call::DomainWait { block: true }), Out::Off);
        assert_eq!(s.state(r), Some(ThreadState::WaitingForEvent));
        assert_eq!(s.call(r2, Call::DomainWait { block: true }).err(), Error::Busy, "one waiter");
        s.fault(c.thread, 14, 6, 0xdead_b000);
        let ev = Death::decode(match s.result(r) {
            Out::Ok(r) => r,
            other => panic!("{other:?}"),
        });
        match ev {
            Some(Death::Faulted { fault, domain }) => {
                assert_eq!((fault.vector, fault.error, fault.address), (14, 6, 0xdead_b000));
                assert_eq!(domain, crate::obj::domain::id(c.domain));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.state(r), Some(ThreadState::Runnable | ThreadState::Running(_))));
    });
}

#[test]
fn yield_gives_the_cpu_to_another_thread() {
    run(2, RAM, |s| {
        let c = s.child(64, Some(1));
        let t2 = s.thread(c.slot, Some(1));
        let t1 = c.thread;
        s.schedule_in(t1);
        assert_eq!(s.call(t1, Call::Yield), Out::Ok([0; 4]), "yield returns success");
        assert_eq!(s.running(t2), Some(1), "the other thread runs");
        assert_eq!(s.state(t1), Some(ThreadState::Runnable));
        // With nothing else to run, the yielder runs again.
        let n = s.call(t2, Call::NotificationCreate { domain: c.me }).slot();
        assert_eq!(s.call(t2, Call::Wait { ntfn: n }), Out::Off);
        assert_eq!(s.running(t1), Some(1));
        assert_eq!(s.call(t1, Call::Yield), Out::Ok([0; 4]), "alone, it goes on at once");
    });
}

#[test]
fn derive_and_mint_only_narrow_rights() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let t = f.t;
        let rw = Rights::READ | Rights::WRITE;
        let d = s.call(t, Call::CapDerive { slot: f.mem, rights: rw }).slot();
        let info = s.call(t, Call::CapInfo { slot: d }).ok();
        assert_eq!(info, [ObjectType::Memory as u64, u64::from(rw.bits()), 4096, 0]);
        assert_eq!(
            s.call(t, Call::CapDerive { slot: d, rights: rw | Rights::GRANT }).err(),
            Error::InsufficientRights
        );
        assert_eq!(
            s.call(t, Call::CapDerive { slot: f.mem, rights: Rights::REVOKE }).err(),
            Error::InsufficientRights
        );
        // A badge only on an unbadged endpoint or notification, with CONTROL.
        let badged = s.call(t, Call::CapMint { slot: f.ep, rights: Rights::WRITE, badge: 5 }).slot();
        assert_eq!(
            s.call(t, Call::CapMint { slot: badged, rights: Rights::WRITE, badge: 6 }).err(),
            Error::InsufficientRights
        );
        assert_eq!(rights_of(s, t, badged), Rights::WRITE);
        assert_eq!(
            s.call(t, Call::CapMint { slot: f.mem, rights: Rights::READ, badge: 6 }).err(),
            Error::WrongType
        );
        // The badge is what a receiver sees.
        let server = s.thread(f.c.slot, Some(1));
        assert_eq!(s.ipc(server, IpcCall::Recv { ep: f.ep }), Out::Off);
        let msg = Message { label: 77, words: [1, 2, 3, 4, 5, 6, 7, 8], cap: None };
        assert_eq!(s.ipc(t, IpcCall::Call { ep: badged, msg }), Out::Off);
        let got = s.message(server);
        assert_eq!((got[0], got[1], got[3], got[10]), (5, 77, 1, 8));
    });
}

#[test]
fn grant_needs_grant_rights_and_a_live_target() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let other = s.child(64, Some(0));
        let r = s.root_thread;
        // Give the fixture's child a capability to the other domain.
        let to_other =
            s.call(r, Call::CapGrant { domain: f.c.slot, slot: other.slot, rights: Rights::CONTROL }).slot();
        let sent = s.call(f.t, Call::CapGrant { domain: to_other, slot: f.ep, rights: Rights::WRITE }).slot();
        assert_eq!(s.k().domain(other.domain).map(|d| d.caps.get(sent).is_ok()), Ok(true));
        let no_grant = s.call(f.t, Call::CapDerive { slot: f.ep, rights: Rights::WRITE }).slot();
        assert_eq!(
            s.call(f.t, Call::CapGrant { domain: to_other, slot: no_grant, rights: Rights::WRITE }).err(),
            Error::InsufficientRights
        );
        assert_eq!(
            s.call(f.t, Call::CapGrant { domain: to_other, slot: f.ep, rights: Rights::REVOKE }).err(),
            Error::InsufficientRights,
            "never REVOKE"
        );
        s.call(other.thread, Call::Exit { code: 1 });
        assert_eq!(
            s.call(f.t, Call::CapGrant { domain: to_other, slot: f.ep, rights: Rights::WRITE }).err(),
            Error::PeerDead
        );
        s.call(r, Call::DomainDestroy { domain: other.slot }).ok();
        assert_eq!(
            s.call(f.t, Call::CapGrant { domain: to_other, slot: f.ep, rights: Rights::WRITE }).err(),
            Error::StaleCapability
        );
    });
}

#[test]
fn a_destroyed_domains_objects_go_stale_without_a_sweep() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (r, t) = (s.root_thread, f.t);
        let x = s.child(64, None);
        let held = |s: &Sim| s.k().domain(f.c.domain).map(|d| d.caps.len()).expect("domain");
        let before = held(s);
        let to_x =
            s.call(r, Call::CapGrant { domain: f.c.slot, slot: x.slot, rights: Rights::CONTROL }).slot();
        let ntfn = s.call(t, Call::NotificationCreate { domain: to_x }).slot();
        // The fixture's table fills with capabilities to x's endpoints.
        let e = loop {
            match s.call(t, Call::EndpointCreate { domain: to_x }) {
                Out::Ok(_) => {}
                Out::Err(e, _) => break e,
                Out::Off => panic!("blocks"),
            }
        };
        assert_eq!(e, Error::OutOfSlots);
        s.call(r, Call::DomainDestroy { domain: x.slot }).ok();
        // Destroying x swept no other table: the capabilities are still
        // there, and every use of one fails as stale.
        assert_eq!(held(s), crate::cap::table::SLOTS);
        assert_eq!(s.call(t, Call::Poll { ntfn }).err(), Error::StaleCapability);
        assert_eq!(s.call(t, Call::EndpointCreate { domain: to_x }).err(), Error::StaleCapability);
        // A new domain in x's place is not reached through them.
        let y = s.child(64, None);
        assert_eq!(y.domain.index, x.domain.index, "x's place is reused");
        assert_eq!(s.call(t, Call::NotificationCreate { domain: to_x }).err(), Error::StaleCapability);
        // The full table sheds them when it needs a slot.
        let fresh = s.call(t, Call::NotificationCreate { domain: f.c.me }).slot();
        assert_eq!(s.call(t, Call::Poll { ntfn: fresh }).ok(), [0; 4]);
        assert_eq!(held(s), before + 1, "only the live capabilities are left, and the new one");
        assert_eq!(s.call(t, Call::Poll { ntfn }).err(), Error::StaleCapability);
    });
}

#[test]
fn pausing_a_domain_past_slot_64_pauses_it_alone() {
    run(2, RAM, |s| {
        let r = s.root_thread;
        // Domains until two sit at slots 64 and 65 (0 is the root's).
        let mut made = Vec::new();
        while made.last().is_none_or(|&(_, d): &(CapSlot, crate::obj::pool::Ref)| d.index < 65) {
            let slot = s.call(r, Call::DomainCreate { quota_pages: 1 }).slot();
            made.push((slot, s.obj(s.root, slot)));
        }
        let paused = |s: &Sim| -> Vec<u16> {
            s.k().domains.iter().filter(|(_, d)| d.paused).map(|(r, _)| r.index).collect()
        };
        for &(slot, d) in made.iter().rev().take(2) {
            s.call(r, Call::DomainPause { domain: slot, paused: true }).ok();
            assert_eq!(paused(s), vec![d.index], "slot {} alone (not the root's, not slot mod 64)", d.index);
            s.call(r, Call::DomainPause { domain: slot, paused: false }).ok();
            assert_eq!(paused(s), Vec::<u16>::new());
        }
    });
}

#[test]
fn delete_makes_a_slot_stale_and_its_reuse_new() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let t = f.t;
        let a = s.call(t, Call::CapDerive { slot: f.ntfn, rights: Rights::READ }).slot();
        s.call(t, Call::CapDelete { slot: a }).ok();
        assert_eq!(s.call(t, Call::CapDelete { slot: a }).err(), Error::StaleCapability);
        let b = s.call(t, Call::CapDerive { slot: f.ntfn, rights: Rights::READ }).slot();
        assert_eq!(b.index(), a.index(), "the slot is reused");
        assert_ne!(b, a, "with a new generation");
        assert_eq!(s.call(t, Call::Poll { ntfn: a }).err(), Error::StaleCapability);
        assert_eq!(s.call(t, Call::Poll { ntfn: b }).ok(), [0; 4]);
    });
}

#[test]
fn a_full_table_is_out_of_slots() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let t = f.t;
        let mut n = 0;
        let e = loop {
            match s.call(t, Call::CapDerive { slot: f.ntfn, rights: Rights::READ }) {
                Out::Ok(_) => n += 1,
                Out::Err(e, _) => break e,
                Out::Off => panic!("derive blocks"),
            }
        };
        assert_eq!(e, Error::OutOfSlots);
        assert!(n > 200);
        // A creation whose capability finds no slot undoes itself.
        let before = s.k().endpoints.used();
        assert_eq!(s.call(t, Call::EndpointCreate { domain: f.c.me }).err(), Error::OutOfSlots);
        assert_eq!(s.k().endpoints.used(), before);
        let quota = s.k().domain(f.c.domain).map(|d| d.quota.used).expect("domain");
        assert_eq!(s.call(t, Call::MemoryCreate { domain: f.c.me, pages: 4 }).err(), Error::OutOfSlots);
        assert_eq!(s.k().domain(f.c.domain).map(|d| d.quota.used), Ok(quota), "its pages went back");
    });
}

#[test]
fn revoke_makes_every_copy_stale_and_unmaps_it_elsewhere() {
    run(2, RAM, |s| {
        let r = s.root_thread;
        let c = s.child(64, Some(1));
        let mem = s.call(r, Call::MemoryCreate { domain: s.caps.me, pages: 2 }).slot();
        let rw = Rights::READ | Rights::WRITE | Rights::GRANT;
        let theirs = s.call(r, Call::CapGrant { domain: c.slot, slot: mem, rights: rw }).slot();
        let va = page(0x10_0000);
        s.call(c.thread, Call::MemoryMap { memory: theirs, domain: c.me, va, rights: Rights::READ }).ok();
        let root_pa = s.k().domain(c.domain).map(|d| d.root).expect("root");
        assert!(crate::hw::space::translate(root_pa, 0x10_0000).is_some());
        // Only with REVOKE (a copy never has it).
        assert_eq!(s.call(c.thread, Call::CapRevoke { slot: theirs }).err(), Error::InsufficientRights);
        s.call(r, Call::CapRevoke { slot: mem }).ok();
        assert!(crate::hw::space::translate(root_pa, 0x10_0000).is_none(), "unmapped from the grantee");
        assert!(s.k().domain(c.domain).map(|d| d.caps.get(theirs).is_err()).expect("domain"), "copy gone");
        assert_eq!(s.call(c.thread, Call::CapInfo { slot: theirs }).err(), Error::StaleCapability);
        // The original still works, and a copy made now is current.
        let again = s.call(r, Call::CapGrant { domain: c.slot, slot: mem, rights: rw }).slot();
        s.call(c.thread, Call::MemoryMap { memory: again, domain: c.me, va, rights: Rights::READ }).ok();
        // The revoker's own mappings stay.
        let rva = page(0x50_0000);
        s.call(r, Call::MemoryMap { memory: mem, domain: s.caps.me, va: rva, rights: Rights::READ }).ok();
        s.call(r, Call::CapRevoke { slot: mem }).ok();
        let mine = s.k().domain(s.root).map(|d| d.root).expect("root");
        assert!(crate::hw::space::translate(mine, 0x50_0000).is_some());
        assert!(crate::hw::space::translate(root_pa, 0x10_0000).is_none());
    });
}

#[test]
fn domain_quota_is_charged_and_given_back() {
    run(1, RAM, |s| {
        let r = s.root_thread;
        let quota = |s: &mut Sim| s.call(r, Call::Stats).ok()[3];
        let before = quota(s);
        assert_eq!(s.call(r, Call::DomainCreate { quota_pages: 0 }).err(), Error::QuotaExceeded);
        let limit = s.call(r, Call::Stats).ok()[2];
        assert_eq!(s.call(r, Call::DomainCreate { quota_pages: limit }).err(), Error::QuotaExceeded);
        let d = s.call(r, Call::DomainCreate { quota_pages: 100 }).slot();
        // Its quota and its place (`obj::window`) are the supervisor's.
        let place = crate::obj::window::chunk_pages::<crate::obj::domain::Domain>() as u64;
        assert_eq!(quota(s), before + 100 + place);
        let info = s.call(r, Call::DomainInfo { domain: d }).ok();
        assert_eq!((info[1], info[3]), (u64::from(crate::policy::DEFAULT_WEIGHT), 1));
        s.call(r, Call::DomainDestroy { domain: d }).ok();
        assert_eq!(quota(s), before);
        // A child cannot hand out more than it has.
        let c = s.child(50, None);
        assert_eq!(s.call(c.thread, Call::DomainCreate { quota_pages: 50 }).err(), Error::QuotaExceeded);
        let g = s.call(c.thread, Call::DomainCreate { quota_pages: 20 }).slot();
        let used = s.call(c.thread, Call::Stats).ok()[3];
        assert!(used >= 20);
        // Only its supervisor destroys a domain.
        let grandchild = s.obj(c.domain, g);
        let _ = grandchild;
        assert_eq!(s.call(c.thread, Call::DomainDestroy { domain: c.me }).err(), Error::InsufficientRights);
        s.call(c.thread, Call::DomainDestroy { domain: g }).ok();
        assert_eq!(s.call(c.thread, Call::Stats).ok()[3], used - 20 - place);
    });
}

#[test]
fn an_accounts_share_is_exhausted_without_touching_others() {
    run(1, RAM, |s| {
        let r = s.root_thread;
        let a = s.child(600, None);
        let b = s.child(200, None);
        // A domain's place is paid from its supervisor's quota, besides the
        // quota it is given: `a` makes children (and they theirs) until its
        // quota is gone, far fewer than the pool holds.
        let pages = crate::obj::window::chunk_pages::<crate::obj::domain::Domain>() as u64;
        let free = s.k().domains.get(a.domain).map(|x| x.quota.free()).expect("live");
        let mut domains = 0;
        let e = loop {
            match s.call(a.thread, Call::DomainCreate { quota_pages: 1 }) {
                Out::Ok(_) => domains += 1,
                Out::Err(e, _) => break e,
                Out::Off => panic!("blocks"),
            }
        };
        assert_eq!(e, Error::QuotaExceeded);
        assert_eq!(domains as u64, free / (pages + 1));
        assert!(domains > 64, "more than the whole of the old fixed pool");
        // Nobody else is affected.
        s.call(b.thread, Call::DomainCreate { quota_pages: 1 }).ok();
        s.call(r, Call::DomainCreate { quota_pages: 1 }).ok();
    });
}

#[test]
fn endpoints_and_notifications_are_bounded_by_their_owners_quota_alone() {
    type Make = fn(CapSlot) -> Call;
    let kinds: [(Make, usize); 2] = [
        (|domain| Call::NotificationCreate { domain }, crate::state::Notifications::PER),
        (|domain| Call::EndpointCreate { domain }, crate::state::Endpoints::PER),
    ];
    for (make, per) in kinds {
        run(1, RAM, move |s| {
            let r = s.root_thread;
            // Its capability table (256 slots) holds two chunks' worth (a
            // third page pays for its thread).
            let a = s.child(3, None);
            let b = s.child(10, None);
            let quota =
                |s: &Sim, d: crate::obj::pool::Ref| s.k().domains.get(d).map(|x| x.quota).expect("live");
            let free = quota(s, a.domain).free();
            assert!((1..=2).contains(&free), "{free} pages free");
            let mut made = Vec::new();
            let e = loop {
                match s.call(a.thread, make(a.me)) {
                    Out::Ok(x) => made.push(CapSlot(x[0] as u32)),
                    Out::Err(e, _) => break e,
                    Out::Off => panic!("blocks"),
                }
            };
            // Each page of its quota held one chunk; the pool itself is far
            // from full (or the error would be OutOfObjects).
            assert_eq!((e, made.len() as u64), (Error::QuotaExceeded, free * per as u64));
            assert_eq!(quota(s, a.domain).free(), 0);
            // Nobody else is affected: its sibling and the root make theirs.
            let before = quota(s, b.domain).used;
            s.call(b.thread, make(b.me)).ok();
            assert_eq!(quota(s, b.domain).used, before + 1, "b pays for its own chunk");
            s.call(r, make(s.caps.me)).ok();
            for slot in made.iter().take(per) {
                s.call(a.thread, Call::CapDelete { slot: *slot }).ok();
            }
            assert_eq!(quota(s, a.domain).free(), 0, "deleting a capability destroys no object");
            // Destroying the domain frees its chunks; a new one makes as many.
            s.call(r, Call::DomainDestroy { domain: a.slot }).ok();
            let c = s.child(3, None);
            let mut again = 0;
            while s.call(c.thread, make(c.me)) != Out::Err(Error::QuotaExceeded, 0) {
                again += 1;
                assert!(again <= made.len());
            }
            assert_eq!(again, made.len());
        });
    }
}

#[test]
fn virq_lines_are_bounded_by_their_guests_quota_alone() {
    run(1, RAM, |s| {
        let vmm = s.child(400, None);
        let quota = |s: &Sim, d: crate::obj::pool::Ref| s.k().domains.get(d).map(|x| x.quota).expect("live");
        let guest = |s: &mut Sim| {
            let g = s.call(vmm.thread, Call::GuestCreate { quota_pages: 4 }).slot();
            (g, s.obj(vmm.domain, g))
        };
        // Lines of one guest, their capabilities deleted as made (a line
        // lives until its guest dies), until its quota is spent.
        let fill = |s: &mut Sim, g: CapSlot| {
            let mut made = 0u64;
            loop {
                match s.call(vmm.thread, Call::VirqCreate { guest: g, vector: 40 }) {
                    Out::Ok(x) => {
                        s.call(vmm.thread, Call::CapDelete { slot: CapSlot(x[0] as u32) }).ok();
                        made += 1;
                        assert!(made <= crate::state::MAX_VIRQLINES as u64);
                    }
                    Out::Err(e, _) => break (e, made),
                    Out::Off => panic!("blocks"),
                }
            }
        };
        let (g1, d1) = guest(s);
        let (g2, d2) = guest(s);
        let free = quota(s, d1).free();
        assert!(free >= 1, "{free} pages free");
        let vmm_used = quota(s, vmm.domain).used;
        // Each page of the guest's quota held one chunk; the pool is far
        // from full (or the error would be OutOfObjects), and the VMM paid
        // nothing beyond the guest's quota it gave.
        let per = crate::state::VirqLines::PER as u64;
        assert_eq!(fill(s, g1), (Error::QuotaExceeded, free * per));
        assert!(free * per < crate::state::MAX_VIRQLINES as u64);
        assert_eq!(quota(s, d1).free(), 0);
        assert_eq!(quota(s, vmm.domain).used, vmm_used);
        // The other guest is unaffected.
        let before = quota(s, d2).used;
        s.call(vmm.thread, Call::VirqCreate { guest: g2, vector: 41 }).ok();
        assert_eq!(quota(s, d2).used, before + 1, "the second guest pays for its own chunk");
        // Destroying the guest frees its lines; a new one makes as many.
        s.call(vmm.thread, Call::DomainDestroy { domain: g1 }).ok();
        let (g3, _) = guest(s);
        assert_eq!(fill(s, g3), (Error::QuotaExceeded, free * per));
    });
}

#[test]
fn a_full_pool_is_out_of_objects() {
    run(1, RAM, |s| {
        let r = s.root_thread;
        let me = s.caps.me;
        let mut made = 0;
        let e = loop {
            match s.call(r, Call::NotificationCreate { domain: me }) {
                Out::Ok(x) => {
                    // The object stays (its owner is the root): only the slot is freed.
                    s.call(r, Call::CapDelete { slot: CapSlot(x[0] as u32) }).ok();
                    made += 1;
                }
                Out::Err(e, _) => break e,
                Out::Off => panic!("blocks"),
            }
        };
        assert_eq!((e, made), (Error::OutOfObjects, crate::state::MAX_NOTIFICATIONS));
        // Timers: the root is bounded by the table alone.
        let n = s.call(r, Call::EndpointCreate { domain: me }).slot();
        let _ = n;
    });
}

#[test]
fn guests_need_virtualization() {
    run(1, RAM, |s| {
        let r = s.root_thread;
        s.m(|m| m.virt = crate::hw::fake::Virt::None);
        assert_eq!(s.call(r, Call::GuestCreate { quota_pages: 16 }).err(), Error::NotSupported);
        s.m(|m| m.virt = crate::hw::fake::Virt::Svm);
        let g = s.call(r, Call::GuestCreate { quota_pages: 16 }).slot();
        assert_eq!(s.call(r, Call::GuestCreate { quota_pages: 0 }).err(), Error::QuotaExceeded);
        // A guest has no native threads; a native domain no vCPUs.
        let entry = UserAddr::new(ENTRY).expect("entry");
        let stack = UserAddr::new(STACK).expect("stack");
        let tc = Call::ThreadCreate { domain: g, entry, stack, arg: 0, cpu: None };
        assert_eq!(s.call(r, tc).err(), Error::WrongType);
        let ep = s.call(r, Call::EndpointCreate { domain: s.caps.me }).slot();
        let vc = Call::VcpuCreate { guest: s.caps.me, exit: ep, entry: 0, arg: 0, sipi: None, cpu: None };
        assert_eq!(s.call(r, vc).err(), Error::WrongType);
        assert_eq!(s.call(r, Call::VirqCreate { guest: s.caps.me, vector: 40 }).err(), Error::WrongType);
        let n = s.call(r, Call::NotificationCreate { domain: s.caps.me }).slot();
        let bell = Call::DoorbellCreate { guest: s.caps.me, port: 1, ntfn: n, bits: 1 };
        assert_eq!(s.call(r, bell).err(), Error::WrongType);
        // Guest memory maps at guest-physical 0, executable (NPT here).
        let m = s.call(r, Call::MemoryCreate { domain: s.caps.me, pages: 1 }).slot();
        let zero = UserAddr::page_or_zero(0).expect("page 0");
        s.call(r, Call::MemoryMap { memory: m, domain: g, va: zero, rights: Rights::READ | Rights::WRITE })
            .ok();
        let gd = s.obj(s.root, g);
        let groot = s.k().domain(gd).map(|d| d.root).expect("guest");
        let (_, flags) = crate::hw::fake::space::lookup(true, groot, 0).expect("mapped");
        assert!(flags.contains(crate::mem::paging::MapFlags::EXEC | crate::mem::paging::MapFlags::WRITE));
    });
}

#[test]
fn mapping_errors() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (t, me) = (f.t, f.c.me);
        let r = Rights::READ;
        let map = |s: &mut Sim, memory, va| s.call(t, Call::MemoryMap { memory, domain: me, va, rights: r });
        assert_eq!(map(s, f.mem, page(BUF_VA)).err(), Error::AlreadyMapped);
        let zero = UserAddr::page_or_zero(0).expect("page 0");
        assert_eq!(map(s, f.mem, zero).err(), Error::BadAddress, "a native domain's page 0");
        let big = s.call(t, Call::MemoryCreate { domain: me, pages: 2 }).slot();
        assert_eq!(map(s, big, page(ipc::syscall::USER_END - 4096)).err(), Error::BadAddress, "past the end");
        // A partial overlap maps nothing.
        assert_eq!(map(s, big, page(BUF_VA - 4096)).err(), Error::AlreadyMapped);
        let root_pa = s.k().domain(f.c.domain).map(|d| d.root).expect("domain");
        assert!(crate::hw::space::translate(root_pa, BUF_VA - 4096).is_none(), "undone");
        // More mappings of one object than the eight it once had room
        // for (each a record of the mapper's), each unmapped once.
        for i in 0..12 {
            map(s, big, page(0x100_0000 + i * 0x10_0000)).ok();
        }
        let unmap = |s: &mut Sim, va| s.call(t, Call::MemoryUnmap { memory: big, domain: me, va });
        unmap(s, page(0x100_0000)).ok();
        assert_eq!(unmap(s, page(0x100_0000)).err(), Error::NotMapped);
        map(s, big, page(0x200_0000)).ok();
        // Writable needs WRITE on the capability.
        let ro = s.call(t, Call::CapDerive { slot: big, rights: Rights::READ }).slot();
        let rw = Rights::READ | Rights::WRITE;
        assert_eq!(
            s.call(t, Call::MemoryMap { memory: ro, domain: me, va: page(0x300_0000), rights: rw }).err(),
            Error::InsufficientRights
        );
        // Into a dead domain: PeerDead.
        let other = s.child(64, Some(0));
        let to = s
            .call(
                s.root_thread,
                Call::CapGrant { domain: f.c.slot, slot: other.slot, rights: Rights::CONTROL },
            )
            .slot();
        s.call(other.thread, Call::Exit { code: 0 });
        let fresh = s.call(t, Call::MemoryCreate { domain: me, pages: 1 }).slot();
        assert_eq!(
            s.call(t, Call::MemoryMap { memory: fresh, domain: to, va: page(0x400_0000), rights: r }).err(),
            Error::PeerDead
        );
    });
}

#[test]
fn memory_and_tables_are_bounded_by_the_quota() {
    run(1, RAM, |s| {
        let c = s.child(16, None);
        let t = c.thread;
        let free = |s: &mut Sim| {
            let q = s.call(t, Call::Stats).ok();
            q[2] - q[3]
        };
        let f0 = free(s);
        assert_eq!(s.call(t, Call::MemoryCreate { domain: c.me, pages: f0 + 1 }).err(), Error::QuotaExceeded);
        // One page more: the chunk of the window that keeps the object.
        let m = s.call(t, Call::MemoryCreate { domain: c.me, pages: f0 - 3 }).slot();
        assert_eq!(free(s), 2);
        // Mapping needs room for the tables it may add (up to 5 here).
        let out =
            s.call(t, Call::MemoryMap { memory: m, domain: c.me, va: page(0x1000), rights: Rights::READ });
        assert_eq!(out.err(), Error::QuotaExceeded);
        s.call(t, Call::CapDelete { slot: m }).ok();
        assert_eq!(free(s), 2, "deleting a capability frees nothing: the object is the domain's");
        // The machine's frames run out before a large quota does.
        let r = s.root_thread;
        let huge = s.call(r, Call::MemoryCreate { domain: s.caps.me, pages: (RAM as u64) * 2 }).err();
        assert_eq!(huge, Error::QuotaExceeded);
    });
}

#[test]
fn thread_creation_errors() {
    run(2, RAM, |s| {
        // Small enough that the root's table holds a capability for each.
        let c = s.child(24, None);
        let r = s.root_thread;
        let entry = UserAddr::new(ENTRY).expect("entry");
        let stack = UserAddr::new(STACK).expect("stack");
        let on = |cpu| Call::ThreadCreate { domain: c.slot, entry, stack, arg: 0, cpu };
        assert_eq!(s.call(r, on(Some(2))).err(), Error::NotSupported, "CPU 2 is offline");
        assert_eq!(s.call(r, on(Some(63))).err(), Error::NotSupported);
        // The decoder wants an aligned stack.
        let raw = [u64::from(c.slot.0), ENTRY, STACK + 8, 0, ipc::syscall::ANY_CPU, 0];
        assert_eq!(s.raw(r, Nr::ThreadCreate as u64, raw), Out::Err(Error::InvalidArgument, 3));
        // Threads are bounded by the quota of the domain they run in
        // alone: its first chunk's room, then a chunk a free page.
        let per = crate::state::Threads::PER as u64;
        let quota = |s: &Sim, d: crate::obj::pool::Ref| s.k().domains.get(d).map(|x| x.quota).expect("live");
        let free = quota(s, c.domain).free();
        let mut n = 1;
        while let Out::Ok(_) = s.call(r, on(None)) {
            n += 1;
        }
        assert_eq!(n, per * (free + 1));
        assert_eq!(s.call(r, on(None)).err(), Error::QuotaExceeded);
        assert_eq!(quota(s, c.domain).free(), 0);
        // Nobody else is affected: another domain and the root make theirs.
        let other = s.child(64, None);
        s.thread(other.slot, None);
        let root = s.caps.me;
        s.call(r, Call::ThreadCreate { domain: root, entry, stack, arg: 0, cpu: None }).ok();
        s.call(c.thread, Call::Exit { code: 0 });
        let d = s.child(64, None);
        let _ = d;
        assert_eq!(s.call(r, on(None)).err(), Error::PeerDead);
    });
}

#[test]
fn destroying_a_domain_gives_its_threads_pages_back() {
    run(2, RAM, |s| {
        let r = s.root_thread;
        let used = |s: &Sim| s.k().domains.get(s.root).map(|x| x.quota.used).expect("root");
        let frames = |s: &Sim| s.m(|m| m.ram.free);
        let before = (used(s), frames(s));
        let c = s.child(16, None);
        for _ in 0..8 {
            s.thread(c.slot, None);
        }
        assert!(s.k().threads.pages_of(c.domain.index) >= 2, "its threads fill chunks of its own");
        s.call(r, Call::DomainDestroy { domain: c.slot }).ok();
        assert_eq!((used(s), frames(s)), before, "every page back, to its supervisor's quota too");
        assert_eq!(s.k().threads.pages_of(c.domain.index), 0);
    });
}

#[test]
fn io_ports_only_within_the_range() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let t = f.t;
        s.m(|m| m.port_value = 0x1234_5678);
        assert_eq!(
            s.call(t, Call::IoPortRead { ports: f.ports, port: 0x64, width: Width::Word }).ok()[0],
            0x5678
        );
        assert_eq!(
            s.call(t, Call::IoPortRead { ports: f.ports, port: 0x60, width: Width::Dword }).ok()[0],
            0x1234_5678
        );
        let outside = [(0x5f, Width::Byte), (0x66, Width::Dword), (0x68, Width::Byte)];
        for (port, width) in outside {
            assert_eq!(
                s.call(t, Call::IoPortRead { ports: f.ports, port, width }).err(),
                Error::InsufficientRights
            );
            let w = Call::IoPortWrite { ports: f.ports, port, width, value: 0 };
            assert_eq!(s.call(t, w).err(), Error::InsufficientRights);
        }
        s.seen.clear();
        s.call(t, Call::IoPortWrite { ports: f.ports, port: 0x67, width: Width::Byte, value: 0xab }).ok();
        let events = std::mem::take(&mut s.seen);
        assert!(events.contains(&Event::PortOut { port: 0x67, value: 0xab }));
        assert_eq!(events.iter().filter(|e| matches!(e, Event::PortOut { .. })).count(), 1);
        // A sub-range, never a wider one.
        let sub = s.call(t, Call::IoPortsCreate { ports: f.ports, base: 0x62, count: 2 }).slot();
        assert_eq!(
            s.call(t, Call::IoPortRead { ports: sub, port: 0x61, width: Width::Byte }).err(),
            Error::InsufficientRights
        );
        s.call(t, Call::IoPortRead { ports: sub, port: 0x63, width: Width::Byte }).ok();
        let wider = Call::IoPortsCreate { ports: f.ports, base: 0x5f, count: 2 };
        assert_eq!(s.call(t, wider).err(), Error::InsufficientRights);
        let info = s.call(t, Call::CapInfo { slot: sub }).ok();
        assert_eq!((info[0], info[2]), (ObjectType::IoPorts as u64, 2));
    });
}

#[test]
fn interrupt_lines_wake_their_waiter_or_their_notification() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let t = f.t;
        let t2 = s.obj(f.c.domain, f.thread);
        let line = crate::hw::trap::vector::IRQ_BASE + 1;
        assert_eq!(s.call(t, Call::IrqWait { irq: f.irq }), Out::Off, "waits");
        assert_eq!(s.m(|m| m.masked.get(&1).copied()), Some(false), "unmasked for the wait");
        assert_eq!(s.call(t2, Call::IrqWait { irq: f.irq }).err(), Error::Busy);
        let n = s.call(t2, Call::NotificationCreate { domain: f.c.me }).slot();
        assert_eq!(s.call(t2, Call::IrqBind { irq: f.irq, ntfn: n, bits: 2 }).err(), Error::Busy);
        s.interrupt(0, line);
        assert_eq!(s.m(|m| m.masked.get(&1).copied()), Some(true), "masked until the next wait");
        assert_eq!(s.result(t), Out::Ok([0; 4]));
        // Fired before the wait: pending, the wait returns at once.
        s.interrupt(1, line);
        assert_eq!(s.call(t, Call::IrqWait { irq: f.irq }), Out::Ok([0; 4]));
        // Bound: it signals the notification.
        s.call(t, Call::IrqBind { irq: f.irq, ntfn: f.ntfn, bits: 4 }).ok();
        s.interrupt(0, line);
        assert_eq!(s.call(t, Call::Poll { ntfn: f.ntfn }).ok()[0], 4);
        assert_eq!(s.call(t, Call::IrqWait { irq: f.irq }), Out::Ok([0; 4]), "acknowledges only");
        assert_eq!(s.m(|m| m.masked.get(&1).copied()), Some(false));
    });
}

#[test]
fn notifications_signal_wait_and_poll() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let t = f.t;
        let t2 = s.obj(f.c.domain, f.thread);
        assert_eq!(s.call(t, Call::Poll { ntfn: f.ntfn }).ok()[0], 0);
        s.call(t, Call::Signal { ntfn: f.ntfn, bits: 1 }).ok();
        s.call(t, Call::Signal { ntfn: f.ntfn, bits: 8 }).ok();
        assert_eq!(s.call(t, Call::Wait { ntfn: f.ntfn }).ok()[0], 9, "bits accumulate; no wait");
        assert_eq!(s.call(t, Call::Wait { ntfn: f.ntfn }), Out::Off);
        assert_eq!(s.call(t2, Call::Wait { ntfn: f.ntfn }).err(), Error::Busy, "one waiter");
        // The root signals from CPU 0 through a copy it was given.
        let r = s.root_thread;
        let mine = s.call(t2, Call::CapDerive { slot: f.ntfn, rights: Rights::WRITE | Rights::GRANT }).slot();
        let theirs = s.lend(f.c.domain, mine, s.root);
        s.call(r, Call::Signal { ntfn: theirs, bits: 0x30 }).ok();
        assert_eq!(s.result(t), Out::Ok([0x30, 0, 0, 0]));
        assert_eq!(s.call(r, Call::Wait { ntfn: theirs }).err(), Error::InsufficientRights);
    });
}

#[test]
fn a_bound_notification_ends_a_receive() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let t = f.t;
        let t2 = s.obj(f.c.domain, f.thread);
        s.call(t, Call::NotificationBind { ntfn: f.ntfn }).ok();
        assert_eq!(s.call(t2, Call::NotificationBind { ntfn: f.ntfn }).err(), Error::Busy);
        assert_eq!(s.call(t2, Call::Wait { ntfn: f.ntfn }).err(), Error::Busy, "bound elsewhere");
        assert_eq!(s.ipc(t, IpcCall::Recv { ep: f.ep }), Out::Off);
        s.call(t2, Call::Signal { ntfn: f.ntfn, bits: 6 }).ok();
        let got = s.message(t);
        assert_eq!((got[2], got[3]), (ipc::msg::NOTIFIED, 6));
        // Signalled before the receive: it returns at once.
        s.schedule_in(t);
        s.call(t2, Call::Signal { ntfn: f.ntfn, bits: 1 }).ok();
        s.schedule_in(t);
        assert_eq!(s.ipc(t, IpcCall::Recv { ep: f.ep }), Out::Ok([0, 0, ipc::msg::NOTIFIED, 1]));
    });
}

#[test]
fn sched_set_and_moving_threads() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let r = s.root_thread;
        s.call(r, Call::SchedSet { domain: f.c.slot, weight: 512, cap_percent: 50 }).ok();
        let info = s.call(r, Call::DomainInfo { domain: f.c.slot }).ok();
        assert_eq!((info[1], info[2]), (512, 50));
        assert_eq!(
            s.call(f.t, Call::SchedSet { domain: f.c.me, weight: 9999, cap_percent: 0 }).err(),
            Error::InsufficientRights,
            "not its own share"
        );
        assert_eq!(s.call(f.t, Call::ThreadSetCpu { thread: f.thread, cpu: 5 }).err(), Error::NotSupported);
        let t2 = s.obj(f.c.domain, f.thread);
        s.call(f.t, Call::ThreadSetCpu { thread: f.thread, cpu: 0 }).ok();
        assert_eq!(s.k().threads.get(t2).map(|t| t.cpu), Some(0));
        assert_eq!(s.schedule_in(t2), 0, "it runs on CPU 0 now");
        // A vCPU that ran stays where its VMCS is cached.
        let v = s.obj(f.c.domain, f.vcpu);
        s.schedule_in(s.obj(f.c.domain, f.thread));
        while s.state(v) != Some(ThreadState::Halted) {
            s.tick(1, 1000);
        }
        assert_eq!(s.call(f.t, Call::ThreadSetCpu { thread: f.vcpu, cpu: 0 }).err(), Error::Busy);
    });
}

#[test]
fn a_death_signals_the_supervisors_notification() {
    run(2, RAM, |s| {
        let r = s.root_thread;
        let c = s.child(64, Some(1));
        let n = s.call(r, Call::NotificationCreate { domain: s.caps.me }).slot();
        s.call(r, Call::DomainNotify { domain: c.slot, ntfn: n, bits: 0x100 }).ok();
        let theirs = s.call(r, Call::CapGrant { domain: c.slot, slot: n, rights: Rights::WRITE }).slot();
        assert_eq!(
            s.call(c.thread, Call::DomainNotify { domain: c.me, ntfn: theirs, bits: 1 }).err(),
            Error::InsufficientRights
        );
        s.fault(c.thread, 13, 0, 0);
        assert_eq!(s.call(r, Call::Poll { ntfn: n }).ok()[0], 0x100);
    });
}

/// The CPU's timer is told when the first kernel timer is due, as each is
/// set, fired and cancelled, so that its interrupt comes then and not at
/// the next tick; after each timer interrupt it is restarted (once, after
/// the timers due fired); and a kernel timer's interrupt that is not the
/// tick fires timers without ending the running thread's turn.
#[test]
fn the_cpu_timer_is_told_the_first_timer_due() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let t = f.t;
        let now = |s: &mut Sim| s.m(|m| m.clock);
        assert!(s.m(|m| m.cpus.iter().all(|x| x.timer_due == u64::MAX)), "no timer");
        s.call(t, Call::TimerSet { ntfn: f.ntfn, bits: 2, delay_us: 5000, period_us: 0 }).ok();
        let c = s.m(|m| m.cpus.iter().position(|x| x.timer_due != u64::MAX)).expect("a CPU told");
        let due = move |s: &mut Sim| s.m(|m| m.cpus[c].timer_due);
        let tsc = s.m(|m| m.tsc_per_us);
        let at = now(s) + 5000 * tsc;
        assert_eq!(due(s), at);
        s.call(t, Call::TimerSet { ntfn: f.ntfn, bits: 4, delay_us: 300, period_us: 0 }).ok();
        assert_eq!(due(s), now(s) + 300 * tsc, "a sooner one");
        s.call(t, Call::TimerSet { ntfn: f.ntfn, bits: 4, delay_us: 0, period_us: 0 }).ok();
        assert_eq!(due(s), at, "cancelled: the later one again");
        let (rearms, ticks) = s.m(|m| (m.cpus[c].rearms, m.cpus[c].ticks));
        s.tick(c, 100);
        assert_eq!(
            s.m(|m| (m.cpus[c].rearms, m.cpus[c].ticks)),
            (rearms + 1, ticks + 1),
            "restarted at its tick"
        );
        s.advance(5000);
        s.m(|m| m.cpus[c].timer_only = true);
        s.interrupt(c, crate::hw::trap::vector::TIMER);
        assert_eq!(
            s.m(|m| (m.cpus[c].rearms, m.cpus[c].ticks)),
            (rearms + 2, ticks + 1),
            "a timer's: no tick"
        );
        assert_eq!(s.call(t, Call::Poll { ntfn: f.ntfn }).ok()[0], 2, "fired at its interrupt");
        assert_eq!(due(s), u64::MAX, "fired: none left");
    });
}

#[test]
fn timers_fire_repeat_and_cancel() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let t = f.t;
        s.call(t, Call::TimerSet { ntfn: f.ntfn, bits: 2, delay_us: 500, period_us: 0 }).ok();
        assert_eq!(s.call(t, Call::Wait { ntfn: f.ntfn }), Out::Off);
        s.tick(0, 100);
        assert_eq!(s.state(t), Some(ThreadState::WaitingForSignal(s.obj(f.c.domain, f.ntfn))), "not yet");
        s.tick(0, 500);
        assert_eq!(s.result(t), Out::Ok([2, 0, 0, 0]));
        // Periodic, then cancelled.
        s.call(t, Call::TimerSet { ntfn: f.ntfn, bits: 4, delay_us: 100, period_us: 100 }).ok();
        for _ in 0..3 {
            s.tick(0, 100);
            assert_eq!(s.call(t, Call::Poll { ntfn: f.ntfn }).ok()[0], 4);
        }
        s.call(t, Call::TimerSet { ntfn: f.ntfn, bits: 4, delay_us: 0, period_us: 0 }).ok();
        s.tick(0, 1000);
        assert_eq!(s.call(t, Call::Poll { ntfn: f.ntfn }).ok()[0], 0);
        // Timers are made from their setter's quota: as many as its free
        // pages hold, far fewer than the pool's; then the others' still set.
        let c2 = s.child(8, None);
        let n2 = s.call(c2.thread, Call::NotificationCreate { domain: c2.me }).slot();
        let free = s.k().domains.get(c2.domain).map(|d| d.quota.free()).expect("live");
        let mut n = 0u64;
        loop {
            match s.call(c2.thread, Call::TimerSet { ntfn: n2, bits: n + 1, delay_us: 1 << 30, period_us: 0 })
            {
                Out::Ok(_) => n += 1,
                Out::Err(e, _) => {
                    assert_eq!(e, Error::QuotaExceeded);
                    break;
                }
                Out::Off => panic!("blocks"),
            }
        }
        let per = crate::state::Timers::PER as u64;
        assert_eq!(n, free * per);
        assert!(n < crate::state::MAX_TIMERS as u64);
        // Setting one it has again replaces it (no new one).
        s.call(c2.thread, Call::TimerSet { ntfn: n2, bits: 1, delay_us: 1 << 20, period_us: 0 }).ok();
        s.call(t, Call::TimerSet { ntfn: f.ntfn, bits: 8, delay_us: 100, period_us: 0 }).ok();
        s.tick(0, 100);
        assert_eq!(s.call(t, Call::Poll { ntfn: f.ntfn }).ok()[0], 8, "another's timer fires");
        // Its death frees them all, and their pages.
        let r = s.root_thread;
        s.call(r, Call::DomainDestroy { domain: c2.slot }).ok();
        assert_eq!(s.k().timers.used(), 0);
    });
}

#[test]
fn a_call_and_its_reply_on_one_cpu_take_the_fast_path() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (client, server) = (f.t, s.obj(f.c.domain, f.thread));
        assert_eq!(s.ipc(server, IpcCall::Recv { ep: f.ep }), Out::Off);
        let msg = Message { label: 1, words: [10, 20, 30, 40, 50, 60, 70, 80], cap: None };
        assert_eq!(s.ipc(client, IpcCall::Call { ep: f.ep, msg }), Out::Off);
        assert_eq!(s.running(server), Some(1), "switched straight to the server");
        assert_eq!(s.state(client), Some(ThreadState::AwaitingReply(server)));
        let got = s.message(server);
        assert_eq!((got[1], got[2], got[3], got[10]), (1, NO_CAP, 10, 80));
        let reply = Message { label: 2, words: [7; 8], cap: None };
        assert_eq!(s.ipc(server, IpcCall::ReplyRecv { ep: f.ep, msg: reply }), Out::Off);
        assert_eq!(s.running(client), Some(1));
        let back = s.message(client);
        assert_eq!((back[0], back[1], back[3]), (0, 2, 7), "a reply has badge 0");
        assert_eq!(s.regs(client).rax, 0);
        // The server receives again (its ReplyRecv): the next call is fast too.
        assert_eq!(s.ipc(client, IpcCall::Call { ep: f.ep, msg }), Out::Off);
        assert_eq!(s.running(server), Some(1));
    });
}

#[test]
fn a_call_waits_for_a_server_and_may_carry_a_capability() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let (client, server) = (f.t, s.obj(f.c.domain, f.thread));
        let sent = rights_of(s, client, f.ntfn);
        let msg = Message { label: 3, words: [0; 8], cap: Some(f.ntfn) };
        assert_eq!(s.ipc(client, IpcCall::Call { ep: f.ep, msg }), Out::Off);
        assert_eq!(s.state(client), Some(ThreadState::Sending(s.obj(f.c.domain, f.ep))));
        let got = match s.ipc(server, IpcCall::Recv { ep: f.ep }) {
            Out::Ok(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(got[1], 3);
        let slot = CapSlot(got[2] as u32);
        assert_eq!(rights_of(s, server, slot), sent - Rights::REVOKE);
        // Without GRANT the call is refused before it is sent.
        let weak = s.call(server, Call::CapDerive { slot: f.ntfn, rights: Rights::READ }).slot();
        s.ipc(server, IpcCall::Reply { msg: Message::default() }).ok();
        s.schedule_in(client);
        let msg = Message { label: 3, words: [0; 8], cap: Some(weak) };
        assert_eq!(s.ipc(client, IpcCall::Call { ep: f.ep, msg }).err(), Error::InsufficientRights);
    });
}

#[test]
fn a_caller_whose_server_dies_gets_peer_dead() {
    run(2, RAM, |s| {
        let r = s.root_thread;
        let server = s.child(64, Some(1));
        let ep = s.call(server.thread, Call::EndpointCreate { domain: server.me }).slot();
        let sep = s
            .call(server.thread, Call::CapMint { slot: ep, rights: Rights::WRITE | Rights::GRANT, badge: 1 })
            .slot();
        // Through the root, to a client.
        let client = s.child(64, Some(0));
        let to_client =
            s.call(r, Call::CapGrant { domain: server.slot, slot: client.slot, rights: Rights::CONTROL });
        let to_client = to_client.slot();
        let cep = s
            .call(server.thread, Call::CapGrant { domain: to_client, slot: sep, rights: Rights::WRITE })
            .slot();
        // Mid-call: the server received it and dies before replying.
        assert_eq!(s.ipc(server.thread, IpcCall::Recv { ep }), Out::Off);
        assert_eq!(s.ipc(client.thread, IpcCall::Call { ep: cep, msg: Message::default() }), Out::Off);
        assert_eq!(s.message(server.thread)[0], 1, "badge");
        s.fault(server.thread, 6, 0, 0);
        assert_eq!(s.result(client.thread).err(), Error::PeerDead);
        // Queued on an endpoint of a dead domain: released too; new calls fail.
        s.schedule_in(client.thread);
        assert_eq!(
            s.ipc(client.thread, IpcCall::Call { ep: cep, msg: Message::default() }).err(),
            Error::PeerDead
        );
        s.call(r, Call::DomainDestroy { domain: server.slot }).ok();
        assert_eq!(
            s.ipc(client.thread, IpcCall::Call { ep: cep, msg: Message::default() }).err(),
            Error::StaleCapability
        );
    });
}

#[test]
fn a_server_whose_caller_dies_goes_on() {
    run(2, RAM, |s| {
        let r = s.root_thread;
        let server = s.child(64, Some(1));
        let ep = s.call(server.thread, Call::EndpointCreate { domain: server.me }).slot();
        let client = s.child(64, Some(0));
        let to_client = s
            .call(r, Call::CapGrant { domain: server.slot, slot: client.slot, rights: Rights::CONTROL })
            .slot();
        let cep = s
            .call(server.thread, Call::CapGrant { domain: to_client, slot: ep, rights: Rights::WRITE })
            .slot();
        assert_eq!(s.ipc(server.thread, IpcCall::Recv { ep }), Out::Off);
        assert_eq!(s.ipc(client.thread, IpcCall::Call { ep: cep, msg: Message::default() }), Out::Off);
        // The server holds the reply; the caller's domain is destroyed.
        s.call(r, Call::DomainDestroy { domain: client.slot }).ok();
        assert_eq!(s.k().threads.get(server.thread).and_then(|t| t.reply_to), None, "its reply is dropped");
        // Replying to nobody succeeds and the server receives again.
        assert_eq!(s.ipc(server.thread, IpcCall::Reply { msg: Message::default() }), Out::Ok([0; 4]));
        assert_eq!(s.ipc(server.thread, IpcCall::ReplyRecv { ep, msg: Message::default() }), Out::Off);
        assert_eq!(s.state(server.thread), Some(ThreadState::Receiving(s.obj(server.domain, ep))));
    });
}

#[test]
fn an_endpoints_queue_is_bounded() {
    run(2, RAM, |s| {
        let c = s.child(1024, Some(1));
        let ep = s.call(c.thread, Call::EndpointCreate { domain: c.me }).slot();
        let mut callers = Vec::new();
        for _ in 0..crate::obj::endpoint::QUEUE {
            let t = s.thread(c.slot, Some(1));
            assert_eq!(s.ipc(t, IpcCall::Call { ep, msg: Message::default() }), Out::Off);
            callers.push(t);
        }
        assert_eq!(s.ipc(c.thread, IpcCall::Call { ep, msg: Message::default() }).err(), Error::Busy);
        // Callers that died leave room (dropped when the queue is full).
        let r = s.root_thread;
        let _ = r;
        let first = callers[0];
        assert!(matches!(s.state(first), Some(ThreadState::Sending(_))));
    });
}

#[test]
fn a_fault_stops_the_domain_and_reports_it() {
    run(2, RAM, |s| {
        let r = s.root_thread;
        let c = s.child(64, Some(1));
        let t2 = s.thread(c.slot, Some(1));
        s.fault(c.thread, 0, 0, 0);
        assert_eq!(s.state(c.thread), Some(ThreadState::Dead));
        assert_eq!(s.state(t2), Some(ThreadState::Dead), "every thread of it");
        let ev = Death::decode(s.call(r, Call::DomainWait { block: false }).ok());
        assert!(matches!(ev, Some(Death::Faulted { fault, .. }) if fault.vector == 0));
        s.call(r, Call::DomainDestroy { domain: c.slot }).ok();
        assert_eq!(s.state(t2), None, "freed");
    });
}

#[test]
fn a_cpu_that_misses_a_shootdown_never_gets_its_frames_freed() {
    run(2, RAM, |s| {
        let r = s.root_thread;
        let c = s.child(64, Some(1));
        let t = c.thread;
        let m = s.call(t, Call::MemoryCreate { domain: c.me, pages: 3 }).slot();
        s.call(t, Call::MemoryMap { memory: m, domain: c.me, va: page(0x10_0000), rights: Rights::READ })
            .ok();
        assert_eq!(s.running(t), Some(1));
        let t2 = s.thread(c.slot, Some(0));
        s.schedule_in(t2);
        // CPU 1 runs the domain and stops answering.
        s.m(|m| m.cpus[1].deaf = true);
        s.call(t2, Call::MemoryUnmap { memory: m, domain: c.me, va: page(0x10_0000) }).ok();
        let mr = s.obj(c.domain, m);
        assert_eq!(s.k().memory.get(mr).map(|x| x.backing), Some(crate::obj::memory::Backing::Unflushed));
        s.m(|m| m.cpus[1].deaf = false);
        let leaked = s.m(|m| m.leaked);
        s.call(r, Call::DomainDestroy { domain: c.slot }).ok();
        assert_eq!(s.m(|m| m.leaked) - leaked, 3, "leaked, never freed");
    });
}

#[test]
fn nothing_is_made_for_a_dead_domain() {
    run(2, RAM, |s| {
        let f = fixture(s);
        let r = s.root_thread;
        // The root makes objects for the child, then the child dies.
        let mine = |s: &mut Sim, slot| s.lend(f.c.domain, slot, s.root);
        let (guest, ep, ntfn) = (mine(s, f.guest), mine(s, f.ep), mine(s, f.ntfn));
        s.call(r, Call::EndpointCreate { domain: f.c.slot }).ok();
        s.call(f.t, Call::Exit { code: 3 });
        assert_eq!(s.call(r, Call::EndpointCreate { domain: f.c.slot }).err(), Error::PeerDead);
        assert_eq!(s.call(r, Call::NotificationCreate { domain: f.c.slot }).err(), Error::PeerDead);
        assert_eq!(s.call(r, Call::MemoryCreate { domain: f.c.slot, pages: 1 }).err(), Error::PeerDead);
        // Its guest lives on (supervised by the dead child), but its exit
        // endpoint is dead; a live guest gets vCPUs, VirqLines, doorbells.
        let vc = Call::VcpuCreate { guest, exit: ep, entry: 0, arg: 0, sipi: None, cpu: None };
        s.call(r, vc).ok();
        s.call(r, Call::VirqCreate { guest, vector: 50 }).ok();
        s.call(r, Call::DoorbellCreate { guest, port: 0x600, ntfn, bits: 1 }).ok();
        // Once the guest has died too, none.
        let g = s.obj(s.root, guest);
        s.k().kill(g, ipc::event::Event::Exited { domain: crate::obj::domain::id(g), code: 0 });
        assert_eq!(s.call(r, vc).err(), Error::PeerDead);
        assert_eq!(s.call(r, Call::VirqCreate { guest, vector: 51 }).err(), Error::PeerDead);
        let bell = Call::DoorbellCreate { guest, port: 0x601, ntfn, bits: 1 };
        assert_eq!(s.call(r, bell).err(), Error::PeerDead);
    });
}

#[test]
fn a_reply_recv_on_a_dead_domains_endpoint_replies_then_fails() {
    run(2, RAM, |s| {
        let owner = s.child(64, Some(0));
        let ep = s.call(owner.thread, Call::EndpointCreate { domain: owner.me }).slot();
        let user = s.child(64, Some(1));
        let server = user.thread;
        let client = s.thread(user.slot, Some(1));
        let sep = s.lend(owner.domain, ep, user.domain);
        assert_eq!(s.ipc(server, IpcCall::Recv { ep: sep }), Out::Off);
        assert_eq!(s.ipc(client, IpcCall::Call { ep: sep, msg: Message::default() }), Out::Off);
        assert_eq!(s.running(server), Some(1), "the fast path's direct switch");
        s.call(owner.thread, Call::Exit { code: 0 });
        // The fast path's shape (its caller waits on this CPU), on a dead
        // domain's endpoint: the reply goes, the receive fails.
        let reply = Message { label: 9, ..Message::default() };
        assert_eq!(s.ipc(server, IpcCall::ReplyRecv { ep: sep, msg: reply }).err(), Error::PeerDead);
        assert_eq!(s.result(client), Out::Ok([0, 9, NO_CAP, 0]));
        assert!(matches!(s.state(client), Some(ThreadState::Runnable | ThreadState::Running(_))));
    });
}

/// Room for a hundred guests (issue #10 item 4): every object window has a
/// chunk for each of 224 owners at least (100 guests, their VMMs and the
/// rest), so that no owner is refused `OutOfObjects` for want of a chunk
/// while the pool has room; with 64 a window, the 65th VMM could make no
/// notification.
#[test]
fn every_object_window_has_room_for_a_hundred_guests_and_their_vmms() {
    use crate::state::*;
    let owners = [
        ("domains", MAX_DOMAINS.div_ceil(Domains::PER)),
        ("threads", MAX_THREADS.div_ceil(Threads::PER)),
        ("memory", MAX_MEMORY.div_ceil(Memories::PER)),
        ("mappings", MAX_MAPPINGS.div_ceil(Mappings::PER)),
        ("port ranges", MAX_IOPORTS.div_ceil(PortRanges::PER)),
        ("endpoints", MAX_ENDPOINTS.div_ceil(Endpoints::PER)),
        ("notifications", MAX_NOTIFICATIONS.div_ceil(Notifications::PER)),
        ("VirqLines", MAX_VIRQLINES.div_ceil(VirqLines::PER)),
        ("doorbells", MAX_DOORBELLS.div_ceil(Doorbells::PER)),
        ("timers", MAX_TIMERS.div_ceil(Timers::PER)),
        ("devices", MAX_DEVICES.div_ceil(Devices::PER)),
    ];
    for (what, chunks) in owners {
        assert!(chunks >= 224, "{what}: room for {chunks} owners");
    }
    // A page still holds many of the small ones (hostile's limits count on it).
    for (what, per, least) in [("VirqLines", VirqLines::PER, 100), ("notifications", Notifications::PER, 50)]
    {
        assert!(per >= least, "{what}: {per} a page");
    }
}

/// The root holds a capability for each domain it starts: more than the
/// 256 slots of another domain's table (a hundred guests and their VMMs
/// need 201), and a child's table stays 256.
#[test]
fn the_roots_table_holds_thousands_and_a_childs_256() {
    run(1, RAM, |s| {
        let r = s.root_thread;
        assert_eq!(s.k().domain(s.root).map(|d| d.caps.capacity()), Ok(crate::state::ROOT_SLOTS));
        let made: Vec<CapSlot> =
            (0..300).map(|_| s.call(r, Call::DomainCreate { quota_pages: 1 }).slot()).collect();
        assert!(made.iter().any(|m| m.index() >= 256));
        for &domain in &made {
            assert_eq!(s.call(r, Call::DomainPause { domain, paused: true }).ok(), [0; 4]);
        }
        let c = s.child(64, None);
        assert_eq!(s.k().domain(c.domain).map(|d| d.caps.capacity()), Ok(crate::cap::table::SLOTS));
        let e = loop {
            match s.call(c.thread, Call::NotificationCreate { domain: c.me }) {
                Out::Ok(_) => {}
                Out::Err(e, _) => break e,
                Out::Off => panic!("blocks"),
            }
        };
        assert_eq!(e, Error::OutOfSlots);
        assert_eq!(s.k().domain(c.domain).map(|d| d.caps.len()), Ok(crate::cap::table::SLOTS));
    });
}

/// A mapping is a record paid for by the domain mapped into: one object is
/// mapped as often as that domain can pay (a hundred VMMs map one guest
/// image), a chunk of records costs a page, a domain whose quota is gone
/// gets `QuotaExceeded` with nothing mapped, its sibling still maps, and
/// unmapping gives the pages back.
#[test]
fn mappings_are_paid_for_by_the_domain_mapped_into() {
    run(1, RAM, |s| {
        let (a, b) = (s.child(24, None), s.child(24, None));
        let per = crate::state::Mappings::PER as u64;
        let used = |s: &Sim, d| s.k().domains.get(d).map(|x| x.quota.used).expect("live");
        let record_pages = |s: &Sim, d: crate::obj::pool::Ref| s.k().maps.pages_of(d.index);
        let mem = s.call(a.thread, Call::MemoryCreate { domain: a.me, pages: 1 }).slot();
        let at = |i: u64| page(0x100_0000 + i * 4096);
        let map = |s: &mut Sim, i| {
            s.call(a.thread, Call::MemoryMap { memory: mem, domain: a.me, va: at(i), rights: Rights::READ })
        };
        map(s, 0).ok();
        let first = used(s, a.domain);
        for i in 1..per {
            map(s, i).ok();
        }
        assert_eq!((used(s, a.domain), record_pages(s, a.domain)), (first, 1), "one chunk of records");
        map(s, per).ok();
        assert_eq!((used(s, a.domain), record_pages(s, a.domain)), (first + 1, 2), "a second chunk");
        // Until its quota is gone.
        let mut n = per + 1;
        let e = loop {
            match map(s, n) {
                Out::Ok(_) => n += 1,
                Out::Err(e, _) => break e,
                Out::Off => panic!("blocks"),
            }
        };
        assert_eq!(e, Error::QuotaExceeded);
        assert!(n > 2 * per, "{n} mappings");
        let root_pa = s.k().domain(a.domain).map(|d| d.root).expect("domain");
        assert!(crate::hw::space::translate(root_pa, at(n).get()).is_none(), "nothing mapped");
        assert_eq!(s.k().maps.iter().filter(|(_, x)| x.domain == a.domain).count() as u64, n);
        // Its sibling is not affected.
        let other = s.call(b.thread, Call::MemoryCreate { domain: b.me, pages: 1 }).slot();
        let rw = Rights::READ;
        assert_eq!(
            s.call(b.thread, Call::MemoryMap { memory: other, domain: b.me, va: at(0), rights: rw }).ok(),
            [0; 4]
        );
        // Unmapping gives every chunk back.
        for i in 0..n {
            s.call(a.thread, Call::MemoryUnmap { memory: mem, domain: a.me, va: at(i) }).ok();
        }
        assert_eq!(record_pages(s, a.domain), 0);
        assert_eq!(used(s, a.domain), first - 1, "all but the page tables and the object");
    });
}
