//! The guest tests' checks against logs written by hand (after real runs):
//! complete logs pass, and a missing line, a wrong address or exit code, a
//! FAIL or a line out of order fails.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::judge::{self, Exit};

const END: &str = "[mgmt] all domains stopped: shutting down\n[cpu0] RYOKAN: shutdown status=success\n";
/// How a run ends that guests failed (mgmt exits 1, the kernel stops in failure).
const END_FAILED: &str = "[mgmt] all domains stopped: shutting down\n\
                          [cpu0] root domain exited with code 1: shutting down\n\
                          [cpu0] RYOKAN: shutdown status=failure\n";

/// mgmt's verdict line for guest `who`, whose VMM ended with `code`.
fn failed(who: &str, code: u64) -> String {
    format!("[mgmt] verdict: guest {who} failed: {} (VMM status {code})\n", status::describe(code))
}

fn run(name: &str, body: &str) -> Result<(), String> {
    let t = cases().into_iter().find(|t| t.name == name).expect("case exists");
    (t.check)(&outcome_on(t.emulator.kind(), body))
}

/// A QEMU run that logged `body`.
fn outcome(body: &str) -> Outcome {
    outcome_on(judge::EmulatorKind::Qemu, body)
}

/// A run that logged `body`, then ended as mgmt ends it: in failure if a
/// guest failed it (`body` has a verdict line), else in success.
fn outcome_on(kind: judge::EmulatorKind, body: &str) -> Outcome {
    let guests_failed = body.contains("[mgmt] verdict: guest ");
    let serial = format!("{body}{}", if guests_failed { END_FAILED } else { END });
    let exit = match (kind, guests_failed) {
        (judge::EmulatorKind::Qemu, false) => Exit::Code(33),
        (judge::EmulatorKind::Qemu, true) => Exit::Code(35),
        (judge::EmulatorKind::Bochs, _) => Exit::Code(1),
    };
    Outcome {
        verdict: judge::judge(kind, exit, &serial),
        serial,
        exit,
        duration: Duration::from_secs(1),
        work_dir: PathBuf::new(),
    }
}

fn fails(name: &str, body: &str, needle: &str) {
    let e = run(name, body).expect_err("the check should fail");
    assert!(e.contains(needle), "`{needle}` not in: {e}");
}

/// What `guest-hello` prints as `who` with `kib` of RAM and `cmdline`, and
/// its VMM's and mgmt's lines.
fn hello(who: &str, kib: u32, cmdline: &str) -> String {
    let upper = kib - 1024;
    format!(
        "[vmm] {who}: started: {kib} KiB of RAM, 1 vCPU, command line `{cmdline}`\n\
         [{who}] hello from a guest\n\
         [{who}] hypervisor vendor: RyokanRyokan, max leaf 0x40000010\n\
         [{who}] cpuid: hypervisor bit set, vmx and svm hidden\n\
         [{who}] multiboot: mem_lower 639 KiB, mem_upper {upper} KiB, cmdline `{cmdline}`\n\
         [{who}] mmap: base 0x00000000 length 0x0009fc00 type 1\n\
         [{who}] mmap: base 0x0009fc00 length 0x00000400 type 2\n\
         [{who}] mmap: base 0x000f0000 length 0x00010000 type 2\n\
         [{who}] mmap: base 0x00100000 length {:#010x} type 1\n\
         [vmm] {who}: exit port 0xf4: exit code 0\n\
         [mgmt] {who} exited with code 0\n",
        upper * 1024
    )
}

#[test]
fn hello_wants_every_line_and_a_clean_exit() {
    let log = hello("guest-hello", 8192, "console=ttyS0 greeting=hello");
    for name in ["guest_hello", "bochs_guest_hello", "ryzen_guest_hello"] {
        assert_eq!(run(name, &log), Ok(()), "{name}");
    }
    fails("guest_hello", &log.replace("RyokanRyokan", "KVMKVMKVM"), "hypervisor vendor");
    fails("guest_hello", &log.replace("exit code 0\n", "exit code 16\n"), "exit port 0xf4: exit code 0");
    fails("guest_hello", &log.replace("exited with code 0", "exited with code 1"), "exited with code 0");
    fails("guest_hello", &log.replace("greeting=hello`", "`"), "cmdline");
    fails("guest_hello", &log.replace("0x00700000", "0x00800000"), "mmap: base 0x00100000");
    let failed = format!("[guest-hello] guest-hello: FAIL cpuid leaf 1\n{log}");
    fails("guest_hello", &failed, "FAIL");
    let lines: Vec<&str> = log.lines().collect();
    let late = format!("{}\n{}\n{}\n", lines[9], lines[1..9].join("\n"), lines[10]);
    fails("guest_hello", &late, "does not come after");
}

fn spin() -> String {
    let mut s = "[vmm] guest-spin: started: 4096 KiB of RAM, 1 vCPU, command line ``\n\
                 [guest-spin] guest-spin: counting down 40 rounds of 2000000\n"
        .to_string();
    for n in 1..=40 {
        s.push_str(&format!("[guest-spin] spin {n}\n"));
    }
    s + "[guest-spin] guest-spin: done\n[vmm] guest-spin: exit port 0xf4: exit code 0\n\
         [mgmt] guest-spin exited with code 0\n"
}

#[test]
fn two_wants_both_guests_to_finish_at_once() {
    let apart = format!("{}{}", spin(), hello("guest-hello", 4096, ""));
    let log = spin().replace(
        "[guest-spin] spin 5\n",
        &format!("[guest-spin] spin 5\n{}", hello("guest-hello", 4096, "")),
    );
    assert_eq!(run("guest_two", &log), Ok(()));
    assert_eq!(run("bochs_guest_two", &log), Ok(()));
    assert_eq!(run("ryzen_guest_two", &log), Ok(()));
    // One after the other: only Bochs' AMD model lets that pass.
    fails("guest_two", &apart, "did not run at once");
    fails("bochs_guest_two", &apart, "did not run at once");
    assert_eq!(run("ryzen_guest_two", &apart), Ok(()));
    fails("guest_two", &log.replace("[guest-spin] spin 17\n", ""), "not 1 to 40");
    fails(
        "guest_two",
        &log.replace("guest-spin exited with code 0", "guest-spin exited with code 2"),
        "code 0",
    );
    fails("guest_two", &spin(), "hello from a guest");
}

#[test]
fn hundred_wants_every_guest_to_pass_none_refused_and_the_count() {
    let guests: String = (0..100).map(|i| hello(&format!("hello-{i:02}"), 4096, "")).collect();
    let log = format!("{guests}[mgmt] 100 of 100 guests finished\n");
    assert_eq!(run("guest_hundred", &log), Ok(()));
    fails("guest_hundred", &log.replace("[hello-42] hello from a guest\n", ""), "[hello-42] hello");
    let exit = "[vmm] hello-99: exit port 0xf4: exit code 0\n";
    fails("guest_hundred", &log.replace(exit, ""), "hello-99: exit port");
    let busy =
        "[vmm] hello-07: cannot hand the guest to mgmt: Busy (tried 16 times): it is seen as its VMM\n";
    fails("guest_hundred", &format!("{busy}{log}"), "a refused handover");
    let short = log.replace("100 of 100", "99 of 100");
    fails("guest_hundred", &short, "100 of 100 guests finished");
    let lines: Vec<&str> = log.lines().collect();
    let late = format!("{}\n{}\n{}\n", lines[9], lines[..9].join("\n"), lines[10..].join("\n"));
    fails("guest_hundred", &late, "does not come after");
}

/// What `guest-steady` prints as `who` (checksum `after`), and its VMM's
/// window line (`cpu_us` between the marks); `between` goes after its
/// first checksum.
fn steady(who: &str, after: &str, cpu_us: u64, between: &str) -> String {
    format!(
        "[vmm] {who}: started: 4096 KiB of RAM, 1 vCPU, command line `spin_ms=1500`\n\
         [{who}] guest-steady: checksum before 0x4c13431c\n\
         [{who}] guest-steady: spinning 0 + 1500 + 0 ms (tsc_khz 2595884)\n{between}\
         [vmm] {who}: cpu time between marks 1 and 2: {cpu_us} us in 1500000 us\n\
         [{who}] guest-steady: checksum after {after}\n\
         [{who}] guest-steady: memory unchanged\n\
         [vmm] {who}: exit port 0xf4: exit code 0\n[vmm] {who}: cpu time {cpu_us} us\n\
         [mgmt] {who} exited with code 0\n"
    )
}

#[test]
fn weights_want_two_to_one_while_both_run() {
    let b = |cpu| steady("steady-b", "0x4c13431c", cpu, "");
    let log = |a_cpu, b_cpu| steady("steady-a", "0x4c13431c", a_cpu, &b(b_cpu));
    assert_eq!(run("guest_weights", &log(1_000_000, 500_000)), Ok(()));
    assert_eq!(run("guest_weights", &log(1_050_000, 500_000)), Ok(()));
    fails("guest_weights", &log(1_500_000, 1_500_000), "a ratio of 1.000");
    fails("guest_weights", &log(1_000_000, 0), "no CPU time");
    let apart = format!("{}{}", steady("steady-a", "0x4c13431c", 1_000_000, ""), b(500_000));
    fails("guest_weights", &apart, "did not run at the same time");
    fails(
        "guest_weights",
        &log(1_000_000, 500_000).replace("after 0x4c13431c", "after 0x0"),
        "checksum changed",
    );
}

/// `guest_storm`'s log: the storm's lines around the steady neighbour's
/// (its window's `cpu_us` of 3 s), the storm's `rounds`; with `early`, the
/// storm ends inside the neighbour's window.
fn storm_log(cpu_us: u64, rounds: u64, early: bool) -> String {
    let end = format!(
        "[vmm] storm: cpu time between marks 1 and 2: 2500000 us in 5000000 us\n\
         [storm] guest-storm: {rounds} rounds of CPUID, OUT and IN\n\
         [vmm] storm: exit port 0xf4: exit code 0\n[mgmt] storm exited with code 0\n"
    );
    let (inside, after) = if early { (end.as_str(), "") } else { ("", end.as_str()) };
    let steady = steady("steady", "0x4c13431c", cpu_us, inside).replace(" in 1500000 us", " in 3000000 us");
    format!(
        "[vmm] storm: started: 4096 KiB of RAM, 1 vCPU, command line `spin_ms=5000`\n\
         [storm] guest-storm: storming 5000 ms\n{steady}{after}"
    )
}

/// `guest_rtc_storm`'s log: the twin's lines around the steady
/// neighbour's, their CPU times in the 3 s window `twin_us` and
/// `steady_us`, `n` interrupts.
fn rtc_storm_log(twin_us: u64, steady_us: u64, n: u32) -> String {
    let steady = steady("steady", "0x4c13431c", steady_us, "").replace(" in 1500000 us", " in 3000000 us");
    format!(
        "[rtc-storm] guest-rtc-storm: 8192 Hz, status C unread, for 3400 ms\n{steady}\
         [vmm] rtc-storm: cpu time between marks 1 and 2: {twin_us} us in 3000000 us\n\
         [rtc-storm] guest-rtc-storm: {n} interrupt(s) in 3400 ms\n\
         [vmm] rtc-storm: exit port 0xf4: exit code 0\n[mgmt] rtc-storm exited with code 0\n"
    )
}

#[test]
fn the_rtc_twin_and_its_neighbour_want_their_shares_and_one_interrupt() {
    for name in ["guest_rtc_storm", "bochs_guest_rtc_storm"] {
        assert_eq!(run(name, &rtc_storm_log(1_501_281, 1_501_369, 1)), Ok(()), "as on QEMU");
        assert_eq!(run(name, &rtc_storm_log(1_455_000, 1_455_000, 1)), Ok(()), "97 %");
        fails(name, &rtc_storm_log(1_401_547, 1_401_582, 1), "less than 97 %");
        fails(name, &rtc_storm_log(1_025_472, 1_026_242, 1), "less than 45 %");
        fails(name, &rtc_storm_log(1_340_000, 1_660_000, 1), "less than 45 %");
        fails(name, &rtc_storm_log(1_501_281, 1_501_369, 2), "1 interrupt(s)");
        fails(name, &rtc_storm_log(1_501_281, 1_501_369, 0), "1 interrupt(s)");
        let early = rtc_storm_log(1_501_281, 1_501_369, 1)
            .replace("[rtc-storm] guest-rtc-storm: 1 interrupt(s) in 3400 ms\n", "");
        let early = early.replace(
            "[vmm] steady: cpu time between",
            "[rtc-storm] guest-rtc-storm: 1 interrupt(s) in 3400 ms\n[vmm] steady: cpu time between",
        );
        fails(name, &early, "did not last the neighbour's window");
        let failed = rtc_storm_log(1_501_281, 1_501_369, 1)
            .replace("exit code 0\n[mgmt] rtc-storm", "exit code 1\n[mgmt] rtc-storm");
        assert!(run(name, &failed).is_err());
    }
}

#[test]
fn a_storms_neighbour_wants_45_percent_while_it_storms() {
    for name in ["guest_storm", "bochs_guest_storm"] {
        assert_eq!(run(name, &storm_log(1_500_000, 200_000, false)), Ok(()));
        assert_eq!(run(name, &storm_log(1_350_000, 200_000, false)), Ok(()));
        fails(name, &storm_log(1_340_000, 200_000, false), "less than 45 %");
        fails(name, &storm_log(900_000, 200_000, false), "steady 900000 us of 3000000 us (30.0 %)");
        fails(name, &storm_log(1_500_000, 9_999, false), "not a storm");
        fails(name, &storm_log(1_500_000, 200_000, true), "did not last the neighbour's window");
        let late =
            storm_log(1_500_000, 200_000, false).replace("[storm] guest-storm: storming 5000 ms\n", "");
        let late = late
            .replace("[vmm] storm: cpu time", "[storm] guest-storm: storming 5000 ms\n[vmm] storm: cpu time");
        fails(name, &late, "did not last the neighbour's window");
        let unmarked =
            storm_log(1_500_000, 200_000, false).replace("steady: cpu time between", "steady: time between");
        fails(name, &unmarked, "no line");
        let failed = storm_log(1_500_000, 200_000, false)
            .replace("storm exited with code 0", "storm exited with code 1");
        fails(name, &failed, "code 0");
    }
}

/// The probes' lines, each stopped (the scribbler after checking its RAM).
fn probes_only() -> String {
    let mut s = String::new();
    for (who, gpa) in PROBES {
        if who == "probe-scribble" {
            s.push_str(
                "[probe-scribble] guest-probe: RAM 0x00200000 to 0x00400000 was zero and is its own\n",
            );
        }
        s.push_str(&format!(
            "[{who}] guest-probe: reading guest-physical {gpa}\n\
             [vmm] {who}: access to unmapped guest-physical {gpa} (read) at rip 0x100438: stopped\n\
             [mgmt] {who} exited with code 3\n[mgmt] {who} stopped for good\n"
        ));
    }
    for (who, _) in PROBES {
        s.push_str(&failed(who, status::UNMAPPED));
    }
    s
}

/// The probes, all while the witness spins.
fn probes() -> String {
    steady("guest-steady", "0x4c13431c", 1_000_000, &probes_only())
}

#[test]
fn probe_wants_each_read_stopped_at_its_address() {
    let log = probes();
    assert_eq!(run("guest_probe", &log), Ok(()));
    assert_eq!(run("bochs_guest_probe", &log), Ok(()));
    let alone = format!("{}{}", steady("guest-steady", "0x4c13431c", 1_000_000, ""), probes_only());
    // The witness must be seen running across the probes' stops.
    assert!(run("guest_probe", &alone).is_err_and(|e| e.contains("does not come after")));
    assert!(probe_checked(&outcome(&alone), true).is_err_and(|e| e.contains("does not come after")));
    assert_eq!(probe_checked(&outcome(&alone), false), Ok(()));
    assert_eq!(probe_checked(&outcome(&log), true), Ok(()));
    fails(
        "guest_probe",
        &log.replace("guest-physical 0xfed00000 (read)", "guest-physical 0xfed00040 (read)"),
        "probe-hpet: access to unmapped guest-physical 0xfed00000",
    );
    fails(
        "guest_probe",
        &log.replace("probe-high exited with code 3", "probe-high exited with code 1"),
        "code 3",
    );
    fails(
        "guest_probe",
        &log.replace("was zero and is its own", "FAIL fresh RAM is not zero"),
        "FAIL fresh RAM",
    );
    let fail =
        "[guest-probe] guest-probe: FAIL reading 0x40000000 gave 0x00000000 and did not stop the guest\n";
    fails("guest_probe", &format!("{log}{fail}"), "FAIL");
    let trap =
        "[probe-high] guest-probe: unexpected exception: vector 14 error 0x00000000 at eip 0x00100405\n";
    fails("guest_probe", &format!("{log}{trap}"), "unexpected");
    fails(
        "guest_probe",
        &log.replace("[vmm] guest-steady: exit port 0xf4: exit code 0\n", ""),
        "guest-steady",
    );
    fails("guest_probe", &log.replace("after 0x4c13431c", "after 0x4c13431d"), "checksum changed");
}

fn faults() -> String {
    let mut s = "[guest-triple] guest-triple: loading an empty IDT and executing int3\n\
                 [vmm] guest-triple: triple fault at rip 0x1003c8: stopped\n\
                 [mgmt] guest-triple exited with code 4\n"
        .to_string();
    for t in TRAPS {
        s.push_str(&format!("[guest-vmx] {t}\n"));
    }
    s + "[guest-vmx] guest-vmx: every instruction trapped as it should\n\
         [vmm] guest-vmx: exit port 0xf4: exit code 0\n[mgmt] guest-vmx exited with code 0\n\
         [guest-strio] guest-strio: rep outsb to the UART\n\
         [vmm] guest-strio: rep outs on port 0x3f8 at rip 0x100230: string port I/O is not emulated: stopped\n\
         [mgmt] guest-strio exited with code 5\n"
        + &failed("guest-triple", status::TRIPLE_FAULT)
        + &failed("guest-strio", status::UNHANDLED)
}

#[test]
fn faults_want_the_triple_fault_and_every_trap() {
    let log = faults();
    assert_eq!(run("guest_faults", &log), Ok(()));
    assert_eq!(run("bochs_guest_faults", &log), Ok(()));
    fails("guest_faults", &log.replace("triple fault at rip", "halted at rip"), "triple fault");
    fails(
        "guest_faults",
        &log.replace("guest-triple exited with code 4", "guest-triple exited with code 2"),
        "code 4",
    );
    fails("guest_faults", &log.replace("[guest-vmx] got #UD for vmrun\n", ""), "got #UD for vmrun");
    let failed = log
        .replace("[guest-vmx] got #UD for vmmcall\n", "[guest-vmx] guest-vmx: FAIL vmmcall did not trap\n");
    fails("guest_faults", &failed, "got #UD for vmmcall");
    fails("guest_faults", &log.replace("[guest-vmx] got #UD for mwait\n", ""), "got #UD for mwait");
    let went_on = log.replace("[mgmt] guest-strio exited with code 5\n", "[guest-strio] XY!\n");
    fails("guest_faults", &went_on, "guest-strio exited with code 5");
    let silent = log.replace(": string port I/O is not emulated: stopped", ": stopped");
    fails("guest_faults", &silent, "does not say why");
}

fn state() -> String {
    let mut s = String::new();
    for (guest, xcr0) in [("state-a", 7), ("state-b", 3), ("state-dr", 3)] {
        s += &format!(
            "[{guest}] guest-state: xsetbv of 0x5 refused with #GP\n\
             [{guest}] guest-state: xcr0 {xcr0:#010x}\n\
             [{guest}] guest-state: 100 rounds, registers kept\n\
             [vmm] {guest}: exit port 0xf4: exit code 0\n[mgmt] {guest} exited with code 0\n"
        );
    }
    s + "[mgmt] all domains stopped: shutting down\n"
}

#[test]
fn state_wants_every_guest_to_keep_its_registers() {
    let log = state();
    assert_eq!(run("guest_state", &log), Ok(()));
    assert_eq!(run("bochs_guest_state", &log), Ok(()));
    let leaked = log.replace(
        "[state-b] guest-state: 100 rounds, registers kept\n",
        "[state-b] guest-state: FAIL xmm0-7 changed: read 0x12345678\n",
    );
    fails("guest_state", &leaked, "100 rounds");
    let fault = "[mgmt] state-dr faulted: debug exception (vector 1) at address 0x0 ip 0x400000\n";
    fails("guest_state", &format!("{fault}{log}"), "faulted");
    fails("guest_state", &log.replace("xcr0 0x00000003", "xcr0 0x00000007"), "state-b");
    fails("guest_state", &log.replace("refused with #GP", "taken"), "refused");
}

/// What `guest-long` prints as `guest` with `tag`, `rounds` rounds.
fn long(guest: &str, tag: u64, rounds: u64) -> String {
    format!(
        "[{guest}] guest-long: long mode, efer 0x0000000000000501\n\
         [{guest}] guest-long: 13 msrs written and read back\n\
         [{guest}] guest-long: fs, gs and swapgs to kernel gs: own bases\n\
         [{guest}] guest-long: syscall to stub, sysret to ring 3, syscall back: stub {tag:#018x}\n\
         [{guest}] guest-long: rdtscp aux {aux:#018x}\n\
         [{guest}] guest-long: mtrrcap 0x0000000000000508 misc_enable 0x0000000000001801\n\
         [{guest}] guest-long: pat of a reserved type refused with #GP\n\
         [{guest}] guest-long: efer.svme refused with #GP\n\
         [{guest}] guest-long: non-canonical lstar refused with #GP\n\
         [{guest}] guest-long: wrmsr of an unknown msr refused with #GP\n\
         [{guest}] guest-long: rdmsr of an unknown msr refused with #GP\n\
         [{guest}] guest-long: {rounds:#018x} rounds, msrs kept\n\
         [vmm] {guest}: exit port 0xf4: exit code 0\n[mgmt] {guest} exited with code 0\n",
        aux = 0x100 + tag
    )
}

#[test]
fn long_wants_every_msr_kept_and_every_refusal() {
    let log = long("long-a", 1, 3) + "[mgmt] all domains stopped: shutting down\n";
    for name in ["guest_long", "bochs_guest_long", "ryzen_guest_long"] {
        assert_eq!(run(name, &log), Ok(()), "{name}");
    }
    fails(
        "guest_long",
        &log.replace("refused with #GP\n[long-a] guest-long: efer", "taken\n[long-a] guest-long: efer"),
        "pat",
    );
    fails("guest_long", &log.replace("aux 0x0000000000000101", "aux 0x0000000000000102"), "rdtscp");
    fails("guest_long", &log.replace("efer 0x0000000000000501", "efer 0x0000000000000101"), "long mode");
    fails("guest_long", &log.replace("exited with code 0", "exited with code 4"), "exited");
    let fail = "[long-a] guest-long: FAIL msr 0x00000000c0000102 read 0x1 want 0x2\n";
    fails("guest_long", &format!("{fail}{log}"), "FAIL");
}

#[test]
fn long_two_wants_neither_guest_to_see_the_other() {
    let log = long("long-a", 1, 50)
        + &long("long-b", 2, 50)
        + "[ticker] tick 5\n[mgmt] ticker exited with code 0\n[mgmt] all domains stopped: shutting down\n";
    assert_eq!(run("guest_long_two", &log), Ok(()));
    assert_eq!(run("bochs_guest_long_two", &log), Ok(()));
    let leaked = log.replace(
        "[long-b] guest-long: 0x0000000000000032 rounds, msrs kept\n",
        "[long-b] guest-long: FAIL gs:0 got 0x5109 want 0x510a\n",
    );
    fails("guest_long_two", &leaked, "rounds, msrs kept");
    fails("guest_long_two", &log.replace("[ticker] tick 5\n", ""), "tick 5");
    let fault = "[mgmt] ticker faulted: page fault (vector 14) at address 0x0 ip 0x400000\n";
    fails("guest_long_two", &format!("{fault}{log}"), "faulted");
}

fn bad_reply() -> String {
    let mut s = String::new();
    for f in FORBIDDEN {
        s.push_str(&format!("[vmm] guest-hostile: forbidden reply refused: {f}\n"));
    }
    s.push_str("[vmm] guest-hostile: every forbidden reply was refused: answering properly now\n");
    for f in BAD_STATE_CALLS {
        s.push_str(&format!("[vmm] guest-hostile: bad state call refused: {f}\n"));
    }
    s.push_str("[vmm] guest-hostile: every bad state call was refused, the state unchanged\n");
    for label in ["0x677565737401", "0x677565737400", "0x677565737400", "0x677565737400"] {
        s.push_str(&format!(
            "[mgmt] warning: guest-hostile: a handover refused (label {label}, badge 0x2)\n"
        ));
    }
    s + &hello("guest-hostile", 4096, "hostile-vmm")
}

#[test]
fn bad_reply_wants_every_refusal_before_the_guest_runs_on() {
    let log = bad_reply();
    assert_eq!(run("guest_bad_reply", &log), Ok(()));
    assert_eq!(run("bochs_guest_bad_reply", &log), Ok(()));
    fails(
        "guest_bad_reply",
        &log.replace("refused: INJECT of vector 2 (NMI)", "accepted"),
        "INJECT of vector 2 (NMI)",
    );
    fails(
        "guest_bad_reply",
        &log.replace("refused: read into an unmapped page\n", "accepted\n"),
        "read into an unmapped page",
    );
    fails(
        "guest_bad_reply",
        &log.replace("[vmm] guest-hostile: every bad state call was refused, the state unchanged\n", ""),
        "the state unchanged",
    );
    let accepted = "[vmm] guest-hostile: FAIL forbidden reply accepted: ADVANCE with SET_RIP\n";
    fails("guest_bad_reply", &format!("{accepted}{log}"), "FAIL");
    fails("guest_bad_reply", &log.replace("exited with code 0", "exited with code 7"), "code 0");
    let taken = log.replacen(
        "[mgmt] warning: guest-hostile: a handover refused (label 0x677565737401, badge 0x2)\n",
        "",
        1,
    );
    fails("guest_bad_reply", &taken, "3 of the hostile VMM's 4 bad handovers");
}

#[test]
fn bench_wants_every_figure_within_its_limit() {
    let log = "[guest-bench] bench: guest_cpuid_vmm 2062\n[guest-bench] bench: guest_cpuid_vmm_mean 2063\n\
               [guest-bench] bench: guest_out_vmm 2404\n[guest-bench] bench: guest_out_kernel 900\n\
               [vmm] guest-bench: exit port 0xf4: exit code 0\n[mgmt] guest-bench exited with code 0\n";
    assert_eq!(run("guest_bench", log), Ok(()));
    fails("guest_bench", &log.replace("cpuid_vmm 2062", "cpuid_vmm 3001"), "guest_cpuid_vmm: 3001");
    fails("guest_bench", &log.replace("out_vmm 2404", "out_vmm many"), "cannot read `many`");
    fails("guest_bench", &log.replace("guest_out_vmm", "guest_in_vmm"), "guest_out_vmm");
    fails("guest_bench", &log.replace("out_kernel 900", "out_kernel 2001"), "guest_out_kernel: 2001");
    fails("guest_bench", &log.replace("guest_out_kernel", "guest_in_kernel"), "guest_out_kernel");
}

#[test]
fn the_module_sum_is_the_guests() {
    // The sum guest-mods printed for modules/motd.txt under QEMU.
    let motd =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systems/modules/motd.txt"));
    assert_eq!(super::module_sum(&motd.unwrap()), 0x2deb_0004);
    assert_eq!(super::module_sum(b""), 0);
    assert_eq!(super::module_sum(&[1, 2]), (1 << 5) ^ 2);
}

/// guest-timer's lines: 50 ticks in `ms`, `cpu_us` of CPU time over them.
fn timer(ms: u64, cpu_us: u64) -> String {
    format!(
        "[guest-timer] guest-timer: TSC 2600000 kHz, APIC timer 1000000 kHz\n\
         [vmm] guest-timer: cpu time between marks 1 and 2: {cpu_us} us in {ms}000 us\n\
         [guest-timer] guest-timer: 50 ticks in {ms} ms, halted between them\n\
         [guest-timer] guest-timer: PM timer 35801 ticks in 10 ms\n\
         [vmm] guest-timer: exit port 0xf4: exit code 0\n\
         [vmm] guest-timer: cpu time 72000 us\n\
         [mgmt] guest-timer exited with code 0\n"
    )
}

#[test]
fn the_timer_wants_fifty_idle_milliseconds() {
    assert_eq!(run("guest_timer", &timer(56, 10_059)), Ok(()));
    assert_eq!(run("bochs_guest_timer", &timer(50, 6_040)), Ok(()));
    fails("guest_timer", &timer(30, 10_000), "not a 1 ms timer");
    fails("guest_timer", &timer(56, 28_000), "not a 1 ms timer");
    fails("guest_timer", &timer(56, 56_000), "not a 1 ms timer");
    let unmarked = timer(56, 10_000)
        .replace("[vmm] guest-timer: cpu time between marks 1 and 2: 10000 us in 56000 us\n", "");
    fails("guest_timer", &unmarked, "between marks");
    fails("guest_timer", &timer(56, 10_000).replace("50 ticks in 56 ms", "49 ticks in 56 ms"), "50 ticks in");
    let no_exit = timer(56, 10_000).replace("[vmm] guest-timer: exit port 0xf4: exit code 0\n", "");
    fails("guest_timer", &no_exit, "exit port");
}

#[test]
fn the_shadow_guest_wants_every_halt_to_take_its_interrupt() {
    let good = "[guest-shadow] guest-shadow: 20 halts, each interrupt taken before cli\n\
                [vmm] guest-shadow: exit port 0xf4: exit code 0\n\
                [mgmt] guest-shadow exited with code 0\n";
    assert_eq!(run("guest_shadow", good), Ok(()));
    assert_eq!(run("bochs_guest_shadow", good), Ok(()));
    let kept = format!(
        "[guest-shadow] guest-shadow: FAIL halt 1: the interrupt that ended it was not taken before cli\n\
         [vmm] guest-shadow: exit port 0xf4: exit code 1\n\
         [mgmt] guest-shadow exited with code 1\n{}",
        failed("guest-shadow", 1)
    );
    assert!(run("guest_shadow", &kept).is_err());
    fails("bochs_guest_shadow", &good.replace("20 halts", "19 halts"), "20 halts");
}

/// The loops' run: `ac` and `db` what each loop did, `verdict` mgmt's
/// verdict lines for those that failed.
fn loops(ac: &str, db: &str, verdict: &str) -> String {
    format!(
        "[loop-db] guest-loop: entering the #DB loop\n[loop-ac] guest-loop: entering the #AC loop\n{ac}\
         {}{db}[mgmt] all domains stopped: shutting down\n{verdict}",
        hello("witness", 4096, "")
    )
}

#[test]
fn loops_want_the_witness_served_while_they_loop() {
    let ac_stopped = "[vmm] loop-ac: endless #AC delivery (vector 17) at rip 0x100531: stopped\n\
                      [mgmt] loop-ac exited with code 8\n";
    let db_ended =
        "[vmm] loop-db: triple fault at rip 0x1004d4: stopped\n[mgmt] loop-db exited with code 4\n";
    let both = failed("loop-db", status::TRIPLE_FAULT) + &failed("loop-ac", status::STUCK);
    let log = loops(ac_stopped, db_ended, &both);
    assert_eq!(run("bochs_guest_loops", &log), Ok(()));
    fails("bochs_guest_loops", &loops(ac_stopped, db_ended, ""), "the run succeeded");
    let only_ac = failed("loop-ac", status::STUCK);
    fails("bochs_guest_loops", &loops(ac_stopped, db_ended, &only_ac), "verdict: guest loop-db failed");
    let extra = both.clone() + &failed("witness", status::FAILED);
    fails("bochs_guest_loops", &loops(ac_stopped, db_ended, &extra), "other guests failed the run too");
    // The #DB loop ended before the witness did: it held the CPU.
    let held = format!(
        "[loop-db] guest-loop: entering the #DB loop\n{db_ended}[loop-ac] guest-loop: entering the #AC loop\n\
         {ac_stopped}{}[mgmt] all domains stopped: shutting down\n{both}",
        hello("witness", 4096, "")
    );
    fails("bochs_guest_loops", &held, "held the CPU");
    fails("bochs_guest_loops", &log.replace("exited with code 8", "exited with code 5"), "code 8");
    let no_ac = "[loop-ac] guest-loop: this CPU raises no #AC\n[vmm] loop-ac: exit port 0xf4: exit code 0\n\
                 [mgmt] loop-ac exited with code 0\n";
    let db_only = failed("loop-db", status::TRIPLE_FAULT);
    fails("bochs_guest_loops", &loops(no_ac, db_ended, &db_only), "verdict: guest loop-ac failed");
    let no_bp = "[loop-db] guest-loop: the #DB handler ran: no instruction breakpoint fired\n\
                 [vmm] loop-db: exit port 0xf4: exit code 0\n[mgmt] loop-db exited with code 0\n";
    fails("bochs_guest_loops", &loops(ac_stopped, no_bp, &only_ac), "verdict: guest loop-db failed");
    // QEMU raises no #AC and fires no guest breakpoint: they say so.
    assert_eq!(run("guest_loops", &loops(no_ac, no_bp, "")), Ok(()));
    fails(
        "guest_loops",
        &loops(no_ac, no_bp, "").replace("[vmm] witness: exit port 0xf4: exit code 0\n", ""),
        "witness",
    );
}

#[test]
fn verdict_wants_the_failing_guest_named_and_nothing_else() {
    let exit3 = "[exit-3] hello from a guest\n[vmm] exit-3: exit port 0xf4: exit code 3\n\
                 [mgmt] exit-3 exited with code 1\n[mgmt] hello exited with code 0\n";
    let log = format!("{}{exit3}{}", hello("passes", 4096, ""), failed("exit-3", status::FAILED));
    for name in ["guest_verdict", "bochs_guest_verdict"] {
        assert_eq!(run(name, &log), Ok(()), "{name}");
    }
    let no_verdict = format!("{}{exit3}", hello("passes", 4096, ""));
    fails("guest_verdict", &no_verdict, "the run succeeded");
    let both = format!("{log}{}", failed("passes", status::FAILED));
    fails("guest_verdict", &both, "other guests failed the run too");
    fails("guest_verdict", &log.replace("exit code 3", "exit code 4"), "exit-3: exit port 0xf4: exit code 3");
    let wrong = log.replace("(VMM status 1)", "(VMM status 4)");
    fails("guest_verdict", &wrong, "not VMM status [1]");
}

/// What Debian's kernel and the payload's init print with 2 vCPUs (cut),
/// its dates `@RTC@` and `@NOW@` (see [`linux`]).
const LINUX_AT: &str = "\
[vmm] linux: started: 262144 KiB of RAM, 2 vCPUs, command line `console=ttyS0 panic=-1 ryokan.test`, 1 module(s)
[linux] [    0.000000] Linux version 6.1.0-48-cloud-amd64
[linux] [    1.311432] rtc_cmos 00:01: registered as rtc0
[linux] ryokan-init: started, uptime 2.31 s, tsc 844500000
[linux] ryokan-init: nproc 2
[linux] ryokan-init: rtc irq 1  26:          0          7   IO-APIC   8-edge      rtc0
[linux] ryokan-init: sample 1 uptime 2.40 s
[linux] ryokan-init: irq 1 LOC:        412        380   Local timer interrupts
[linux] ryokan-init: sample 2 uptime 4.42 s
[linux] ryokan-init: irq 2 LOC:        702        655   Local timer interrupts
[linux] ryokan-init: rtc irq 2  26:          1          7   IO-APIC   8-edge      rtc0
[linux] ryokan-init: clocksource tsc-early
[linux] ryokan-init: rtc0 rtc_cmos 00:01 @RTC@
[linux] ryokan-init: date @NOW@
[linux] ryokan-init: dmesg clean
[linux] ryokan-init: done, powering off
[vmm] linux: powered off (ACPI S5)
[mgmt] linux exited with code 0
";

/// [`LINUX_AT`] with the CMOS clock's date 2 s behind the host's clock
/// now, and the system clock's 1 s behind.
fn linux() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    LINUX_AT.replace("@RTC@", &(now - 2).to_string()).replace("@NOW@", &(now - 1).to_string())
}

#[test]
fn linux_boot_wants_two_cpus_ticking_a_clean_log_and_a_power_off() {
    let log = &*linux();
    // A run of 20 s on the host.
    let on = |name: &str, log: &str| {
        let t = linux_cases().into_iter().find(|t| t.name == name).expect("case exists");
        let o = Outcome { duration: Duration::from_secs(20), ..outcome_on(t.emulator.kind(), log) };
        (t.check)(&o)
    };
    let check = |log: &str| on("linux_boot", log);
    assert_eq!(check(log), Ok(()));
    let one = one_cpu(log);
    for name in ["linux_boot_one", "bochs_linux_boot"] {
        assert_eq!(on(name, &one), Ok(()), "{name}");
        assert!(on(name, log).unwrap_err().contains("nproc 1"), "{name}");
    }
    for name in ["linux_boot", "linux_boot_one", "bochs_linux_boot"] {
        assert!(cases().iter().any(|t| t.name == name), "{name} registered: it passes");
    }
    let fast = log.replace("2.40 s", "20.40 s").replace("4.42 s", "22.42 s");
    assert!(check(&fast).unwrap_err().contains("uptime 22.42 s is more than the run's 20.0 s"));
    let fails = |log: String, needle: &str| {
        let e = check(&log).expect_err("the check should fail");
        assert!(e.contains(needle), "`{needle}` not in: {e}");
    };
    fails(log.replace("nproc 2", "nproc 1"), "nproc 2");
    fails(log.replace("655", "380"), "CPU 1's local timer interrupts did not rise");
    fails(log.replace("702        655", "702"), "1 CPUs' local timer counts");
    fails(log.replace("irq 2 LOC", "irq 2 NMI"), "no line `[linux] ryokan-init: irq 2 LOC");
    fails(log.replace("4.42 s", "3.90 s"), "the guest's clock went from 2.4 s to 3.9 s");
    fails(log.replace("dmesg clean", "dmesg has errors:"), "dmesg clean");
    // rtc0's interrupt: risen across the alarm, on pin 8.
    let rtc_irq = "26:          1          7";
    assert_eq!(check(&log.replace(rtc_irq, "26:          0          8")), Ok(()), "on either CPU");
    fails(log.replace(rtc_irq, "26:          0          7"), "did not rise across its alarm: 7 then 7");
    fails(log.replace(rtc_irq, "26:          1"), "with 2 CPUs' counts");
    fails(log.replace("8-edge      rtc0", "8-fasteoi      rtc0"), "not rtc0 on I/O APIC pin 8, edge");
    fails(log.replace("IO-APIC   8-edge      rtc0", "IO-APIC   9-edge      rtc0"), "pin 8");
    fails(log.replace("rtc irq 1 ", "rtc irq one "), "no line `[linux] ryokan-init: rtc irq 1 …`");
    fails(log.replace("[vmm] linux: powered off (ACPI S5)\n", ""), "powered off");
    let triple = log.replace(
        "[vmm] linux: powered off (ACPI S5)\n[mgmt] linux exited with code 0\n",
        &format!(
            "[vmm] linux: triple fault at rip 0x1000: stopped\n[mgmt] linux exited with code 4\n{}",
            failed("linux", 4)
        ),
    );
    fails(triple, "guest linux failed");
    let early = log.replace("[linux] ryokan-init: done, powering off\n", "");
    fails(early, "done, powering off");
    // The clocks: the TSC kept to the end, rtc0 the CMOS clock, both dates
    // the host's.
    let source = "clocksource tsc-early";
    assert_eq!(check(&log.replace(source, "clocksource tsc")), Ok(()), "the refined TSC");
    fails(log.replace(source, "clocksource refined-jiffies"), "kept time by `refined-jiffies`");
    fails(log.replace(source, "clocksource acpi_pm"), "not the TSC");
    let unstable = "[linux] [    1.883211] tsc: Marking TSC unstable due to clocksource watchdog\n";
    fails(
        log.replace("[linux] ryokan-init: started", &format!("{unstable}[linux] ryokan-init: started")),
        "unstable",
    );
    fails(
        log.replace("ryokan-init: dmesg clean", "ryokan-init: dmesg says a clock is unstable:"),
        "unstable",
    );
    fails(log.replace(&format!("{source}\n"), ""), "no line `[linux] ryokan-init: clocksource");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let rtc =
        |secs: u64| LINUX_AT.replace("@RTC@", &secs.to_string()).replace("@NOW@", &(now - 1).to_string());
    fails(rtc(now - 3600), "CMOS clock (rtc0) said");
    fails(rtc(now - 21), "at most 20 s behind");
    assert_eq!(check(&rtc(now - 19)), Ok(()), "a clock running slow: within half the run's 20 s");
    fails(rtc(now + 60), "CMOS clock (rtc0) said");
    let date = LINUX_AT.replace("@RTC@", &(now - 2).to_string()).replace("@NOW@", &(now - 3600).to_string());
    fails(date, "system clock said");
    let no_rtc = LINUX_AT.replace(
        "rtc_cmos 00:01 @RTC@",
        "cat: can't open '/sys/class/rtc/rtc0/name': No such file or directory",
    );
    fails(no_rtc.replace("@NOW@", &now.to_string()), "rtc0 is not rtc_cmos's");
    fails(
        log.replace("[linux] [    1.311432] rtc_cmos 00:01: registered as rtc0\n", ""),
        "registered as rtc0",
    );
    assert!(on("linux_boot_one", &one_cpu(&rtc(now - 25))).unwrap_err().contains("at most 20 s behind"));
    // Bochs' dates follow the machine's clock (`Emulated`): here the TSC
    // at init's start says `machine` s since the reset, 1.11 s more at
    // the second sample, and the run of 20 s started at `now - 20`.
    let bochs = |machine: f64, rtc: i64| {
        let tsc = ((machine - 1.11) * 50_000_000.0) as u64;
        let log = LINUX_AT
            .replace("tsc 844500000", &format!("tsc {tsc}"))
            .replace("@RTC@", &(now as i64 + rtc).to_string())
            .replace("@NOW@", &(now as i64 + rtc).to_string());
        on("bochs_linux_boot", &one_cpu(&log))
    };
    // The machine's time is `now - 5`: a second or two behind it, or up
    // to Bochs' start ahead, is its date.
    assert_eq!(bochs(15.0, -6), Ok(()));
    assert_eq!(bochs(15.0, 3), Ok(()));
    // Some 5 s behind it, or 12 s ahead.
    for rtc in [-10, 7] {
        let e = bochs(15.0, rtc).unwrap_err();
        assert!(
            e.contains(&format!("said {}, ", now as i64 + rtc)) && e.contains("from the machine's time"),
            "{e}"
        );
    }
    // CI's failure: a machine that ran 5 s ahead of the host's clock (25 s
    // of its time in a run of 20), whose date is rightly 5 s ahead.
    assert_eq!(bochs(25.0, 5), Ok(()));
    assert!(on("linux_boot_one", &one_cpu(&rtc(now + 5))).unwrap_err().contains("CMOS clock (rtc0) said"));
    // A date an hour off, or the host's on a machine far ahead of it.
    assert!(bochs(15.0, -3600).is_err());
    assert!(bochs(60.0, 0).unwrap_err().contains("from the machine's time"));
    // Its uptime within the machine's time since the reset; the TSC said.
    let e = bochs(2.0, -18).unwrap_err();
    assert!(e.contains("uptime 2.31 s at init's start is more than the machine's 0.9 s"), "{e}");
    let untimed = one_cpu(
        &LINUX_AT
            .replace(", tsc 844500000", "")
            .replace("@RTC@", &now.to_string())
            .replace("@NOW@", &now.to_string()),
    );
    assert!(on("bochs_linux_boot", &untimed).unwrap_err().contains("gives no uptime and TSC"));
    // The clock source is judged on both: Linux turns its watchdog off for
    // a TSC that is invariant and has IA32_TSC_ADJUST, on Bochs as on QEMU.
    let jiffies = one_cpu(&log.replace(source, "clocksource refined-jiffies"));
    assert!(on("linux_boot_one", &jiffies).unwrap_err().contains("refined-jiffies"));
    let jiffies = |machine: f64| {
        let tsc = ((machine - 1.11) * 50_000_000.0) as u64;
        let log = LINUX_AT.replace("tsc 844500000", &format!("tsc {tsc}"));
        let log = log.replace("@RTC@", &(now - 5).to_string()).replace("@NOW@", &(now - 5).to_string());
        one_cpu(&log.replace(source, "clocksource refined-jiffies"))
    };
    assert!(on("bochs_linux_boot", &jiffies(15.0)).unwrap_err().contains("refined-jiffies"));
}

/// A log of [`LINUX_AT`]'s with 1 vCPU.
fn one_cpu(log: &str) -> String {
    log.replace("nproc 2", "nproc 1")
        .replace("        380", "")
        .replace("        655", "")
        .replace("          7   IO-APIC", "   IO-APIC")
}

/// `linux_two`'s log: `guest-steady`'s first checksum, both guests' boots
/// (as [`linux`] with 1 vCPU, tagged `linux-a` and `linux-b`), the
/// witness's second checksum after both kernels' first lines, the native
/// domains.
fn linux_two_log() -> String {
    let one = one_cpu(&linux());
    let (head, rest) = one.split_at(one.find("[linux] ryokan-init: started").expect("init's first line"));
    let tag = |part: &str, guest: &str| {
        part.replace("[linux]", &format!("[{guest}]"))
            .replace("linux:", &format!("{guest}:"))
            .replace("linux exited", &format!("{guest} exited"))
    };
    let witness = steady(
        "guest-steady",
        "0x4c13431c",
        1_000_000,
        &format!("{}{}", tag(head, "linux-a"), tag(head, "linux-b")),
    );
    let (first, second) =
        witness.split_at(witness.find("[vmm] guest-steady: cpu time between").expect("window"));
    format!(
        "[hello] hello from a native domain\n[ticker] tick 5\n[mgmt] ticker exited with code 0\n\
         {first}{second}{}{}",
        tag(rest, "linux-a"),
        tag(rest, "linux-b")
    )
}

#[test]
fn linux_two_wants_both_booted_beside_an_unchanged_witness_and_the_native_domains() {
    let check = |log: &str| {
        let t = linux_cases().into_iter().find(|t| t.name == "linux_two").expect("case exists");
        let o = Outcome { duration: Duration::from_secs(50), ..outcome_on(t.emulator.kind(), log) };
        (t.check)(&o)
    };
    let log = linux_two_log();
    assert_eq!(check(&log), Ok(()));
    assert!(cases().iter().any(|t| t.name == "linux_two"), "registered: it passes");
    let fails = |log: String, needle: &str| {
        let e = check(&log).expect_err("the check should fail");
        assert!(e.contains(needle), "`{needle}` not in: {e}");
    };
    fails(log.replace("checksum after 0x4c13431c", "checksum after 0x4c13431d"), "checksum changed");
    fails(log.replace("[linux-b] ryokan-init: nproc 1\n", ""), "[linux-b] ryokan-init: nproc 1");
    fails(log.replace("[vmm] linux-a: powered off (ACPI S5)\n", ""), "linux-a: powered off");
    fails(log.replace("[ticker] tick 5\n", ""), "[ticker] tick 5");
    fails(log.replace("[hello] hello from a native domain\n", ""), "hello from a native domain");
    // The witness's window must cover both boots: its second checksum
    // before a kernel's first line, or its first after an init, fails.
    let kernel = "[linux-b] [    0.000000] Linux version 6.1.0-48-cloud-amd64\n\
                  [linux-b] [    1.311432] rtc_cmos 00:01: registered as rtc0\n";
    let late = log.replace(kernel, "");
    let late =
        late.replace("[linux-b] ryokan-init: started", &format!("{kernel}[linux-b] ryokan-init: started"));
    fails(late, "linux-b's first line");
    let init = "[linux-a] ryokan-init: started, uptime 2.31 s\n";
    fails(format!("{init}{}", log.replacen(init, "", 1)), "linux-a's init");
}

fn mmio_log() -> String {
    "[guest-mmio] guest-mmio: xAPIC MMIO ok\n\
     [guest-mmio] guest-mmio: long mode MMIO ok\n\
     [vmm] guest-mmio: exit port 0xf4: exit code 0\n\
     [mgmt] guest-mmio exited with code 0\n"
        .to_string()
}

#[test]
fn mmio_wants_both_modes_checked_and_nothing_refused() {
    let log = mmio_log();
    assert_eq!(run("guest_mmio", &log), Ok(()));
    assert_eq!(run("bochs_guest_mmio", &log), Ok(()));
    assert_eq!(run("ryzen_guest_mmio", &log), Ok(()));
    fails(
        "guest_mmio",
        &log.replace("[guest-mmio] guest-mmio: long mode MMIO ok\n", ""),
        "long mode MMIO ok",
    );
    let refused =
        "[vmm] guest-mmio: MMIO at guest-physical 0xfee00030 from rip 0x1 not emulated (String): stopped\n";
    fails("guest_mmio", &format!("{refused}{log}"), "an access not completed");
    fails(
        "guest_mmio",
        &log.replace("MMIO ok\n[vmm]", "MMIO ok\n[guest-mmio] guest-mmio: FAIL check 3\n[vmm]"),
        "FAIL",
    );
}

fn rtc_log(date: &str) -> String {
    format!(
        "[guest-rtc] guest-rtc: now {date}\n\
         [guest-rtc] guest-rtc: advanced 1 s in 1100 ms\n\
         [guest-rtc] guest-rtc: set to 1999-12-31 23:59:59 (binary), 1.1 s later 2000-01-01 00:00:00\n\
         [guest-rtc] guest-rtc: periodic 16 Hz: 16 interrupts in 1000123 us\n\
         [guest-rtc] guest-rtc: 8192 Hz with status C unread: 1 interrupt(s) in 50 ms\n\
         [guest-rtc] guest-rtc: alarm interrupt at second 4\n\
         [guest-rtc] guest-rtc: update-ended interrupts 1000 ms apart\n\
         [guest-rtc] guest-rtc: CMOS clock ok\n\
         [vmm] guest-rtc: exit port 0xf4: exit code 0\n\
         [mgmt] guest-rtc exited with code 0\n"
    )
}

#[test]
fn rtc_wants_the_hosts_date_advancing_and_the_written_one_carried() {
    // 2026-12-03 07:02:54 UTC.
    let now = 1_796_281_374;
    assert_eq!(unix_seconds("2026-12-03 07:02:54"), Some(now));
    assert_eq!(unix_seconds("1970-01-01 00:00:00"), Some(0));
    assert_eq!(unix_seconds("2000-03-01 00:00:00"), Some(951_868_800));
    assert_eq!(unix_seconds("2026-13-03 07:02:54"), None);
    let ok = |log: &str| rtc_checked(&outcome(log), now);
    assert_eq!(ok(&rtc_log("2026-12-03 07:01:54")), Ok(()), "a minute behind");
    assert!(run("guest_rtc", &rtc_log("1970-01-01 00:00:03")).unwrap_err().contains("not the wall clock"));
    assert!(
        ok(&rtc_log("2026-12-03 06:02:54")).unwrap_err().contains("not the wall clock"),
        "an hour behind"
    );
    assert!(ok(&rtc_log("2026-12-03 07:05:54")).unwrap_err().contains("not the wall clock"), "ahead");
    assert!(ok(&rtc_log("2026-12-03")).unwrap_err().contains("not a date"));
    let log = rtc_log("2026-12-03 07:02:50");
    assert!(ok(&log.replace("advanced 1 s", "advanced 0 s").replace("CMOS clock ok", "FAIL not advancing"))
        .is_err());
    assert!(ok(&log.replace("2000-01-01 00:00:00", "1999-12-31 23:59:59"))
        .unwrap_err()
        .contains("2000-01-01"));
    assert!(ok(&log.replace("[guest-rtc] guest-rtc: CMOS clock ok\n", ""))
        .unwrap_err()
        .contains("CMOS clock ok"));
    assert!(ok(&log.replace("exit code 0\n[mgmt]", "exit code 1\n[mgmt]")).is_err());
    // The interrupts: 1 s at 16 Hz is 16 periods.
    let periodic = |n: &str| ok(&log.replace("16 interrupts in 1000123 us", n));
    assert_eq!(periodic("17 interrupts in 1000123 us"), Ok(()), "the periods and one");
    assert_eq!(periodic("12 interrupts in 1000123 us"), Ok(()), "three quarters");
    assert!(periodic("18 interrupts in 1000123 us").unwrap_err().contains("at most 17"), "too many");
    assert!(periodic("11 interrupts in 1000123 us").unwrap_err().contains("at least 12"), "too few");
    assert!(periodic("8 interrupts in 500000 us").unwrap_err().contains("at least 1 s"));
    assert!(periodic("many interrupts in 1000123 us").unwrap_err().contains("is not"));
    assert!(ok(&log.replace("unread: 1 interrupt(s)", "unread: 2 interrupt(s)"))
        .unwrap_err()
        .contains("unread"));
    assert!(ok(&log.replace("[guest-rtc] guest-rtc: alarm interrupt at second 4\n", ""))
        .unwrap_err()
        .contains("alarm"));
    for apart in ["799", "1201", "x"] {
        let e = ok(&log.replace("1000 ms apart", &format!("{apart} ms apart"))).unwrap_err();
        assert!(e.contains("not 800 to 1200"), "{apart}: {e}");
    }
    let (p, a) = (
        "[guest-rtc] guest-rtc: periodic 16 Hz: 16 interrupts in 1000123 us\n",
        "[guest-rtc] guest-rtc: alarm interrupt at second 4\n",
    );
    let swapped = log.replace(p, "@").replace(a, p).replace("@", a);
    assert!(ok(&swapped).unwrap_err().contains("periodic"), "in order");
}

#[test]
fn apic_wants_both_interfaces_timed_and_nothing_refused() {
    let log = "[vmm] guest-apic: rdmsr of MSR 0x802 at rip 0x1005a7: #GP(0) injected\n\
               [guest-apic] guest-apic: xAPIC one-shot, periodic and masked timers ok\n\
               [guest-apic] guest-apic: x2APIC one-shot, periodic and TSC-deadline timers ok\n\
               [vmm] guest-apic: exit port 0xf4: exit code 0\n\
               [mgmt] guest-apic exited with code 0\n";
    assert_eq!(run("guest_apic", log), Ok(()));
    assert_eq!(run("bochs_guest_apic", log), Ok(()));
    fails("guest_apic", &log.replace("x2APIC one-shot", "x2APIC one shot"), "TSC-deadline timers ok");
    let failed = log.replace(
        "[guest-apic] guest-apic: x2APIC",
        "[guest-apic] guest-apic: FAIL the TSC-deadline interrupt came before its deadline (x2APIC mode)\n[guest-apic] guest-apic: x2APIC",
    );
    fails("guest_apic", &failed, "FAIL");
    let refused =
        "[vmm] guest-apic: MMIO at guest-physical 0xfee00390 from rip 0x1 not emulated (String): stopped\n";
    fails("guest_apic", &format!("{refused}{log}"), "an access not completed");
}

#[test]
fn ioapic_wants_both_pins_routed_and_nothing_refused() {
    let log = "[guest-ioapic] guest-ioapic: PIT on pin 2 routed, masked and rerouted ok\n\
               [guest-ioapic] guest-ioapic: UART on pin 4 edge, level and destinations ok\n\
               [vmm] guest-ioapic: exit port 0xf4: exit code 0\n\
               [mgmt] guest-ioapic exited with code 0\n";
    assert_eq!(run("guest_ioapic", log), Ok(()));
    assert_eq!(run("bochs_guest_ioapic", log), Ok(()));
    fails("guest_ioapic", &log.replace("PIT on pin 2", "PIT on pin 0"), "PIT on pin 2");
    let failed = log.replace(
        "[guest-ioapic] guest-ioapic: UART",
        "[guest-ioapic] guest-ioapic: FAIL remote IRR was not cleared by the EOI\n[guest-ioapic] guest-ioapic: UART",
    );
    fails("guest_ioapic", &failed, "FAIL");
    let early = log.replace("exit code 0\n[mgmt] guest-ioapic exited with code 0", "exit code 1\n");
    assert!(run("guest_ioapic", &early).is_err());
    let refused =
        "[vmm] guest-ioapic: MMIO at guest-physical 0xfec00010 from rip 0x1 not emulated (String): stopped\n";
    fails("guest_ioapic", &format!("{refused}{log}"), "an access not completed");
}

#[test]
fn a_triple_faulting_bzimage_must_fail_the_run_at_its_first_instruction() {
    let log = format!(
        "[vmm] bad-bzimage: started: 8192 KiB of RAM, 1 vCPU, command line `console=ttyS0`, 0 module(s)\n\
         [vmm] bad-bzimage: triple fault at rip 0x100000: stopped\n\
         [mgmt] bad-bzimage exited with code 4\n\
         [mgmt] hello exited with code 0\n\
         {}",
        failed("bad-bzimage", 4)
    );
    assert_eq!(run("guest_triple_bzimage", &log), Ok(()));
    assert_eq!(run("bochs_guest_triple_bzimage", &log), Ok(()));
    fails(
        "guest_triple_bzimage",
        &log.replace("rip 0x100000", "rip 0x100004"),
        "triple fault at rip 0x100000",
    );
    let passed = "[vmm] bad-bzimage: started: 8192 KiB of RAM, 1 vCPU\n\
                  [vmm] bad-bzimage: exit port 0xf4: exit code 0\n\
                  [mgmt] bad-bzimage exited with code 0\n\
                  [mgmt] hello exited with code 0\n";
    fails("guest_triple_bzimage", passed, "should have failed");
    let other = log.replace(&failed("bad-bzimage", 4), &failed("bad-bzimage", 3));
    fails("guest_triple_bzimage", &other, "not VMM status");
}

/// What `guest-reboot` and its VMM print over its three boots.
const REBOOT: &str = "\
[vmm] guest-reboot: started: 4096 KiB of RAM, 1 vCPU, command line ``, 0 module(s)
[guest-reboot] guest-reboot: boot 1
[guest-reboot] guest-reboot: resetting through the reset register 0xcf9
[vmm] guest-reboot: reset (reset register 0xcf9) at rip 0x100123
[vmm] guest-reboot: restarted: boot 2
[guest-reboot] guest-reboot: boot 2
[guest-reboot] guest-reboot: resetting through the keyboard controller (0xfe to port 0x64)
[vmm] guest-reboot: reset (keyboard controller 0x64, command 0xfe) at rip 0x100140
[vmm] guest-reboot: restarted: boot 3
[guest-reboot] guest-reboot: boot 3
[guest-reboot] guest-reboot: three boots, done
[vmm] guest-reboot: exit port 0xf4: exit code 0
[vmm] guest-reboot: cpu time 812 us
[mgmt] guest-reboot exited with code 0
[mgmt] hello exited with code 0
";

#[test]
fn reboot_wants_three_boots_each_reset_restarted_and_one_exit() {
    for name in ["guest_reboot", "bochs_guest_reboot"] {
        assert_eq!(run(name, REBOOT), Ok(()), "{name}");
    }
    // A reset that stopped the guest (no restart): it ends halted or so.
    let stopped = REBOOT.split("[vmm] guest-reboot: restarted: boot 2\n").next().unwrap().to_string()
        + "[vmm] guest-reboot: halted\n[mgmt] guest-reboot exited with code 2\n";
    fails("guest_reboot", &stopped, "restarted: boot 2");
    // The keyboard controller's reset not taken.
    fails(
        "guest_reboot",
        &REBOOT.replace("keyboard controller 0x64, command 0xfe", "port 0x64"),
        "reset (keyboard",
    );
    // A boot count lost across the reset: boot 1 again (and a fourth boot line).
    let lost =
        REBOOT.replace("[guest-reboot] guest-reboot: boot 2\n", "[guest-reboot] guest-reboot: boot 1\n");
    fails("guest_reboot", &lost, "guest-reboot: boot 2");
    let extra = REBOOT.replace(
        "[guest-reboot] guest-reboot: three boots, done\n",
        "[guest-reboot] guest-reboot: three boots, done\n[guest-reboot] guest-reboot: boot 4\n",
    );
    fails("guest_reboot", &extra, "exactly three times");
    // The guest's own failure (its RAM kept, say).
    let dirty = REBOOT.replace(
        "[guest-reboot] guest-reboot: boot 3\n",
        "[guest-reboot] guest-reboot: FAIL its RAM kept the boot before's (a .bss word was set)\n\
         [guest-reboot] guest-reboot: boot 3\n",
    );
    fails("guest_reboot", &dirty, "failure");
    // mgmt saw the VMM exit at a reset (a restart by mgmt, not the VMM).
    let twice = REBOOT.replace(
        "[vmm] guest-reboot: restarted: boot 2\n",
        "[vmm] guest-reboot: restarted: boot 2\n[mgmt] guest-reboot exited with code 9\n",
    );
    fails("guest_reboot", &twice, "more than once");
    let refused =
        format!("{REBOOT}[mgmt] warning: guest-reboot: a handover refused (label 0x1, badge 0x2)\n");
    fails("guest_reboot", &refused, "refused handover");
}

/// `reset-loop`'s nine boots, its VMM's restarts and stop, beside `steady`.
fn reset_loop(boots: u32, restarted: u32) -> String {
    let mut log =
        String::from("[vmm] reset-loop: started: 4096 KiB of RAM, 1 vCPU, command line ``, 0 module(s)\n");
    for boot in 1..=boots {
        log += "[reset-loop] guest-reset-loop: resetting\n[vmm] reset-loop: reset (reset register 0xcf9) at rip 0x100050\n";
        if boot <= restarted {
            log += &format!("[vmm] reset-loop: restarted: boot {}\n", boot + 1);
        }
        if boot == 2 {
            log += &steady("steady", "0x4c13431c", 990_000, "");
        }
    }
    log += "[vmm] reset-loop: 9 resets in a row, each less than 1000 ms into its boot: \
            a reset loop, not restarted: stopped\n[vmm] reset-loop: cpu time 40 us\n\
            [mgmt] reset-loop exited with code 9\n[mgmt] hello exited with code 0\n";
    log + &failed("reset-loop", status::RESET)
}

#[test]
fn a_reset_loop_is_stopped_after_eight_restarts_and_its_neighbour_runs_on() {
    for name in ["guest_reset_loop", "bochs_guest_reset_loop"] {
        assert_eq!(run(name, &reset_loop(9, 8)), Ok(()), "{name}");
    }
    fails("guest_reset_loop", &reset_loop(10, 9), "booted 10 times");
    fails("guest_reset_loop", &reset_loop(3, 2), "booted 3 times");
    let ok = reset_loop(9, 8);
    let not_stopped = ok.replace("a reset loop, not restarted: stopped", "stopped");
    fails("guest_reset_loop", &not_stopped, "a reset loop, not restarted");
    let touched = ok.replace("checksum after 0x4c13431c", "checksum after 0x0");
    fails("guest_reset_loop", &touched, "checksum changed");
    let other_status = ok.replace("(VMM status 9)", "(VMM status 2)");
    fails("guest_reset_loop", &other_status, "not VMM status [9]");
    let neighbour_failed = format!("{ok}{}", failed("steady", status::FAILED));
    fails("guest_reset_loop", &neighbour_failed, "other guests failed the run too");
}
