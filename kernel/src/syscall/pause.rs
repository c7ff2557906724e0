//! Pausing a domain and every domain below it (a VMM and its guest): their
//! threads and vCPUs stay where they are (queued, blocked) but the
//! scheduler does not pick them (`sched::eligible`) until resumed; one
//! running when they are paused stops at its CPU's next tick, and that CPU
//! is kicked so that it does not wait for it. Only a domain's supervisor,
//! or one above it, may pause it ([`above`]): a peer holding its
//! capability may not, and a domain cannot pause itself. Resuming resumes
//! the domains below it too, whoever paused them.

use ipc::{CapSlot, Error, ObjectType, Rights};

use super::{Caller, Next};
use crate::obj::pool::Ref;
use crate::state::{Kernel, MAX_DOMAINS};

pub fn domain_pause(k: &mut Kernel, c: Caller, domain: CapSlot, paused: bool) -> Result<Next, Error> {
    let d = k.cap(c.domain, domain, ObjectType::Domain, Rights::CONTROL)?.obj.at;
    if !above(k, c.domain, d) {
        return Err(Error::InsufficientRights);
    }
    // By slot, each domain's chain walked (pausing is rare). A mask of
    // the first 64 slots once stood for "below `d`": a domain past them
    // set the bit of its slot mod 64, so pausing child 64 paused the root
    // and child 65 its own supervisor (found by domains_reaper).
    let of = |k: &Kernel, x: Ref| x == d || above(k, d, x);
    let mut from = 0;
    while let Some(x) = k.domains.next_live(from) {
        from = usize::from(x.index) + 1;
        if of(k, x) {
            if let Some(dom) = k.domains.get_mut(x) {
                dom.paused = paused;
            }
        }
    }
    for cpu in 0..k.current.len() {
        // A thread's own domain: a pause stops no server of theirs
        // (`sched::eligible`).
        let running = k.current[cpu].and_then(|t| k.threads.get(t)).map(|th| th.domain);
        // Paused: a CPU running one of them chooses again. Resumed: every
        // online CPU does (an idle one would otherwise wait for its next
        // tick to see their queued threads; found by the host core's
        // random test). Pausing is rare: the kicks cost nothing that counts.
        let choose = if paused { running.is_some_and(|x| of(k, x)) } else { crate::hw::cpu::is_online(cpu) };
        if choose {
            k.resched[cpu] = true;
            crate::state::kick(cpu);
        }
    }
    Ok(Next::Return([0; 4]))
}

/// Whether `who` supervises `d`, or supervises one that does, and so on (a
/// bounded walk: no chain is longer than the domain pool).
pub fn above(k: &Kernel, who: Ref, d: Ref) -> bool {
    let mut x = d;
    for _ in 0..MAX_DOMAINS {
        match k.domains.get(x).and_then(|dom| dom.supervisor) {
            Some(s) if s == who => return true,
            Some(s) => x = s,
            None => return false,
        }
    }
    false
}
