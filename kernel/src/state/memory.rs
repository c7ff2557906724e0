//! Memory objects in address spaces: creating, mapping, unmapping with
//! shootdown, destroying; and reading user memory for the kernel.

use ipc::Error;

use super::Kernel;
use crate::hw;
use crate::mem::shootdown::Release;
use crate::obj::domain::DomainState;
use crate::obj::memory::{Backing, Mapping, Memory};
use crate::obj::pool::Ref;

impl Kernel {
    /// Removes mapping `va` of memory `m` from domain `d`'s address space.
    pub fn unmap_memory(&mut self, m: Ref, d: Ref, va: u64) -> Result<(), Error> {
        self.memory.get(m).ok_or(Error::StaleCapability)?;
        let r = self.maps.find(|x| x.memory == m && x.domain == d && x.va == va).ok_or(Error::NotMapped)?;
        self.unmap(r);
        Ok(())
    }

    /// Removes mapping `r`: its record (whatever else fails, so that every
    /// walk of the records that removes them ends), then its pages.
    pub fn unmap(&mut self, r: Ref) {
        let Some(x) = super::refund(&mut self.domains, self.maps.remove(r)) else { return };
        let pages = self.memory.get(x.memory).map_or(0, |mem| mem.pages);
        if let Some(dom) = self.domains.get(x.domain) {
            let (guest, root) = (dom.guest, dom.root);
            for p in 0..pages {
                // The mapping was recorded, so each page is mapped.
                let _ = hw::space::unmap(guest, root, x.va + p * 4096);
            }
            if !self.shootdown(x.domain) {
                self.unflushed(x.memory);
            }
        }
    }

    /// Makes sure no CPU uses stale translations of domain `d`'s address
    /// space: CPUs running it in user mode are interrupted and waited for;
    /// every CPU flushes before running it again. False if a CPU did not
    /// answer: then it may still cache them, and nothing they reached may
    /// be freed.
    /// (The decisions are `mem::shootdown`'s, host-tested.)
    #[must_use]
    pub fn shootdown(&mut self, d: Ref) -> bool {
        let Some(dom) = self.domains.get_mut(d) else { return true };
        dom.tlb_epoch += 1;
        hw::space::shootdown(dom.root.as_u64())
    }

    /// A shootdown of a mapping of memory `m` did not complete: it may still
    /// be reached through a stale translation, and its frames are never
    /// freed (`Backing::after_shootdown`).
    pub(super) fn unflushed(&mut self, m: Ref) {
        if let Some(mem) = self.memory.get_mut(m) {
            mem.backing = mem.backing.after_shootdown(false);
        }
    }

    /// Destroys memory object `m`: unmaps it everywhere, frees its frames,
    /// returns its pages to its owner's quota.
    pub fn destroy_memory(&mut self, m: Ref) {
        if self.memory.get(m).is_none() {
            return;
        }
        while let Some(r) = self.maps.find(|x| x.memory == m) {
            self.unmap(r);
        }
        if let Some((mem, refund)) = self.memory.remove(m) {
            super::refund(&mut self.domains, Some(((), refund)));
            match mem.backing.on_destroy() {
                Release::Keep => return,
                Release::Free => hw::frames::free(mem.base, mem.pages),
                Release::Leak => hw::frames::leak(mem.pages, "memory a CPU may still cache"),
            }
            if let Some(owner) = self.domains.get_mut(mem.owner) {
                owner.quota.release(mem.pages);
            }
        }
    }

    /// Creates a memory object of `pages` owned by (and charged to) `owner`.
    pub fn create_memory(&mut self, owner: Ref, pages: u64) -> Result<Ref, Error> {
        self.domain_mut(owner)?.quota.charge(pages)?;
        let release = |k: &mut Kernel| {
            if let Ok(d) = k.domain_mut(owner) {
                d.quota.release(pages);
            }
        };
        let Some(base) = hw::frames::alloc(pages) else {
            release(self);
            return Err(Error::QuotaExceeded);
        };
        let mem = Memory { base, pages, bytes: pages * 4096, owner, backing: Backing::Allocated, epoch: 0 };
        let made = self.add_memory(mem);
        if made.is_err() {
            hw::frames::free(base, pages);
            release(self);
        }
        made
    }

    /// Maps memory `m` into domain `d` at `va` with `flags`, charging its
    /// record and page tables to `d`.
    pub fn map_memory(
        &mut self,
        m: Ref,
        d: Ref,
        va: u64,
        flags: crate::mem::paging::MapFlags,
    ) -> Result<(), Error> {
        let mem = self.memory.get(m).ok_or(Error::StaleCapability)?;
        let (base, pages) = (mem.base, mem.pages);
        let r = super::make(&mut self.maps, &mut self.domains, d, Mapping { memory: m, domain: d, va })?;
        if let Err((e, flushed)) = self.map_pages(d, va, base, pages, flags, |_| false) {
            super::refund(&mut self.domains, self.maps.remove(r));
            if !flushed {
                self.unflushed(m);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Maps `pages` pages from `base` into domain `d` at `va` with `flags`,
    /// but for those `skip` names (by page number, left unmapped), charging
    /// page tables to `d`. On failure nothing stays mapped, and the flag
    /// says whether every CPU forgot what was (else the frames may never be
    /// freed).
    pub fn map_pages(
        &mut self,
        d: Ref,
        va: u64,
        base: x86_64::PhysAddr,
        pages: u64,
        flags: crate::mem::paging::MapFlags,
        skip: impl Fn(u64) -> bool,
    ) -> Result<(), (Error, bool)> {
        let end = va.checked_add(pages * 4096).filter(|&e| e <= ipc::syscall::USER_END);
        if end.is_none() {
            return Err((Error::BadAddress, true));
        }
        let dom = self.domain(d).map_err(|e| (e, true))?;
        if dom.state == DomainState::Dead {
            return Err((Error::PeerDead, true));
        }
        if !dom.guest && va < ipc::syscall::USER_MIN {
            return Err((Error::BadAddress, true)); // a domain's page 0 stays unmapped
        }
        // Worst case for the page tables this may add.
        let tables_bound = 3 + pages.div_ceil(512) + pages.div_ceil(512 * 512);
        if dom.quota.free() < tables_bound {
            return Err((Error::QuotaExceeded, true));
        }
        let (guest, root) = (dom.guest, dom.root);
        // A guest runs code from its RAM: what it may read, it may execute.
        let flags = if guest { flags | crate::mem::paging::MapFlags::EXEC } else { flags };
        let mut taken = 0;
        for p in (0..pages).filter(|&p| !skip(p)) {
            let r = hw::space::map(guest, root, va + p * 4096, base + p * 4096, flags);
            match r {
                Ok(n) => taken += n,
                Err(e) => {
                    for q in (0..p).filter(|&q| !skip(q)) {
                        let _ = hw::space::unmap(guest, root, va + q * 4096);
                    }
                    if let Ok(dom) = self.domain_mut(d) {
                        dom.quota.used += taken;
                    }
                    let flushed = self.shootdown(d);
                    return Err((
                        match e {
                            crate::mem::paging::MapError::AlreadyMapped => Error::AlreadyMapped,
                            crate::mem::paging::MapError::Misaligned => Error::Misaligned,
                            _ => Error::QuotaExceeded,
                        },
                        flushed,
                    ));
                }
            }
        }
        self.domain_mut(d).map_err(|e| (e, true))?.quota.used += taken;
        Ok(())
    }

    /// Copies `len` bytes from user address `va` of domain `d` into `out`,
    /// page by page through the direct map, after checking each page is
    /// mapped user-readable.
    pub fn copy_from_user(&self, d: Ref, va: u64, out: &mut [u8]) -> Result<(), Error> {
        let root = self.domain(d)?.root;
        let mut done = 0usize;
        while done < out.len() {
            let at = va + done as u64;
            let (pa, flags) = hw::space::translate(root, at).ok_or(Error::BadAddress)?;
            // Device registers (uncached) are no memory the direct map reaches.
            if !flags.contains(crate::mem::paging::MapFlags::USER)
                || flags.contains(crate::mem::paging::MapFlags::UNCACHED)
            {
                return Err(Error::BadAddress);
            }
            let n = ((4096 - (at % 4096)) as usize).min(out.len() - done);
            let src = hw::frames::to_virt(pa);
            // SAFETY: `pa..pa + n` lies in one frame mapped into the domain
            // (so RAM the direct map covers); it is only read, into `out`.
            unsafe { core::ptr::copy_nonoverlapping(src.as_ptr::<u8>(), out[done..].as_mut_ptr(), n) };
            done += n;
        }
        Ok(())
    }

    /// Copies `bytes` to user address `va` of domain `d`, page by page
    /// through the direct map, after checking every page is mapped
    /// user-writable (so a refused copy writes nothing).
    pub fn copy_to_user(&self, d: Ref, va: u64, bytes: &[u8]) -> Result<(), Error> {
        let root = self.domain(d)?.root;
        let writable = crate::mem::paging::MapFlags::USER | crate::mem::paging::MapFlags::WRITE;
        for pass in 0..2 {
            let mut done = 0usize;
            while done < bytes.len() {
                let at = va.checked_add(done as u64).ok_or(Error::BadAddress)?;
                let (pa, flags) = hw::space::translate(root, at).ok_or(Error::BadAddress)?;
                if !flags.contains(writable) || flags.contains(crate::mem::paging::MapFlags::UNCACHED) {
                    return Err(Error::BadAddress);
                }
                let n = ((4096 - (at % 4096)) as usize).min(bytes.len() - done);
                if pass == 1 {
                    let dst = hw::frames::to_virt(pa);
                    // SAFETY: `pa..pa + n` lies in one frame mapped writable
                    // into the domain (RAM the direct map covers, the
                    // domain's own); `bytes` is kernel memory.
                    unsafe {
                        core::ptr::copy_nonoverlapping(bytes[done..].as_ptr(), dst.as_mut_ptr::<u8>(), n)
                    };
                }
                done += n;
            }
        }
        Ok(())
    }
}
