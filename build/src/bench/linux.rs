//! The Linux figure of `cargo xtask bench` (issue 11 item 5): Debian's
//! kernel and the test initramfs (`cargo xtask linux-payload`) to the
//! kernel's `Run /init as init process`, in instructions, as a guest of
//! Ryokan (`tests/systems/linux-one.toml`: 1 vCPU, QEMU AMD-V) and on bare
//! QEMU TCG (`-kernel`, `-smp 1`, the same command line), both under
//! `-icount shift=0,sleep=off`.
//!
//! How it is counted: under that `-icount` one instruction is one ns of
//! the machine's virtual time and one TSC tick, so the kernel's printk
//! timestamp of the line, which counts from its TSC's initialisation (early
//! in `setup_arch`, after its decompressor), is the instructions since
//! then: on Ryokan every instruction of the machine, the hypervisor's and
//! its VMM's with the guest's (Linux is told the TSC's rate Ryokan
//! measured, `tsc_early_khz=`, within 0.01 % of 1 GHz there). The same
//! timestamp on both sides makes the ratio fair; the instructions before
//! the TSC's initialisation (the decompressor, the VMM's loading) are in
//! neither.

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
/// The line whose timestamp is the figure.
const LINE: &str = "Run /init as init process";
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

/// The two figures: (name, instructions).
pub fn figures(ws: &Ws) -> Result<Vec<(String, u64)>> {
    // Ryokan's first: building its image fetches the payload if missing.
    let ryokan = on_ryokan(ws)?;
    let bare = on_bare_qemu(ws)?;
    Ok(vec![
        ("linux_to_init_ryokan_svm_qemu".to_string(), ryokan),
        ("linux_to_init_bare_qemu".to_string(), bare),
    ])
}

fn on_ryokan(ws: &Ws) -> Result<u64> {
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
    })?;
    if let Verdict::Failure { reason } = &o.verdict {
        bail!(
            "the Linux bench run on Ryokan failed ({:.1} s): {reason} (log in {})",
            o.duration.as_secs_f64(),
            work_dir.display()
        );
    }
    let guest: String =
        ryokan_systest::log::said(&o.serial, "linux").into_iter().map(|(_, m)| format!("{m}\n")).collect();
    init_ns(&guest).with_context(|| format!("the guest never said `{LINE}` (log in {})", work_dir.display()))
}

fn on_bare_qemu(ws: &Ws) -> Result<u64> {
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
    init_ns(&log).with_context(|| format!("bare Linux never said `{LINE}` (log in {})", serial.display()))
}

/// The ratio line: Ryokan's figure over bare QEMU's.
pub fn ratio(figures: &[(String, u64)]) -> Option<String> {
    let get = |n: &str| figures.iter().find(|(f, _)| f == n).map(|(_, v)| *v);
    let (r, b) = (get("linux_to_init_ryokan_svm_qemu")?, get("linux_to_init_bare_qemu")?);
    (b > 0).then(|| {
        format!("Linux to init on Ryokan / on bare QEMU: {:.3}x (goal <= 1.2x)", r as f64 / b as f64)
    })
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
    fn the_ratio_is_ryokan_over_bare() {
        let f = vec![
            ("linux_to_init_ryokan_svm_qemu".to_string(), 1_200),
            ("linux_to_init_bare_qemu".to_string(), 1_000),
        ];
        assert_eq!(
            ratio(&f).as_deref(),
            Some("Linux to init on Ryokan / on bare QEMU: 1.200x (goal <= 1.2x)")
        );
        assert_eq!(ratio(&f[..1]), None);
        assert!(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(SYSTEM).is_file());
    }
}
