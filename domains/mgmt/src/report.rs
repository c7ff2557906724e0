//! The lines `mgmt` logs about the domains it supervises. The system tests
//! read them, so their wording is fixed here and tested; the logger adds the
//! `[mgmt] ` prefix.

use core::fmt;

use ipc::event::{DomainId, Fault};
use ipc::Error;

/// The exit code a domain killed by hand (`ryokan kill`) is reported with,
/// as a shell reports a process killed by SIGKILL: a failure, so its restart
/// policy applies.
pub const EXIT_KILLED: u64 = 137;

/// One line of `mgmt`'s log about a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report<'a> {
    Started {
        name: &'a str,
        id: DomainId,
    },
    Exited {
        name: &'a str,
        code: u64,
    },
    Faulted {
        name: &'a str,
        fault: Fault,
    },
    Restarting {
        name: &'a str,
        delay_ms: u64,
        attempt: u32,
        max: u32,
    },
    StoppedForGood {
        name: &'a str,
    },
    /// Killed by hand: fault injection.
    Killed {
        name: &'a str,
    },
    AllStopped,
    /// The devices it held made this many requests the IOMMU blocked
    /// (the kernel's count, charged to it: `DomainInfo`).
    DmaFaults {
        name: &'a str,
        faults: u64,
    },
    /// Its first thread stays on the kernel's choice of CPU.
    CpuUnavailable {
        name: &'a str,
        cpu: u16,
        error: Error,
    },
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Report::Started { name, id } => write!(f, "started {name} (domain {:#x})", id.0),
            Report::Exited { name, code } => write!(f, "{name} exited with code {code}"),
            Report::Faulted { name, fault } => write!(
                f,
                "{name} faulted: {} (vector {}) at address {:#x} ip {:#x}",
                fault.name(),
                fault.vector,
                fault.address,
                fault.ip
            ),
            Report::Restarting { name, delay_ms, attempt, max } => {
                write!(f, "restarting {name} in {delay_ms} ms (restart {attempt} of {max})")
            }
            Report::StoppedForGood { name } => write!(f, "{name} stopped for good"),
            Report::Killed { name } => write!(f, "killed {name} (exit code {EXIT_KILLED})"),
            Report::AllStopped => write!(f, "all domains stopped: shutting down"),
            Report::DmaFaults { name, faults } => {
                write!(f, "{name}: its devices made {faults} requests the IOMMU blocked")
            }
            Report::CpuUnavailable { name, cpu, error } => {
                write!(f, "{name}: cpu {cpu} unavailable: {error:?}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_as_the_system_tests_expect() {
        let fault = Fault { vector: 14, error: 6, ip: 0x40_10a3, address: 0xffff_8000_0000_0000 };
        let cases = [
            (
                Report::Started { name: "hello", id: DomainId(0x1_0000_0002) },
                "started hello (domain 0x100000002)",
            ),
            (Report::Exited { name: "hello", code: 0 }, "hello exited with code 0"),
            (Report::Exited { name: "fault-panic", code: 101 }, "fault-panic exited with code 101"),
            (
                Report::Faulted { name: "fault-kernel", fault },
                "fault-kernel faulted: page fault (vector 14) at address 0xffff800000000000 ip 0x4010a3",
            ),
            (
                Report::Restarting { name: "ticker", delay_ms: 20, attempt: 2, max: 3 },
                "restarting ticker in 20 ms (restart 2 of 3)",
            ),
            (Report::StoppedForGood { name: "shm-b" }, "shm-b stopped for good"),
            (Report::AllStopped, "all domains stopped: shutting down"),
            (Report::Killed { name: "hog" }, "killed hog (exit code 137)"),
            (
                Report::DmaFaults { name: "blk-dma", faults: 3 },
                "blk-dma: its devices made 3 requests the IOMMU blocked",
            ),
            (
                Report::CpuUnavailable { name: "hello", cpu: 7, error: Error::NotSupported },
                "hello: cpu 7 unavailable: NotSupported",
            ),
        ];
        for (report, line) in cases {
            assert_eq!(report.to_string(), line);
        }
    }
}
