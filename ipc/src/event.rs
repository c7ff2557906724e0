//! What the kernel tells a supervisor about the domains it supervises: that
//! one exited (and with what code), or faulted (how, where).

/// The exit code the user runtime reports when a domain panics.
pub const EXIT_PANIC: u64 = 101;

/// A domain's identity: its object index and generation, so that a restarted
/// domain is recognisably new.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DomainId(pub u64);

impl DomainId {
    pub const fn new(index: u32, generation: u32) -> Self {
        Self(index as u64 | (generation as u64) << 32)
    }
}

/// A CPU exception taken by a domain in user mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The exception vector (SDM Vol. 3A 6.3.1).
    pub vector: u8,
    /// The error code the CPU pushed, or 0.
    pub error: u32,
    /// The faulting instruction.
    pub ip: u64,
    /// For a page fault, the address accessed (CR2); else 0.
    pub address: u64,
}

impl Fault {
    /// A short name for the vector.
    pub const fn name(&self) -> &'static str {
        match self.vector {
            0 => "divide error",
            1 => "debug",
            3 => "breakpoint",
            4 => "overflow",
            5 => "bound range",
            6 => "invalid opcode",
            7 => "device not available",
            12 => "stack fault",
            13 => "general protection",
            14 => "page fault",
            16 => "x87 fault",
            17 => "alignment check",
            19 => "SIMD fault",
            _ => "exception",
        }
    }
}

/// The kind of an event, in the low byte of its second register: each
/// written once, for `encode` and `decode` both.
const EXITED: u64 = 1;
const FAULTED: u64 = 2;

/// An event of a supervised domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Exited { domain: DomainId, code: u64 },
    Faulted { domain: DomainId, fault: Fault },
}

impl Event {
    /// The four result registers that carry the event.
    pub const fn encode(&self) -> [u64; 4] {
        match *self {
            Event::Exited { domain, code } => [domain.0, EXITED, code, 0],
            Event::Faulted { domain, fault } => [
                domain.0,
                FAULTED | (fault.vector as u64) << 8 | (fault.error as u64) << 32,
                fault.ip,
                fault.address,
            ],
        }
    }

    /// Decodes the result registers of `DomainWait`.
    pub const fn decode(r: [u64; 4]) -> Option<Event> {
        let domain = DomainId(r[0]);
        match r[1] & 0xff {
            EXITED => Some(Event::Exited { domain, code: r[2] }),
            FAULTED => Some(Event::Faulted {
                domain,
                fault: Fault {
                    vector: (r[1] >> 8) as u8,
                    error: (r[1] >> 32) as u32,
                    ip: r[2],
                    address: r[3],
                },
            }),
            _ => None,
        }
    }

    pub const fn domain(&self) -> DomainId {
        match *self {
            Event::Exited { domain, .. } | Event::Faulted { domain, .. } => domain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn events_round_trip(d in any::<u64>(), code in any::<u64>(), vector in any::<u8>(), error in any::<u32>(), ip in any::<u64>(), address in any::<u64>()) {
            let domain = DomainId(d);
            for e in [Event::Exited { domain, code }, Event::Faulted { domain, fault: Fault { vector, error, ip, address } }] {
                prop_assert_eq!(Event::decode(e.encode()), Some(e));
            }
        }
    }

    #[test]
    fn garbage_does_not_decode() {
        assert_eq!(Event::decode([0, 0, 0, 0]), None);
        assert_eq!(Event::decode([0, 7, 0, 0]), None);
    }
}
