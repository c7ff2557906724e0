//! Host tests of `mem::shootdown` (not the kernel: `kernel/src/mem/shootdown.rs` includes them).

use super::*;
use crate::obj::memory::Backing;
use proptest::prelude::*;

fn peer(cpu: usize, online: bool, uses: bool) -> Peer {
    Peer { cpu, online, uses }
}

/// `completed` with CPUs `deaf` never answering; also which were asked.
fn run(peers: &[Peer], deaf: &[usize]) -> (bool, Vec<usize>) {
    let mut asked = Vec::new();
    let done = completed(peers.iter().copied(), |c| {
        asked.push(c);
        !deaf.contains(&c)
    });
    (done, asked)
}

#[test]
fn only_online_cpus_that_use_the_space_are_waited_for() {
    assert_eq!(run(&[], &[]), (true, vec![]));
    let idle = [peer(1, true, false), peer(2, false, true), peer(3, false, false)];
    assert_eq!(run(&idle, &[1, 2, 3]), (true, vec![]), "none of them can hold its translations");
    let users = [peer(1, true, true), peer(2, true, false), peer(3, true, true)];
    assert_eq!(run(&users, &[2]), (true, vec![1, 3]));
}

#[test]
fn a_cpu_that_does_not_answer_fails_the_shootdown() {
    let users = [peer(1, true, true), peer(2, true, true), peer(3, true, true)];
    assert_eq!(run(&users, &[2]), (false, vec![1, 2]), "no more waiting once one has failed");
    assert_eq!(run(&users, &[3]), (false, vec![1, 2, 3]));
}

#[test]
fn memory_a_cpu_may_still_reach_is_never_freed() {
    let users = [peer(1, true, true)];
    let (failed, _) = run(&users, &[1]);
    let b = Backing::Allocated.after_shootdown(failed);
    assert_eq!(b, Backing::Unflushed);
    // A later shootdown that completes does not make it safe: CPU 1 may
    // have left the space with its stale translations.
    let (done, _) = run(&[peer(1, true, false)], &[1]);
    assert!(done);
    assert_eq!(b.after_shootdown(done).on_destroy(), Release::Leak);
    assert_eq!(Backing::Allocated.after_shootdown(true).on_destroy(), Release::Free);
    assert_eq!(Backing::Boot.after_shootdown(false).on_destroy(), Release::Keep);
    // Page tables and a vCPU's frames, after their address-space leave.
    assert_eq!(Release::after(false), Release::Leak);
    assert_eq!(Release::after(true), Release::Free);
}

proptest! {
    /// Whatever its shootdowns did, an allocated object's frames are
    /// freed at its end if and only if every one of them completed.
    #[test]
    fn freed_only_if_every_shootdown_completed(outcomes in prop::collection::vec(any::<bool>(), 0..12)) {
        let end = outcomes.iter().fold(Backing::Allocated, |b, &done| b.after_shootdown(done));
        let all = outcomes.iter().all(|&done| done);
        prop_assert_eq!(end.on_destroy(), if all { Release::Free } else { Release::Leak });
    }
}
