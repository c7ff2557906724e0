//! A vCPU's state as a VMM reads and changes it (`VcpuStateRead`,
//! `VcpuStateWrite`), the same for VT-x and AMD-V: what an emulator needs
//! that an exit message does not carry (every general register, the
//! control registers and paging mode, the segments), and the checked part
//! of it a VMM may change.
//!
//! Both travel through a buffer in the VMM's memory, little-endian words
//! the kernel copies in or out ([`State::to_bytes`], [`Write::decode`]).
//! General registers are in the order of their x86 encoding (rax, rcx,
//! rdx, rbx, rsp, rbp, rsi, rdi, r8..r15), so that an instruction decoder's
//! register number is the index.
//!
//! Segment attributes are in the 12-bit form of AMD's VMCB (APM Vol. 2
//! 15.5.1), bits 0-7 the descriptor's type, S, DPL and P, bits 8-11 its AVL,
//! L, D/B and G; a segment VT-x calls unusable reads as 0 (not present).

use crate::error::Error;

/// A segment register, or a descriptor table (GDTR, IDTR: selector and
/// attributes 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    pub attrib: u16,
}

impl Segment {
    /// Attribute bit: a 64-bit code segment (L).
    pub const LONG: u16 = 1 << 9;
    /// Attribute bit: 32-bit default operand size (D/B).
    pub const DB: u16 = 1 << 10;
    /// Attribute bit: present.
    pub const PRESENT: u16 = 1 << 7;

    /// The descriptor privilege level.
    pub const fn dpl(&self) -> u8 {
        ((self.attrib >> 5) & 3) as u8
    }

    fn to_words(self) -> [u64; 2] {
        [self.base, u64::from(self.limit) | u64::from(self.selector) << 32 | u64::from(self.attrib) << 48]
    }

    fn from_words([base, w]: [u64; 2]) -> Self {
        Self { base, limit: w as u32, selector: (w >> 32) as u16, attrib: (w >> 48) as u16 }
    }
}

/// The general registers' indices (their x86 encoding).
pub mod reg {
    pub const RAX: usize = 0;
    pub const RCX: usize = 1;
    pub const RDX: usize = 2;
    pub const RBX: usize = 3;
    pub const RSP: usize = 4;
    pub const RBP: usize = 5;
    pub const RSI: usize = 6;
    pub const RDI: usize = 7;
}

/// The segment registers' places in [`State::segments`].
pub mod seg {
    pub const ES: usize = 0;
    pub const CS: usize = 1;
    pub const SS: usize = 2;
    pub const DS: usize = 3;
    pub const FS: usize = 4;
    pub const GS: usize = 5;
    pub const LDTR: usize = 6;
    pub const TR: usize = 7;
}

/// [`State::interruptibility`]: blocking by STI (AMD-V's interrupt shadow
/// reads as this).
pub const BLOCKING_STI: u64 = 1 << 0;
/// [`State::interruptibility`]: blocking by MOV SS or POP SS.
pub const BLOCKING_MOV_SS: u64 = 1 << 1;

/// CR0.PE, CR0.PG, CR4.PAE, EFER.LMA: the paging mode's bits.
pub const CR0_PE: u64 = 1 << 0;
pub const CR0_PG: u64 = 1 << 31;
pub const CR4_PAE: u64 = 1 << 5;
pub const EFER_LMA: u64 = 1 << 10;

/// A vCPU's state, as `VcpuStateRead` gives it: the guest's view (CR0 and
/// CR4 as the guest reads them, EFER without AMD-V's SVME).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15 ([`reg`]).
    pub gprs: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    /// [`BLOCKING_STI`], [`BLOCKING_MOV_SS`].
    pub interruptibility: u64,
    /// es, cs, ss, ds, fs, gs, ldtr, tr ([`seg`]).
    pub segments: [Segment; 8],
    pub gdtr: Segment,
    pub idtr: Segment,
}

/// The words of a [`State`] in its buffer.
pub const STATE_WORDS: usize = 16 + 8 + 10 * 2;
/// The bytes of a `VcpuStateRead` buffer.
pub const STATE_BYTES: u64 = STATE_WORDS as u64 * 8;

/// How the guest translates addresses, from its CR0, CR4 and EFER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// Paging off: linear is physical.
    None,
    /// 32-bit paging (two levels of 4-byte entries).
    Bits32,
    /// PAE paging (three levels of 8-byte entries).
    Pae,
    /// 4-level paging (IA-32e).
    Level4,
}

impl State {
    pub fn to_words(&self) -> [u64; STATE_WORDS] {
        let mut w = [0u64; STATE_WORDS];
        w[..16].copy_from_slice(&self.gprs);
        w[16..24].copy_from_slice(&[
            self.rip,
            self.rflags,
            self.cr0,
            self.cr2,
            self.cr3,
            self.cr4,
            self.efer,
            self.interruptibility,
        ]);
        let tables = self.segments.iter().chain([&self.gdtr, &self.idtr]);
        for (i, s) in tables.enumerate() {
            w[24 + 2 * i..26 + 2 * i].copy_from_slice(&s.to_words());
        }
        w
    }

    pub fn from_words(w: &[u64; STATE_WORDS]) -> Self {
        let mut gprs = [0u64; 16];
        gprs.copy_from_slice(&w[..16]);
        let s = |i: usize| Segment::from_words([w[24 + 2 * i], w[25 + 2 * i]]);
        State {
            gprs,
            rip: w[16],
            rflags: w[17],
            cr0: w[18],
            cr2: w[19],
            cr3: w[20],
            cr4: w[21],
            efer: w[22],
            interruptibility: w[23],
            segments: core::array::from_fn(s),
            gdtr: s(8),
            idtr: s(9),
        }
    }

    /// The buffer's bytes.
    pub fn to_bytes(&self) -> [u8; STATE_BYTES as usize] {
        words_to_bytes(&self.to_words())
    }

    pub fn from_bytes(b: &[u8; STATE_BYTES as usize]) -> Self {
        Self::from_words(&bytes_to_words(b))
    }

    /// The guest's paging mode.
    pub const fn paging(&self) -> Paging {
        if self.cr0 & CR0_PG == 0 || self.cr0 & CR0_PE == 0 {
            Paging::None
        } else if self.efer & EFER_LMA != 0 {
            Paging::Level4
        } else if self.cr4 & CR4_PAE != 0 {
            Paging::Pae
        } else {
            Paging::Bits32
        }
    }

    /// Whether the guest runs 64-bit code now (IA-32e with CS.L).
    pub const fn long_code(&self) -> bool {
        self.efer & EFER_LMA != 0 && self.segments[seg::CS].attrib & Segment::LONG != 0
    }

    /// The default operand and address size of its code, in bytes (2, 4 or 8).
    pub const fn code_size(&self) -> u8 {
        if self.long_code() {
            8
        } else if self.cr0 & CR0_PE != 0 && self.segments[seg::CS].attrib & Segment::DB != 0 {
            4
        } else {
            2
        }
    }
}

fn words_to_bytes<const W: usize, const B: usize>(w: &[u64; W]) -> [u8; B] {
    let mut b = [0u8; B];
    for (chunk, word) in b.chunks_exact_mut(8).zip(w) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    b
}

fn bytes_to_words<const W: usize, const B: usize>(b: &[u8; B]) -> [u64; W] {
    let mut w = [0u64; W];
    for (word, chunk) in w.iter_mut().zip(b.chunks_exact(8)) {
        let mut x = [0u8; 8];
        x.copy_from_slice(chunk);
        *word = u64::from_le_bytes(x);
    }
    w
}

/// [`Write::mask`]: general register `i` is bit `i`.
pub const WRITE_GPRS: u64 = 0xFFFF;
/// [`Write::mask`]: rip.
pub const WRITE_RIP: u64 = 1 << 16;
/// [`Write::mask`]: rflags.
pub const WRITE_RFLAGS: u64 = 1 << 17;
/// Every bit [`Write::mask`] may have.
pub const WRITE_ALL: u64 = WRITE_GPRS | WRITE_RIP | WRITE_RFLAGS;

/// RFLAGS bit 1: reserved, always 1 (set by the kernel whatever is asked).
pub const RFLAGS_FIXED1: u64 = 1 << 1;
/// RFLAGS bits that must be 0: 3, 5, 15 and 22-63 (SDM Vol. 1 3.4.3).
pub const RFLAGS_RESERVED0: u64 = (1 << 3) | (1 << 5) | (1 << 15) | !((1 << 22) - 1);
/// RFLAGS.VM: virtual-8086 mode, which a VMM may not enter this way (the
/// guest's own IRET or task switch may; VT-x refuses it in IA-32e mode and
/// in real mode, so a write of it could only fail the entry).
pub const RFLAGS_VM: u64 = 1 << 17;

/// The words of a [`Write`] in its buffer.
pub const WRITE_WORDS: usize = 1 + 16 + 2;
/// The bytes of a `VcpuStateWrite` buffer.
pub const WRITE_BYTES: u64 = WRITE_WORDS as u64 * 8;

/// What a VMM may change of a vCPU's state (`VcpuStateWrite`): the
/// registers whose [`Write::mask`] bit is set, the rest as they are. Only
/// what is the guest's own and cannot reach the host: its general
/// registers, its rip (canonical) and its rflags (no reserved bit, no VM;
/// bit 1 forced on). Control registers, EFER and segments stay the guest's
/// to change (a VMM that wants another mode emulates the guest's way there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Write {
    /// Which registers: [`WRITE_GPRS`] bits, [`WRITE_RIP`], [`WRITE_RFLAGS`].
    pub mask: u64,
    /// In [`reg`] order, like [`State::gprs`].
    pub gprs: [u64; 16],
    pub rip: u64,
    pub rflags: u64,
}

/// Whether `va` is canonical (48-bit).
pub const fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}

impl Write {
    /// Nothing to change yet.
    pub const fn none() -> Self {
        Write { mask: 0, gprs: [0; 16], rip: 0, rflags: 0 }
    }

    /// Sets general register `i` (0..16) to `v`.
    pub fn gpr(mut self, i: usize, v: u64) -> Self {
        if let Some(r) = self.gprs.get_mut(i) {
            *r = v;
            self.mask |= 1 << i;
        }
        self
    }

    pub fn with_rip(mut self, rip: u64) -> Self {
        self.rip = rip;
        self.mask |= WRITE_RIP;
        self
    }

    pub fn with_rflags(mut self, rflags: u64) -> Self {
        self.rflags = rflags;
        self.mask |= WRITE_RFLAGS;
        self
    }

    pub fn to_bytes(&self) -> [u8; WRITE_BYTES as usize] {
        let mut w = [0u64; WRITE_WORDS];
        w[0] = self.mask;
        w[1..17].copy_from_slice(&self.gprs);
        w[17] = self.rip;
        w[18] = self.rflags;
        words_to_bytes(&w)
    }

    /// Checks a VMM's buffer: unknown mask bits, a non-canonical rip or
    /// rflags with a reserved bit or VM set are `Malformed` (a value the
    /// buffer holds, not an argument: no argument index to name). What is
    /// not asked for is ignored (and given back as 0). Bit 1 of rflags is
    /// set.
    pub fn decode(b: &[u8; WRITE_BYTES as usize]) -> Result<Write, Error> {
        let w: [u64; WRITE_WORDS] = bytes_to_words(b);
        let mask = w[0];
        if mask & !WRITE_ALL != 0 {
            return Err(Error::Malformed);
        }
        let mut out = Write::none();
        out.mask = mask;
        for i in 0..16 {
            if mask & (1 << i) != 0 {
                out.gprs[i] = w[1 + i];
            }
        }
        if mask & WRITE_RIP != 0 {
            if !canonical(w[17]) {
                return Err(Error::Malformed);
            }
            out.rip = w[17];
        }
        if mask & WRITE_RFLAGS != 0 {
            if w[18] & (RFLAGS_RESERVED0 | RFLAGS_VM) != 0 {
                return Err(Error::Malformed);
            }
            out.rflags = w[18] | RFLAGS_FIXED1;
        }
        Ok(out)
    }

    /// `later` on top of this one (two writes before one entry).
    pub fn then(self, later: &Write) -> Write {
        let mut out = self;
        for i in 0..16 {
            if later.mask & (1 << i) != 0 {
                out.gprs[i] = later.gprs[i];
            }
        }
        if later.mask & WRITE_RIP != 0 {
            out.rip = later.rip;
        }
        if later.mask & WRITE_RFLAGS != 0 {
            out.rflags = later.rflags;
        }
        out.mask |= later.mask;
        out
    }

    /// This write applied to a state read before it (what a read sees of
    /// writes not yet entered).
    pub fn apply(&self, s: &mut State) {
        for i in 0..16 {
            if self.mask & (1 << i) != 0 {
                s.gprs[i] = self.gprs[i];
            }
        }
        if self.mask & WRITE_RIP != 0 {
            s.rip = self.rip;
        }
        if self.mask & WRITE_RFLAGS != 0 {
            s.rflags = self.rflags;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(w: [u64; WRITE_WORDS]) -> [u8; WRITE_BYTES as usize] {
        words_to_bytes(&w)
    }

    #[test]
    fn bad_writes_are_malformed_never_an_argument() {
        let mut w = [0u64; WRITE_WORDS];
        w[0] = 1 << 18;
        assert_eq!(Write::decode(&bytes(w)), Err(Error::Malformed), "unknown mask bit");
        w[0] = WRITE_RIP;
        w[17] = 0x8000_0000_0000;
        assert_eq!(Write::decode(&bytes(w)), Err(Error::Malformed), "non-canonical rip");
        w[17] = 0xffff_8000_0000_0000;
        assert!(Write::decode(&bytes(w)).is_ok());
        w[0] = WRITE_RFLAGS;
        for bit in [3, 5, 15, 17, 22, 40, 63] {
            w[18] = 1 << bit;
            assert_eq!(Write::decode(&bytes(w)), Err(Error::Malformed), "rflags bit {bit}");
        }
        w[18] = 0x200;
        assert_eq!(Write::decode(&bytes(w)).map(|x| x.rflags), Ok(0x202), "bit 1 forced");
        // Not asked for: not checked, given back as 0.
        w[0] = 1;
        w[1] = 7;
        w[17] = 0x8000_0000_0000;
        w[18] = u64::MAX;
        assert_eq!(Write::decode(&bytes(w)), Ok(Write::none().gpr(0, 7)));
    }

    #[test]
    fn paging_modes() {
        let mut s = State::default();
        assert_eq!(s.paging(), Paging::None);
        s.cr0 = CR0_PE | CR0_PG;
        assert_eq!(s.paging(), Paging::Bits32);
        s.cr4 = CR4_PAE;
        assert_eq!(s.paging(), Paging::Pae);
        s.efer = EFER_LMA;
        assert_eq!(s.paging(), Paging::Level4);
        assert_eq!(s.code_size(), 2);
        s.segments[seg::CS].attrib = Segment::LONG | Segment::PRESENT;
        assert_eq!(s.code_size(), 8);
    }

    fn segment() -> impl Strategy<Value = Segment> {
        (any::<u64>(), any::<u32>(), any::<u16>(), any::<u16>())
            .prop_map(|(base, limit, selector, attrib)| Segment { base, limit, selector, attrib })
    }

    proptest! {
        #[test]
        fn states_round_trip(w in any::<[u64; 24]>(), segs in prop::array::uniform10(segment())) {
            let mut gprs = [0; 16];
            gprs.copy_from_slice(&w[..16]);
            let s = State {
                gprs, rip: w[16], rflags: w[17], cr0: w[18], cr2: w[19], cr3: w[20], cr4: w[21],
                efer: w[22], interruptibility: w[23],
                segments: core::array::from_fn(|i| segs[i]), gdtr: segs[8], idtr: segs[9],
            };
            prop_assert_eq!(State::from_bytes(&s.to_bytes()), s);
        }

        #[test]
        fn accepted_writes_round_trip(w in any::<[u64; WRITE_WORDS]>()) {
            if let Ok(x) = Write::decode(&bytes(w)) {
                prop_assert_eq!(x.mask & !WRITE_ALL, 0);
                prop_assert!(x.mask & WRITE_RIP == 0 || canonical(x.rip));
                prop_assert!(x.mask & WRITE_RFLAGS == 0 || x.rflags & (RFLAGS_RESERVED0 | RFLAGS_VM) == 0);
                prop_assert_eq!(Write::decode(&x.to_bytes()), Ok(x));
            }
        }
    }
}
