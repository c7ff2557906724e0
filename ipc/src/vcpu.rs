//! VM exits as messages, the same for Intel VT-x and AMD-V: what a vCPU
//! sends its VMM on an exit the kernel does not handle itself, and what the
//! VMM may answer. The answer can only touch a whitelisted part of the
//! guest's state; anything else is refused before the guest runs again.
//!
//! An exit is a message (see [`crate::msg`]) whose label is the
//! [`ExitReason`] and whose words are
//! `[rip, instruction length, qualification, guest-physical address, rax, rbx, rcx, rdx]`.
//! A reply's label is a set of [`Action`]s; its words are
//! `[new rip, event, error code, 0, rax, rbx, rcx, rdx]`, each used only if
//! its action is set.

use bitflags::bitflags;

use crate::error::Error;
use crate::msg::{Message, WORDS};

/// Why a vCPU stopped running its guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum ExitReason {
    Cpuid = 1,
    /// `HLT` with interrupts off (with them on, the kernel idles the vCPU
    /// until an interrupt is raised on it: no exit message).
    Hlt = 2,
    /// `OUT`: qualification = port | size << 16 (size 1, 2 or 4), with
    /// [`PORT_STRING`] for `OUTS` (and [`PORT_REP`] if it repeats); value in rax.
    PortOut = 3,
    /// `IN`: qualification as for `PortOut`; reply with the value in rax.
    PortIn = 4,
    /// `RDMSR` of the MSR in rcx; reply with edx:eax.
    MsrRead = 5,
    /// `WRMSR` of edx:eax to the MSR in rcx.
    MsrWrite = 6,
    /// An access to guest-physical memory nothing maps: qualification = access
    /// (1 read, 2 write, 4 execute), address in the gpa word.
    MemoryFault = 7,
    /// The guest triple-faulted (shutdown).
    TripleFault = 8,
    /// `VMCALL` / `VMMCALL`.
    Hypercall = 9,
    /// The hardware refused to enter the guest: qualification = its reason.
    EntryFailed = 10,
    /// Anything else: qualification = the vendor's raw exit code.
    Other = 11,
    /// An exception the kernel intercepts (qualification = its vector: #DB
    /// or #AC) faulted in its own delivery: the guest can never run again,
    /// as a CPU would deliver it forever and take no interrupt
    /// (CVE-2015-5307). The VMM stops it.
    ExceptionLoop = 12,
}

impl ExitReason {
    pub const fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            1 => Self::Cpuid,
            2 => Self::Hlt,
            3 => Self::PortOut,
            4 => Self::PortIn,
            5 => Self::MsrRead,
            6 => Self::MsrWrite,
            7 => Self::MemoryFault,
            8 => Self::TripleFault,
            9 => Self::Hypercall,
            10 => Self::EntryFailed,
            11 => Self::Other,
            12 => Self::ExceptionLoop,
            _ => return None,
        })
    }
}

/// A port exit's qualification bit: a string instruction (`INS`/`OUTS`).
pub const PORT_STRING: u64 = 1 << 24;
/// A port exit's qualification bit: with a `REP` prefix.
pub const PORT_REP: u64 = 1 << 25;

/// An exit, as the VMM receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    pub reason: ExitReason,
    pub rip: u64,
    pub len: u64,
    pub qualification: u64,
    pub gpa: u64,
    /// rax, rbx, rcx, rdx.
    pub regs: [u64; 4],
}

impl Exit {
    #[inline]
    pub fn to_message(&self) -> Message {
        let r = self.regs;
        Message {
            label: self.reason as u64,
            words: [self.rip, self.len, self.qualification, self.gpa, r[0], r[1], r[2], r[3]],
            cap: None,
        }
    }

    #[inline]
    pub fn from_message(m: &Message) -> Option<Self> {
        let w = m.words;
        Some(Self {
            reason: ExitReason::from_u64(m.label)?,
            rip: w[0],
            len: w[1],
            qualification: w[2],
            gpa: w[3],
            regs: [w[4], w[5], w[6], w[7]],
        })
    }
}

bitflags! {
    /// What a reply asks of the kernel before the guest runs again.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Action: u64 {
        /// rip += the exit's instruction length.
        const ADVANCE = 1 << 0;
        /// rip = words[0] (canonical).
        const SET_RIP = 1 << 1;
        const SET_RAX = 1 << 2;
        const SET_RBX = 1 << 3;
        const SET_RCX = 1 << 4;
        const SET_RDX = 1 << 5;
        /// Deliver exception `words[1]` (0..=31, not NMI), with error code
        /// `words[2]` where the vector has one.
        const INJECT = 1 << 6;
        /// Do not run the guest again (the VMM ends it).
        const STOP = 1 << 7;
    }
}

/// A checked reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    pub actions: Action,
    pub rip: u64,
    /// (vector, error code if the vector pushes one).
    pub inject: Option<(u8, Option<u32>)>,
    pub regs: [u64; 4],
}

/// Vectors whose exceptions push an error code (SDM Vol. 3A 6.13).
pub const fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30)
}

fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}

impl Reply {
    /// A reply that asks for `actions` alone (no rip, event or registers).
    pub const fn only(actions: Action) -> Reply {
        Reply { actions, rip: 0, inject: None, regs: [0; 4] }
    }

    /// Checks a VMM's reply: unknown action bits, a non-canonical rip, an
    /// event that is not an exception, NMI (2), or an error code that does
    /// not fit are refused with `InvalidArgument`.
    #[inline]
    pub fn decode(m: &Message) -> Result<Reply, Error> {
        let actions = Action::from_bits(m.label).ok_or(Error::InvalidArgument)?;
        let w = m.words;
        if actions.contains(Action::ADVANCE | Action::SET_RIP) {
            return Err(Error::InvalidArgument);
        }
        if actions.contains(Action::SET_RIP) && !canonical(w[0]) {
            return Err(Error::InvalidArgument);
        }
        let inject = if actions.contains(Action::INJECT) {
            let vector =
                u8::try_from(w[1]).ok().filter(|&v| v < 32 && v != 2).ok_or(Error::InvalidArgument)?;
            let error = if has_error_code(vector) {
                Some(u32::try_from(w[2]).map_err(|_| Error::InvalidArgument)?)
            } else if w[2] != 0 {
                return Err(Error::InvalidArgument);
            } else {
                None
            };
            Some((vector, error))
        } else {
            None
        };
        Ok(Reply { actions, rip: w[0], inject, regs: [w[4], w[5], w[6], w[7]] })
    }

    /// The message that asks for this.
    #[inline]
    pub fn to_message(&self) -> Message {
        let (vector, error) = self.inject.map_or((0, 0), |(v, e)| (u64::from(v), u64::from(e.unwrap_or(0))));
        let r = self.regs;
        let mut words = [0u64; WORDS];
        words[..4].copy_from_slice(&[self.rip, vector, error, 0]);
        words[4..].copy_from_slice(&r);
        Message { label: self.actions.bits(), words, cap: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forbidden_replies_are_refused() {
        let msg = |label: u64, words: [u64; 8]| Message { label, words, cap: None };
        assert_eq!(Reply::decode(&msg(1 << 20, [0; 8])), Err(Error::InvalidArgument), "unknown action");
        let rip = Action::SET_RIP.bits();
        assert_eq!(
            Reply::decode(&msg(rip, [0x8000_0000_0000, 0, 0, 0, 0, 0, 0, 0])),
            Err(Error::InvalidArgument)
        );
        assert!(Reply::decode(&msg(rip, [0xffff_8000_0000_0000, 0, 0, 0, 0, 0, 0, 0])).is_ok());
        let both = (Action::SET_RIP | Action::ADVANCE).bits();
        assert_eq!(Reply::decode(&msg(both, [0; 8])), Err(Error::InvalidArgument));
        let inj = Action::INJECT.bits();
        assert_eq!(
            Reply::decode(&msg(inj, [0, 32, 0, 0, 0, 0, 0, 0])),
            Err(Error::InvalidArgument),
            "vector 32"
        );
        assert_eq!(Reply::decode(&msg(inj, [0, 2, 0, 0, 0, 0, 0, 0])), Err(Error::InvalidArgument), "NMI");
        assert_eq!(
            Reply::decode(&msg(inj, [0, 6, 5, 0, 0, 0, 0, 0])),
            Err(Error::InvalidArgument),
            "#UD has no code"
        );
        assert_eq!(Reply::decode(&msg(inj, [0, 13, 1 << 40, 0, 0, 0, 0, 0])), Err(Error::InvalidArgument));
        let ok = Reply::decode(&msg(inj, [0, 13, 8, 0, 0, 0, 0, 0])).unwrap();
        assert_eq!(ok.inject, Some((13, Some(8))));
    }

    proptest! {
        #[test]
        fn exits_round_trip(reason in 1u64..12, w in any::<[u64; 8]>()) {
            let m = Message { label: reason, words: w, cap: None };
            let e = Exit::from_message(&m).unwrap();
            prop_assert_eq!(e.to_message(), m);
        }

        #[test]
        fn accepted_replies_round_trip(label in any::<u64>(), w in any::<[u64; 8]>()) {
            let m = Message { label, words: w, cap: None };
            if let Ok(r) = Reply::decode(&m) {
                prop_assert_eq!(Reply::decode(&r.to_message()), Ok(r));
            }
        }
    }
}
