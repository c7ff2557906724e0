//! 20,000 random syscalls with forged arguments, from a fixed seed. Each
//! must come back with success or one of the known errors (and, for
//! `InvalidArgument`, name an argument that exists).
//!
//! Left out, so that the domain survives to tell: `Exit`, `ThreadCreate`,
//! `MemoryUnmap` and the port calls; and its own `self` and `console`
//! capabilities are never passed (a forged slot that equals one is changed),
//! so that it cannot delete, revoke, copy or write through them, nor map
//! anything into itself. `DomainWait` never blocks (it would wait forever
//! for the empty domains this may create).

use core::fmt;

use ipc::syscall::Nr;
use ipc::{CapSlot, Error};
use samples::rng::XorShift;
use user::sys;

pub const CALLS: u32 = 20_000;
const SEED: u64 = 0x5259_4f4b_414e_2121;

/// The numbers never made.
const SKIPPED: [Nr; 6] =
    [Nr::Exit, Nr::ThreadCreate, Nr::MemoryUnmap, Nr::IoPortRead, Nr::IoPortWrite, Nr::IoPortsCreate];
/// The numbers picked from more often than the rest of 0..80.
const KNOWN: [Nr; 13] = [
    Nr::ConsoleWrite,
    Nr::Yield,
    Nr::CapDerive,
    Nr::CapGrant,
    Nr::CapDelete,
    Nr::CapRevoke,
    Nr::CapInfo,
    Nr::DomainCreate,
    Nr::DomainDestroy,
    Nr::DomainWait,
    Nr::MemoryCreate,
    Nr::MemoryMap,
    Nr::Stats,
];

/// A call that came back wrong.
pub struct Failure {
    call: u32,
    nr: u64,
    args: [u64; 6],
    rax: u64,
    arg: u64,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "random call {}: syscall {} {:#x?}: got rax {} (rdi {}), want 0 or a known error",
            self.call, self.nr, self.args, self.rax, self.arg
        )
    }
}

/// Slots the random calls made (copies, memory, domains), to use again.
struct Made {
    slots: [u64; 16],
    next: usize,
}

impl Made {
    fn add(&mut self, slot: u64) {
        self.slots[self.next % self.slots.len()] = slot;
        self.next += 1;
    }
}

/// Forged arguments: mostly slot-like numbers and addresses, some small
/// numbers, some anything, some slots of objects the calls made.
fn argument(rng: &mut XorShift, made: &Made) -> u64 {
    match rng.below(10) {
        0..=2 => u64::from(CapSlot::new(rng.below(260) as usize, rng.below(3) as u32).0),
        3 => rng.below(16),
        4 => 0x1000 * rng.below(0x100_0000),
        5 => 0xffff_8000_0000_0000 | rng.next_u64(),
        6 | 7 => made.slots[rng.below(made.slots.len() as u64) as usize],
        _ => rng.next_u64(),
    }
}

fn number(rng: &mut XorShift) -> u64 {
    loop {
        let nr = if rng.below(4) == 0 {
            rng.below(80)
        } else {
            KNOWN[rng.below(KNOWN.len() as u64) as usize] as u64
        };
        if !SKIPPED.iter().any(|&s| s as u64 == nr) {
            return nr;
        }
    }
}

/// Makes the calls; returns how many failed with an error (codes are
/// 1..=ALL.len(), so each indexes `by_error`).
pub fn run(this: CapSlot, console: CapSlot) -> Result<u32, Failure> {
    let protected = [u64::from(this.0), u64::from(console.0)];
    let mut rng = XorShift::new(SEED);
    let mut by_error = [0u32; Error::ALL.len() + 1];
    let mut made = Made { slots: [0; 16], next: 0 };
    for call in 0..CALLS {
        let nr = number(&mut rng);
        let mut args = [0u64; 6];
        for a in &mut args {
            *a = argument(&mut rng, &made);
            if protected.contains(a) {
                *a ^= 1 << 12; // another generation of the slot
            }
        }
        if nr == Nr::DomainWait as u64 && args[0] == 1 {
            args[0] = 0;
        }
        // SAFETY: none of the calls that could unmap this domain's memory or
        // run code in it is made, and no forged argument names this domain
        // itself (see the module's doc).
        let (rax, r) = unsafe { sys::syscall_raw(nr, args) };
        let known = rax == 0 || Error::ALL.iter().any(|e| e.code() == rax);
        let arg_ok = rax != Error::InvalidArgument.code() || (1..=6).contains(&r[0]);
        if !known || !arg_ok {
            return Err(Failure { call, nr, args, rax, arg: r[0] });
        }
        by_error[rax as usize] += 1;
        let makes = [Nr::CapDerive, Nr::DomainCreate, Nr::MemoryCreate];
        if rax == 0 && makes.iter().any(|&m| m as u64 == nr) {
            made.add(r[0]);
        }
    }
    log::info!("hostile: random results: {} ok; {}", by_error[0], Counts(&by_error));
    Ok(by_error[1..].iter().sum())
}

/// The error counts, as `Name n, …`.
struct Counts<'a>(&'a [u32]);

impl fmt::Display for Counts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for e in Error::ALL {
            let n = self.0.get(e.code() as usize).copied().unwrap_or(0);
            if n > 0 {
                write!(f, "{}{e:?} {n}", if first { "" } else { ", " })?;
                first = false;
            }
        }
        Ok(())
    }
}
