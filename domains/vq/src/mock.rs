//! Guest memory in a vector and a driver that lays out a queue in it: for
//! the host tests of this crate and of the backends (feature `mock`).

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::vec::Vec;

use crate::{GuestMemory, Layout};

/// `len` bytes of guest memory from guest-physical `base`. Every access
/// the queue attempts outside them is counted ([`MockMemory::strays`]),
/// and every write is logged ([`MockMemory::writes`]).
#[derive(Debug)]
pub struct MockMemory {
    base: u64,
    bytes: RefCell<Vec<u8>>,
    strays: Cell<usize>,
    writes: RefCell<Vec<Range<u64>>>,
}

impl MockMemory {
    pub fn new(base: u64, len: usize) -> Self {
        MockMemory {
            base,
            bytes: RefCell::new(vec![0; len]),
            strays: Cell::new(0),
            writes: RefCell::default(),
        }
    }

    /// Accesses attempted outside the memory.
    pub fn strays(&self) -> usize {
        self.strays.get()
    }

    /// The ranges written since the last call.
    pub fn writes(&self) -> Vec<Range<u64>> {
        self.writes.take()
    }

    fn range(&self, gpa: u64, len: usize) -> Option<Range<usize>> {
        let start = usize::try_from(gpa.checked_sub(self.base)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.bytes.borrow().len()).then_some(start..end)
    }

    /// Sets bytes as the driver does (not logged, not counted).
    pub fn poke(&self, gpa: u64, data: &[u8]) {
        let r = self.range(gpa, data.len()).expect("poke inside the memory");
        self.bytes.borrow_mut()[r].copy_from_slice(data);
    }

    pub fn peek(&self, gpa: u64, len: usize) -> Vec<u8> {
        let r = self.range(gpa, len).expect("peek inside the memory");
        self.bytes.borrow()[r].to_vec()
    }

    fn poke_u16(&self, gpa: u64, v: u16) {
        self.poke(gpa, &v.to_le_bytes());
    }

    fn peek_u16(&self, gpa: u64) -> u16 {
        let b = self.peek(gpa, 2);
        u16::from_le_bytes([b[0], b[1]])
    }

    fn peek_u32(&self, gpa: u64) -> u32 {
        let b = self.peek(gpa, 4);
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}

impl GuestMemory for MockMemory {
    fn contains(&self, gpa: u64, len: u64) -> bool {
        usize::try_from(len).ok().and_then(|len| self.range(gpa, len)).is_some()
    }

    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        match self.range(gpa, buf.len()) {
            Some(r) => {
                buf.copy_from_slice(&self.bytes.borrow()[r]);
                true
            }
            None => {
                self.strays.set(self.strays.get() + 1);
                false
            }
        }
    }

    fn write(&self, gpa: u64, data: &[u8]) -> bool {
        match self.range(gpa, data.len()) {
            Some(r) => {
                self.bytes.borrow_mut()[r].copy_from_slice(data);
                self.writes.borrow_mut().push(gpa..gpa + data.len() as u64);
                true
            }
            None => {
                self.strays.set(self.strays.get() + 1);
                false
            }
        }
    }
}

/// One buffer a driver adds: address, length, device-writable.
pub type Buf = (u64, u32, bool);

/// The driver's side of one queue, as a guest's virtio driver keeps it.
#[derive(Debug)]
pub struct Driver {
    pub layout: Layout,
    next_desc: u16,
    avail_idx: u16,
    last_used: u16,
}

impl Driver {
    /// A queue of `size` at the start of `mem`: the table, then the driver
    /// area, then the device area (aligned to 4), all zeroed.
    pub fn new(mem: &MockMemory, size: u16) -> Self {
        let desc = mem.base;
        let avail = desc + 16 * u64::from(size);
        let used = (avail + 6 + 2 * u64::from(size) + 3) & !3;
        mem.poke(desc, &vec![0; (used + 6 + 8 * u64::from(size) - desc) as usize]);
        Driver { layout: Layout { size, desc, avail, used }, next_desc: 0, avail_idx: 0, last_used: 0 }
    }

    /// The first byte after the queue (where tests put buffers).
    pub fn end(&self) -> u64 {
        self.layout.used + 6 + 8 * u64::from(self.layout.size)
    }

    /// Writes descriptor `index` of the table at `table`.
    pub fn set_desc(mem: &MockMemory, table: u64, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut d = [0u8; 16];
        d[..8].copy_from_slice(&addr.to_le_bytes());
        d[8..12].copy_from_slice(&len.to_le_bytes());
        d[12..14].copy_from_slice(&flags.to_le_bytes());
        d[14..].copy_from_slice(&next.to_le_bytes());
        mem.poke(table + 16 * u64::from(index), &d);
    }

    /// Writes `bufs` as a chain at the next free descriptors of the queue's
    /// table (round the table); its head.
    pub fn chain(&mut self, mem: &MockMemory, bufs: &[Buf]) -> u16 {
        let size = self.layout.size;
        let head = self.next_desc;
        for (i, &(addr, len, write)) in bufs.iter().enumerate() {
            let at = self.next_desc;
            let next = (at + 1) % size;
            let flags = (u16::from(write) * 2) | u16::from(i + 1 < bufs.len());
            Self::set_desc(mem, self.layout.desc, at, addr, len, flags, next);
            self.next_desc = next;
        }
        head
    }

    /// Writes `bufs` as an indirect table at `table` and one descriptor of
    /// the queue's pointing at it; its head.
    pub fn indirect(&mut self, mem: &MockMemory, table: u64, bufs: &[Buf]) -> u16 {
        for (i, &(addr, len, write)) in bufs.iter().enumerate() {
            let flags = (u16::from(write) * 2) | u16::from(i + 1 < bufs.len());
            Self::set_desc(mem, table, i as u16, addr, len, flags, i as u16 + 1);
        }
        let head = self.next_desc;
        Self::set_desc(mem, self.layout.desc, head, table, 16 * bufs.len() as u32, 4, 0);
        self.next_desc = (head + 1) % self.layout.size;
        head
    }

    /// Makes `head` available and publishes the index.
    pub fn publish(&mut self, mem: &MockMemory, head: u16) {
        let slot = self.layout.avail + 4 + 2 * u64::from(self.avail_idx % self.layout.size);
        mem.poke_u16(slot, head);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.poke_u16(self.layout.avail + 2, self.avail_idx);
    }

    /// Writes the available index as a hostile driver may.
    pub fn set_avail_idx(&mut self, mem: &MockMemory, idx: u16) {
        self.avail_idx = idx;
        mem.poke_u16(self.layout.avail + 2, idx);
    }

    pub fn set_avail_flags(&self, mem: &MockMemory, flags: u16) {
        mem.poke_u16(self.layout.avail, flags);
    }

    pub fn set_used_event(&self, mem: &MockMemory, event: u16) {
        mem.poke_u16(self.layout.avail + 4 + 2 * u64::from(self.layout.size), event);
    }

    pub fn used_flags(&self, mem: &MockMemory) -> u16 {
        mem.peek_u16(self.layout.used)
    }

    pub fn avail_event(&self, mem: &MockMemory) -> u16 {
        mem.peek_u16(self.layout.used + 4 + 8 * u64::from(self.layout.size))
    }

    /// The used entries (id, len) the device pushed since the last call.
    pub fn used(&mut self, mem: &MockMemory) -> Vec<(u32, u32)> {
        let idx = mem.peek_u16(self.layout.used + 2);
        let mut out = Vec::new();
        while self.last_used != idx {
            let e = self.layout.used + 4 + 8 * u64::from(self.last_used % self.layout.size);
            out.push((mem.peek_u32(e), mem.peek_u32(e + 4)));
            self.last_used = self.last_used.wrapping_add(1);
        }
        out
    }
}
