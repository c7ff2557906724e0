//! The IPC and scheduling checks against logs written by hand: complete
//! logs pass, and a wrong number, a missing line or a FAIL fails.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::judge::{self, Exit};

const END: &str = "[mgmt] all domains stopped: shutting down\n[cpu0] RYOKAN: shutdown status=success\n";

fn run(name: &str, body: &str) -> Result<(), String> {
    let t = cases().into_iter().find(|t| t.name == name).expect("case exists");
    let serial = format!("{body}{END}");
    let o = Outcome {
        verdict: judge::judge(t.emulator.kind(), Exit::Code(33), &serial),
        serial,
        exit: Exit::Code(33),
        duration: Duration::from_secs(1),
        work_dir: PathBuf::new(),
    };
    (t.check)(&o)
}

fn fails(name: &str, body: &str, needle: &str) {
    let e = run(name, body).expect_err("the check should fail");
    assert!(e.contains(needle), "`{needle}` not in: {e}");
}

fn exits(names: &[&str]) -> String {
    names.iter().map(|n| format!("[mgmt] {n} exited with code 0\n")).collect()
}

fn pingpong() -> String {
    let mut s = String::new();
    for (pair, badge) in [("same", 1), ("cross", 2)] {
        s.push_str(&format!("[ping-{pair}] ping: 100000 round trips ok\n"));
        s.push_str(&format!("[pong-{pair}] pong: told to stop by the caller with badge {badge}\n"));
        s.push_str(&format!("[pong-{pair}] pong: served 100000 calls\n"));
    }
    s + &exits(&["ping-same", "pong-same", "ping-cross", "pong-cross"])
}

#[test]
fn pingpong_wants_both_pairs_and_their_badges() {
    let log = pingpong();
    assert_eq!(run("ipc_pingpong", &log), Ok(()));
    fails(
        "ipc_pingpong",
        &log.replace("[ping-cross] ping: 100000", "[ping-cross] ping: 99999"),
        "ping-cross",
    );
    fails("ipc_pingpong", &log.replace("badge 2", "badge 0"), "badge 2");
    let failed = format!("[ping-same] ping: FAIL a wrong answer\n{log}");
    fails("ipc_pingpong", &failed, "ping: FAIL");
    fails(
        "ipc_pingpong",
        &log.replace("pong-same exited with code 0", "pong-same exited with code 1"),
        "pong-same",
    );
}

const SUM: &str = "checksum 0x0123456789abcdef";

fn ring() -> String {
    format!(
        "[ring-tx] ring: 16777216 bytes, {SUM}\n[ring-rx] ring: 16777216 bytes, {SUM}\n\
         [ring-bad] ring-bad: sent 100 messages, then moved the producer index from 100 to 1100\n\
         [ring-victim] ring-victim: peer misbehaved: PeerMisbehaved after 100 good messages\n\
         [ring-victim] ring-victim: still running; the ring keeps refusing the bad index\n{}",
        exits(&["ring-tx", "ring-rx", "ring-bad", "ring-victim"])
    )
}

#[test]
fn ring_wants_equal_checksums_and_a_detected_peer() {
    let log = ring();
    assert_eq!(run("ipc_ring", &log), Ok(()));
    let other = log.replacen("0x0123456789abcdef", "0x0123456789abcdee", 1);
    fails("ipc_ring", &other, "checksums differ");
    let short = log.replace("[ring-rx] ring: 16777216", "[ring-rx] ring: 16776192");
    fails("ipc_ring", &short, "ring-rx got 16776192");
    fails("ipc_ring", &log.replace("checksum 0x", "checksum "), "cannot read");
    fails("ipc_ring", &log.replace("peer misbehaved", "peer behaved"), "ring-victim: peer misbehaved");
    let faulted = format!("{log}[mgmt] ring-victim faulted: page fault (vector 14) at address 0x0 ip 0x1\n");
    fails("ipc_ring", &faulted, "fault of the victim");
}

const DIES: &str = "\
[victim-server] victim-server: got a call (label 1, badge 9); faulting before answering
[mgmt] victim-server faulted: invalid opcode (vector 6) at address 0x0 ip 0x401000
[caller] caller: call failed with PeerDead
[mgmt] caller exited with code 0
";

#[test]
fn server_dies_wants_peer_dead_after_the_fault() {
    assert_eq!(run("ipc_server_dies", DIES), Ok(()));
    let hung = DIES.replace("[caller] caller: call failed with PeerDead\n", "");
    fails("ipc_server_dies", &hung, "PeerDead");
    let answered = DIES.replace("call failed with PeerDead", "FAIL the dead server answered (label 2)");
    fails("ipc_server_dies", &answered, "FAIL");
    let other = DIES.replace("invalid opcode (vector 6)", "page fault (vector 14)");
    fails("ipc_server_dies", &other, "victim-server faulted");
}

fn weights(line: &str) -> String {
    format!(
        "[judge] judge: hog-a ran 1000000 us, hog-b 500000 us in a 1500 ms window\n[judge] {line}\n{}",
        exits(&["hog-a", "hog-b", "judge"])
    )
}

#[test]
fn weights_are_checked_from_the_logged_ratio() {
    assert_eq!(run("sched_weights", &weights("judge: weights 512:256 gave cpu time ratio 2.00")), Ok(()));
    assert_eq!(run("sched_weights", &weights("judge: weights 512:256 gave cpu time ratio 1.81")), Ok(()));
    let off = weights("judge: weights 512:256 gave cpu time ratio 2.31");
    fails("sched_weights", &off, "ratio of 2.31");
    let equal = weights("judge: weights 256:256 gave cpu time ratio 1.00");
    fails("sched_weights", &equal, "weights 256:256");
    fails("sched_weights", &weights("judge: weights 512:256 gave cpu time ratio two"), "cannot read");
}

fn cap(percent: &str) -> String {
    format!(
        "[judge] judge: capped domain used {percent}% of a cpu\n\
         [judge] judge: cap 25%: 500000 us of CPU time in 2000000 us\n{}",
        exits(&["capped", "judge"])
    )
}

#[test]
fn cap_is_checked_from_the_logged_share() {
    assert_eq!(run("sched_cap", &cap("25.1")), Ok(()));
    assert_eq!(run("sched_cap", &cap("27.0")), Ok(()));
    fails("sched_cap", &cap("27.1"), "27.1 %");
    fails("sched_cap", &cap("15.0"), "15 %");
    fails("sched_cap", &cap("100.0"), "100 %");
    fails("sched_cap", &cap("25.1").replace("cap 25%", "cap 50%"), "judge: cap 25%");
}

fn latency(line: &str) -> String {
    format!(
        "[interactive] {line}\n[pinger] pinger: 50 wake-ups sent\n[hog] hog: stopped after 5 rounds\n{}",
        exits(&["interactive", "pinger", "hog"])
    )
}

#[test]
fn latency_is_checked_from_the_logged_maximum() {
    assert_eq!(
        run("sched_latency", &latency("interactive: max wake latency 37 us over 50 wake-ups")),
        Ok(())
    );
    let slow = latency("interactive: max wake latency 1000 us over 50 wake-ups");
    fails("sched_latency", &slow, "1000 us");
    let few = latency("interactive: max wake latency 37 us over 5 wake-ups");
    fails("sched_latency", &few, "5 wake-ups");
    let garbled = latency("interactive: max wake latency 37us over 50 wake-ups");
    fails("sched_latency", &garbled, "cannot read");
    let hog_failed = latency("interactive: max wake latency 37 us over 50 wake-ups")
        .replace("hog exited with code 0", "hog exited with code 1");
    fails("sched_latency", &hog_failed, "hog exited with code 0");
}

#[test]
fn every_case_boots_a_system_file_of_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace");
    for t in cases() {
        let Image::System(file) = t.image else { panic!("{} boots no system", t.name) };
        assert!(root.join(file).is_file(), "{}: {file} missing", t.name);
    }
}

#[test]
fn handoff_needs_every_wake_up_before_the_signaller_went_on_and_the_tick_met() {
    let ok = format!(
        "[handoff-b] handoff-b: 30 of 30 wake-ups ran before the signaller went on, \
         23 of 25 timed onto the tick met it\n{}",
        exits(&["handoff-a", "handoff-b"])
    );
    assert_eq!(run("sched_handoff", &ok), Ok(()));
    let late = ok.replace("30 of 30", "23 of 30");
    fails("sched_handoff", &late, "7 of 30 same-CPU wake-ups waited");
    let missed = ok.replace("23 of 25", "22 of 25");
    fails("sched_handoff", &missed, "only 22 of 25 wake-ups timed onto the tick met it");
    let few = ok.replace("30 of 30", "29 of 29");
    fails("sched_handoff", &few, "only 29 wake-ups");
    let untimed = ok.replace("23 of 25", "19 of 19");
    fails("sched_handoff", &untimed, "19 timed onto the tick");
    let old = ok.replace(", 23 of 25 timed onto the tick met it", "");
    fails("sched_handoff", &old, "cannot read");
    fails("sched_handoff", &exits(&["handoff-a", "handoff-b"]), "handoff-b: ");
}
