//! The decisions of a TLB shootdown, apart from its waiting (host-tested):
//! which CPUs must answer, whether it completed, and what may become of
//! the frames it was for. One that did not complete never frees memory: a
//! CPU that did not answer may still cache translations to it, and reach
//! it after it has gone to someone else.

/// Another CPU, as a shootdown of one address space sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub cpu: usize,
    pub online: bool,
    /// It has the address space loaded, or runs it as its guest.
    pub uses: bool,
}

/// Whether a shootdown completed: `answers(c)` (kick CPU `c`, wait for it
/// boundedly) holds for each online peer that uses the space, asked in
/// order until one does not. The rest are not waited for: the shootdown
/// has failed already, and each wait holds the kernel lock (they flush
/// before running the space again all the same, by its TLB epoch).
pub fn completed(peers: impl IntoIterator<Item = Peer>, answers: impl FnMut(usize) -> bool) -> bool {
    let mut answers = answers;
    peers.into_iter().filter(|p| p.online && p.uses).all(|p| answers(p.cpu))
}

/// What becomes of frames that are let go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Back to the frame allocator.
    Free,
    /// Never freed, by design (a boot module).
    Keep,
    /// Never freed, and counted loudly (`kspace::leak`): a CPU may still
    /// reach them.
    Leak,
}

impl Release {
    /// Frames a CPU may have reached until the shootdown (or address-space
    /// leave) that `completed` or not: freed only if it did.
    pub const fn after(completed: bool) -> Release {
        if completed {
            Release::Free
        } else {
            Release::Leak
        }
    }
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/mem/shootdown.rs"]
mod tests;
