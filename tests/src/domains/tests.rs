//! The domain tests' checks against logs written by hand: complete logs pass, each flaw fails.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::judge::{self, Exit};

const END: &str = "[mgmt] all domains stopped: shutting down\n[cpu0] RYOKAN: shutdown status=success\n";

fn run(name: &str, serial: &str) -> Result<(), String> {
    let t = cases().into_iter().find(|t| t.name == name).expect("case exists");
    let exit = if t.emulator.kind() == judge::EmulatorKind::Qemu { Exit::Code(33) } else { Exit::Code(1) };
    let o = Outcome {
        verdict: judge::judge(t.emulator.kind(), exit, serial),
        serial: serial.to_string(),
        exit,
        duration: Duration::from_secs(1),
        work_dir: PathBuf::new(),
    };
    (t.check)(&o)
}

fn fails(name: &str, serial: &str, needle: &str) {
    let e = run(name, serial).expect_err("the check should fail");
    assert!(e.contains(needle), "`{needle}` not in: {e}");
}

const DEFAULT: &str = "\
[cpu0] boot: starting the root domain mgmt
[mgmt] started hello (domain 2)
[mgmt] started ticker (domain 3)
[hello] hello from a native domain
[ticker] tick 1
[ticker] tick 5
[mgmt] hello exited with code 0
[mgmt] ticker exited with code 0
[guest-hello] hello from a guest
[mgmt] guest-hello exited with code 0
";

#[test]
fn default_and_bochs_accept_a_complete_log() {
    let log = format!("{DEFAULT}{END}");
    assert_eq!(run("domains_default", &log), Ok(()));
    assert_eq!(run("bochs_domains", &log), Ok(()));
}

#[test]
fn default_wants_every_line() {
    fails("domains_default", &format!("{}{END}", DEFAULT.replace("tick 5", "tick 4")), "[ticker] tick 5");
    fails("domains_default", &format!("{}{END}", DEFAULT.replace("tick 5", "tick 50")), "[ticker] tick 5");
    fails("domains_default", &format!("{}{END}", DEFAULT.replace("started hello", "began hello")), "hello");
    fails("domains_default", DEFAULT, "");
    let no_guest = DEFAULT.replace("[guest-hello] hello from a guest\n", "");
    fails("domains_default", &format!("{no_guest}{END}"), "guest-hello");
    let failed = format!(
        "{DEFAULT}[mgmt] all domains stopped: shutting down\n[cpu0] RYOKAN: shutdown status=failure\n"
    );
    fails("domains_default", &failed, "status=failure");
    fails("bochs_domains", &format!("{DEFAULT}[mgmt] all domains stopped: shutting down\n"), "last line");
}

/// A faults.toml run as mgmt should report it.
fn faults_log() -> String {
    let reports = [
        ("fault-kernel", "faulted: page fault (vector 14) at address 0xffff800000000000 ip 0x401000"),
        ("fault-ro", "faulted: page fault (vector 14) at address 0x401000 ip 0x401010"),
        ("fault-ud", "faulted: invalid opcode (vector 6) at address 0x401020 ip 0x401020"),
        ("fault-simd", "faulted: invalid opcode (vector 6) at address 0x0 ip 0x401030"),
        ("fault-panic", "exited with code 101"),
    ];
    let mut s = String::new();
    for (name, report) in reports {
        for k in 0..3 {
            s.push_str(&format!("[mgmt] started {name} (domain {})\n", 10 + k));
            s.push_str(&format!("[mgmt] {name} {report}\n"));
            match k {
                0 => s.push_str(&format!("[mgmt] restarting {name} in 5 ms (restart 1 of 2)\n")),
                1 => s.push_str(&format!("[mgmt] restarting {name} in 10 ms (restart 2 of 2)\n")),
                _ => s.push_str(&format!("[mgmt] {name} stopped for good\n")),
            }
        }
    }
    s.push_str("[steady] steady: done after 20 ticks\n[mgmt] steady exited with code 0\n");
    s.push_str(END);
    s
}

#[test]
fn faults_accepts_a_complete_log() {
    assert_eq!(run("domains_faults", &faults_log()), Ok(()));
}

#[test]
fn faults_wants_three_faults_in_order_and_steady_alone() {
    let log = faults_log();
    let once = log.replacen("[mgmt] fault-ud faulted", "[mgmt] fault-ud stumbled", 1);
    fails("domains_faults", &once, "appears 2 times, not 3");
    let wrong_kind = log.replace(
        "fault-ud faulted: invalid opcode (vector 6)",
        "fault-ud faulted: general protection (vector 13)",
    );
    fails("domains_faults", &wrong_kind, "fault-ud faulted: invalid opcode");
    let wrong_kind = log.replace(
        "fault-kernel faulted: page fault (vector 14) at address 0xffff800000000000",
        "fault-kernel faulted: page fault (vector 14) at address 0xffff800000001000",
    );
    fails("domains_faults", &wrong_kind, "fault-kernel faulted");
    let no_stop = log.replace("[mgmt] fault-ro stopped for good\n", "");
    fails("domains_faults", &no_stop, "fault-ro stopped for good");
    let slow = log.replace("fault-ud in 10 ms", "fault-ud in 20 ms");
    fails("domains_faults", &slow, "restarting fault-ud in 10 ms (restart 2 of 2)");
    let early = log.replace("[mgmt] fault-panic stopped for good\n", "").replace(
        "[mgmt] started fault-panic (domain 10)\n",
        "[mgmt] fault-panic stopped for good\n[mgmt] started fault-panic (domain 10)\n",
    );
    fails("domains_faults", &early, "stopped for good");
    let restarted = log.replace(END, &format!("[mgmt] restarting steady in 5 ms (restart 1 of 2)\n{END}"));
    fails("domains_faults", &restarted, "restarting steady");
    fails("domains_faults", &log.replace("after 20 ticks", "after 19 ticks"), "steady: done");
    let ex = log.replace(END, &format!("[cpu1] EXCEPTION: vector 13 (#GP) rip=0x1\n{END}"));
    fails("domains_faults", &ex, "EXCEPTION");
}

const HOSTILE: &str = "\
[mgmt] started hostile (domain 2)
[mgmt] started witness (domain 3)
[mgmt] started steady (domain 4)
[hostile] hostile: all targeted checks passed
[hostile] hostile: 1000000 random calls, 90000 ok, 910000 errors, kernel alive
[witness] witness: answered after 2100 ticks
[hostile] hostile: the witness answered: 2100 ticks meanwhile
[mgmt] witness exited with code 0
[mgmt] hostile exited with code 0
[steady] steady: done after 20 ticks
[mgmt] steady exited with code 0
";

#[test]
fn hostile_accepts_a_clean_run_only() {
    assert_eq!(run("domains_hostile", &format!("{HOSTILE}{END}")), Ok(()));
    let fail = format!("[hostile] hostile: FAIL call 17 returned Ok\n{HOSTILE}{END}");
    fails("domains_hostile", &fail, "hostile: FAIL");
    let bad_exit = HOSTILE.replace("hostile exited with code 0", "hostile exited with code 1");
    fails("domains_hostile", &format!("{bad_exit}{END}"), "hostile exited with code 0");
    let few = HOSTILE.replace("1000000 random calls", "999999 random calls");
    fails("domains_hostile", &format!("{few}{END}"), "fewer than 1000000");
    let still = HOSTILE.replace("after 2100 ticks", "after 0 ticks");
    fails("domains_hostile", &format!("{still}{END}"), "never ticked");
    let mute = HOSTILE.replace("[witness] witness: answered after 2100 ticks\n", "");
    fails("domains_hostile", &format!("{mute}{END}"), "witness: answered after <n> ticks");
    let dead = HOSTILE.replace("witness exited with code 0", "witness faulted: page fault (vector 14)");
    fails("domains_hostile", &format!("{dead}{END}"), "witness exited with code 0");
    let ex = format!("{HOSTILE}[cpu1] EXCEPTION: vector 13 (#GP) rip=0x1\n{END}");
    fails("domains_hostile", &ex, "EXCEPTION");
    let untargeted = HOSTILE.replace("[hostile] hostile: all targeted checks passed\n", "");
    fails("domains_hostile", &format!("{untargeted}{END}"), "all targeted checks passed");
}

const SHM: &str = "\
[mgmt] started shm-a (domain 2)
[mgmt] started shm-b (domain 3)
[shm-b] shm-b: pattern verified
[shm-a] shm-a: revoked
[mgmt] shm-b faulted: page fault (vector 14) at address 0x200000000000 ip 0x401234
[mgmt] shm-a exited with code 0
";

#[test]
fn shm_wants_verify_revoke_fault_in_order() {
    assert_eq!(run("domains_shm", &format!("{SHM}{END}")), Ok(()));
    let swapped = SHM.replace(
        "[shm-b] shm-b: pattern verified\n[shm-a] shm-a: revoked\n",
        "[shm-a] shm-a: revoked\n[shm-b] shm-b: pattern verified\n",
    );
    fails("domains_shm", &format!("{swapped}{END}"), "does not come after");
    let other = SHM.replace("0x200000000000 ip", "0x200000001000 ip");
    fails("domains_shm", &format!("{other}{END}"), "shm-b faulted");
}

#[test]
fn churn_wants_equal_counts() {
    let good =
        "[churn] churn: 1000 domains created and destroyed; free frames 120000 -> 120000, objects 14 -> 14\n\
                [mgmt] churn exited with code 0\n";
    assert_eq!(run("domains_churn", &format!("{good}{END}")), Ok(()));
    let leak = good.replace("120000 -> 120000", "120000 -> 119998");
    fails("domains_churn", &format!("{leak}{END}"), "churn leaked: free frames 120000 -> 119998");
    let objs = good.replace("14 -> 14", "14 -> 15");
    fails("domains_churn", &format!("{objs}{END}"), "objects 14 -> 15");
    let garbled = good.replace("objects", "objs");
    fails("domains_churn", &format!("{garbled}{END}"), "cannot read");
    assert_eq!(parse_churn("free frames 1 -> 2, objects 3 -> 4"), Some(((1, 2), (3, 4))));
}

#[test]
fn every_case_boots_a_system_file_of_the_repository() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace");
    for t in cases() {
        let Image::System(file) = t.image else { panic!("{} boots no system", t.name) };
        assert!(root.join(file).is_file(), "{}: {file} missing", t.name);
    }
}

/// A deaths.toml run as mgmt reports it: 15 domains, 14 faults each.
fn deaths_log() -> String {
    let mut s = String::new();
    for k in 0..14 {
        for i in 1..=15 {
            s.push_str(&format!("[mgmt] started fault-ud{i} (domain {})\n", 2 + i))
        }
        for i in 1..=15 {
            s.push_str(&format!(
                "[mgmt] fault-ud{i} faulted: invalid opcode (vector 6) at address 0x401020 ip 0x401020\n"
            ));
            if k < 13 {
                let ms = if k == 0 { 1 } else { 2 };
                s.push_str(&format!("[mgmt] restarting fault-ud{i} in {ms} ms (restart {} of 13)\n", k + 1));
            } else {
                s.push_str(&format!("[mgmt] fault-ud{i} stopped for good\n"));
            }
        }
    }
    s
}

#[test]
fn deaths_wants_every_death_seen() {
    let log = deaths_log();
    assert_eq!(run("domains_deaths", &format!("{log}{END}")), Ok(()));
    // One death of 210 unseen: its domain is neither restarted nor stopped.
    let one_lost = log.replacen("[mgmt] fault-ud7 faulted: invalid opcode", "[mgmt] fault-ud7 lost", 1);
    fails("domains_deaths", &format!("{one_lost}{END}"), "appears 13 times, not 14");
    let never_stopped = log.replace("[mgmt] fault-ud15 stopped for good\n", "");
    fails("domains_deaths", &format!("{never_stopped}{END}"), "fault-ud15 stopped for good");
}
