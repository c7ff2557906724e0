//! Capabilities: what a domain may name, and with which rights.

pub mod table;

pub use table::{Cap, CapTable};
