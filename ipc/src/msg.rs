//! Synchronous messages on endpoints: a label, up to eight words and at
//! most one capability, all carried in registers (no copying through memory).
//!
//! Registers, in order: `rdi, rsi, rdx, r10, r8, r9, r12, r13, r14, r15,
//! rbx` ([`REGS`] of them), `rax` = number.
//! - sending (`Call`, `ReplyRecv`, `Reply`): `rdi` = endpoint slot (unused by
//!   `Reply`), `rsi` = label, `rdx` = capability slot to transfer or
//!   [`NO_CAP`], then the eight words in `r10, r8, r9, r12, r13, r14, r15, rbx`;
//! - receiving (the result of `Call`, `Recv`, `ReplyRecv`): `rax` = 0 or an
//!   error, `rdi` = the badge of the capability the sender used (0 for a
//!   reply), `rsi` = label, `rdx` = the transferred capability's slot in the
//!   receiver's table or [`NO_CAP`], then the eight words.
//!
//! A server's reply goes to the thread whose call it received last, once:
//! the kernel keeps that one-shot reply right with the server thread.

use crate::cap::CapSlot;
use crate::error::Error;

/// Words per message.
pub const WORDS: usize = 8;
/// Registers a message occupies.
pub const REGS: usize = 11;
/// "No capability" in the capability register.
pub const NO_CAP: u64 = u64::MAX;
/// In the capability register of a receive: not a call but the word of the
/// receiver's bound notification (`NotificationBind`), in the first word.
pub const NOTIFIED: u64 = u64::MAX - 1;

/// A message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub label: u64,
    pub words: [u64; WORDS],
    /// A capability to transfer (needs GRANT; arrives without REVOKE).
    pub cap: Option<CapSlot>,
}

/// Syscall numbers of the message verbs.
pub mod nr {
    pub const CALL: u64 = 80;
    pub const REPLY_RECV: u64 = 81;
    pub const RECV: u64 = 82;
    pub const REPLY: u64 = 83;
}

/// A decoded message syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcCall {
    /// Sends `msg` on `ep` and waits for the reply.
    Call { ep: CapSlot, msg: Message },
    /// Replies `msg` to the last caller (if still waiting), then receives on `ep`.
    ReplyRecv { ep: CapSlot, msg: Message },
    /// Receives on `ep`.
    Recv { ep: CapSlot },
    /// Replies `msg` to the last caller and continues.
    Reply { msg: Message },
}

fn cap(v: u64) -> Result<Option<CapSlot>, ()> {
    match v {
        NO_CAP => Ok(None),
        v => u32::try_from(v).map(|s| Some(CapSlot(s))).map_err(|_| ()),
    }
}

fn slot(v: u64) -> Option<CapSlot> {
    u32::try_from(v).ok().map(CapSlot)
}

impl Message {
    /// The message in registers 1.. (label, cap, words).
    pub fn from_regs(r: &[u64; REGS]) -> Result<Self, (Error, u64)> {
        let cap = cap(r[2]).map_err(|_| (Error::InvalidArgument, 3))?;
        let mut words = [0; WORDS];
        words.copy_from_slice(&r[3..]);
        Ok(Self { label: r[1], words, cap })
    }

    /// Fills registers 1.. with the message.
    #[inline]
    pub fn to_regs(&self, r: &mut [u64; REGS]) {
        r[1] = self.label;
        r[2] = self.cap.map_or(NO_CAP, |c| u64::from(c.0));
        r[3..].copy_from_slice(&self.words);
    }
}

impl IpcCall {
    /// Checks a message syscall; `None` if `nr` is not one.
    pub fn decode(nr: u64, r: &[u64; REGS]) -> Option<Result<IpcCall, (Error, u64)>> {
        let ep = || slot(r[0]).ok_or((Error::InvalidArgument, 1));
        Some(match nr {
            nr::CALL => ep().and_then(|ep| Ok(IpcCall::Call { ep, msg: Message::from_regs(r)? })),
            nr::REPLY_RECV => ep().and_then(|ep| Ok(IpcCall::ReplyRecv { ep, msg: Message::from_regs(r)? })),
            nr::RECV => ep().map(|ep| IpcCall::Recv { ep }),
            nr::REPLY => Message::from_regs(r).map(|msg| IpcCall::Reply { msg }),
            _ => return None,
        })
    }

    /// The number and registers that make this call.
    pub fn encode(&self) -> (u64, [u64; REGS]) {
        let mut r = [0u64; REGS];
        let nr = match self {
            IpcCall::Call { ep, msg } => {
                r[0] = u64::from(ep.0);
                msg.to_regs(&mut r);
                nr::CALL
            }
            IpcCall::ReplyRecv { ep, msg } => {
                r[0] = u64::from(ep.0);
                msg.to_regs(&mut r);
                nr::REPLY_RECV
            }
            IpcCall::Recv { ep } => {
                r[0] = u64::from(ep.0);
                r[2] = NO_CAP;
                nr::RECV
            }
            IpcCall::Reply { msg } => {
                msg.to_regs(&mut r);
                nr::REPLY
            }
        };
        (nr, r)
    }
}

/// What a receive returned: a call, or its thread's bound notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A call: the badge of the caller's capability, and its message.
    Call { badge: u64, msg: Message },
    /// The bound notification's word (non-zero), collected.
    Notified(u64),
}

/// What a receiver finds in its registers.
#[inline]
pub fn incoming(r: &[u64; REGS]) -> Incoming {
    if r[2] == NOTIFIED {
        return Incoming::Notified(r[3]);
    }
    let (badge, msg) = received(r);
    Incoming::Call { badge, msg }
}

/// The registers of a notification delivered to a receiver.
pub fn notified_regs(word: u64) -> [u64; REGS] {
    let mut r = [0; REGS];
    r[2] = NOTIFIED;
    r[3] = word;
    r
}

/// What a receiver finds in its registers: (badge, message).
#[inline]
pub fn received(r: &[u64; REGS]) -> (u64, Message) {
    let mut words = [0; WORDS];
    words.copy_from_slice(&r[3..]);
    let cap = match r[2] {
        NO_CAP => None,
        v => Some(CapSlot(v as u32)),
    };
    (r[0], Message { label: r[1], words, cap })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_notification_is_told_apart_from_a_call() {
        assert_eq!(incoming(&notified_regs(0b101)), Incoming::Notified(0b101));
        let mut r = [0u64; REGS];
        r[2] = NO_CAP;
        r[1] = 7;
        assert!(matches!(
            incoming(&r),
            Incoming::Call { badge: 0, msg: Message { label: 7, cap: None, .. } }
        ));
        r[2] = 3;
        assert!(matches!(incoming(&r), Incoming::Call { msg: Message { cap: Some(CapSlot(3)), .. }, .. }));
    }

    proptest! {
        #[test]
        fn decode_round_trips(nr in 78u64..86, r in any::<[u64; REGS]>()) {
            if let Some(Ok(call)) = IpcCall::decode(nr, &r) {
                let (nr2, r2) = call.encode();
                prop_assert_eq!(nr2, nr);
                prop_assert_eq!(IpcCall::decode(nr2, &r2), Some(Ok(call)));
            }
        }
    }

    #[test]
    fn bad_slots_are_refused() {
        let mut r = [0u64; REGS];
        r[0] = 1 << 40;
        assert_eq!(IpcCall::decode(nr::CALL, &r), Some(Err((Error::InvalidArgument, 1))));
        r[0] = 1;
        r[2] = 1 << 33;
        assert_eq!(IpcCall::decode(nr::CALL, &r), Some(Err((Error::InvalidArgument, 3))));
        assert_eq!(IpcCall::decode(3, &r), None);
    }

    #[test]
    fn received_messages_read_back() {
        let msg = Message { label: 7, words: [1, 2, 3, 4, 5, 6, 7, 8], cap: Some(CapSlot(9)) };
        let mut r = [0u64; REGS];
        r[0] = 42;
        msg.to_regs(&mut r);
        assert_eq!(received(&r), (42, msg));
    }
}
