//! Capabilities as a domain names them: a slot in its table, with the slot's
//! generation so that a slot reused after a delete is not confused with the
//! capability it held before; and the rights a capability carries.

use bitflags::bitflags;
use serde::{Deserialize, Serialize};

/// Slots per capability table.
pub const SLOTS: usize = 256;

const INDEX_BITS: u32 = 12;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;

/// A capability slot as user code names it: index in the low 12 bits,
/// the slot's generation above. Forged values are possible and harmless:
/// the kernel checks both parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CapSlot(pub u32);

impl CapSlot {
    /// The slot for `index` at `generation` (wrapping within its 20 bits).
    pub const fn new(index: usize, generation: u32) -> Self {
        Self((index as u32 & INDEX_MASK) | (generation << INDEX_BITS))
    }

    /// The table index.
    pub const fn index(self) -> usize {
        (self.0 & INDEX_MASK) as usize
    }

    /// The slot generation it was issued at.
    pub const fn generation(self) -> u32 {
        self.0 >> INDEX_BITS
    }

    /// The largest generation a slot can carry before wrapping.
    pub const MAX_GENERATION: u32 = (1 << (32 - INDEX_BITS)) - 1;
}

crate::wire_enum! {
    /// The kinds of kernel object a capability can name.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ObjectType: u8 {
        Domain = 1,
        Thread = 2,
        Memory = 3,
        IoPorts = 4,
        Irq = 5,
        Console = 6,
        Endpoint = 7,
        Notification = 8,
        VirqLine = 9,
        Doorbell = 10,
        /// A PCI function (or, the root's, every function of the segment).
        Device = 11,
    }
}

bitflags! {
    /// What a capability allows. A derived or granted capability has the
    /// same rights or fewer, never more.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Rights: u32 {
        /// Memory: map readable. IoPorts: read. Endpoint: receive.
        /// Notification: wait and poll.
        const READ = 1 << 0;
        /// Memory: map writable. IoPorts, Console: write. Endpoint: call.
        /// Notification: signal.
        const WRITE = 1 << 1;
        /// Memory: map executable.
        const EXEC = 1 << 2;
        /// May be handed to another domain.
        const GRANT = 1 << 3;
        /// Domain: create threads in it, map into it, give it capabilities,
        /// destroy it. Irq: wait for and acknowledge the interrupt.
        /// Endpoint, Notification (unbadged): mint badged copies; only the
        /// capability made with the object has it, and a badged copy never.
        const CONTROL = 1 << 4;
        /// May revoke every copy granted from this capability's object.
        /// Only the capability made with the object carries it.
        const REVOKE = 1 << 5;
    }
}

impl Rights {
    /// Decodes a wire value, refusing unknown bits.
    pub const fn from_u64(v: u64) -> Option<Self> {
        if v > u32::MAX as u64 {
            return None;
        }
        Self::from_bits(v as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn slots_round_trip(index in 0usize..SLOTS, generation in 0u32..=CapSlot::MAX_GENERATION) {
            let s = CapSlot::new(index, generation);
            prop_assert_eq!((s.index(), s.generation()), (index, generation));
        }

        #[test]
        fn rights_refuse_unknown_bits(v in any::<u64>()) {
            match Rights::from_u64(v) {
                Some(r) => prop_assert_eq!(u64::from(r.bits()), v),
                None => prop_assert!(v > u64::from(Rights::all().bits())),
            }
        }
    }

    #[test]
    fn object_types_decode() {
        for t in ObjectType::ALL {
            assert_eq!(ObjectType::from_u64(t as u64), Some(t));
        }
        assert_eq!(ObjectType::from_u64(0), None);
        assert_eq!(ObjectType::from_u64(99), None);
    }
}
