//! System tests of native domains: systems of sample domains, judged by what `mgmt` and they log.
//!
//! `mgmt` logs `[mgmt] started <name> (domain <id>)`, `[mgmt] <name> exited
//! with code <n>`, `[mgmt] <name> faulted: <kind> (vector <v>) at address
//! <0x..> ip <0x..>`, `[mgmt] restarting <name> in <ms> ms (restart <k> of
//! <max>)`, `[mgmt] <name> stopped for good` and, last, `[mgmt] all domains
//! stopped: shutting down`; a domain's own lines are `[<name>] <message>`.

pub(crate) mod expect;
#[cfg(test)]
mod tests;

use crate::cases::{Image, SystemTest};
use crate::emulator::{Bochs, Emulator, Qemu};
use crate::judge::{Outcome, Verdict};
use expect::{count, in_order, never, says, says_prefix};

/// The domain tests, in the order they are listed.
pub fn cases() -> Vec<SystemTest> {
    let qemu = || Emulator::Qemu(Qemu::default());
    let case = |name, file, emulator, check| SystemTest {
        name,
        image: Image::System(file),
        emulator,
        check,
        drive: None,
    };
    vec![
        case("domains_default", "system.toml", qemu(), check_default),
        case("domains_faults", "tests/systems/faults.toml", qemu(), check_faults),
        case("domains_hostile", "tests/systems/hostile.toml", qemu(), check_hostile),
        case("domains_deaths", "tests/systems/deaths.toml", qemu(), check_deaths),
        case("domains_shm", "tests/systems/shm.toml", qemu(), check_shm),
        case("domains_churn", "tests/systems/churn.toml", qemu(), check_churn),
        case("domains_irq", "tests/systems/irq.toml", qemu(), check_irq),
        case("ipc_notifications", "tests/systems/alarm.toml", qemu(), check_alarm),
        case("bochs_domains", "system.toml", Emulator::Bochs(Bochs::default()), check_default),
    ]
}

const MGMT: &str = "mgmt";

/// The run ended well, and `mgmt` saw every domain stop.
fn finished(o: &Outcome) -> Result<(), String> {
    if let Verdict::Failure { reason } = &o.verdict {
        return Err(reason.clone());
    }
    says(&o.serial, MGMT, "all domains stopped: shutting down").map(|_| ())
}

fn started(s: &str, name: &str) -> Result<usize, String> {
    says_prefix(s, MGMT, &format!("started {name} (domain "))
}

fn check_default(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    started(s, "hello")?;
    started(s, "ticker")?;
    says(s, "hello", "hello from a native domain")?;
    says(s, "ticker", "tick 5")?;
    // The default system boots a guest too (VT-x in Bochs, AMD-V in QEMU).
    says(s, "guest-hello", "hello from a guest")?;
    says(s, MGMT, "guest-hello exited with code 0").map(|_| ())
}

/// The faulting domains of `faults.toml`, and what `mgmt` reports each time.
const FAULTERS: [(&str, &str); 5] = [
    ("fault-kernel", "faulted: page fault (vector 14) at address 0xffff800000000000 ip 0x"),
    ("fault-ro", "faulted: page fault (vector 14) at address 0x"),
    ("fault-ud", "faulted: invalid opcode (vector 6)"),
    ("fault-simd", "faulted: invalid opcode (vector 6)"),
    ("fault-panic", "exited with code 101"),
];

/// `steady` ran to its end, undisturbed by its neighbours.
fn steady_unharmed(s: &str) -> Result<(), String> {
    says(s, "steady", "steady: done after 20 ticks")?;
    says(s, MGMT, "steady exited with code 0")?;
    never(s, MGMT, |m| m.starts_with("restarting steady "), "restarting steady")
}

/// The domains of `deaths.toml` and the runs each has (1 + 13 restarts).
const DEATHS: (usize, usize) = (15, 14);

/// Every one of the 210 deaths of `deaths.toml` was seen: each domain
/// faulted, was restarted 13 times, and was stopped for good.
fn check_deaths(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    let (domains, runs) = DEATHS;
    for i in 1..=domains {
        let name = format!("fault-ud{i}");
        let report = format!("{name} faulted: invalid opcode (vector 6)");
        let seen = count(s, MGMT, |m| m.starts_with(&report)).len();
        if seen != runs {
            return Err(format!("`[mgmt] {report}…` appears {seen} times, not {runs}"));
        }
        says(s, MGMT, &format!("restarting {name} in 2 ms (restart {} of {})", runs - 1, runs - 1))?;
        says(s, MGMT, &format!("{name} stopped for good"))?;
    }
    Ok(())
}

fn check_faults(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    for (name, report) in FAULTERS {
        let report = format!("{name} {report}");
        let faults = count(s, MGMT, |m| m.starts_with(&report));
        if faults.len() != 3 {
            return Err(format!(
                "`[mgmt] {report}…` appears {} times, not 3 (the first run and 2 restarts)",
                faults.len()
            ));
        }
        let restart1 = says(s, MGMT, &format!("restarting {name} in 5 ms (restart 1 of 2)"))?;
        let restart2 = says(s, MGMT, &format!("restarting {name} in 10 ms (restart 2 of 2)"))?;
        let stopped = says(s, MGMT, &format!("{name} stopped for good"))?;
        in_order(
            &[
                ("1st fault", faults[0]),
                ("1st restart", restart1),
                ("2nd fault", faults[1]),
                ("2nd restart", restart2),
                ("3rd fault", faults[2]),
                ("stopped for good", stopped),
            ],
            name,
        )?;
        let starts = count(s, MGMT, |m| m.starts_with(&format!("started {name} (domain ")));
        if starts.len() != 3 {
            return Err(format!("`[mgmt] started {name} (domain …)` appears {} times, not 3", starts.len()));
        }
    }
    steady_unharmed(s)
}

/// The random syscalls `hostile` must make in one run, at least.
const HOSTILE_CALLS: u64 = 1_000_000;

/// The line and number of `who`'s first message `<prefix><n><suffix>…`.
fn number_in(s: &str, who: &str, prefix: &str, suffix: &str) -> Result<(usize, u64), String> {
    crate::log::said(s, who)
        .into_iter()
        .find_map(|(i, m)| {
            let (digits, _) = m.strip_prefix(prefix)?.split_once(suffix)?;
            Some((i, digits.parse().ok()?))
        })
        .ok_or_else(|| format!("no line `[{who}] {prefix}<n>{suffix}…`"))
}

/// `hostile` made its million calls and passed every check, the kernel
/// stayed up (no fault line, a normal end: `finished`), and `witness` ticked
/// all through them and still answered `hostile`'s call after the last one.
fn check_hostile(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    if let Some(l) = s.lines().find(|l| l.contains("hostile: FAIL")) {
        return Err(format!("the hostile domain reported a failure: `{l}`"));
    }
    says(s, "hostile", "hostile: all targeted checks passed")?;
    let (done, calls) = number_in(s, "hostile", "hostile: ", " random calls, ")?;
    if calls < HOSTILE_CALLS {
        return Err(format!("hostile made {calls} random calls, fewer than {HOSTILE_CALLS}"));
    }
    let (answered, ticks) = number_in(s, "witness", "witness: answered after ", " ticks")?;
    if ticks == 0 {
        return Err("the witness never ticked".into());
    }
    let heard = says_prefix(s, "hostile", "hostile: the witness answered: ")?;
    let exited = says(s, MGMT, "hostile exited with code 0")?;
    in_order(
        &[("the calls", done), ("the witness's answer", answered), ("hostile's exit", exited)],
        "hostile",
    )?;
    in_order(&[("the calls", done), ("hearing the witness", heard)], "hostile")?;
    says(s, MGMT, "witness exited with code 0")?;
    steady_unharmed(s)
}

fn check_shm(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    let verified = says_prefix(s, "shm-b", "shm-b: pattern verified")?;
    let revoked = says(s, "shm-a", "shm-a: revoked")?;
    let fault = says_prefix(s, MGMT, "shm-b faulted: page fault (vector 14) at address 0x200000000000 ip ")?;
    in_order(&[("pattern verified", verified), ("revoked", revoked), ("shm-b's fault", fault)], "shm")?;
    says(s, MGMT, "shm-a exited with code 0").map(|_| ())
}

fn check_churn(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    const SUMMARY: &str = "churn: 1000 domains created and destroyed; ";
    let at = says_prefix(s, "churn", SUMMARY)?;
    let line = s.lines().nth(at).unwrap_or_default();
    let rest = line.split_once(SUMMARY).map_or("", |(_, r)| r.trim_end());
    let ((f0, f1), (o0, o1)) = parse_churn(rest)
        .ok_or_else(|| format!("cannot read `{rest}`: expected `free frames A -> B, objects C -> D`"))?;
    if f0 != f1 || o0 != o1 {
        return Err(format!("churn leaked: free frames {f0} -> {f1}, objects {o0} -> {o1}"));
    }
    says(s, MGMT, "churn exited with code 0").map(|_| ())
}

/// `free frames A -> B, objects C -> D` → `((A, B), (C, D))`.
fn parse_churn(s: &str) -> Option<((u64, u64), (u64, u64))> {
    let (frames, objects) = s.strip_prefix("free frames ")?.split_once(", objects ")?;
    let pair = |p: &str| -> Option<(u64, u64)> {
        let (a, b) = p.split_once(" -> ")?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    };
    Some((pair(frames)?, pair(objects)?))
}

/// A driver domain takes interrupts of its line through `IrqWait`.
fn check_irq(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    says(s, "rtc", "rtc: 5 periodic interrupts on line 8")?;
    says(s, MGMT, "rtc exited with code 0").map(|_| ())
}

/// One notification collects a timer, an interrupt line and a child's death.
fn check_alarm(o: &Outcome) -> Result<(), String> {
    finished(o)?;
    let s = &o.serial;
    let line = says_prefix(s, "alarm", "alarm: 10 timer signals in ")?;
    let ms: u64 = o
        .serial
        .lines()
        .nth(line)
        .and_then(|l| l.split("signals in ").nth(1))
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .ok_or("no time in the timer line")?;
    if ms < 45 {
        return Err(format!("10 timer signals 5 ms apart came after {ms} ms"));
    }
    says(s, "alarm", "alarm: 5 interrupts through the notification")?;
    let death = says(s, "alarm", "alarm: child death signalled: invalid opcode")?;
    let bound = says(
        s,
        "alarm",
        "alarm: a bound notification ended 2 receives: 0x1 signalled before, 0x2 by a timer during",
    )?;
    in_order(&[("the child's death", death), ("the bound notification", bound)], "alarm")?;
    says(s, MGMT, "alarm exited with code 0").map(|_| ())
}
