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

crate::wire_enum! {
    /// Why a vCPU stopped running its guest.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum ExitReason: u64 {
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
        /// The hardware refused to enter the guest: qualification = its reason,
        /// on VT-x the VM-instruction error of a VMLAUNCH/VMRESUME that failed
        /// (below 32; 7 is an invalid control field) or the exit reason of a
        /// VM-entry failure (33 invalid guest state, 34 MSR loading, 41 machine
        /// check), on AMD-V `u64::MAX` (VMEXIT_INVALID). Nothing is read back
        /// from a VMCS or VMCB the CPU refused (AMD-V may leave the host's own
        /// state in it): rip and len are 0, and the registers are the guest's as
        /// they were entered with. The vCPU never runs again, whatever the VMM
        /// answers. The kernel refuses the replies it can judge alone
        /// ([`Reply::decode`]); whether a rip the VMM sets suits the guest's
        /// mode is the CPU's to judge (VT-x refuses bits 63:32 outside 64-bit
        /// mode, AMD-V ignores them), as KVM leaves `KVM_SET_REGS` to it.
        EntryFailed = 10,
        /// Anything else: qualification = the vendor's raw exit code.
        Other = 11,
        /// An exception the kernel intercepts (qualification = its vector: #DB
        /// or #AC) faulted in its own delivery: the guest can never run again,
        /// as a CPU would deliver it forever and take no interrupt
        /// (CVE-2015-5307). The VMM stops it.
        ExceptionLoop = 12,
    }
}

impl ExitReason {
    /// Whether `n` is a reason's number.
    pub fn known(n: u64) -> bool {
        Self::from_u64(n).is_some()
    }

    /// Its name in reports (`ryokan stats`).
    pub const fn name(self) -> &'static str {
        match self {
            ExitReason::Cpuid => "cpuid",
            ExitReason::Hlt => "hlt",
            ExitReason::PortOut => "port_out",
            ExitReason::PortIn => "port_in",
            ExitReason::MsrRead => "msr_read",
            ExitReason::MsrWrite => "msr_write",
            ExitReason::MemoryFault => "memory_fault",
            ExitReason::TripleFault => "triple_fault",
            ExitReason::Hypercall => "hypercall",
            ExitReason::EntryFailed => "entry_failed",
            ExitReason::Other => "other",
            ExitReason::ExceptionLoop => "exception_loop",
        }
    }

    /// Its place in a list of counts by reason ([`EXIT_REASONS`] long, in
    /// number order).
    pub const fn index(self) -> usize {
        self as usize - 1
    }
}

/// How many reasons there are (numbered 1 to this).
pub const EXIT_REASONS: usize = ExitReason::ALL.len();

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
    /// The leaf and sub-leaf (eax, ecx) a CPUID exit's message asks for,
    /// read without decoding the rest of it (a VMM's CPUID path); None for
    /// another exit's message.
    #[inline]
    pub fn cpuid_of(m: &Message) -> Option<(u32, u32)> {
        (m.label == ExitReason::Cpuid as u64).then_some((m.words[4] as u32, m.words[6] as u32))
    }

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
        /// Deliver exception `words[1]` (one that [`injectable`] allows),
        /// with error code `words[2]` (16 bits) where the vector has one.
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

/// The exceptions a VMM may inject: those both vendors define, up to #VE
/// (20), but NMI (2, not an exception) and the reserved 15. Past 20 each is
/// reserved or one vendor's (#CP needs CET, 28-30 are AMD's SEV and
/// security exceptions), and the hardware refuses some of them at entry:
/// AMD-V vector 31 (VMEXIT_INVALID), VT-x the error code that
/// [`has_error_code`] has 29 and 30 push (an invalid control field).
pub const fn injectable(vector: u8) -> bool {
    vector <= 20 && vector != 2 && vector != 15
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
    /// event that is not an exception a VMM may inject ([`injectable`]), or
    /// an error code that does not fit are refused with `InvalidArgument`.
    /// Error codes are 16 bits, as VT-x requires of an injected one (SDM
    /// Vol. 3C 26.2.1.3; wider is an invalid control field): no error code
    /// of the vectors [`injectable`] allows has more.
    #[inline(always)]
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
            let vector = u8::try_from(w[1]).ok().filter(|&v| injectable(v)).ok_or(Error::InvalidArgument)?;
            let error = if has_error_code(vector) {
                Some(u32::from(u16::try_from(w[2]).map_err(|_| Error::InvalidArgument)?))
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
    fn a_cpuid_exits_leaf_is_read_from_its_message_alone() {
        let exit = |reason| Exit {
            reason,
            rip: 1,
            len: 2,
            qualification: 3,
            gpa: 4,
            regs: [0x1_0000_000d, 5, 1 << 32 | 1, 6],
        };
        assert_eq!(Exit::cpuid_of(&exit(ExitReason::Cpuid).to_message()), Some((0xd, 1)));
        assert_eq!(Exit::cpuid_of(&exit(ExitReason::PortOut).to_message()), None);
        assert_eq!(
            Exit::cpuid_of(&Message { label: ExitReason::Cpuid as u64 | 1 << 32, ..Default::default() }),
            None
        );
    }

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
        // What the hardware would refuse at entry: AMD-V vector 31; VT-x an
        // error code past 16 bits, or the one 29 and 30 would push.
        for vector in [15u8, 21, 22, 27, 28, 29, 30, 31] {
            let w = [0, u64::from(vector), u64::from(has_error_code(vector)), 0, 0, 0, 0, 0];
            assert_eq!(Reply::decode(&msg(inj, w)), Err(Error::InvalidArgument), "vector {vector}");
        }
        assert_eq!(Reply::decode(&msg(inj, [0, 13, 0x1_0000, 0, 0, 0, 0, 0])), Err(Error::InvalidArgument));
        assert_eq!(
            Reply::decode(&msg(inj, [0, 14, 0xFFFF, 0, 0, 0, 0, 0])).unwrap().inject,
            Some((14, Some(0xFFFF)))
        );
        for vector in (0..=20u8).filter(|&v| v != 2 && v != 15) {
            let w = [0, u64::from(vector), 0, 0, 0, 0, 0, 0];
            assert!(Reply::decode(&msg(inj, w)).is_ok(), "vector {vector}");
        }
        let ok = Reply::decode(&msg(inj, [0, 13, 8, 0, 0, 0, 0, 0])).unwrap();
        assert_eq!(ok.inject, Some((13, Some(8))));
    }

    proptest! {
        #[test]
        fn exits_round_trip(reason in prop::sample::select(&ExitReason::ALL[..]), w in any::<[u64; 8]>()) {
            let m = Message { label: reason as u64, words: w, cap: None };
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
