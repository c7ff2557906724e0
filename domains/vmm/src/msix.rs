//! A PCI function's MSI-X table and pending-bit array (PCI Local Bus 3.0
//! §6.8.2), as the guest programs them, and the interrupts they make.
//!
//! The table is dwords the guest reads and writes (an entry: message
//! address low and high, data, vector control); an entry's message is
//! decoded only when it fires ([`Msix::signal`]): an address outside the
//! local APICs' 0xFEEx_xxxx window, a delivery mode other than fixed or
//! lowest-priority, or a vector below 16 is dropped there, as a bad
//! message would be lost on a real bus. A masked entry (or the whole
//! function masked, or MSI-X not enabled) sets its pending bit instead, and
//! unmasking it sends that message then.

/// The most entries a table here has.
pub const MAX_VECTORS: usize = 8;
/// The bytes of one table entry.
pub const ENTRY: u64 = 16;
/// Message control: MSI-X enable and function mask (§6.8.2.3).
pub const ENABLE: u16 = 1 << 15;
pub const FUNCTION_MASK: u16 = 1 << 14;
/// Vector control's mask bit.
const MASKED: u32 = 1;

/// What an entry's message asks a local APIC to do (Intel SDM Vol. 3A
/// 11.11.1–2: address bits 19:12 the destination, bit 2 logical mode; data
/// bits 7:0 the vector, 10:8 the delivery mode, 15 the trigger).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message {
    pub dest: u8,
    pub logical: bool,
    pub vector: u8,
    pub lowest_priority: bool,
}

impl Message {
    /// The message of `addr` and `data`, if a local APIC would take it.
    pub fn decode(addr: u64, data: u32) -> Option<Message> {
        if addr >> 20 != 0xFEE {
            return None;
        }
        let mode = (data >> 8) & 7;
        let vector = data as u8;
        if mode > 1 || vector < 16 {
            return None;
        }
        Some(Message { dest: (addr >> 12) as u8, logical: addr & 4 != 0, vector, lowest_priority: mode == 1 })
    }
}

/// The table of `vectors` entries and its pending bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msix {
    vectors: usize,
    /// Each entry's four dwords.
    table: [[u32; 4]; MAX_VECTORS],
    pending: u64,
    control: u16,
}

impl Msix {
    /// A table of `vectors` (1 to [`MAX_VECTORS`]) entries, each masked, as
    /// after reset.
    pub fn new(vectors: usize) -> Self {
        let vectors = vectors.clamp(1, MAX_VECTORS);
        Msix { vectors, table: [[0, 0, 0, MASKED]; MAX_VECTORS], pending: 0, control: 0 }
    }

    pub fn vectors(&self) -> usize {
        self.vectors
    }

    /// The table's bytes (for its BAR's size and the PBA's place).
    pub fn table_bytes(&self) -> u64 {
        ENTRY * self.vectors as u64
    }

    /// Message control as the capability shows it: table size − 1, and the
    /// enable and mask bits the guest set.
    pub fn control(&self) -> u16 {
        self.control | (self.vectors as u16 - 1)
    }

    /// The guest wrote message control: only enable and function mask are
    /// writable. Messages pending and no longer masked go out.
    pub fn set_control(&mut self, value: u16) -> heapless::Vec<Message, MAX_VECTORS> {
        self.control = value & (ENABLE | FUNCTION_MASK);
        self.flush()
    }

    fn live(&self) -> bool {
        self.control & (ENABLE | FUNCTION_MASK) == ENABLE
    }

    /// Dword `offset / 4` of the table (other offsets read 0).
    pub fn read_table(&self, offset: u64) -> u32 {
        let (entry, word) = ((offset / ENTRY) as usize, ((offset % ENTRY) / 4) as usize);
        if entry < self.vectors {
            self.table[entry][word]
        } else {
            0
        }
    }

    /// The guest wrote dword `offset / 4` of the table; an unmasked entry
    /// that was pending sends its message.
    pub fn write_table(&mut self, offset: u64, value: u32) -> Option<Message> {
        let (entry, word) = ((offset / ENTRY) as usize, ((offset % ENTRY) / 4) as usize);
        if entry >= self.vectors {
            return None;
        }
        self.table[entry][word] = if word == 3 { value & MASKED } else { value };
        if word == 3 && self.pending & (1 << entry) != 0 {
            return self.signal(entry as u16);
        }
        None
    }

    /// Dword `offset / 4` of the pending-bit array.
    pub fn read_pba(&self, offset: u64) -> u32 {
        match offset / 4 {
            0 => self.pending as u32,
            1 => (self.pending >> 32) as u32,
            _ => 0,
        }
    }

    /// Entry `vector` fires: its message if it may go now (and decodes),
    /// else its pending bit is set. A vector outside the table (the
    /// guest's `NO_VECTOR` among them) sends nothing.
    pub fn signal(&mut self, vector: u16) -> Option<Message> {
        let v = usize::from(vector);
        if v >= self.vectors {
            return None;
        }
        let e = self.table[v];
        if !self.live() || e[3] & MASKED != 0 {
            self.pending |= 1 << v;
            return None;
        }
        self.pending &= !(1 << v);
        Message::decode(u64::from(e[1]) << 32 | u64::from(e[0]), e[2])
    }

    /// The messages pending that may go now.
    fn flush(&mut self) -> heapless::Vec<Message, MAX_VECTORS> {
        let mut out = heapless::Vec::new();
        for v in 0..self.vectors {
            if self.pending & (1 << v) != 0 {
                if let Some(m) = self.signal(v as u16) {
                    let _ = out.push(m); // at most MAX_VECTORS
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(m: &mut Msix, entry: u64, dest: u8, vector: u8) {
        m.write_table(entry * ENTRY, 0xFEE0_0000 | u32::from(dest) << 12);
        m.write_table(entry * ENTRY + 4, 0);
        m.write_table(entry * ENTRY + 8, u32::from(vector));
    }

    #[test]
    fn masked_until_enabled_then_pending_goes_out() {
        let mut m = Msix::new(2);
        assert_eq!(m.control(), 1, "table size - 1");
        program(&mut m, 1, 3, 0x41);
        assert_eq!(m.signal(1), None, "not enabled, entry masked");
        assert_eq!(m.read_pba(0), 2);
        assert!(m.set_control(ENABLE | 0x7FF).is_empty(), "entry still masked");
        assert_eq!(m.control(), ENABLE | 1, "the size is read-only");
        let sent = m.write_table(ENTRY + 12, 0);
        assert_eq!(sent, Some(Message { dest: 3, logical: false, vector: 0x41, lowest_priority: false }));
        assert_eq!(m.read_pba(0), 0);
        assert_eq!(m.signal(1).map(|x| x.vector), Some(0x41));
        // The function mask holds everything back; clearing it sends.
        m.set_control(ENABLE | FUNCTION_MASK);
        assert_eq!(m.signal(1), None);
        assert_eq!(m.set_control(ENABLE).len(), 1);
    }

    #[test]
    fn hostile_entries_send_nothing() {
        let mut m = Msix::new(2);
        m.set_control(ENABLE);
        m.write_table(12, 0);
        for (addr, data) in
            [(0xFEC0_0000u64, 0x41), (0xFEE0_0000, 0x0F), (0xFEE0_0000, 0x241), (0x1_FEE0_0000, 0x41)]
        {
            m.write_table(0, addr as u32);
            m.write_table(4, (addr >> 32) as u32);
            m.write_table(8, data);
            assert_eq!(m.signal(0), None, "{addr:x} {data:x}");
        }
        assert_eq!(m.signal(2), None, "outside the table");
        assert_eq!(m.signal(0xFFFF), None, "NO_VECTOR");
        assert_eq!(m.write_table(0x100, 5), None);
        assert_eq!(m.read_table(0x100), 0);
        assert_eq!(Msix::new(0).vectors(), 1);
        assert_eq!(Msix::new(99).vectors(), MAX_VECTORS);
    }
}
