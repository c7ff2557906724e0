//! `cargo xtask profile [cpuid|out|doorbell]`: where the instructions of one
//! guest exit round trip go, function by function. Boots the guest bench
//! (`tests/systems/guest-bench.toml`) in QEMU with instruction counting and
//! `-d exec,nochain,in_asm` (every translated block once, with its
//! instructions; every execution of a block), stops it once the chosen exit
//! kind was timed, and weighs each block's executions by its instruction
//! count between the first and the last of [`ITERATIONS`] returns to the
//! guest after that exit (`guest-bench`'s labels `after_cpuid`,
//! `after_out_vmm`, `after_out_kernel`). Addresses are named from the
//! kernel's and the VMM's symbols (`nm`). The log (several GB) is deleted
//! afterwards.
//!
//! A block is charged to the function its first instruction is in, and a
//! block cut short by an exit counts whole: the total per round trip comes
//! out a little above `cargo xtask bench`'s figure. Each block's share is
//! written to `profile/blocks.txt` (by address), for a look inside a
//! function.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use ryokan_systest::{Image, Qemu};

use crate::ws::Ws;
use crate::{bench, domains, image, prereq};

/// Round trips weighed.
const ITERATIONS: u64 = 300;
/// A run that takes longer is given up.
const TIMEOUT: Duration = Duration::from_secs(900);
/// Rows printed.
const ROWS: usize = 30;

/// The exit kinds: argument, the guest's label after the exiting
/// instruction, the figure whose line ends the run.
const KINDS: [(&str, &str, &str); 3] = [
    ("cpuid", "after_cpuid", "guest_cpuid_vmm_mean"),
    ("out", "after_out_vmm", "guest_out_vmm_mean"),
    ("doorbell", "after_out_kernel", "guest_out_kernel_mean"),
];

pub fn profile(ws: &Ws, kind: Option<&str>) -> Result<ExitCode> {
    let kind = kind.unwrap_or("cpuid");
    let Some(&(_, label, last)) = KINDS.iter().find(|(k, _, _)| *k == kind) else {
        bail!("unknown exit kind `{kind}`: cpuid, out or doorbell");
    };
    prereq::ensure()?;
    let iso = image::build_image(ws, Image::System(bench::GUEST_SYSTEM))?;
    let guest = ws.target_dir().join("guests/x86_64-unknown-none/release/guest-bench");
    let mark = symbols(&guest)?
        .into_iter()
        .find(|(_, n)| n == label)
        .map(|(a, _)| a)
        .with_context(|| format!("no symbol `{label}` in {}", guest.display()))?;
    let dir = ws.out_dir().join("profile");
    fs::create_dir_all(&dir)?;
    let (log, serial) = (dir.join("qemu.log"), dir.join("serial.log"));
    trace(&iso, &log, &serial, last)?;
    let counted = weigh(&log, mark);
    let _ = fs::remove_file(&log);
    let (per_pc, iterations) = counted?;
    let kernel = ws.out_dir().join("kernel.elf");
    let vmm = domains::target_dir(ws).join("x86_64-unknown-none/release/vmm");
    let (ksyms, vsyms) = (symbols(&kernel)?, symbols(&vmm)?);
    let mut by: HashMap<String, u64> = HashMap::new();
    let per = |n: u64| n as f64 / iterations as f64;
    let mut blocks: Vec<(u64, u64, String)> = Vec::new();
    for (pc, n) in per_pc {
        let name = if pc >= 0xFFFF_8000_0000_0000 {
            name_of(&ksyms, pc)
        } else if (0x40_0000..0x1000_0000).contains(&pc) {
            format!("vmm: {}", name_of(&vsyms, pc))
        } else {
            format!("guest {:#x}", pc & !0xFFF)
        };
        *by.entry(name.clone()).or_default() += n;
        blocks.push((pc, n, name));
    }
    // Block by block, for a closer look inside a function (with `objdump`).
    blocks.sort();
    let text: String =
        blocks.iter().map(|(pc, n, name)| format!("{pc:#018x} {:>8.1}  {name}\n", per(*n))).collect();
    fs::write(dir.join("blocks.txt"), text)?;
    let total: u64 = by.values().sum();
    let mut rows: Vec<_> = by.into_iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    println!("{kind} exit round trip: {:.0} instructions ({iterations} round trips weighed)", per(total));
    for (name, n) in rows.into_iter().take(ROWS) {
        println!("{:>8.1}  {name}", per(n));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the guest bench with tracing into `log` until `serial` has `last`.
fn trace(iso: &Path, log: &Path, serial: &Path, last: &str) -> Result<()> {
    let _ = fs::remove_file(serial);
    let q = Qemu::deterministic();
    let (iso, serial_s) = (iso.display().to_string(), serial.display().to_string());
    let mut args = q.args(&iso, ryokan_systest::emulator::QemuSerial::File(&serial_s));
    args.extend(["-d", "exec,nochain,in_asm", "-D"].map(String::from));
    args.push(log.display().to_string());
    eprintln!("tracing the guest bench in QEMU (a few minutes; the log grows to several GB)");
    let mut child = Command::new("qemu-system-x86_64")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start qemu-system-x86_64")?;
    let start = Instant::now();
    loop {
        let done = fs::read_to_string(serial).is_ok_and(|s| s.contains(last));
        if done || start.elapsed() > TIMEOUT || child.try_wait()?.is_some() {
            let _ = child.kill();
            let _ = child.wait();
            if !done {
                bail!("the traced run ended without `{last}` (serial log {})", serial.display());
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Instructions executed per block start address between the first and the
/// last of `ITERATIONS + 1` executions of the block at `mark`, and how
/// many round trips that was.
fn weigh(log: &Path, mark: u64) -> Result<(HashMap<u64, u64>, u64)> {
    let f = BufReader::with_capacity(1 << 20, File::open(log).context("no trace log")?);
    let mut size: HashMap<String, u64> = HashMap::new();
    let (mut pending, mut in_block): (Option<(u64, u64)>, bool) = (None, false);
    let (mut seen, mut per_pc) = (0u64, HashMap::new());
    for line in f.split(b'\n') {
        let line = line?;
        if line.starts_with(b"Trace ") {
            in_block = false;
            let text = String::from_utf8_lossy(&line);
            let mut words = text.split_whitespace();
            let host = words.nth(2).unwrap_or("").to_string();
            let pc = text
                .split('[')
                .nth(1)
                .and_then(|r| r.split('/').nth(1))
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or(0);
            if let Some((start, n)) = pending.take() {
                if start == pc {
                    size.insert(host.clone(), n);
                }
            }
            if pc == mark {
                seen += 1;
                if seen == ITERATIONS + 1 {
                    break;
                }
            }
            if seen >= 1 {
                *per_pc.entry(pc).or_insert(0) += size.get(&host).copied().unwrap_or(0);
            }
        } else if line.starts_with(b"IN:") {
            in_block = true;
            pending = None;
        } else if in_block && line.starts_with(b"0x") {
            let text = String::from_utf8_lossy(&line);
            let addr =
                text.split(':').next().and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok());
            match (&mut pending, addr) {
                (Some((_, n)), _) => *n += 1,
                (None, Some(a)) => pending = Some((a, 1)),
                (None, None) => {}
            }
        }
    }
    if seen <= ITERATIONS {
        bail!("the trace holds {seen} returns to the guest's mark, not {}", ITERATIONS + 1);
    }
    Ok((per_pc, ITERATIONS))
}

/// The function symbols of `elf`, by address (demangled, `nm -n -C`).
fn symbols(elf: &Path) -> Result<Vec<(u64, String)>> {
    let out = Command::new("nm")
        .args(["-n", "-C", "--defined-only"])
        .arg(elf)
        .output()
        .with_context(|| format!("cannot run nm on {}", elf.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ' ');
            let (a, kind, name) = (p.next()?, p.next()?, p.next()?);
            matches!(kind, "t" | "T" | "w" | "W")
                .then_some((u64::from_str_radix(a, 16).ok()?, name.to_string()))
        })
        .collect())
}

/// The symbol `pc` is in (the last at or below it).
fn name_of(syms: &[(u64, String)], pc: u64) -> String {
    let i = syms.partition_point(|(a, _)| *a <= pc);
    i.checked_sub(1).map_or_else(|| format!("{pc:#x}"), |i| syms[i].1.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_weighed_inside_the_window_by_their_size() {
        let dir = std::env::temp_dir().join(format!("ryokan-profile-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let log = dir.join("qemu.log");
        let mut text = String::new();
        // Block A (2 instructions) at 0x10, the mark M (1) at 0x20, B (3) at 0x30.
        text += "IN: \n0x0000000000000010:  90  nop\n0x0000000000000011:  90  nop\n\n";
        text += "Trace 0: 0x7f01 [0/0000000000000010/0/0] \n";
        text += "IN: \n0x0000000000000020:  90  nop\n\n";
        text += "Trace 0: 0x7f02 [0/0000000000000020/0/0] \n";
        text += "IN: \n0x0000000000000030:  90  nop\n0x0000000000000031:  90  nop\n0x0000000000000032:  90  nop\n\n";
        for _ in 0..ITERATIONS {
            text += "Trace 0: 0x7f03 [0/0000000000000030/0/0] \n";
            text += "Trace 0: 0x7f01 [0/0000000000000010/0/0] \n";
            text += "Trace 0: 0x7f02 [0/0000000000000020/0/0] \n";
        }
        fs::write(&log, text).unwrap();
        let (per_pc, n) = weigh(&log, 0x20).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(n, ITERATIONS);
        let got = |pc: u64| per_pc.get(&pc).copied().unwrap_or(0);
        // From the first mark up to the last: each round trip is B, A, M.
        assert_eq!((got(0x30), got(0x10), got(0x20)), (3 * ITERATIONS, 2 * ITERATIONS, ITERATIONS));
        let syms = vec![(0x10, "a".to_string()), (0x30, "b".to_string())];
        assert_eq!(
            (name_of(&syms, 0x2f), name_of(&syms, 0x30), name_of(&syms, 0x5)),
            ("a".into(), "b".into(), "0x5".into())
        );
    }
}
