//! Reading the kernel's serial log: line splitting and the `[cpuN] ` prefix.

/// The last line of a run that went well (after the optional `[cpuN] ` prefix).
pub const SHUTDOWN_SUCCESS: &str = "RYOKAN: shutdown status=success";
/// The last line of a run that the kernel itself judged a failure.
pub const SHUTDOWN_FAILURE: &str = "RYOKAN: shutdown status=failure";

/// Turns raw serial bytes into text with `\n` line ends (the UART sends `\r\n`).
pub fn normalize(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).replace('\r', "")
}

/// One log line split into the CPU that printed it (if prefixed) and the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    pub cpu: Option<u32>,
    pub message: &'a str,
}

/// Splits `[cpuN] message`; a line without a well-formed prefix has `cpu: None`.
pub fn parse_line(line: &str) -> Line<'_> {
    let line = line.trim_end_matches('\r');
    let prefixed = line
        .strip_prefix("[cpu")
        .and_then(|rest| rest.split_once("] "))
        .and_then(|(n, message)| Some((n.parse::<u32>().ok()?, message)));
    match prefixed {
        Some((cpu, message)) => Line { cpu: Some(cpu), message },
        None => Line { cpu: None, message: line },
    }
}

/// All lines of the log, parsed.
pub fn lines(serial: &str) -> impl Iterator<Item = Line<'_>> {
    serial.lines().map(parse_line)
}

/// The last line that is not blank, if any.
pub fn last_nonempty_line(serial: &str) -> Option<&str> {
    serial.lines().map(|l| l.trim_end_matches('\r')).rfind(|l| !l.trim().is_empty())
}

/// Whether CPU `cpu` printed exactly `message`.
pub fn has_cpu_message(serial: &str, cpu: u32, message: &str) -> bool {
    lines(serial).any(|l| l.cpu == Some(cpu) && l.message.trim_end() == message)
}

/// Whether CPU `cpu` printed a message starting with `prefix`.
pub fn has_cpu_message_prefix(serial: &str, cpu: u32, prefix: &str) -> bool {
    lines(serial).any(|l| l.cpu == Some(cpu) && l.message.starts_with(prefix))
}

/// The first line containing `needle`, if any.
pub fn find_line<'a>(serial: &'a str, needle: &str) -> Option<&'a str> {
    serial.lines().find(|l| l.contains(needle))
}

/// What `who` said: the messages of lines `[who] message` (after any
/// `[cpuN] ` prefix), trimmed at the end, each with its line number (0-based).
pub fn said<'a>(serial: &'a str, who: &str) -> Vec<(usize, &'a str)> {
    let tag = format!("[{who}] ");
    serial
        .lines()
        .enumerate()
        .filter_map(|(i, l)| parse_line(l).message.strip_prefix(tag.as_str()).map(|m| (i, m.trim_end())))
        .collect()
}

/// The last `n` lines of the log (for failure reports of huge logs).
pub fn tail(serial: &str, n: usize) -> String {
    let all: Vec<&str> = serial.lines().collect();
    let skip = all.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[... {skip} earlier lines omitted ...]\n"));
    }
    for l in &all[skip..] {
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_split() {
        let l = parse_line("[cpu12] smp: 2 of 2 CPUs online");
        assert_eq!(l.cpu, Some(12));
        assert_eq!(l.message, "smp: 2 of 2 CPUs online");
    }

    #[test]
    fn lines_without_prefix_keep_their_text() {
        for s in ["RYOKAN: shutdown status=success", "[cpuX] no", "[cpu1]nospace", ""] {
            let l = parse_line(s);
            assert_eq!(l.cpu, None, "{s}");
            assert_eq!(l.message, s);
        }
    }

    #[test]
    fn normalize_strips_carriage_returns() {
        assert_eq!(normalize(b"a\r\nb\r\n"), "a\nb\n");
    }

    #[test]
    fn last_nonempty_line_skips_blank_tail() {
        assert_eq!(last_nonempty_line("a\nb\n\n  \n"), Some("b"));
        assert_eq!(last_nonempty_line("\n\n"), None);
    }

    #[test]
    fn cpu_messages_are_matched_per_cpu() {
        let log = "[cpu0] timer: 10 ticks\n[cpu1] virt: on\n";
        assert!(has_cpu_message(log, 1, "virt: on"));
        assert!(!has_cpu_message(log, 0, "virt: on"));
        assert!(has_cpu_message_prefix(log, 0, "timer: "));
        assert!(!has_cpu_message_prefix(log, 1, "timer: "));
    }

    #[test]
    fn said_finds_a_speakers_lines_with_or_without_cpu_prefix() {
        let log = "[cpu0] [mgmt] started a\n[a] hi \n[cpu1] [a] there\n[ab] no\n[cpu0] boot\n";
        assert_eq!(said(log, "a"), vec![(1, "hi"), (2, "there")]);
        assert_eq!(said(log, "mgmt"), vec![(0, "started a")]);
        assert!(said(log, "b").is_empty());
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("1\n2\n3\n", 2), "[... 1 earlier lines omitted ...]\n2\n3\n");
        assert_eq!(tail("1\n", 5), "1\n");
    }
}
