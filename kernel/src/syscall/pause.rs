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
    let mut below = 0u64;
    for (x, _) in k.domains.iter() {
        if x == d || above(k, d, x) {
            below |= 1 << x.index;
        }
    }
    let of = |x: Ref| x.index < 64 && below & (1 << x.index) != 0;
    for (x, dom) in k.domains.iter_mut() {
        if of(x) {
            dom.paused = paused;
        }
    }
    for cpu in 0..k.current.len() {
        let running = k.current[cpu].and_then(|t| k.threads.get(crate::sched::payer(k, t)));
        // Paused: a CPU running one of them chooses again. Resumed: every
        // online CPU does (an idle one would otherwise wait for its next
        // tick to see their queued threads; found by the host core's
        // random test). Pausing is rare: the kicks cost nothing that counts.
        let choose =
            if paused { running.is_some_and(|th| of(th.domain)) } else { crate::arch::cpu::is_online(cpu) };
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
