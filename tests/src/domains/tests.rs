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
fn reaper_wants_both_rounds_and_equal_counts() {
    let good = "[reaper] reaper: round 1: 200 deaths at once, each seen once\n\
                [reaper] reaper: round 2: 200 deaths at once, each seen once\n\
                [reaper] reaper: 400 deaths seen and reaped; free frames 9000 -> 9000, objects 20 -> 20\n\
                [mgmt] reaper exited with code 0\n";
    assert_eq!(run("domains_reaper", &format!("{good}{END}")), Ok(()));
    let lost = good.replace("[reaper] reaper: round 2: 200 deaths at once, each seen once\n", "");
    fails("domains_reaper", &format!("{lost}{END}"), "round 2");
    let leak = good.replace("9000 -> 9000", "9000 -> 8996");
    fails("domains_reaper", &format!("{leak}{END}"), "reaping leaked: free frames 9000 -> 8996");
    let failed = good.replace("exited with code 0", "exited with code 1");
    fails("domains_reaper", &format!("{failed}{END}"), "reaper exited with code 0");
}

#[test]
fn crowd_wants_every_guest_finished_then_destroyed() {
    let good = "[crowd] crowd: 100 guests at once, each finished with exit code 0\n\
                [crowd] crowd: all 100 destroyed\n\
                [mgmt] crowd exited with code 0\n";
    assert_eq!(run("guest_crowd", &format!("{good}{END}")), Ok(()));
    let short = good.replace("[crowd] crowd: 100 guests at once, each finished with exit code 0\n", "");
    fails("guest_crowd", &format!("{short}{END}"), "100 guests at once");
    let failed = good.replace("exited with code 0", "exited with code 1");
    fails("guest_crowd", &format!("{failed}{END}"), "crowd exited with code 0");
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

/// A devices.toml run as `mgmt` and `devprobe` report it.
fn devices_log() -> String {
    let mut s = String::from(
        "[mgmt] devprobe: device 00:04.0 (1af4:1042) given without DMA (no IOMMU confines it; \
         unconfined_dma = true allows it)\n[mgmt] started devprobe (domain 0x1)\n\
         [devprobe] devprobe: device:00:04.0 is 1af4:1042\n",
    );
    for what in DEVPROBE_ANSWERS {
        s.push_str(&format!("[devprobe] devprobe: {what}: as owed\n"));
    }
    s.push_str("[mgmt] devprobe exited with code 0\n");
    s
}

#[test]
fn devices_wants_every_answer_as_owed() {
    let log = devices_log();
    assert_eq!(run("devices_probe", &format!("{log}{END}")), Ok(()));
    let moved = log
        .replace("BAR 0 moved over the kernel refused: as owed", "BAR 0 moved over the kernel refused: FAIL");
    fails("devices_probe", &format!("{moved}{END}"), "BAR 0 moved over the kernel refused: as owed");
    let dma = log.replace("given without DMA", "given; its DMA is NOT confined");
    fails("devices_probe", &format!("{dma}{END}"), "given without DMA");
    let failed = log.replace("exited with code 0", "exited with code 1");
    fails("devices_probe", &format!("{failed}{END}"), "devprobe exited with code 0");
    fails("devices_probe", &log, "");
}

#[test]
fn blk_disk_wants_exactly_both_patterns_in_the_image() {
    let dir = std::env::temp_dir().join(format!("ryokan-blk-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("disk-00-04-0.img");
    let fresh = || std::fs::write(&path, vec![0u8; crate::emulator::DISK_BYTES as usize]).expect("image");
    fresh();
    super::disk::prepare(&dir).expect("prepared");
    assert!(super::disk::check(&dir).is_err(), "blk's pattern missing");
    let mut bytes = std::fs::read(&path).expect("read");
    for i in 0..8 * 512 {
        bytes[100 * 512 + i] = (i * 13 + 5) as u8 ^ 0xa5;
    }
    std::fs::write(&path, &bytes).expect("write");
    assert!(super::disk::check(&dir).is_err(), "blk-client's pattern missing");
    for i in 0..2 * 512 {
        bytes[300 * 512 + i] = (i * 31 + 11) as u8;
    }
    std::fs::write(&path, &bytes).expect("write");
    super::disk::check(&dir).expect("the three patterns, zeros elsewhere");
    bytes[200 * 512] = 1;
    std::fs::write(&path, &bytes).expect("write");
    assert!(super::disk::check(&dir).is_err(), "a stray byte");
    fresh();
    assert!(super::disk::check(&dir).is_err(), "the harness's pattern missing");
    std::fs::remove_dir_all(&dir).expect("cleaned");
}

/// A dma.toml run as the kernel, `mgmt` and the two domains report it.
fn dma_log() -> String {
    let mut s = String::from(
        "[cpu0] iommu: VT-d unit at 0xfed90000: DMA remapping on, 3-level tables, 1 fault records\n\
         [cpu0] iommu: interrupt remapping on: compatibility format blocked; entries for one requester \
         (the I/O APIC: Some(ff00))\n\
         [mgmt] started dma-witness (domain 0x1)\n[mgmt] started blk-dma (domain 0x2)\n\
         [dma-witness] dma-witness: 256 KiB filled, checksum 0x1\n",
    );
    for aim in super::DMA_AIMS {
        s.push_str(&format!(
            "[cpu0] WARN iommu: DMA fault: device 00:04.0 write at {aim:#x} blocked (reason 0x6), \
             charged to domain 0x2 (the device's fault 1)\n\
             [blk-dma] blk-dma: a read into {aim:#x} (RAM): the device answered it done\n"
        ));
    }
    s.push_str(
        "[cpu0] WARN trap: unexpected interrupt vector 0xd8\n\
         [blk-dma] blk-dma: a read into 0xfee00000 (the interrupt window): the device answered it done\n\
         [blk-dma] blk-dma: the device still serves a read through its own IOVAs\n\
         [blk-dma] blk-dma: its device's completion interrupt arrived through MSI-X entry 0\n\
         [dma-witness] dma-witness: its memory is unchanged after the attack (checksum 0x1)\n\
         [mgmt] blk-dma exited with code 0\n[mgmt] blk-dma: its devices made 4 requests the IOMMU blocked\n\
         [mgmt] dma-witness exited with code 0\n",
    );
    s
}

#[test]
fn dma_attack_wants_every_aim_blocked_and_logged_and_the_witness_unchanged() {
    let log = dma_log();
    assert_eq!(run("dma_attack", &format!("{log}{END}")), Ok(()));
    let unlogged = log.replace("write at 0x100000 blocked", "write at 0x100000 passed");
    fails("dma_attack", &format!("{unlogged}{END}"), "0x100000 blocked");
    let unsaid =
        log.replace("[blk-dma] blk-dma: a read into 0x2000000", "[blk-dma] blk-dma: nothing into 0x2000000");
    fails("dma_attack", &format!("{unsaid}{END}"), "a read into 0x2000000");
    let changed = log.replace("its memory is unchanged", "FAIL: its memory changed");
    fails("dma_attack", &format!("{changed}{END}"), "its memory is unchanged");
    let broken = log.replace(
        "[blk-dma] blk-dma: the device still serves",
        "[blk-dma] blk-dma: the device no longer serves",
    );
    fails("dma_attack", &format!("{broken}{END}"), "still serves");
    let remapping_off = log.replace("DMA remapping on", "DMA remapping FAILED");
    fails("dma_attack", &format!("{remapping_off}{END}"), "DMA remapping on");
    let deaf = log.replace("completion interrupt arrived", "completion interrupt: FAIL");
    fails("dma_attack", &format!("{deaf}{END}"), "completion interrupt arrived");
    let no_ir = log.replace("interrupt remapping on", "interrupt remapping FAILED");
    fails("dma_attack", &format!("{no_ir}{END}"), "interrupt remapping on");
    let uncharged = log.replace("charged to domain 0x2 (", "charged to domain 0x1 (");
    fails("dma_attack", &format!("{uncharged}{END}"), "was not charged to blk-dma");
    let uncounted = log.replace("made 4 requests", "made 3 requests");
    fails("dma_attack", &format!("{uncounted}{END}"), "count of blk-dma's faults is Some(3)");
    let unreported = log.replace("[mgmt] blk-dma: its devices made", "[mgmt] blk-dma: nothing made");
    fails("dma_attack", &format!("{unreported}{END}"), "count of blk-dma's faults is None");
    let unaimed = log.replace("a read into 0xfee00000", "no read into 0xfee00000");
    fails("dma_attack", &format!("{unaimed}{END}"), "a read into 0xfee00000");
    let stray = log.replace("vector 0xd8", "vector 0xd9");
    fails("dma_attack", &format!("{stray}{END}"), "remappable-format request");
    let from_user = format!("{log}[cpu1] WARN trap: unexpected interrupt vector 0xd9\n");
    fails("dma_attack", &format!("{from_user}{END}"), "the remapping must have stopped arrived");
}

const NET: &str = "\
[mgmt] control: serving on COM2 (ports 0x2f8, interrupt 3)
[mgmt] net: device 00:05.0 (1af4:1041) given with DMA (confined where the kernel programs an IOMMU; unconfined_dma: even where it does not)
[mgmt] started net (domain 0x1)
[net] net: virtio-net, MAC 52:54:00:12:34:56
[net] net: DHCP lease: address 10.0.2.15/24, gateway 10.0.2.2
[net] net: serving frames to net-client as 52:54:00:12:34:57
[net-client] net-client: its MAC, net's plus one: as owed
[net-client] net-client: the link up: as owed
[net-client] net-client: a frame from another address refused: as owed
[net-client] net-client: a frame too long refused: as owed
[net-client] net-client: a frame too short refused: as owed
[net-client] net-client: DHCP lease: address 10.0.2.16/24, gateway 10.0.2.2
[net-client] net-client: every frame sent taken: as owed
[net-client] net-client: moved its producer index back
[mgmt] net-client exited with code 0
[net] net: client net-client broke its ring (PeerMisbehaved): no longer served
[net] net: echo: a connection ended after 6144 bytes
[net] net: echo: a connection ended after 1 bytes
[net] net: echo: a connection passed 65536 bytes: cut
[net] net: echo: a connection idle for 5 s: cut
[mgmt] control: shutdown asked for
";

#[test]
fn net_echo_wants_the_lease_the_echo_and_the_cut() {
    let good = format!("{NET}{END}");
    assert_eq!(run("net_echo", &good), Ok(()));
    fails("net_echo", &good.replace("address 10.0.2.15/24", "address 10.0.2.16/24"), "DHCP lease");
    fails("net_echo", &good.replace("passed 65536 bytes: cut", "passed"), "cut");
    fails("net_echo", &good.replace("idle for 5 s: cut", "idle"), "idle");
    fails("net_echo", &good.replace("ended after 6144", "ended after 6000"), "6144");
    let failed = good.replace("[net] net: echo: a connection ended after 1 bytes", "[net] net: FAIL: x");
    fails("net_echo", &failed, "failure");
    fails("net_echo", &good.replace("[mgmt] control: shutdown asked for\n", ""), "shutdown");
    for what in net::CLIENT_ANSWERS {
        let owed = format!("net-client: {what}: as owed");
        fails("net_echo", &good.replace(&owed, &format!("net-client: {what}: FAIL")), what);
    }
    fails("net_echo", &good.replace("10.0.2.16/24", "10.0.2.17/24"), "10.0.2.16");
    fails("net_echo", &good.replace("broke its ring (PeerMisbehaved)", "closed"), "broke its ring");
    fails(
        "net_echo",
        &good.replace("net-client exited with code 0", "net-client exited with code 1"),
        "code 0",
    );
}

#[test]
fn net_echo_streams_differ_by_seed_and_are_not_constant() {
    let (a, b) = (net::stream(1, 4096), net::stream(2, 4096));
    assert_eq!(a, net::stream(1, 4096));
    assert_ne!(a, b);
    assert!(a.iter().any(|&x| x != a[0]));
    let zeros = a.iter().filter(|&&x| x == 0).count();
    assert!(zeros < 64, "{zeros} zero bytes of 4096");
}

/// A blk-restart.toml run as the kernel, `mgmt` and the domains report it.
fn restart_log() -> String {
    let given = "[mgmt] blk-restart: device 00:04.0 (1af4:1042) given with DMA (confined where the kernel programs an IOMMU; unconfined_dma: even where it does not)\n";
    let checks = "[blk-restart] blk: read the harness's pattern at sectors 0..8\n\
                  [blk-restart] blk: wrote its pattern at sectors 100..108, flushed, read it back\n";
    let mut s = format!(
        "[cpu0] iommu: VT-d unit at 0xfed90000: DMA remapping on, 3-level tables, 1 fault records\n\
         {given}[mgmt] started blk-restart (domain 0x1)\n[mgmt] started blk-reuse (domain 0x2)\n{checks}\
         [blk-restart] blk: load: 4 requests of 12 KiB at once (2 reads, 2 writes at sectors 1024..1072), batch after batch, until killed\n\
         [mgmt] killed blk-restart (exit code 137)\n\
         [mgmt] restarting blk-restart in 4000 ms (restart 1 of 1)\n\
         [cpu0] WARN iommu: DMA fault: device 00:04.0 write at 0x100001000 blocked (reason 0x2)\n\
         [blk-reuse] blk-reuse: blk-restart is gone (129424 frames free): took 16384 KiB in 128 objects of 32 pages, filled\n\
         [blk-reuse] blk-reuse: every word of its 16384 KiB unchanged 2000 ms after blk-restart's death\n\
         [mgmt] blk-reuse exited with code 0\n{given}[mgmt] started blk-restart (domain 0x100000001)\n{checks}"
    );
    for what in super::BLK_CLIENT_ANSWERS {
        s.push_str(&format!("[blk-client] blk-client: {what}: as owed\n"));
    }
    for what in super::BLK_HOSTILE_ANSWERS {
        s.push_str(&format!("[blk-hostile] blk-hostile: {what}: as owed\n"));
    }
    s.push_str(
        "[blk-restart] blk: client blk-hostile broke its ring (PeerMisbehaved): no longer served\n\
         [mgmt] blk-client exited with code 0\n[mgmt] blk-hostile exited with code 0\n\
         [blk-restart] blk: every client closed or dropped\n[mgmt] blk-restart exited with code 0\n",
    );
    s.push_str(END);
    s
}

/// A work dir holding a disk image as `blk_restart` must leave it, or
/// (`loaded` false) without the load's pattern.
fn restart_dir(tag: &str, loaded: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ryokan-blk-restart-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut bytes = vec![0u8; crate::emulator::DISK_BYTES as usize];
    use ipc::block::pattern;
    for i in 0..8 * 512 {
        bytes[i] = pattern::harness(i);
        bytes[100 * 512 + i] = pattern::blk(i);
    }
    for i in 0..2 * 512 {
        bytes[300 * 512 + i] = pattern::client(i);
    }
    for i in 0..48 * 512 {
        bytes[1024 * 512 + i] = if loaded { pattern::load(i) } else { 0 };
    }
    std::fs::write(dir.join("disk-00-04-0.img"), bytes).expect("image");
    dir
}

fn run_restart(serial: &str, dir: &std::path::Path) -> Result<(), String> {
    let exit = Exit::Code(33);
    let o = Outcome {
        verdict: judge::judge(judge::EmulatorKind::Qemu, exit, serial),
        serial: serial.to_string(),
        exit,
        duration: Duration::from_secs(1),
        work_dir: dir.to_path_buf(),
    };
    super::restart::check(&o)
}

#[test]
fn blk_restart_wants_the_kill_the_untouched_reuse_and_the_new_instance_serving() {
    let dir = restart_dir("good", true);
    let good = restart_log();
    assert_eq!(run_restart(&good, &dir), Ok(()));
    let flaws: [(String, &str); 10] = [
        (good.replace("every word of its 16384 KiB unchanged", "FAIL: a word changed"), "unchanged"),
        // The witness took its memory before the kill: it proves nothing.
        (
            good.replacen(
                "[blk-restart] blk: load:",
                "[blk-reuse] blk-reuse: blk-restart is gone (1 frames free): x\n[blk-restart] blk: load:",
                1,
            )
            .replacen(
                "[blk-reuse] blk-reuse: blk-restart is gone (129424",
                "[blk-reuse] gone (1",
                1,
            ),
            "`blk-reuse's taking the freed memory` (line 7) does not come after",
        ),
        (good.replace("[mgmt] started blk-restart (domain 0x100000001)\n", ""), "appears 1 times, not 2"),
        (good.replacen("[blk-restart] blk: load: 4", "[blk-restart] blk: load: 3", 1), "appears 0 times"),
        (
            good.replace("[mgmt] killed blk-restart (exit code 137)\n", ""),
            "no line `[mgmt] killed blk-restart (exit code 137)`",
        ),
        (good.replace("device 00:04.0 write at", "device 00:05.0 write at"), "an IOMMU fault not of"),
        (
            good.replace(
                "[mgmt] restarting blk-restart",
                "[cpu0] iommu: DMA fault: device 00:04.0 early\n[mgmt] restarting blk-restart",
            )
            .replacen(
                "[blk-restart] blk: load:",
                "[cpu0] iommu: DMA fault: device 00:04.0 x\n[blk-restart] blk: load:",
                1,
            ),
            "an IOMMU fault not of",
        ),
        (
            good.replace("a read past the end refused: as owed", "a read past the end refused: FAIL"),
            "a read past the end",
        ),
        (
            good.replace("[mgmt] blk-reuse exited with code 0\n", "[mgmt] blk-reuse exited with code 1\n"),
            "blk-reuse exited with code 0",
        ),
        (good.replace("[blk-restart] blk: every client closed or dropped\n", ""), "every client closed"),
    ];
    // blk-reuse's exit after the restart (a slow host) is no flaw; the
    // restart before its check is.
    let late = good.replace("[mgmt] blk-reuse exited with code 0\n", "").replace(
        "[blk-restart] blk: every client closed",
        "[mgmt] blk-reuse exited with code 0\n[blk-restart] blk: every client closed",
    );
    assert_eq!(run_restart(&late, &dir), Ok(()));
    let check =
        "[blk-reuse] blk-reuse: every word of its 16384 KiB unchanged 2000 ms after blk-restart's death\n";
    let early = late.replace(check, "").replace(
        "[mgmt] blk-client exited with code 0\n",
        &format!("{check}[mgmt] blk-client exited with code 0\n"),
    );
    let e = run_restart(&early, &dir).expect_err("the restart came before the check");
    assert!(e.contains("`its second start`"), "{e}");
    for (log, needle) in &flaws {
        let e = run_restart(log, &dir).expect_err("the check should fail");
        assert!(e.contains(needle), "`{needle}` not in: {e}");
    }
    // The load's writes missing from the image (or reused memory's words
    // in their place) fail the image check.
    let bare = restart_dir("bare", false);
    let e = run_restart(&good, &bare).expect_err("the load's pattern is missing");
    assert!(e.contains("byte 524288"), "{e}");
    assert!(super::disk::check(&bare).is_ok(), "blk_disk's check knows no load");
    std::fs::remove_dir_all(&dir).expect("cleaned");
    std::fs::remove_dir_all(&bare).expect("cleaned");
}
