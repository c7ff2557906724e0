//! `cargo xtask`: the one entry point to build, run, measure, lint and test Ryokan.

mod badkernel;
mod bench;
mod cpio;
mod domains;
mod elf;
mod guests;
mod image;
mod layers;
mod lint;
mod linux;
mod loc;
mod prereq;
mod profile;
mod run;
mod sizes;
mod sysimage;
mod test;
mod ws;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ryokan_systest::{Accel, Image};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build [IMAGE]                 build an ISO (target/ryokan/<name>.iso)
  run [IMAGE] [--emulator qemu|bochs] [--smp N] [--accel tcg|kvm]
                                build and boot it, the serial port on the terminal
                                (--accel kvm: QEMU on the host's KVM, -cpu host, for an
                                Intel host with nested VT-x; says at once if it cannot)
  manifest [--system FILE]      compile a system file and show the manifest
  sizes                         the kernel's lines of code and binary size
  bench [--only PART,...]       path lengths in instructions (IPC, notifications, rings),
                                from a boot of tests/systems/bench.toml under QEMU -icount;
                                guest exits; Linux to init; the blk and net domains' paths.
                                --only runs some of the parts: native (IPC etc.), exits
                                (guest exits on QEMU AMD-V), bochs (guest exits on Bochs
                                VT-x and AMD-V), linux (Linux to init), devices (4 KiB
                                reads and writes through blk, 1500-byte frames through net,
                                device MSI to driver)
  profile [cpuid|out|doorbell]  where one guest exit round trip's instructions go, by function
                                (a traced QEMU run of the guest bench; minutes, GBs of log)
  layers                        the kernel's modules, which uses which, and any cycle (fails on one)
  lint                          rustfmt and clippy: host crates, kernel and domains for the target
  test [--host-only|--system-only] [--accel tcg|kvm] [NAME...]
                                host tests, then system tests (those named NAME, or
                                whose names contain it if no test is; =NAME: exactly
                                that one) in QEMU and Bochs
                                (--accel kvm: the QEMU tests on KVM, but those that
                                count instructions, which only TCG can)
  list                          the system tests
  linux-payload                 fetch Debian bookworm's cloud kernel and busybox-static (apt-get
                                download, cached in target/ryokan/linux), build an initramfs,
                                and print their paths
  help                          this text

IMAGE is one of:
  --system FILE                 the kernel, mgmt, and the domains of a system file
                                (default: system.toml, giving target/ryokan/system.iso)
  --bare                        the kernel alone: it checks the machine and powers off
  --fault-test                  the kernel alone, built to page-fault on purpose";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match dispatch(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(args: &[String]) -> Result<ExitCode> {
    let ws = ws::Ws::locate()?;
    let Some((cmd, rest)) = args.split_first() else {
        println!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    let mut opts = Opts::new(rest);
    let code = match cmd.as_str() {
        "build" => {
            let image = opts.image()?;
            opts.finish()?;
            prereq::ensure()?;
            let iso = image::build_image(&ws, image)?;
            println!("built {}", iso.display());
            ExitCode::SUCCESS
        }
        "run" => {
            let emulator = opts.value("--emulator")?;
            let smp = opts
                .value("--smp")?
                .map(|n| n.parse::<u32>().ok().filter(|&n| n > 0).context("--smp wants a positive number"))
                .transpose()?;
            let accel = accel(&mut opts)?;
            let image = opts.image()?;
            opts.finish()?;
            let bochs = match emulator.as_deref() {
                None | Some("qemu") => false,
                Some("bochs") => true,
                Some(other) => bail!("unknown emulator `{other}` (qemu or bochs)"),
            };
            run::run(&ws, &run::RunOpts { bochs, smp, image, accel })?
        }
        "manifest" => {
            let file = opts.value("--system")?;
            opts.finish()?;
            let (src, c) = sysimage::compile(&ws, file.as_deref().unwrap_or(sysimage::DEFAULT_SYSTEM))?;
            println!("{}: {} bytes of manifest", src.shown, c.bytes.len());
            println!("{:#?}", c.manifest);
            ExitCode::SUCCESS
        }
        "sizes" => {
            opts.finish()?;
            sizes::sizes(&ws)?
        }
        "bench" => {
            let only = opts.value("--only")?;
            opts.finish()?;
            bench::bench(&ws, &bench::parts(only.as_deref())?)?
        }
        "profile" => {
            let kinds = opts.positional()?;
            if kinds.len() > 1 {
                bail!("profile takes one exit kind: cpuid, out or doorbell");
            }
            profile::profile(&ws, kinds.first().map(String::as_str))?
        }
        "layers" => {
            opts.finish()?;
            layers::layers(&ws)?
        }
        "lint" => {
            opts.finish()?;
            lint::lint(&ws)?
        }
        "test" => {
            let host_only = opts.flag("--host-only");
            let system_only = opts.flag("--system-only");
            if host_only && system_only {
                bail!("--host-only and --system-only exclude each other");
            }
            let accel = accel(&mut opts)?;
            let filters = opts.positional()?;
            let t = test::TestOpts { host: !system_only, system: !host_only, filters, accel };
            test::test(&ws, &t)?
        }
        "list" => {
            opts.finish()?;
            for t in ryokan_systest::cases::all() {
                println!("{:<24} {}, {}", t.name, image::describe(t.image), t.emulator.describe());
            }
            ExitCode::SUCCESS
        }
        "linux-payload" => {
            opts.finish()?;
            let p = linux::payload(&ws)?;
            println!("release {}", p.release);
            println!("kernel  {}", p.kernel.display());
            println!("initrd  {}", p.initrd.display());
            println!("modules {}", p.modules.display());
            ExitCode::SUCCESS
        }
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    };
    Ok(code)
}

/// `--accel tcg|kvm` (default tcg).
fn accel(opts: &mut Opts) -> Result<Accel> {
    Ok(match opts.value("--accel")?.as_deref() {
        None | Some("tcg") => Accel::Tcg,
        Some("kvm") => Accel::Kvm,
        Some(other) => bail!("unknown accelerator `{other}` (tcg or kvm)"),
    })
}

/// A tiny option parser: flags and `--name value` / `--name=value` pairs.
struct Opts {
    rest: Vec<String>,
}

impl Opts {
    fn new(args: &[String]) -> Self {
        Opts { rest: args.to_vec() }
    }

    fn flag(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|a| a != name);
        self.rest.len() != before
    }

    /// `--system FILE`, `--bare` or `--fault-test`; the default system file if none.
    fn image(&mut self) -> Result<Image> {
        let system = self.value("--system")?;
        let bare = self.flag("--bare");
        let fault = self.flag("--fault-test");
        Ok(match (system, bare, fault) {
            (Some(file), false, false) => Image::System(Box::leak(file.into_boxed_str())),
            (None, false, false) => Image::System(sysimage::DEFAULT_SYSTEM),
            (None, true, false) => Image::Normal,
            (None, false, true) => Image::FaultTest,
            _ => bail!("--system, --bare and --fault-test exclude each other"),
        })
    }

    fn value(&mut self, name: &str) -> Result<Option<String>> {
        let prefix = format!("{name}=");
        if let Some(i) = self.rest.iter().position(|a| a.starts_with(&prefix)) {
            let a = self.rest.remove(i);
            return Ok(Some(a[prefix.len()..].to_string()));
        }
        let Some(i) = self.rest.iter().position(|a| a == name) else {
            return Ok(None);
        };
        if i + 1 >= self.rest.len() {
            bail!("{name} needs a value");
        }
        let v = self.rest.remove(i + 1);
        self.rest.remove(i);
        Ok(Some(v))
    }

    /// What is left, which must not look like options.
    fn positional(self) -> Result<Vec<String>> {
        if let Some(bad) = self.rest.iter().find(|a| a.starts_with('-')) {
            bail!("unknown option `{bad}`\n{USAGE}");
        }
        Ok(self.rest)
    }

    fn finish(self) -> Result<()> {
        let rest = self.positional()?;
        if let Some(extra) = rest.first() {
            bail!("unexpected argument `{extra}`\n{USAGE}");
        }
        Ok(())
    }
}
