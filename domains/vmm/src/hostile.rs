//! `hostile-vmm` (a word of the guest's command line): before answering the
//! first exit properly, the VMM answers it with replies the kernel must
//! refuse (`ipc::vcpu::Reply::decode`), each of which must come back as
//! `InvalidArgument` with the vCPU still waiting. A test of the kernel, not
//! a feature: a VMM that wants its guest to run never does this.

use ipc::msg::Message;
use ipc::vcpu::Action;
use ipc::Error;
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
