//! Shares of the kernel's pools: no domain can take all of one.
//!
//! Every kernel object lives in a fixed pool that all domains share; without
//! a limit one VMM could take all 64 VirqLines and leave every other guest
//! without interrupts (VirqLines are now bounded by their guests' quotas,
//! below). So each pool is shared out by *account*: a domain's
//! objects are charged to its ancestor that the root supervises
//! ([`crate::obj::domain::account`]), so that a domain and everything it
//! made, directly or not, share one account and a domain gains nothing by
//! making children. An account holds at most a quarter of each pool
//! ([`Kind::share`]), so whatever one does, three others still find room.
//! The root (`mgmt`, which starts all the others) is trusted and bounded by
//! the pools alone.
//!
//! An object is charged to the domain it dies with: a thread or vCPU to its
//! domain, a memory object, endpoint or notification to the domain named at
//! its creation, a VirqLine or doorbell to its guest, a port range or timer
//! to its creator, a domain to itself. [`Kernel::admit`], called by every
//! verb that makes one before it does, counts the account's live objects of
//! that kind: nothing is recorded, so nothing can drift, and destroying an
//! object (or its domain) gives its place back. Counting scans a pool (at
//! most 1024 slots) at each creation, which no fast path makes. Interrupt
//! lines (`Irq`) are made only at boot, for the root: no verb makes one.
//!
//! Only threads and vCPUs still have a share. Domains, memory objects,
//! port ranges, endpoints, notifications, VirqLines, doorbells and timers
//! have none (a domain's place is paid by its supervisor): they live in an object window
//! (`obj::window`), whose pages are charged to their owner's memory quota,
//! so the quota bounds them, and one domain's cannot take room another's
//! need (the kinds still here move there one by one).
//!
//! Past its share a creation fails with `QuotaExceeded`, the error of the
//! caller's own limits (as for memory pages); `OutOfObjects` stays the pool
//! itself being full, which only the root's objects or several accounts
//! together can make it.

use ipc::Error;

use super::{Kernel, MAX_DOMAINS, MAX_ENDPOINTS, MAX_IOPORTS, MAX_MEMORY, MAX_NOTIFICATIONS};
use super::{MAX_THREADS, MAX_VIRQLINES};
use crate::obj::domain;
use crate::obj::pool::Ref;

/// The number of accounts each pool is shared among, at least.
const SHARES: usize = 4;

/// The kinds of object a domain can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A domain or a guest.
    Domain,
    /// A thread or a vCPU.
    Thread,
    Memory,
    IoPorts,
    Endpoint,
    Notification,
    VirqLine,
}

impl Kind {
    /// The most objects of this kind one account may hold.
    pub const fn share(self) -> usize {
        let pool = match self {
            Kind::Domain => MAX_DOMAINS,
            Kind::Thread => MAX_THREADS,
            Kind::Memory => MAX_MEMORY,
            Kind::IoPorts => MAX_IOPORTS,
            Kind::Endpoint => MAX_ENDPOINTS,
            Kind::Notification => MAX_NOTIFICATIONS,
            Kind::VirqLine => MAX_VIRQLINES,
        };
        pool / SHARES
    }
}

impl Kernel {
    /// Whether one more `kind` object charged to domain `owner` fits its
    /// account's share; `QuotaExceeded` if not.
    pub fn admit(&self, owner: Ref, kind: Kind) -> Result<(), Error> {
        if kind != Kind::Thread {
            return Ok(()); // its own pages pay for it: its quota is the bound
        }
        let Some(account) = self.account(owner) else { return Ok(()) };
        let held = self.threads.iter().filter(|(_, t)| self.account(t.domain) == Some(account)).count();
        if held < kind.share() {
            Ok(())
        } else {
            Err(Error::QuotaExceeded)
        }
    }

    /// The account domain `d` is charged to; `None` for the root.
    fn account(&self, d: Ref) -> Option<Ref> {
        domain::account(d, self.root, MAX_DOMAINS, |x| self.domains.get(x).and_then(|x| x.supervisor))
    }
}
