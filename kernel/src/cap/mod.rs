//! Capabilities: what a domain may name, and with which rights.

pub mod table;

pub use table::{Cap, CapTable};

/// What a capability names: a kernel object's slot in its pool
/// (`obj::pool`, `obj::window`) and the generation the slot was at when the
/// object was made, so that a name outliving its object is recognisably
/// stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ref {
    pub index: u16,
    pub generation: u32,
}
