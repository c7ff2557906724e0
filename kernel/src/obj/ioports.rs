//! A range of I/O ports a domain may read and write.

use super::pool::Ref;

pub struct IoPorts {
    pub base: u16,
    pub count: u16,
    pub owner: Ref,
}

impl IoPorts {
    /// Whether `width` bytes at `port` lie in the range.
    pub fn covers(&self, port: u16, width: u16) -> bool {
        let (p, b) = (u32::from(port), u32::from(self.base));
        p >= b && p + u32::from(width) <= b + u32::from(self.count)
    }
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/obj/ioports.rs"]
mod tests;
