//! `cargo xtask run`: boots an image with the serial port on the terminal.

use std::process::ExitCode;

use anyhow::Result;
use ryokan_systest::runner::{self, RunSpec};
use ryokan_systest::{kvm, Accel, Bochs, Emulator, Image, Qemu, Verdict};

use crate::ws::Ws;
use crate::{image, prereq};

/// Options of `cargo xtask run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOpts {
    pub bochs: bool,
    /// CPUs; defaults to 2 in QEMU and 1 in Bochs.
    pub smp: Option<u32>,
    pub image: Image,
    /// QEMU's accelerator (`--accel kvm`: the host's VT-x, nested).
    pub accel: Accel,
}

pub fn run(ws: &Ws, opts: &RunOpts) -> Result<ExitCode> {
    if opts.accel == Accel::Kvm {
        if opts.bochs {
            anyhow::bail!("--accel kvm is for QEMU: Bochs emulates every instruction itself");
        }
        let vendor = kvm::check().map_err(|why| anyhow::anyhow!("--accel kvm: {why}"))?;
        eprintln!("KVM with nested virtualization: Ryokan gets the host's {vendor}");
    }
    prereq::ensure()?;
    let iso = image::build_image(ws, opts.image)?;
    let emulator = if opts.bochs {
        let mut b = Bochs::default();
        b.cpus = opts.smp.unwrap_or(b.cpus);
        Emulator::Bochs(b)
    } else {
        let mut q = Qemu::with_control().on(opts.accel);
        q.smp = opts.smp.unwrap_or(q.smp);
        Emulator::Qemu(q)
    };
    let emulator = image::with_devices(ws, opts.image, emulator)?;
    let work_dir = ws.out_dir().join("run");
    eprintln!("booting {} in {}", iso.display(), emulator.describe());
    match &emulator {
        Emulator::Qemu(_) => {
            let socket = work_dir.join(Qemu::CONTROL_SOCKET);
            eprintln!(
                "control: from another terminal, `cargo run -q -p ryokan -- --connect {} list` \
                 (`ryokan --help` for the verbs; the socket is the default from the workspace root)",
                socket.display()
            );
        }
        Emulator::Bochs(_) => {
            eprintln!("control: none under Bochs (no second serial port): ryokan cannot connect")
        }
    }
    let outcome = runner::run(&RunSpec {
        emulator: &emulator,
        iso: &iso,
        work_dir: &work_dir,
        timeout: None,
        echo: true,
        prepare: None,
    })?;
    let secs = outcome.duration.as_secs_f64();
    Ok(match outcome.verdict {
        Verdict::Success => {
            println!("RESULT: success ({}, {secs:.1}s)", outcome.exit);
            ExitCode::SUCCESS
        }
        Verdict::Failure { reason } => {
            println!("RESULT: failure ({secs:.1}s): {reason}");
            ExitCode::FAILURE
        }
    })
}
