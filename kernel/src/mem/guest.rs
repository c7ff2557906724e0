//! Reading an instruction as a guest's CPU would: its linear address
//! through the guest's own page tables (none, 32-bit, PAE or 4-level), and
//! the one instruction the kernel decodes itself, `MOV DRn, reg` (for
//! AMD-V without decode assists; see `virt::svm::debugreg`). Pure logic
//! over a reader of guest-physical memory, tested on the host.

/// What selects a guest's paging mode.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
}

const CR0_PG: u64 = 1 << 31;
const CR4_PSE: u64 = 1 << 4;
const CR4_PAE: u64 = 1 << 5;
const EFER_LMA: u64 = 1 << 10;
const PRESENT: u64 = 1;
const PS: u64 = 1 << 7;
const ADDR: u64 = 0x000F_FFFF_FFFF_F000;

impl Paging {
    /// Whether the guest runs in long mode.
    pub fn long(&self) -> bool {
        self.efer & EFER_LMA != 0
    }

    /// The guest-physical address of `linear`, walking the guest's tables
    /// with `read` (the 8 bytes at an 8-aligned guest-physical address).
    pub fn translate(&self, linear: u64, mut read: impl FnMut(u64) -> Option<u64>) -> Option<u64> {
        if self.cr0 & CR0_PG == 0 {
            return Some(linear & 0xFFFF_FFFF);
        }
        if self.long() || self.cr4 & CR4_PAE != 0 {
            let (mut table, mut level) = if self.long() {
                (self.cr3 & ADDR, 4)
            } else {
                let pdpte = read((self.cr3 & 0xFFFF_FFE0) + ((linear >> 30) & 3) * 8)?;
                if pdpte & PRESENT == 0 {
                    return None;
                }
                (pdpte & ADDR, 2)
            };
            loop {
                let shift = 12 + 9 * (level - 1);
                let e = read(table + ((linear >> shift) & 0x1FF) * 8)?;
                if e & PRESENT == 0 {
                    return None;
                }
                if level == 1 || (level <= 3 && e & PS != 0) {
                    let size = 1u64 << shift;
                    return Some((e & ADDR & !(size - 1)) + (linear & (size - 1)));
                }
                (table, level) = (e & ADDR, level - 1);
            }
        }
        // 32-bit paging: 4-byte entries, 4 MiB pages with CR4.PSE.
        let mut read32 = |pa: u64| read(pa & !7).map(|w| (w >> ((pa & 4) * 8)) & 0xFFFF_FFFF);
        let linear = linear & 0xFFFF_FFFF;
        let pde = read32((self.cr3 & 0xFFFF_F000) + (linear >> 22) * 4)?;
        if pde & PRESENT == 0 {
            return None;
        }
        if self.cr4 & CR4_PSE != 0 && pde & PS != 0 {
            return Some((pde & 0xFFC0_0000) + (linear & 0x3F_FFFF));
        }
        let pte = read32((pde & 0xFFFF_F000) + ((linear >> 12) & 0x3FF) * 4)?;
        (pte & PRESENT != 0).then_some((pte & 0xFFFF_F000) + (linear & 0xFFF))
    }
}

/// `MOV DRn, reg` (`0F 23 /r`, after any prefixes; REX in long mode):
/// the debug register, the general register (0 = rax … 15 = r15) and the
/// instruction's length; None if `bytes` hold another instruction.
pub fn mov_to_dr(bytes: &[u8], long: bool) -> Option<(u8, u8, u64)> {
    let mut rex = 0u8;
    let mut i = 0;
    while i < 14 {
        match *bytes.get(i)? {
            0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 | 0x66 | 0x67 | 0xF2 | 0xF3 => rex = 0,
            b @ 0x40..=0x4F if long => rex = b,
            _ => break,
        }
        i += 1;
    }
    let [0x0F, 0x23, modrm] = *bytes.get(i..i + 3)? else { return None };
    let dr = ((modrm >> 3) & 7) | if rex & 4 != 0 { 8 } else { 0 };
    let gpr = (modrm & 7) | if rex & 1 != 0 { 8 } else { 0 };
    Some((dr, gpr, i as u64 + 3))
}

#[cfg(test)]
#[path = "../../../kernel-tests/unit/mem/guest.rs"]
mod tests;
