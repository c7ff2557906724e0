//! The control tests' own logic on the host: the fuzzer's frames, the judge.

use std::path::PathBuf;
use std::time::Duration;

use super::fuzz::{frame, Rng, FRAMES};
use super::*;
use crate::judge::{self, EmulatorKind, Exit};

#[test]
fn fuzzed_frames_are_never_requests_and_cover_every_kind() {
    let mut rng = Rng::new(0x5eed_c0de);
    let (mut long, mut short) = (0, 0);
    for _ in 0..FRAMES / 10 {
        let f = frame(&mut rng);
        assert!(!f.is_empty() && !f.contains(&0), "{f:?}");
        if f.len() > ipc::control::MAX_REQUEST {
            long += 1;
        } else {
            short += 1;
            assert!(ipc::control::Request::decode(&mut f.clone()).is_err(), "{f:?} is a request");
        }
    }
    assert!(long > 0 && short > long, "{long} long, {short} short");
}

fn outcome(serial: &str) -> Outcome {
    let exit = Exit::Code(33);
    Outcome {
        verdict: judge::judge(EmulatorKind::Qemu, exit, serial),
        serial: serial.to_string(),
        exit,
        duration: Duration::from_secs(1),
        work_dir: PathBuf::new(),
    }
}

const GOOD: &str = "\
[mgmt] control: serving on COM2 (ports 0x2f8, interrupt 3)
[mgmt] control: paused spin-a
[mgmt] control: resumed spin-a
[mgmt] control: spin-a now has weight 768, cap 0%
[mgmt] control: paused guest-spin
[mgmt] control: guest-spin now has weight 256, cap 20%
[mgmt] control: destroyed spin-b
[mgmt] control: creating made
[mgmt] control: creating made-vm
[mgmt] control: shutdown asked for
[mgmt] all domains stopped: shutting down
RYOKAN: shutdown status=success
";

#[test]
fn the_judge_wants_every_verb_in_the_log() {
    assert_eq!(check_cli(&outcome(GOOD)), Ok(()));
    let without = GOOD.replace("[mgmt] control: resumed spin-a\n", "");
    assert!(check_cli(&outcome(&without)).is_err());
    let uncreated = GOOD.replace("[mgmt] control: creating made-vm\n", "");
    assert!(check_cli(&outcome(&uncreated)).is_err());
    let faulted = GOOD.replace(
        "[mgmt] control: destroyed spin-b\n",
        "[mgmt] control: destroyed spin-b\n[mgmt] idler faulted: page fault\n",
    );
    assert!(check_cli(&outcome(&faulted)).is_err());
    let failed = GOOD.replace("status=success", "status=failure");
    assert!(check_cli(&outcome(&failed)).is_err());
}

#[test]
fn the_control_test_boots_qemu_with_the_socket() {
    let t = cases().into_iter().find(|t| t.name == "control_cli").expect("listed");
    let Emulator::Qemu(q) = &t.emulator else { panic!("QEMU") };
    let args = q.args("x.iso", crate::emulator::QemuSerial::File("serial.log")).join(" ");
    assert!(args.contains("-serial file:serial.log"), "{args}");
    let com1 = args.find("-serial file:").unwrap();
    let com2 = args.find("-serial chardev:ctl").expect("a second serial port");
    assert!(com1 < com2, "COM1 first: {args}");
    assert!(args.contains("-chardev socket,id=ctl,path=control.sock,server=on,wait=off"), "{args}");
    assert!(t.drive.is_some());
}

const CONSOLE_GOOD: &str = "\
[mgmt] control: serving on COM2 (ports 0x2f8, interrupt 3)
[echo] guest-echo: ready
[deaf] guest-echo: deaf, never reading
[echo] echo: hello console
[echo] echo: second line
[echo] echo: line 39 of forty
[echo] echo: quit
[echo] guest-echo: 47 lines in 31 interrupts
[mgmt] echo exited with code 0
[mgmt] control: shutdown asked for
[mgmt] all domains stopped: shutting down
RYOKAN: shutdown status=success
";

#[test]
fn the_console_judge_wants_the_round_trips_and_interrupts() {
    use super::console::{check_console, counts};
    assert_eq!(counts(CONSOLE_GOOD), Some((47, 31)));
    assert_eq!(check_console(&outcome(CONSOLE_GOOD)), Ok(()));
    let polled = CONSOLE_GOOD.replace("in 31 interrupts", "in 0 interrupts");
    assert!(check_console(&outcome(&polled)).is_err(), "no interrupt: not read by interrupt");
    let lost = CONSOLE_GOOD.replace("[echo] echo: line 39 of forty\n", "");
    assert!(check_console(&outcome(&lost)).is_err(), "a line lost");
    let broken = CONSOLE_GOOD.replace(
        "[mgmt] control: shutdown",
        "[mgmt] warning: echo: its VMM broke the console's output ring (PeerMisbehaved): console off\n[mgmt] control: shutdown",
    );
    assert!(check_console(&outcome(&broken)).is_err(), "a console broke");
    let failed = CONSOLE_GOOD.replace("status=success", "status=failure");
    assert!(check_console(&outcome(&failed)).is_err());
}

#[test]
fn the_linux_console_judge_wants_the_answer_and_the_power_off() {
    use super::console::{check_linux_console, linux_answered};
    let shell = "/ # \x1b[6nuname -a\r\nLinux (none) 6.1.0-48-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.172-1 (2026-05-15) x86_64 GNU/Linux\r\n/ # ";
    assert!(linux_answered(shell));
    assert!(!linux_answered("/ # uname -a\r\nsh: uname: not found\r\n"), "no answer");
    assert!(!linux_answered("Linux (none) 6.1.0-48 x86_64 GNU/Linux\r\n"), "an answer to nothing typed");
    let good = "\
[linux] / # uname -a
[linux] Linux (none) 6.1.0-48-cloud-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.172-1 (2026-05-15) x86_64 GNU/Linux
[linux] / # poweroff -f
[vmm] linux: powered off (ACPI S5)
[mgmt] linux exited with code 0
[mgmt] all domains stopped: shutting down
RYOKAN: shutdown status=success
";
    assert_eq!(check_linux_console(&outcome(good)), Ok(()));
    let unanswered = good.replace("[linux] Linux (none)", "[linux] sh: (none)");
    assert!(check_linux_console(&outcome(&unanswered)).is_err());
    let no_poweroff = good.replace("[vmm] linux: powered off (ACPI S5)\n", "");
    assert!(check_linux_console(&outcome(&no_poweroff)).is_err());
}
