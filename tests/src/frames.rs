//! Independent recomputation of the frame allocator's counts from the boot log.
//!
//! The kernel logs every Multiboot2 memory-map entry (`memmap: [a, b) kind`),
//! every range it keeps out of the allocator (`reserved: [a, b) what`) and its
//! result (`frames: N free of M usable`). Usable frames are the 4 KiB frames
//! fully inside an `available` entry; free frames are usable frames that no
//! reserved range touches. Counting is done on frame intervals, not per frame.

use crate::log;

const FRAME: u128 = 4096;

/// What the log said about memory.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemoryLog {
    /// `(start, end, kind)` of each memory-map entry.
    pub memmap: Vec<(u64, u64, String)>,
    /// `(start, end, what)` of each reserved range.
    pub reserved: Vec<(u64, u64, String)>,
    /// `(free, usable)` from the `frames:` line.
    pub frames: Option<(u64, u64)>,
}

/// Parses the memory lines out of a serial log; malformed ones are errors.
pub fn parse(serial: &str) -> Result<MemoryLog, String> {
    let mut out = MemoryLog::default();
    for line in log::lines(serial) {
        let msg = line.message.trim_end();
        if let Some(rest) = msg.strip_prefix("memmap: ") {
            out.memmap.push(parse_range(rest).map_err(|e| bad(msg, &e))?);
        } else if let Some(rest) = msg.strip_prefix("reserved: ") {
            out.reserved.push(parse_range(rest).map_err(|e| bad(msg, &e))?);
        } else if let Some(rest) = msg.strip_prefix("frames: ") {
            if out.frames.is_some() {
                return Err(format!("more than one `frames:` line (second: `{msg}`)"));
            }
            out.frames = Some(parse_frames(rest).map_err(|e| bad(msg, &e))?);
        }
    }
    Ok(out)
}

fn bad(line: &str, why: &str) -> String {
    format!("malformed line `{line}`: {why}")
}

/// `[0x…, 0x…) label` → `(start, end, label)`.
fn parse_range(s: &str) -> Result<(u64, u64, String), String> {
    let s = s.strip_prefix('[').ok_or("expected `[`")?;
    let (start, rest) = s.split_once(',').ok_or("expected `,`")?;
    let (end, label) = rest.split_once(')').ok_or("expected `)`")?;
    let (start, end) = (parse_hex(start)?, parse_hex(end)?);
    if start > end {
        return Err(format!("range start {start:#x} is above its end {end:#x}"));
    }
    let label = label.trim();
    if label.is_empty() {
        return Err("missing kind after the range".to_string());
    }
    Ok((start, end, label.to_string()))
}

fn parse_hex(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .ok_or_else(|| format!("`{s}` is not 0x-prefixed hex"))?;
    let digits = digits.replace('_', "");
    u64::from_str_radix(&digits, 16).map_err(|e| format!("`{s}`: {e}"))
}

/// `N free of M usable` → `(N, M)`.
fn parse_frames(s: &str) -> Result<(u64, u64), String> {
    let words: Vec<&str> = s.split_whitespace().collect();
    match words.as_slice() {
        [n, "free", "of", m, "usable"] => {
            let n = n.parse().map_err(|e| format!("`{n}`: {e}"))?;
            let m = m.parse().map_err(|e| format!("`{m}`: {e}"))?;
            Ok((n, m))
        }
        _ => Err("expected `N free of M usable`".to_string()),
    }
}

/// Sorts and merges half-open intervals, dropping empty ones.
fn merge(mut v: Vec<(u128, u128)>) -> Vec<(u128, u128)> {
    v.retain(|(a, b)| a < b);
    v.sort_unstable();
    let mut out: Vec<(u128, u128)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn total(v: &[(u128, u128)]) -> u128 {
    v.iter().map(|(a, b)| b - a).sum()
}

/// Size of the intersection of two merged interval lists.
fn overlap(x: &[(u128, u128)], y: &[(u128, u128)]) -> u128 {
    let (mut i, mut j, mut sum) = (0, 0, 0);
    while i < x.len() && j < y.len() {
        let lo = x[i].0.max(y[j].0);
        let hi = x[i].1.min(y[j].1);
        if lo < hi {
            sum += hi - lo;
        }
        if x[i].1 < y[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    sum
}

/// `(free, usable)` as recomputed from the memory map and the reserved ranges.
pub fn expected_counts(mem: &MemoryLog) -> (u64, u64) {
    // Frames fully inside an available entry: start rounded up, end rounded down.
    let usable = merge(
        mem.memmap
            .iter()
            .filter(|(_, _, kind)| kind == "available")
            .map(|&(a, b, _)| ((a as u128).div_ceil(FRAME), b as u128 / FRAME))
            .collect(),
    );
    // Frames touched by any byte of a reserved range: start rounded down, end up.
    let reserved = merge(
        mem.reserved.iter().map(|&(a, b, _)| (a as u128 / FRAME, (b as u128).div_ceil(FRAME))).collect(),
    );
    let usable_n = total(&usable);
    let free_n = usable_n - overlap(&usable, &reserved);
    // At most 2^52 frames fit in a 64-bit address space, so these fit in u64.
    (free_n as u64, usable_n as u64)
}

/// Checks the kernel's `frames:` line against the recomputation; returns a summary.
pub fn check(serial: &str) -> Result<String, String> {
    let mem = parse(serial)?;
    if mem.memmap.is_empty() {
        return Err("no `memmap:` lines in the log".to_string());
    }
    let (free, usable) = mem.frames.ok_or("no `frames: N free of M usable` line in the log")?;
    let (want_free, want_usable) = expected_counts(&mem);
    if usable != want_usable {
        return Err(format!("kernel says {usable} usable frames, the memory map gives {want_usable}"));
    }
    if free != want_free {
        return Err(format!(
            "kernel says {free} free frames, memory map minus {} reserved ranges gives {want_free}",
            mem.reserved.len()
        ));
    }
    if free == 0 || free >= usable {
        return Err(format!("implausible: {free} free of {usable} usable (want 0 < free < usable)"));
    }
    Ok(format!(
        "frames: {free} free of {usable} usable, as recomputed from {} memmap entries and {} reserved ranges",
        mem.memmap.len(),
        mem.reserved.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[cpu0] memmap: [0x0000000000000000, 0x000000000009fc00) available\r
[cpu0] memmap: [0x000000000009fc00, 0x00000000000a0000) reserved\r
[cpu0] memmap: [0x00000000000f0000, 0x0000000000100000) reserved\r
[cpu0] memmap: [0x0000000000100000, 0x0000000001000800) available\r
[cpu0] memmap: [0x00000000fffc0000, 0x0000000100000000) reserved\r
[cpu0] reserved: [0x0000000000000000, 0x0000000000100000) first MiB\r
[cpu0] reserved: [0x0000000000100000, 0x0000000000180001) kernel image\r
[cpu0] reserved: [0x0000000000200800, 0x0000000000200900) boot info\r
[cpu0] reserved: [0x0000000000300000, 0x0000000000300000) empty\r
";

    // available: 0x9f frames below 640K (0x9fc00 rounds down to 0x9f) + 0xf00 from 1 MiB
    // (0x1000800 rounds down to 0x1000) = 0x9f + 0xf00 = 3999 usable.
    // reserved: first MiB covers frames 0..0x100 (0x9f usable ones); kernel covers
    // 0x100..0x181 (0x81); boot info touches frame 0x200 (1); empty touches none.
    const USABLE: u64 = 0x9f + 0xf00;
    const FREE: u64 = USABLE - 0x9f - 0x81 - 1;

    fn with_frames(free: u64, usable: u64) -> String {
        format!("{LOG}[cpu0] frames: {free} free of {usable} usable\r\n").replace('\r', "")
    }

    #[test]
    fn parses_all_lines() {
        let mem = parse(&with_frames(1, 2)).expect("parse");
        assert_eq!(mem.memmap.len(), 5);
        assert_eq!(mem.memmap[1], (0x9fc00, 0xa0000, "reserved".to_string()));
        assert_eq!(mem.reserved.len(), 4);
        assert_eq!(mem.reserved[1].2, "kernel image");
        assert_eq!(mem.frames, Some((1, 2)));
    }

    #[test]
    fn recomputes_counts() {
        let mem = parse(LOG).expect("parse");
        assert_eq!(expected_counts(&mem), (FREE, USABLE));
    }

    #[test]
    fn accepts_matching_counts() {
        let summary = check(&with_frames(FREE, USABLE)).expect("check");
        assert!(summary.contains("5 memmap entries"), "{summary}");
    }

    #[test]
    fn rejects_wrong_counts() {
        let e = check(&with_frames(FREE, USABLE + 1)).expect_err("usable");
        assert!(e.contains("usable"), "{e}");
        let e = check(&with_frames(FREE - 1, USABLE)).expect_err("free");
        assert!(e.contains("free"), "{e}");
    }

    #[test]
    fn missing_frames_line_is_a_failure() {
        let e = check(LOG).expect_err("missing");
        assert!(e.contains("no `frames:"), "{e}");
        assert!(check("[cpu0] frames: 1 free of 2 usable\n").is_err());
    }

    #[test]
    fn implausible_counts_fail() {
        let log = "[cpu0] memmap: [0x0, 0x2000) available\n[cpu0] frames: 2 free of 2 usable\n";
        assert!(check(log).expect_err("all free").contains("implausible"));
    }

    #[test]
    fn overlapping_entries_and_ranges_count_once() {
        let log = "memmap: [0x1000, 0x5000) available\n\
                   memmap: [0x3000, 0x8000) available\n\
                   reserved: [0x0, 0x2001) a\n\
                   reserved: [0x2000, 0x3000) b\n\
                   frames: 5 free of 7 usable\n";
        assert_eq!(check(log).map(|_| ()), Ok(()));
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "memmap: [0x1000 0x2000) available",
            "memmap: [1000, 0x2000) available",
            "memmap: [0x3000, 0x2000) available",
            "memmap: [0x1000, 0x2000)",
            "reserved: (0x1000, 0x2000) x",
            "frames: 3 of 4",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let twice = "frames: 1 free of 2 usable\nframes: 1 free of 2 usable\n";
        assert!(parse(twice).is_err());
    }
}
