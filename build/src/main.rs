//! `cargo xtask`: the one entry point to build, run, measure, lint and test Ryokan.

mod elf;
mod image;
mod lint;
mod loc;
mod prereq;
mod run;
mod sizes;
mod test;
mod ws;

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use ryokan_systest::Image;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build [--fault-test]          build the kernel and its GRUB ISO (target/ryokan/)
  run [--emulator qemu|bochs] [--smp N] [--fault-test]
                                boot the ISO with the serial port on the terminal
  sizes                         the kernel's lines of code and binary size
  lint                          rustfmt and clippy, host and kernel target
  test [--host-only|--system-only] [NAME...]
                                host tests, then system tests (those whose names
                                contain one of NAME, if given) in QEMU and Bochs
  list                          the system tests
  help                          this text";

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
            let image = opts.image();
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
            let image = opts.image();
            opts.finish()?;
            let bochs = match emulator.as_deref() {
                None | Some("qemu") => false,
                Some("bochs") => true,
                Some(other) => bail!("unknown emulator `{other}` (qemu or bochs)"),
            };
            run::run(&ws, &run::RunOpts { bochs, smp, image })?
        }
        "sizes" => {
            opts.finish()?;
            sizes::sizes(&ws)?;
            ExitCode::SUCCESS
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
            let filters = opts.positional()?;
            let t = test::TestOpts { host: !system_only, system: !host_only, filters };
            test::test(&ws, &t)?
        }
        "list" => {
            opts.finish()?;
            for t in ryokan_systest::cases::all() {
                println!("{:<24} {:?} image, {}", t.name, t.image, t.emulator.describe());
            }
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

    fn image(&mut self) -> Image {
        if self.flag("--fault-test") {
            Image::FaultTest
        } else {
            Image::Normal
        }
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
