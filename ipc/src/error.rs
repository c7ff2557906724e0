//! The one error enum of the system. Every syscall fails with one of these,
//! and so does every protocol between domains: no strings, no allocation.

crate::wire_enum! {
    /// Why an operation was refused. `0` on the wire means success, so no variant
    /// is zero.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Error: u64 {
        /// No such syscall.
        UnknownSyscall = 1,
        /// An argument is out of range; the syscall returns which one (1-based).
        InvalidArgument = 2,
        /// The slot is out of range or empty: no capability was ever there.
        InvalidCapability = 3,
        /// The slot held a capability once, or names an object since destroyed
        /// or a grant since revoked.
        StaleCapability = 4,
        /// The capability names an object of another type.
        WrongType = 5,
        /// The capability lacks a right the operation needs.
        InsufficientRights = 6,
        /// The domain's own limit does not cover the request: its memory quota
        /// (which also pays for the kernel's memory objects, port ranges,
        /// endpoints and notifications, a page for every few of them), or its
        /// account's share of the kernel's other objects of this kind (a
        /// quarter of each fixed pool, for a child of the root and every
        /// domain below it together; see `ipc::syscall`).
        QuotaExceeded = 7,
        /// The kernel has no room left for another object of this kind (the
        /// pool itself is full, whoever filled it).
        OutOfObjects = 8,
        /// The capability table is full.
        OutOfSlots = 9,
        /// A user address is not mapped, not user-accessible, or not canonical.
        BadAddress = 10,
        /// An address or size is not page aligned.
        Misaligned = 11,
        /// Something is mapped there already.
        AlreadyMapped = 12,
        /// Nothing is mapped there.
        NotMapped = 13,
        /// The operation would block and the caller asked it not to.
        WouldBlock = 14,
        /// The peer broke its protocol (e.g. moved a ring index wrongly).
        PeerMisbehaved = 15,
        /// The peer is gone.
        PeerDead = 16,
        /// An image or a message is malformed.
        Malformed = 17,
        /// The object is in use and cannot change now.
        Busy = 18,
        /// Not supported on this machine (e.g. guests without VT-x or AMD-V).
        NotSupported = 19,
    }
}

impl Error {
    /// The wire value.
    pub const fn code(self) -> u64 {
        self as u64
    }

    /// Decodes a wire value: `Ok(())` for 0, the error otherwise; an unknown
    /// value (from a newer or broken peer) is `Malformed`.
    pub fn from_code(code: u64) -> Result<(), Error> {
        match code {
            0 => Ok(()),
            // A search of `ALL`, not `from_u64`: the compiler makes it two
            // instructions (a compare and a move), where `from_u64` and
            // `unwrap_or` cost every message call six more.
            c => Err(Self::ALL.iter().copied().find(|e| e.code() == c).unwrap_or(Error::Malformed)),
        }
    }
}

/// Who is at fault when an operation fails (in Hubris' manner): the caller,
/// for a bad argument or capability; nobody, for a resource running out.
impl Error {
    pub const fn is_callers_fault(self) -> bool {
        !matches!(
            self,
            Error::QuotaExceeded
                | Error::OutOfObjects
                | Error::OutOfSlots
                | Error::PeerDead
                | Error::NotSupported
                | Error::WouldBlock
                | Error::Busy
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        for e in Error::ALL {
            assert_ne!(e.code(), 0);
            assert_eq!(Error::from_code(e.code()), Err(e));
        }
        assert_eq!(Error::from_code(0), Ok(()));
        assert_eq!(Error::from_code(9999), Err(Error::Malformed));
        let mut codes: Vec<u64> = Error::ALL.iter().map(|e| e.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), Error::ALL.len());
    }
}
