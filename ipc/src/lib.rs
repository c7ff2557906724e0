//! Ryokan's ABI, defined once and shared by the kernel, every domain and the
//! host tools: syscall numbers and their arguments, capability slots and
//! rights, the one error enum, what the kernel tells a supervisor, the boot
//! hand-off to the root domain, the system manifest, and the checks every
//! loader applies to an ELF image.
//!
//! `no_std`, no allocation, host-tested.

#![cfg_attr(not(test), no_std)]

/// An ABI enum whose variants' wire values are each written once: the
/// enum itself (`#[repr]` of the given integer), `ALL` (every variant, in
/// the order written) and `from_u64` (`None` for a value no variant has)
/// all come from the one list. Two variants with one value do not compile.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $repr:ty {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr($repr)]
        $vis enum $name {
            $($(#[$vmeta])* $variant = $value,)*
        }

        impl $name {
            /// Every variant, in the order of its definition.
            pub const ALL: [Self; [$($value),*].len()] = [$(Self::$variant),*];

            /// Decodes a wire value.
            pub const fn from_u64(v: u64) -> Option<Self> {
                match v {
                    $($value => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use wire_enum;

/// The little-endian `u32` at `at` in `b`, if `b` holds one there (the
/// block and frame services' headers).
pub(crate) fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub mod block;
pub mod boot;
pub mod cap;
pub mod control;
pub mod elf;
pub mod error;
pub mod event;
pub mod guest;
pub mod manifest;
pub mod msg;
pub mod msr;
pub mod net;
pub mod ring;
pub mod syscall;
pub mod vcpu;
pub mod vstate;

pub use cap::{CapSlot, ObjectType, Rights};
pub use error::Error;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// Checks a [`wire_enum!`]: every variant is listed once and decodes
    /// from its own value, and every other value is refused.
    macro_rules! check {
        ($($t:ty),*) => {$({
            let values: Vec<u64> = <$t>::ALL.iter().map(|&v| v as u64).collect();
            for (&v, &value) in <$t>::ALL.iter().zip(&values) {
                assert_eq!(<$t>::from_u64(value), Some(v), "{v:?}");
            }
            let mut unique = values.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), values.len(), "{} repeats a value", stringify!($t));
            for value in (0..=1024).chain([u64::MAX, 1 << 32, 1 << 8, 257]) {
                assert_eq!(<$t>::from_u64(value).is_some(), values.contains(&value), "{} {value}", stringify!($t));
            }
            proptest!(|(value in any::<u64>())| {
                prop_assert_eq!(<$t>::from_u64(value).is_some(), values.contains(&value));
            });
        })*};
    }

    #[test]
    fn wire_values_round_trip_and_nothing_else_decodes() {
        use crate::{cap::ObjectType, error::Error, syscall::Nr, syscall::Width, vcpu::ExitReason};
        check!(Nr, Error, ExitReason, ObjectType, Width);
        assert_eq!(Error::ALL.len(), 19);
        assert_eq!(ExitReason::ALL.len(), 12);
        assert_eq!(ObjectType::ALL.len(), 11);
        assert_eq!(Width::ALL.map(|w| w as u64), [1, 2, 4]);
    }
}
