//! The system tests: one definition each, run by `cargo xtask test`.

use crate::emulator::{Bochs, Emulator, Qemu};
use crate::frames;
use crate::judge::{Outcome, Verdict};
use crate::log;

/// Which image a test boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Image {
    /// The normal kernel alone (with the test module, no `mgmt`): it checks
    /// the machine and powers off.
    Normal,
    /// The kernel built with `--features fault-test` (page-faults on purpose).
    FaultTest,
    /// The normal kernel with `mgmt`, the manifest compiled from this system
    /// file (a path relative to the workspace root) and its domain images.
    System(&'static str),
}

/// Judges a finished run: `Err(reason)` fails the test.
pub type Check = fn(&Outcome) -> Result<(), String>;

/// One system test.
#[derive(Debug, Clone)]
pub struct SystemTest {
    pub name: &'static str,
    pub image: Image,
    pub emulator: Emulator,
    pub check: Check,
    /// What drives the system while it runs (the control tests).
    pub drive: Option<crate::runner::Drive>,
    /// What is done in the work dir before boot (e.g. a pattern written
    /// into a disk image the runner made there).
    pub prepare: Option<crate::runner::Prepare>,
}

/// Every system test, in the order they are listed: the kernel alone, then
/// the systems of domains ([`crate::domains`]), then IPC and scheduling
/// ([`crate::ipc_sched`]), then guests ([`crate::guests`]).
pub fn all() -> Vec<SystemTest> {
    let mut all = kernel_only();
    all.extend(crate::domains::cases());
    all.extend(crate::ipc_sched::cases());
    all.extend(crate::guests::cases());
    all.extend(crate::control::cases());
    all
}

/// The tests that boot the kernel without `mgmt`.
fn kernel_only() -> Vec<SystemTest> {
    vec![
        SystemTest {
            name: "qemu_smp_svm",
            image: Image::Normal,
            emulator: Emulator::Qemu(Qemu::default()),
            check: check_smp_svm,
            drive: None,
            prepare: None,
        },
        SystemTest {
            name: "qemu_no_svm",
            image: Image::Normal,
            emulator: Emulator::Qemu(Qemu {
                cpu: "max,-svm".to_string(),
                devices: vec!["amd-iommu".to_string()],
                ..Qemu::default()
            }),
            check: check_no_svm,
            drive: None,
            prepare: None,
        },
        SystemTest {
            name: "bochs_vmx",
            image: Image::Normal,
            emulator: Emulator::Bochs(Bochs::default()),
            check: check_bochs_vmx,
            drive: None,
            prepare: None,
        },
        SystemTest {
            name: "harness_catches_fault",
            image: Image::FaultTest,
            emulator: Emulator::Qemu(Qemu::default()),
            check: check_fault_caught,
            drive: None,
            prepare: None,
        },
    ]
}

const SVM_ON: &str = "virt: AMD-V with NPT enabled (EFER.SVME set)";
const VMX_ON: &str = "virt: VT-x with EPT enabled (VMXON succeeded)";
const NO_VIRT: &str = "virt: no VT-x with EPT or AMD-V with NPT: guests are unavailable";

fn check_smp_svm(o: &Outcome) -> Result<(), String> {
    succeeded(o)?;
    let s = &o.serial;
    contains(s, "smp: 2 of 2 CPUs online")?;
    for cpu in 0..2 {
        cpu_says(s, cpu, SVM_ON)?;
        cpu_says_prefix(s, cpu, "timer: ")?;
    }
    contains(s, "iommu: DMAR found")?;
    frames::check(s).map(|_| ())
}

fn check_no_svm(o: &Outcome) -> Result<(), String> {
    succeeded(o)?;
    let s = &o.serial;
    contains(s, NO_VIRT)?;
    contains(s, "smp: 2 of 2 CPUs online")?;
    contains(s, "iommu: IVRS found")?;
    frames::check(s).map(|_| ())
}

fn check_bochs_vmx(o: &Outcome) -> Result<(), String> {
    succeeded(o)?;
    let s = &o.serial;
    contains(s, VMX_ON)?;
    contains(s, "smp: 1 of 1 CPUs online")?;
    // Bochs' BIOS gives a different memory map (ACPI-reclaimable entry, no 640K hole).
    frames::check(s).map(|_| ())
}

/// The fault-test kernel must be judged a failure, for the right reason.
fn check_fault_caught(o: &Outcome) -> Result<(), String> {
    if o.verdict.is_success() {
        return Err("the harness judged the page-faulting kernel a success".to_string());
    }
    let pf = o.serial.lines().any(|l| l.contains("EXCEPTION: vector 14 (#PF)") && l.contains("cr2="));
    if !pf {
        let why = match &o.verdict {
            Verdict::Failure { reason } => reason.as_str(),
            Verdict::Success => "",
        };
        return Err(format!(
            "no line with `EXCEPTION: vector 14 (#PF)` and `cr2=` (the run failed because: {why})"
        ));
    }
    Ok(())
}

fn succeeded(o: &Outcome) -> Result<(), String> {
    match &o.verdict {
        Verdict::Success => Ok(()),
        Verdict::Failure { reason } => Err(reason.clone()),
    }
}

fn contains(serial: &str, needle: &str) -> Result<(), String> {
    match log::find_line(serial, needle) {
        Some(_) => Ok(()),
        None => Err(format!("no line containing `{needle}`")),
    }
}

fn cpu_says(serial: &str, cpu: u32, message: &str) -> Result<(), String> {
    if log::has_cpu_message(serial, cpu, message) {
        Ok(())
    } else {
        Err(format!("no line `[cpu{cpu}] {message}`"))
    }
}

fn cpu_says_prefix(serial: &str, cpu: u32, prefix: &str) -> Result<(), String> {
    if log::has_cpu_message_prefix(serial, cpu, prefix) {
        Ok(())
    } else {
        Err(format!("no line starting `[cpu{cpu}] {prefix}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{self, Exit};
    use std::path::PathBuf;
    use std::time::Duration;

    fn outcome(kind_of: &SystemTest, exit: Exit, serial: &str) -> Outcome {
        Outcome {
            verdict: judge::judge(kind_of.emulator.kind(), exit, serial),
            serial: serial.to_string(),
            exit,
            duration: Duration::from_secs(1),
            work_dir: PathBuf::new(),
        }
    }

    fn case(name: &str) -> SystemTest {
        all().into_iter().find(|t| t.name == name).expect("test exists")
    }

    const SVM_LOG: &str = "\
[cpu0] memmap: [0x0000000000000000, 0x000000000009fc00) available
[cpu0] memmap: [0x0000000000100000, 0x0000000000800000) available
[cpu0] reserved: [0x0000000000000000, 0x0000000000100000) first MiB
[cpu0] reserved: [0x0000000000100000, 0x0000000000200000) kernel image
[cpu0] frames: 1536 free of 1951 usable
[cpu0] iommu: DMAR found at 0x7ffe0000
[cpu0] virt: AMD-V with NPT enabled (EFER.SVME set)
[cpu1] virt: AMD-V with NPT enabled (EFER.SVME set)
[cpu0] smp: 2 of 2 CPUs online
[cpu0] timer: tick
[cpu1] timer: tick
[cpu0] RYOKAN: shutdown status=success
";

    #[test]
    fn names_are_unique() {
        let names: Vec<_> = all().iter().map(|t| t.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }

    #[test]
    fn smp_svm_accepts_a_complete_log() {
        let t = case("qemu_smp_svm");
        assert_eq!((t.check)(&outcome(&t, Exit::Code(33), SVM_LOG)), Ok(()));
    }

    #[test]
    fn smp_svm_wants_both_cpus() {
        let t = case("qemu_smp_svm");
        let log = SVM_LOG.replace("[cpu1] virt", "[cpu0] virt");
        let e = (t.check)(&outcome(&t, Exit::Code(33), &log)).expect_err("cpu1");
        assert!(e.contains("[cpu1] virt"), "{e}");
        let log = SVM_LOG.replace("[cpu1] timer", "[cpu0] timer");
        assert!((t.check)(&outcome(&t, Exit::Code(33), &log)).is_err());
    }

    #[test]
    fn smp_svm_checks_frames_and_exit() {
        let t = case("qemu_smp_svm");
        let log = SVM_LOG.replace("1536 free", "1537 free");
        assert!((t.check)(&outcome(&t, Exit::Code(33), &log)).is_err());
        assert!((t.check)(&outcome(&t, Exit::Code(35), SVM_LOG)).is_err());
    }

    #[test]
    fn fault_case_passes_only_on_a_caught_page_fault() {
        let t = case("harness_catches_fault");
        let pf = "[cpu0] EXCEPTION: vector 14 (#PF) error=0x2 rip=0x100000 cr2=0xdead cpu=0\n\
                  [cpu0] RYOKAN: shutdown status=failure\n";
        assert_eq!((t.check)(&outcome(&t, Exit::Code(35), pf)), Ok(()));
        // Even if the exit status claimed success, the logged fault fails the run.
        assert_eq!((t.check)(&outcome(&t, Exit::Code(33), pf)), Ok(()));
        // A clean run, or a failure for another reason, fails this test.
        assert!((t.check)(&outcome(&t, Exit::Code(33), SVM_LOG)).is_err());
        let gp = "[cpu0] EXCEPTION: vector 13 (#GP) error=0x0 rip=0x1 cr2=0x0 cpu=0\n";
        assert!((t.check)(&outcome(&t, Exit::Code(35), gp)).is_err());
    }

    #[test]
    fn bochs_case_judges_by_log() {
        let t = case("bochs_vmx");
        let log = format!(
            "{}[cpu0] {VMX_ON}\n[cpu0] smp: 1 of 1 CPUs online\nRYOKAN: shutdown status=success\n",
            &SVM_LOG[..SVM_LOG.find("[cpu0] iommu").expect("memory lines")]
        );
        assert_eq!((t.check)(&outcome(&t, Exit::Code(1), &log)), Ok(()));
        let cut = log.replace("RYOKAN: shutdown status=success\n", "");
        assert!((t.check)(&outcome(&t, Exit::Code(1), &cut)).is_err());
    }
}
