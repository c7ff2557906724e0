//! One descriptor (virtio 1.2 §2.7.5), read from its table in one access.

use crate::{Fault, GuestMemory};

/// `VIRTQ_DESC_F_NEXT`: the chain goes on at `next`.
pub const NEXT: u16 = 1;
/// `VIRTQ_DESC_F_WRITE`: the buffer is device-writable.
pub const WRITE: u16 = 2;
/// `VIRTQ_DESC_F_INDIRECT`: the buffer is a table of descriptors.
pub const INDIRECT: u16 = 4;

/// A descriptor's fields, copied out of guest memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub flags: u16,
    pub next: u16,
}

/// Descriptor `index` of the table at `table` (the caller checked the
/// index against the table's length).
pub fn read(mem: &impl GuestMemory, table: u64, index: u32) -> Result<Desc, Fault> {
    let mut b = [0u8; 16];
    let at = table.checked_add(16 * u64::from(index)).ok_or(Fault::Memory)?;
    if !mem.read(at, &mut b) {
        return Err(Fault::Memory);
    }
    let [a0, a1, a2, a3, a4, a5, a6, a7, l0, l1, l2, l3, f0, f1, n0, n1] = b;
    Ok(Desc {
        addr: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
        len: u32::from_le_bytes([l0, l1, l2, l3]),
        flags: u16::from_le_bytes([f0, f1]),
        next: u16::from_le_bytes([n0, n1]),
    })
}
