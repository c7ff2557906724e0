//! `hostile-vmm` (a word of the guest's command line): before answering the
//! first exit properly, the VMM answers it with replies the kernel must
//! refuse (`ipc::vcpu::Reply::decode`), each of which must come back as
//! `InvalidArgument` with the vCPU still waiting; then makes the vCPU state
//! calls (`VcpuStateRead`, `VcpuStateWrite`) with buffers, values and
//! objects the kernel must refuse ([`state_probe`]), each with the error it
//! must give and the vCPU's state unchanged. A test of the kernel, not a
//! feature: a VMM that wants its guest to run never does this.

use ipc::msg::Message;
use ipc::syscall::{Nr, USER_END};
use ipc::vcpu::Action;
use ipc::vstate::{Write, RFLAGS_VM, WRITE_BYTES, WRITE_RFLAGS, WRITE_RIP};
use ipc::{CapSlot, Error};
use user::sys;
use vmm::status;

use crate::console::{say, Console};

/// The word of the command line that asks for the probe.
pub const FLAG: &str = "hostile-vmm";

fn reply(actions: u64, rip: u64, vector: u64, error: u64) -> Message {
    Message { label: actions, words: [rip, vector, error, 0, 0, 0, 0, 0], cap: None }
}

/// Each forbidden reply, and what is wrong with it: the last four are
/// exceptions the hardware itself would refuse to deliver at entry.
fn forbidden() -> [(&'static str, Message); 10] {
    let inject = Action::INJECT.bits();
    [
        ("unknown action bits 0x100000", reply(1 << 20, 0, 0, 0)),
        ("non-canonical rip 0x800000000000", reply(Action::SET_RIP.bits(), 0x8000_0000_0000, 0, 0)),
        ("INJECT of vector 2 (NMI)", reply(inject, 0, 2, 0)),
        ("INJECT of vector 40 (not an exception)", reply(inject, 0, 40, 0)),
        ("INJECT of #UD with an error code", reply(inject, 0, 6, 5)),
        ("ADVANCE with SET_RIP", reply((Action::ADVANCE | Action::SET_RIP).bits(), 0x10_0000, 0, 0)),
        ("INJECT of vector 31 (reserved: AMD-V refuses it)", reply(inject, 0, 31, 0)),
        ("INJECT of vector 30 (AMD's #SX: VT-x refuses its error code)", reply(inject, 0, 30, 0)),
        ("INJECT of vector 15 (reserved)", reply(inject, 0, 15, 0)),
        ("INJECT of #GP with a 17-bit error code (VT-x refuses it)", reply(inject, 0, 13, 0x1_0000)),
    ]
}

/// Sends every forbidden reply to the exit just received; `Err(status)` if
/// the kernel took one.
pub fn probe(console: &Console) -> Result<(), u64> {
    for (what, m) in forbidden() {
        match sys::reply(&m) {
            Err(Error::InvalidArgument) => say!(console, "forbidden reply refused: {what}"),
            Ok(()) => {
                say!(console, "FAIL forbidden reply accepted: {what}");
                return Err(status::HOSTILE_ACCEPTED);
            }
            Err(e) => {
                say!(console, "FAIL forbidden reply ({what}) failed with {e:?}, not InvalidArgument");
                return Err(status::HOSTILE_ACCEPTED);
            }
        }
    }
    say!(console, "every forbidden reply was refused: answering properly now");
    Ok(())
}

/// A write buffer as a hostile VMM might fill it: `mask`, then the rip and
/// rflags words.
fn raw_write(mask: u64, rip: u64, rflags: u64) -> [u8; WRITE_BYTES as usize] {
    let mut b = Write::none().to_bytes();
    b[..8].copy_from_slice(&mask.to_le_bytes());
    b[17 * 8..18 * 8].copy_from_slice(&rip.to_le_bytes());
    b[18 * 8..19 * 8].copy_from_slice(&rflags.to_le_bytes());
    b
}

/// The state calls the kernel must refuse, on the vCPU `vcpu` (in its
/// first exit) and the guest's domain capability `guest`: what each is,
/// and the error it must give.
fn bad_state_calls(vcpu: CapSlot, guest: CapSlot) -> [(&'static str, Error, Result<(), Error>); 11] {
    let bad = |mask, rip, rflags| sys::vcpu_state_write_raw(vcpu, &raw_write(mask, rip, rflags));
    // Raw: buffers no safe wrapper would make. None is ever written: the
    // kernel refuses each before it copies (they are checked by decode, or
    // name no writable page).
    let raw = |nr: Nr, addr: u64| {
        // SAFETY: the buffer names no memory of this domain's that the
        // kernel could write (kernel half, null page, past the user
        // range, or an unmapped page), so nothing here changes.
        let (rax, r) = unsafe { sys::syscall_raw(nr as u64, [u64::from(vcpu.0), addr, 0, 0, 0, 0]) };
        match Error::from_code(rax) {
            Err(Error::InvalidArgument) if r[0] != 2 => Err(Error::Malformed),
            other => other,
        }
    };
    let unmapped = user::layout::FREE2_BASE + (1 << 41);
    let read_as = |slot| sys::vcpu_state_read(slot).map(drop);
    [
        ("write of unknown mask bit 18", Error::Malformed, bad(1 << 18, 0, 0)),
        ("write of non-canonical rip 0x800000000000", Error::Malformed, bad(WRITE_RIP, 0x8000_0000_0000, 0)),
        ("write of rflags reserved bit 3", Error::Malformed, bad(WRITE_RFLAGS, 0, 0x2 | 1 << 3)),
        ("write of rflags bit 22", Error::Malformed, bad(WRITE_RFLAGS, 0, 0x2 | 1 << 22)),
        ("write of rflags.VM", Error::Malformed, bad(WRITE_RFLAGS, 0, 0x2 | RFLAGS_VM)),
        (
            "read into the kernel's half",
            Error::InvalidArgument,
            raw(Nr::VcpuStateRead, 0xffff_8000_0000_0000),
        ),
        ("read into the null page", Error::InvalidArgument, raw(Nr::VcpuStateRead, 0)),
        ("read across the user range's end", Error::InvalidArgument, raw(Nr::VcpuStateRead, USER_END - 16)),
        ("read into an unmapped page", Error::BadAddress, raw(Nr::VcpuStateRead, unmapped)),
        ("write from an unmapped page", Error::BadAddress, raw(Nr::VcpuStateWrite, unmapped)),
        ("read of the guest's domain capability", Error::WrongType, read_as(guest)),
    ]
}

/// Makes every state call the kernel must refuse on `vcpu`, in its first
/// exit, and checks the state it reads before and after is the same (a
/// refused write stages nothing); `Err(status)` if one was taken or
/// failed otherwise.
pub fn state_probe(console: &Console, vcpu: CapSlot, guest: CapSlot) -> Result<(), u64> {
    let before = match sys::vcpu_state_read(vcpu) {
        Ok(s) => s,
        Err(e) => {
            say!(console, "FAIL reading the vCPU's state in its exit: {e:?}");
            return Err(status::HOSTILE_ACCEPTED);
        }
    };
    for (what, want, got) in bad_state_calls(vcpu, guest) {
        match got {
            Err(e) if e == want => say!(console, "bad state call refused: {what}"),
            Ok(()) => {
                say!(console, "FAIL bad state call accepted: {what}");
                return Err(status::HOSTILE_ACCEPTED);
            }
            Err(e) => {
                say!(console, "FAIL bad state call ({what}) failed with {e:?}, not {want:?}");
                return Err(status::HOSTILE_ACCEPTED);
            }
        }
    }
    match sys::vcpu_state_read(vcpu) {
        Ok(after) if after == before => {}
        other => {
            say!(console, "FAIL the vCPU's state changed under refused calls: {other:?}");
            return Err(status::HOSTILE_ACCEPTED);
        }
    }
    say!(console, "every bad state call was refused, the state unchanged");
    Ok(())
}
