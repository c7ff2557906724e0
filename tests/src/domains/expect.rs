//! Expectations about who said what, and in which order, for the domain tests' checks.

use crate::log;

/// The line number of the first time `who` said exactly `message`.
pub fn says(serial: &str, who: &str, message: &str) -> Result<usize, String> {
    log::said(serial, who)
        .into_iter()
        .find(|(_, m)| *m == message)
        .map(|(i, _)| i)
        .ok_or_else(|| format!("no line `[{who}] {message}`"))
}

/// The line number of the first message of `who` that starts with `prefix`.
pub fn says_prefix(serial: &str, who: &str, prefix: &str) -> Result<usize, String> {
    log::said(serial, who)
        .into_iter()
        .find(|(_, m)| m.starts_with(prefix))
        .map(|(i, _)| i)
        .ok_or_else(|| format!("no line starting `[{who}] {prefix}`"))
}

/// The line numbers of every message of `who` that `matches`.
pub fn count(serial: &str, who: &str, matches: impl Fn(&str) -> bool) -> Vec<usize> {
    log::said(serial, who).into_iter().filter(|(_, m)| matches(m)).map(|(i, _)| i).collect()
}

/// Fails if `who` said anything that `matches`; `what` describes it.
pub fn never(serial: &str, who: &str, matches: impl Fn(&str) -> bool, what: &str) -> Result<(), String> {
    match log::said(serial, who).into_iter().find(|(_, m)| matches(m)) {
        Some((_, m)) => Err(format!("unexpected {what}: `[{who}] {m}`")),
        None => Ok(()),
    }
}

/// Fails unless the named events (line numbers) come in the order given.
pub fn in_order(events: &[(&str, usize)], whose: &str) -> Result<(), String> {
    for pair in events.windows(2) {
        let [(a, la), (b, lb)] = pair else { continue };
        if la >= lb {
            return Err(format!(
                "{whose}: `{b}` (line {}) does not come after `{a}` (line {})",
                lb + 1,
                la + 1
            ));
        }
    }
    Ok(())
}
