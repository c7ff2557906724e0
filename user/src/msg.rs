//! Message passing on endpoints (see `ipc::msg`): call, receive, reply, and
//! reply-then-receive, a message being a label, eight words and at most one
//! capability, all in registers. Re-exported by [`crate::sys`].

pub use ipc::msg::Incoming;
use ipc::msg::{self, IpcCall, Message, REGS};
use ipc::{CapSlot, Error};

use crate::arch::ipc_raw;

/// Makes a message call: what the kernel returned, as (badge, message).
fn ipc(call: IpcCall) -> Result<(u64, Message), Error> {
    let (rax, regs) = raw(call);
    outcome(rax, &regs)
}

/// Makes a message call: rax and the registers it returns with.
#[inline]
fn raw(call: IpcCall) -> (u64, [u64; REGS]) {
    let (nr, regs) = call.encode();
    // SAFETY: message verbs leave this domain's memory and threads alone: a
    // transferred capability arrives in a free slot of the table.
    unsafe { ipc_raw(nr, regs) }
}

/// Decodes the registers a message call returns with.
fn outcome(rax: u64, regs: &[u64; REGS]) -> Result<(u64, Message), Error> {
    Error::from_code(rax)?;
    Ok(msg::received(regs))
}

/// Sends `m` on the endpoint `ep` (needs WRITE) and waits for the reply:
/// returns (badge, reply); a reply's badge is 0. A capability `m` names
/// (needs GRANT) is copied to the receiver; one in the reply arrives in
/// `Message::cap`.
pub fn ipc_call(ep: CapSlot, m: &Message) -> Result<(u64, Message), Error> {
    ipc(IpcCall::Call { ep, msg: *m })
}

/// Waits for a call on `ep` (needs READ): returns the badge of the
/// capability the caller used, and its message. Reply with [`reply`] or
/// [`reply_recv`]. (A thread with a bound notification uses [`recv_any`].)
pub fn recv(ep: CapSlot) -> Result<(u64, Message), Error> {
    ipc(IpcCall::Recv { ep })
}

/// Replies `m` to the last call received (if its caller still waits), then
/// waits for the next call on `ep`, as [`recv`].
pub fn reply_recv(ep: CapSlot, m: &Message) -> Result<(u64, Message), Error> {
    ipc(IpcCall::ReplyRecv { ep, msg: *m })
}

/// As [`recv`], for a thread with a bound notification
/// ([`crate::sys::notification_bind`]): a signal of it ends the wait too.
pub fn recv_any(ep: CapSlot) -> Result<Incoming, Error> {
    ipc_any(IpcCall::Recv { ep })
}

/// As [`reply_recv`], for a thread with a bound notification.
pub fn reply_recv_any(ep: CapSlot, m: &Message) -> Result<Incoming, Error> {
    ipc_any(IpcCall::ReplyRecv { ep, msg: *m })
}

// In line: the caller's message goes straight into the registers (a VMM's
// exit loop saved its copy into the call).
#[inline]
fn ipc_any(call: IpcCall) -> Result<Incoming, Error> {
    let (rax, regs) = raw(call);
    Error::from_code(rax)?;
    Ok(msg::incoming(&regs))
}

/// Replies `m` to the last call received and goes on.
pub fn reply(m: &Message) -> Result<(), Error> {
    ipc(IpcCall::Reply { msg: *m }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::msg::NO_CAP;

    #[test]
    fn returned_registers_decode_to_badge_and_message() {
        let mut regs = [0u64; REGS];
        regs[0] = 7;
        regs[1] = 42;
        regs[2] = 0x1005;
        for (i, r) in regs[3..].iter_mut().enumerate() {
            *r = 100 + i as u64;
        }
        let (badge, m) = outcome(0, &regs).expect("no error");
        assert_eq!((badge, m.label, m.cap), (7, 42, Some(CapSlot(0x1005))));
        assert_eq!(m.words, [100, 101, 102, 103, 104, 105, 106, 107], "r10 … rbx in order");
        regs[2] = NO_CAP;
        assert_eq!(outcome(0, &regs).map(|(_, m)| m.cap), Ok(None));
        assert_eq!(outcome(Error::PeerDead.code(), &regs), Err(Error::PeerDead));
    }

    #[test]
    fn sent_messages_fill_the_registers_in_order() {
        let m = Message { label: 9, words: [1, 2, 3, 4, 5, 6, 7, 8], cap: Some(CapSlot(3)) };
        let (nr, r) = IpcCall::Call { ep: CapSlot(5), msg: m }.encode();
        assert_eq!((nr, r), (msg::nr::CALL, [5, 9, 3, 1, 2, 3, 4, 5, 6, 7, 8]));
        let (nr, r) = IpcCall::Recv { ep: CapSlot(5) }.encode();
        assert_eq!((nr, r[0], r[2]), (msg::nr::RECV, 5, NO_CAP));
        let (nr, r) = IpcCall::Reply { msg: Message::default() }.encode();
        assert_eq!((nr, r[2]), (msg::nr::REPLY, NO_CAP));
    }
}
