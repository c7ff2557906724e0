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
mod tests {
    use super::*;

    #[test]
    fn covers_only_its_range() {
        let r = IoPorts { base: 0x3f8, count: 8, owner: Ref { index: 0, generation: 0 } };
        assert!(r.covers(0x3f8, 1) && r.covers(0x3fc, 4));
        assert!(!r.covers(0x3fd, 4) && !r.covers(0x3f7, 1) && !r.covers(0xffff, 4));
    }
}
