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

impl Ref {
    /// No object: the end of an intrusive list (`Domain::bells`), cheaper
    /// to test on a fast path than an `Option<Ref>`. No pool has a slot at
    /// its index, so no lookup finds it.
    pub const NONE: Ref = Ref { index: u16::MAX, generation: 0 };
}
