//! The guest memory a backend was given: the trait the queue reads and
//! writes it through (the backend maps it; the tests fake it).

/// Guest-physical memory as the backend has it mapped. The guest may write
/// it at any time, so an implementation touches it only with volatile (or
/// atomic) accesses and never hands out references into it.
pub trait GuestMemory {
    /// True if every byte of `[gpa, gpa + len)` is in the memory (the end
    /// computed without overflow; `len` 0 is true for any `gpa` up to the
    /// end of the memory).
    fn contains(&self, gpa: u64, len: u64) -> bool;
    /// Fills `buf` from `gpa`; false (nothing promised of `buf`) if any byte
    /// is outside the memory.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool;
    /// Writes `data` at `gpa`; false (nothing written) if any byte is
    /// outside the memory.
    fn write(&self, gpa: u64, data: &[u8]) -> bool;
}

pub(crate) fn read_u16(mem: &impl GuestMemory, gpa: u64) -> Option<u16> {
    let mut b = [0; 2];
    mem.read(gpa, &mut b).then_some(u16::from_le_bytes(b))
}

pub(crate) fn write_u16(mem: &impl GuestMemory, gpa: u64, v: u16) -> bool {
    mem.write(gpa, &v.to_le_bytes())
}
