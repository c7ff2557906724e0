//! The Linux figures of `cargo xtask bench` (issue 11 item 5): Debian's
//! kernel and the test initramfs (`cargo xtask linux-payload`) to its
//! init's first line, in instructions, as a guest of Ryokan
//! (`tests/systems/linux-one.toml`: 1 vCPU, QEMU AMD-V) and on bare QEMU
//! TCG (`-kernel`, `-smp 1`, the same command line), both under
//! `-icount shift=0,sleep=off`.
//!
//! How it is counted: under that `-icount` one instruction is one ns of
//! the machine's virtual time and one TSC tick (time a CPU idles in HLT
//! is skipped over, and counted, alike on both sides). Init's first line
//! says the TSC (`ryokan-init: started, uptime <s> s, tsc <n>`, ftrace's
//! `x86-tsc` stamp of a marker, build/src/linux/init.sh); so
//! - on Ryokan, the figure is that TSC less the one the VMM says just
//!   before it made the guest's vCPU (`first entry after TSC <n>`): every
//!   instruction of the machine from the guest's first one, the
//!   hypervisor's and its VMM's with the guest's (the guest's TSC is the
//!   host's), the kernel's decompressor among them;
//! - on bare QEMU, it is the TSC itself: every instruction since the
//!   machine's reset, so also SeaBIOS's, its `-kernel` loader's and the
//!   kernel's real-mode set-up code, none of which a Ryokan guest runs
//!   (the VMM loads the kernel and enters it at its 64-bit entry).
//!
//! Also reported, as before: the kernel's printk timestamp of `Run /init
//! as init process` on each side, which counts from its TSC's
//! initialisation (early in `setup_arch`, after the decompressor) on
//! the kernel's own clock (jiffies until it switches to the TSC: lost
//! ticks show there as missing time).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ryokan_systest::runner::{self, RunSpec};
use ryokan_systest::{Emulator, Image, Qemu, Verdict};

use crate::ws::Ws;
use crate::{image, linux};

/// The system whose guest is measured.
pub const SYSTEM: &str = "tests/systems/linux-one.toml";
/// The line whose printk timestamp is the older figure.
const LINE: &str = "Run /init as init process";
/// Init's first line, before its uptime and TSC.
const INIT_LINE: &str = "ryokan-init: started, uptime ";
/// The VMM's line before the guest's first entry, before the TSC.
const ENTRY_LINE: &str = "first entry after TSC ";
/// A run that takes longer is a failure (each takes about 30 s).
const TIMEOUT: Duration = Duration::from_secs(240);
/// The command line of the bare run: linux-one.toml's.
const CMDLINE: &str = "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 ryokan.test";

/// The kernel's printk timestamp of [`LINE`] in `log` (lines as the guest
/// or the bare kernel printed them), in ns.
pub fn init_ns(log: &str) -> Option<u64> {
    log.lines().find_map(|l| {
        let (_, rest) = l.split_once('[')?;
        let (stamp, what) = rest.split_once(']')?;
        if what.trim() != LINE {
            return None;
        }
        let (s, us) = stamp.trim().split_once('.')?;
        (us.len() == 6).then_some(())?;
        Some(s.parse::<u64>().ok()? * 1_000_000_000 + us.parse::<u64>().ok()? * 1000)
    })
}

/// The TSC init's first line says (`ryokan-init: started, … tsc <n>`) in
/// `log` (lines as the guest or the bare kernel printed them).
pub fn init_tsc(log: &str) -> Option<u64> {
    log.lines().find_map(|l| {
        let rest = l.trim_end().strip_prefix(INIT_LINE)?;
        rest.rsplit_once(", tsc ")?.1.parse().ok()
    })
}

/// The TSC the VMM says before the guest's first entry, in `vmm` (the
/// VMM's lines for guest `guest`).
pub fn entry_tsc(vmm: &str, guest: &str) -> Option<u64> {
    let prefix = format!("{guest}: {ENTRY_LINE}");
    vmm.lines().find_map(|l| l.trim_end().strip_prefix(prefix.as_str())?.parse().ok())
}

/// The figures: (name, instructions).
pub fn figures(ws: &Ws) -> Result<Vec<(String, u64)>> {
    // Ryokan's first: building its image fetches the payload if missing.
    let ryokan = on_ryokan(ws)?;
    let bare = on_bare_qemu(ws)?;
    Ok(vec![
        ("linux_first_to_init_ryokan_svm_qemu".to_string(), ryokan.first_to_init),
        ("linux_first_to_init_bare_qemu".to_string(), bare.first_to_init),
        ("linux_to_init_ryokan_svm_qemu".to_string(), ryokan.printk_init),
        ("linux_to_init_bare_qemu".to_string(), bare.printk_init),
    ])
}

/// One side's figures.
struct Boot {
    /// From the first instruction to init's first line.
    first_to_init: u64,
    /// The printk timestamp of `Run /init`.
    printk_init: u64,
}

fn on_ryokan(ws: &Ws) -> Result<Boot> {
    let iso = image::build_image(ws, Image::System(SYSTEM))?;
    let work_dir = ws.out_dir().join("bench-linux");
    let emulator = Emulator::Qemu(Qemu::deterministic());
    eprintln!("booting {} in {}", iso.display(), emulator.describe());
    let o = runner::run(&RunSpec {
        emulator: &emulator,
        iso: &iso,
        work_dir: &work_dir,
        timeout: Some(TIMEOUT),
        echo: false,
        prepare: None,
    })?;
    if let Verdict::Failure { reason } = &o.verdict {
        bail!(
            "the Linux bench run on Ryokan failed ({:.1} s): {reason} (log in {})",
            o.duration.as_secs_f64(),
            work_dir.display()
        );
    }
    let lines = |who: &str| -> String {
        ryokan_systest::log::said(&o.serial, who).into_iter().map(|(_, m)| format!("{m}\n")).collect()
    };
    let (guest, vmm) = (lines("linux"), lines("vmm"));
    let at = work_dir.display();
    let printk_init =
        init_ns(&guest).with_context(|| format!("the guest never said `{LINE}` (log in {at})"))?;
    let first =
        entry_tsc(&vmm, "linux").with_context(|| format!("the VMM never said `{ENTRY_LINE}…` ({at})"))?;
    let init =
        init_tsc(&guest).with_context(|| format!("the guest's init never said `{INIT_LINE}…` ({at})"))?;
    let first_to_init =
        init.checked_sub(first).with_context(|| format!("init's TSC {init} before {first}"))?;
    Ok(Boot { first_to_init, printk_init })
}

fn on_bare_qemu(ws: &Ws) -> Result<Boot> {
    let root = ws.out_dir().join("linux");
    let dir = ws.out_dir().join("bench-linux-bare");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let serial = dir.join("serial.log");
    let _ = std::fs::remove_file(&serial);
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut cmd = Command::new(Qemu::BINARY);
    cmd.args(["-accel", "tcg", "-machine", "q35", "-cpu", "max", "-smp", "1", "-m", "512M"]);
    cmd.args([
        "-kernel",
        &path(&root.join(linux::STABLE_KERNEL)),
        "-initrd",
        &path(&root.join(linux::STABLE_INITRD)),
    ]);
    cmd.args(["-append", CMDLINE, "-display", "none", "-monitor", "none", "-no-reboot"]);
    cmd.args(["-serial", &format!("file:{}", path(&serial))]);
    cmd.args(Qemu::ICOUNT);
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    eprintln!("booting Debian's kernel on bare QEMU TCG (-smp 1, -icount)");
    let started = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("cannot start {}", Qemu::BINARY))?;
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("bare QEMU did not power off within {} s (log in {})", TIMEOUT.as_secs(), serial.display());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log =
        std::fs::read_to_string(&serial).with_context(|| format!("cannot read {}", serial.display()))?;
    let at = serial.display();
    let printk_init =
        init_ns(&log).with_context(|| format!("bare Linux never said `{LINE}` (log in {at})"))?;
    let first_to_init =
        init_tsc(&log).with_context(|| format!("bare init never said `{INIT_LINE}…` ({at})"))?;
    Ok(Boot { first_to_init, printk_init })
}

/// The ratio lines: Ryokan's figures over bare QEMU's.
pub fn ratio(figures: &[(String, u64)]) -> Option<String> {
    let get = |n: &str| figures.iter().find(|(f, _)| f == n).map(|(_, v)| *v);
    let over = |what: &str, r: u64, b: u64| {
        (b > 0)
            .then(|| format!("{what} on Ryokan / on bare QEMU: {:.3}x (goal <= 1.2x)", r as f64 / b as f64))
    };
    let first = over(
        "Linux, first instruction to init's first line,",
        get("linux_first_to_init_ryokan_svm_qemu")?,
        get("linux_first_to_init_bare_qemu")?,
    )?;
    let printk = over(
        "Linux, printk's `Run /init`,",
        get("linux_to_init_ryokan_svm_qemu")?,
        get("linux_to_init_bare_qemu")?,
    )?;
    Some(format!("{first}\n{printk}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_init_line_is_read_to_the_microsecond_and_nothing_else_is() {
        let log = "[    1.283853] Freeing unused kernel image\n[    1.283854] Run /init as init process\n";
        assert_eq!(init_ns(log), Some(1_283_854_000));
        assert_eq!(init_ns("[   12.000001]  Run /init as init process\n"), Some(12_000_001_000));
        assert_eq!(init_ns("[    1.2838] Run /init as init process\n"), None, "not printk's six digits");
        assert_eq!(init_ns("[    1.283854] Run /init as init process twice\n"), None);
        assert_eq!(init_ns("ryokan-init: started, uptime 1.29 s\n"), None);
    }

    #[test]
    fn init_s_tsc_and_the_vmm_s_are_read_and_nothing_else_is() {
        let init = "[  5.1] Run /init as init process\nryokan-init: started, uptime 6.43 s, tsc 7318004512\n";
        assert_eq!(init_tsc(init), Some(7_318_004_512));
        assert_eq!(init_tsc("ryokan-init: started, uptime 6.43 s, tsc \n"), None, "no msr driver");
        assert_eq!(init_tsc("ryokan-init: started, uptime 6.43 s\n"), None);
        assert_eq!(init_tsc("echo ryokan-init: started, uptime 6.43 s, tsc 5\n"), None);
        let vmm = "linux: started: 114688 KiB of RAM\nlinux: first entry after TSC 5602000\n";
        assert_eq!(entry_tsc(vmm, "linux"), Some(5_602_000));
        assert_eq!(entry_tsc(vmm, "linux-a"), None, "another guest's");
        assert_eq!(entry_tsc("linux: first entry after TSC x\n", "linux"), None);
    }

    #[test]
    fn the_ratio_is_ryokan_over_bare() {
        let f = vec![
            ("linux_first_to_init_ryokan_svm_qemu".to_string(), 2_200),
            ("linux_first_to_init_bare_qemu".to_string(), 2_000),
            ("linux_to_init_ryokan_svm_qemu".to_string(), 1_200),
            ("linux_to_init_bare_qemu".to_string(), 1_000),
        ];
        assert_eq!(
            ratio(&f).as_deref(),
            Some(
                "Linux, first instruction to init's first line, on Ryokan / on bare QEMU: 1.100x (goal <= 1.2x)\n\
                 Linux, printk's `Run /init`, on Ryokan / on bare QEMU: 1.200x (goal <= 1.2x)"
            )
        );
        assert_eq!(ratio(&f[..3]), None);
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(SYSTEM).is_file());
    }
}
