//! How answers are shown: a table for people, JSON (`--json`) for programs.

use ipc::control::{ControlError, Entry, Kind, State, Stats, Usage};
use ipc::vcpu::ExitReason;
use serde::Serialize;

/// An entry as JSON shows it: plain words for its kind and state.
#[derive(Serialize)]
pub struct EntryJson<'a> {
    pub name: &'a str,
    pub kind: &'static str,
    pub state: &'static str,
    /// For `restarting`: in how many milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_in_ms: Option<u64>,
    pub id: String,
    pub memory_kib: u32,
    pub guest_memory_kib: u32,
    pub vcpus: u8,
    pub weight: u16,
    pub cap_percent: u8,
    pub restarts: u32,
    pub cpu_us: u64,
    pub iommu_faults: u64,
}

pub fn kind(k: Kind) -> &'static str {
    match k {
        Kind::Domain => "domain",
        Kind::Guest => "guest",
    }
}

pub fn state(s: State) -> (&'static str, Option<u64>) {
    match s {
        State::Running => ("running", None),
        State::Paused => ("paused", None),
        State::Restarting { in_ms } => ("restarting", Some(in_ms)),
        State::Stopped => ("stopped", None),
    }
}

pub fn entry_json(e: &Entry) -> EntryJson<'_> {
    let (state, restart_in_ms) = state(e.state);
    EntryJson {
        name: &e.name,
        kind: kind(e.kind),
        state,
        restart_in_ms,
        id: format!("{:#x}", e.id),
        memory_kib: e.memory_kib,
        guest_memory_kib: e.guest_memory_kib,
        vcpus: e.vcpus,
        weight: e.weight,
        cap_percent: e.cap_percent,
        restarts: e.restarts,
        cpu_us: e.cpu_us,
        iommu_faults: e.iommu_faults,
    }
}

fn memory(kib: u32) -> String {
    if kib >= 1024 && kib % 1024 == 0 {
        format!("{}M", kib / 1024)
    } else {
        format!("{kib}K")
    }
}

fn cap(c: u8) -> String {
    if c == 0 {
        "-".into()
    } else {
        format!("{c}%")
    }
}

fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// The table `list` prints.
pub fn table(entries: &[Entry]) -> String {
    let mut out = format!(
        "{:<24} {:<6} {:<10} {:>12} {:>7} {:>7} {:>5} {:>6} {:>4} {:>8} {:>12}\n",
        "NAME", "KIND", "STATE", "ID", "MEMORY", "RAM", "VCPUS", "WEIGHT", "CAP", "RESTARTS", "CPU ms"
    );
    for e in entries {
        let (state, _) = state(e.state);
        let id = if e.id == 0 { "-".to_string() } else { format!("{:#x}", e.id) };
        let (ram, vcpus) = match e.kind {
            Kind::Guest => (memory(e.guest_memory_kib), e.vcpus.to_string()),
            Kind::Domain => ("-".to_string(), "-".to_string()),
        };
        out.push_str(&format!(
            "{:<24} {:<6} {:<10} {:>12} {:>7} {:>7} {:>5} {:>6} {:>4} {:>8} {:>12}\n",
            e.name.as_str(),
            kind(e.kind),
            state,
            id,
            memory(e.memory_kib),
            ram,
            vcpus,
            e.weight,
            cap(e.cap_percent),
            e.restarts,
            ms(e.cpu_us)
        ));
    }
    out
}

/// What `info` prints: one field a line.
pub fn info(e: &Entry) -> String {
    let (st, due) = state(e.state);
    let mut out = format!("name:     {}\nkind:     {}\nstate:    {st}", e.name.as_str(), kind(e.kind));
    if let Some(ms) = due {
        out.push_str(&format!(" (in {ms} ms)"));
    }
    out.push('\n');
    if e.id != 0 {
        out.push_str(&format!("id:       {:#x}\n", e.id));
    }
    out.push_str(&format!("memory:   {} (quota)\n", memory(e.memory_kib)));
    if e.kind == Kind::Guest {
        out.push_str(&format!("ram:      {}\nvcpus:    {}\n", memory(e.guest_memory_kib), e.vcpus));
    }
    out.push_str(&format!(
        "weight:   {}\ncap:      {}\nrestarts: {}\ncpu time: {} ms\nfaults:   {} (its devices' requests the IOMMU blocked)\n",
        e.weight,
        cap(e.cap_percent),
        e.restarts,
        ms(e.cpu_us),
        e.iommu_faults
    ));
    out
}

/// What `stats` prints.
pub fn stats(s: &Stats) -> String {
    let mut out = format!(
        "free frames: {} ({} MiB); kernel objects in use: {}; up {} ms; control frames answered: {} \
         (dropped: {})\n{:<24} {:>12} {:>8}\n",
        s.free_frames,
        s.free_frames * 4 / 1024,
        s.objects,
        s.uptime_ms,
        s.frames,
        s.dropped,
        "NAME",
        "CPU ms",
        "MEMORY"
    );
    for u in &s.entries {
        out.push_str(&format!("{:<24} {:>12} {:>8}\n", u.name.as_str(), ms(u.cpu_us), memory(u.memory_kib)));
        let exits: Vec<String> = exits(u).filter(|&(_, n)| n != 0).map(|(r, n)| format!("{r} {n}")).collect();
        if !u.exits.is_empty() {
            let total: u64 = u.exits.iter().sum();
            let each = if exits.is_empty() { String::new() } else { format!(": {}", exits.join(", ")) };
            out.push_str(&format!("  exits {total}{each}\n"));
        }
    }
    out
}

/// A guest's exit counts with their reasons' names (none for a domain).
pub fn exits(u: &Usage) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    ExitReason::ALL.iter().zip(u.exits.iter()).map(|(r, &n)| (r.name(), n))
}

/// `stats` as JSON: a guest's exits as an object by reason's name.
pub fn stats_json(s: &Stats) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = s
        .entries
        .iter()
        .map(|u| {
            let mut v = serde_json::json!({
                "name": u.name.as_str(),
                "cpu_us": u.cpu_us,
                "guest_cpu_us": u.guest_cpu_us,
                "memory_kib": u.memory_kib,
            });
            if !u.exits.is_empty() {
                let by: serde_json::Map<String, serde_json::Value> =
                    exits(u).map(|(r, n)| (r.to_string(), n.into())).collect();
                v["exits"] = by.into();
            }
            v
        })
        .collect();
    serde_json::json!({
        "free_frames": s.free_frames,
        "objects": s.objects,
        "uptime_ms": s.uptime_ms,
        "frames": s.frames,
        "dropped": s.dropped,
        "entries": entries,
    })
}

/// A refusal said as what is wrong and what to do.
pub fn refusal(e: &ControlError) -> String {
    match e {
        ControlError::Malformed => "the system could not read the request (a line error?): try again".into(),
        ControlError::TooLong => "the request was too long for the system".into(),
        ControlError::WrongVersion { ours, theirs } => format!(
            "the system speaks control protocol version {ours}, this ryokan {theirs}: use the ryokan \
             built with that system"
        ),
        ControlError::NoSuchName => "no domain or guest of that name; try `ryokan list`".into(),
        ControlError::NotRunning => {
            "it is not running (see `ryokan list`); `ryokan restart` starts it".into()
        }
        ControlError::AlreadyInState => "it is already so (see `ryokan info`)".into(),
        ControlError::NothingToSet => "nothing to set: give weight=N and/or cap=P".into(),
        ControlError::StartFailed => {
            "it could not be started: the system's log (its [mgmt] lines) says why".into()
        }
        ControlError::OutOfOrder => {
            "a piece of the upload was lost on the line: run `ryokan create` again".into()
        }
        ControlError::BadChecksum => {
            "the upload was corrupted on the line (bad checksum), and dropped: run the command again".into()
        }
        ControlError::BadEntry => "the system cannot start that entry alone (it names what only the \
             running system has, or is not one [[domain]] or [[guest]])"
            .into(),
        ControlError::NameInUse => "that name is taken; pick another (see `ryokan list`)".into(),
        ControlError::UnknownImage => "its image is not on the boot image, nor uploaded: name one the \
             system was built with, or upload it first (`ryokan upload FILE NAME`)"
            .into(),
        ControlError::NoMemory => {
            "not memory enough left for it: free some (`ryokan destroy`) or ask for less".into()
        }
        ControlError::NotAGuest => "it is a native domain, not a guest: it has no console".into(),
        ControlError::ConsoleBroken => "its VMM broke the console's rings, so its console is off until \
             it restarts (`ryokan restart`); the system's log says more"
            .into(),
        ControlError::NotUploading => {
            "no upload is under way on the system (another may have begun since): upload again".into()
        }
        ControlError::UploadOffset { expected } => {
            format!("a piece of the upload came out of place (the system has {expected} bytes): upload again")
        }
        ControlError::PastTheEnd { size } => {
            format!("a piece of the upload went past its size, {size} bytes: upload again")
        }
        ControlError::Truncated { have, want } => format!(
            "the upload ended with {have} of its {want} bytes (lost on the line?), and was dropped: \
             upload again"
        ),
        ControlError::TooLarge { max } => {
            format!("the image is too large: the system takes images of at most {max} bytes")
        }
        ControlError::Kernel { .. } => match e.kernel_error() {
            Some(k) => format!("the kernel refused: {k:?}"),
            None => "the kernel refused".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::control::Name;

    fn usage(name: &str, exits: &[u64]) -> Usage {
        Usage {
            name: Name::try_from(name).unwrap(),
            cpu_us: 2500,
            guest_cpu_us: 2000,
            memory_kib: 4096,
            exits: exits.iter().copied().collect(),
        }
    }

    fn sample() -> Stats {
        let mut exits = [0u64; ipc::vcpu::EXIT_REASONS];
        exits[ExitReason::Cpuid.index()] = 7;
        exits[ExitReason::PortOut.index()] = 30;
        Stats {
            free_frames: 1024,
            objects: 9,
            uptime_ms: 5,
            frames: 3,
            dropped: 0,
            entries: [usage("vm", &exits), usage("dom", &[])].into_iter().collect(),
        }
    }

    #[test]
    fn stats_show_a_guests_exits_by_reason() {
        let text = stats(&sample());
        assert!(text.contains("  exits 37: cpuid 7, port_out 30\n"), "{text}");
        assert_eq!(text.matches("exits").count(), 1, "none for a domain: {text}");
        let v = stats_json(&sample());
        assert_eq!(v["entries"][0]["exits"]["port_out"], 30);
        assert_eq!(v["entries"][0]["exits"]["hlt"], 0);
        assert_eq!(v["entries"][0]["exits"].as_object().map(|o| o.len()), Some(ipc::vcpu::EXIT_REASONS));
        assert!(v["entries"][1].get("exits").is_none());
    }
}
