use super::*;
use iced_x86::code_asm::*;
use proptest::prelude::*;
use std::collections::HashMap;

/// Guest RAM as a sparse set of pages; what has no page is not RAM.
#[derive(Default)]
struct Mem {
    pages: HashMap<u64, Box<[u8; 4096]>>,
    /// The next free page for page tables.
    next: u64,
}

impl GuestMemory for Mem {
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = gpa.wrapping_add(i as u64);
            match self.pages.get(&(a & !0xFFF)) {
                Some(p) => *b = p[(a & 0xFFF) as usize],
                None => return false,
            }
        }
        true
    }
}

impl Mem {
    fn new() -> Self {
        Mem { pages: HashMap::new(), next: 0x10_0000 }
    }

    fn put(&mut self, gpa: u64, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            let a = gpa + i as u64;
            self.pages.entry(a & !0xFFF).or_insert_with(|| Box::new([0; 4096]))[(a & 0xFFF) as usize] = b;
        }
    }

    fn page(&mut self) -> u64 {
        let p = self.next;
        self.next += 0x1000;
        self.put(p, &[0; 8]);
        p
    }

    fn entry(&mut self, table: u64, index: u64) -> u64 {
        let mut b = [0; 8];
        self.read(table + index * 8, &mut b);
        let e = u64::from_le_bytes(b);
        if e & 1 != 0 {
            return e & ADDRESS;
        }
        let t = self.page();
        self.put(table + index * 8, &(t | 3).to_le_bytes());
        t
    }

    /// Maps `linear` to `gpa` in 4-level tables at `cr3`: a page of 4 KiB,
    /// 2 MiB or 1 GiB (`level` 1, 2, 3).
    fn map(&mut self, top: u64, linear: u64, gpa: u64, level: u32) {
        let mut table = top;
        for l in (level + 1..=4).rev() {
            table = self.entry(table, (linear >> (12 + 9 * (l - 1))) & 0x1FF);
        }
        let big = if level > 1 { PAGE_SIZE } else { 0 };
        self.put(table + ((linear >> (12 + 9 * (level - 1))) & 0x1FF) * 8, &(gpa | 3 | big).to_le_bytes());
    }
}

const APIC: u64 = 0xFEE0_0000;

fn cpu64(top: u64, rip: u64) -> Cpu {
    Cpu { regs: [0; 16], rip, bases: [0; 6], bitness: 64, paging: Paging::Long { cr3: top } }
}

/// A 64-bit guest whose code at 0x40_0000 (linear 0xFFFF_FFFF_8000_0000)
/// is `code`, the APIC page mapped at linear 0xFFFF_FFFF_FF5F_C000.
fn guest64(code: &[u8]) -> (Mem, Cpu) {
    let mut m = Mem::new();
    let top = m.page();
    m.map(top, 0xFFFF_FFFF_8000_0000, 0x40_0000, 2);
    m.map(top, 0xFFFF_FFFF_FF5F_C000, APIC, 1);
    m.put(0x40_0000, code);
    (m, cpu64(top, 0xFFFF_FFFF_8000_0000))
}

fn asm64(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    f(&mut a).unwrap();
    a.assemble(0xFFFF_FFFF_8000_0000).unwrap()
}

const VA: u64 = 0xFFFF_FFFF_FF5F_C000;

/// Decodes `code` with rax pointing at the APIC page's `offset`.
fn run(code: &[u8], offset: u64, regs: impl FnOnce(&mut [u64; 16])) -> Result<Access, Refused> {
    let (m, mut cpu) = guest64(code);
    cpu.regs[0] = VA + offset;
    regs(&mut cpu.regs);
    decode(&m, &cpu, APIC + offset)
}

fn w(size: u8, value: u64, len: u8, offset: u64) -> Result<Access, Refused> {
    Ok(Access { gpa: APIC + offset, size, op: Op::Write { value }, len })
}

fn r(size: u8, index: u8, to_size: u8, sign: bool, len: u8, offset: u64) -> Result<Access, Refused> {
    let to = Gpr { index, size: to_size, high: false };
    Ok(Access { gpa: APIC + offset, size, op: Op::Read { to, sign }, len })
}

#[test]
fn stores_of_every_width() {
    let with_rcx = |r: &mut [u64; 16]| r[1] = 0x1122_3344_5566_7788;
    let base = |r: &mut [u64; 16]| {
        r[0] = VA;
        r[1] = 0x1122_3344_5566_7788;
    };
    assert_eq!(run(&asm64(|a| a.mov(dword_ptr(rax + 0x30), ecx)), 0x30, base), w(4, 0x5566_7788, 3, 0x30));
    assert_eq!(
        run(&asm64(|a| a.mov(qword_ptr(rax), rcx)), 0x300, with_rcx),
        w(8, 0x1122_3344_5566_7788, 3, 0x300)
    );
    assert_eq!(run(&asm64(|a| a.mov(word_ptr(rax), cx)), 0x10, with_rcx), w(2, 0x7788, 3, 0x10), "0x66");
    assert_eq!(run(&asm64(|a| a.mov(byte_ptr(rax), cl)), 0x10, with_rcx), w(1, 0x88, 2, 0x10));
    assert_eq!(run(&[0x88, 0x28], 0x10, with_rcx), w(1, 0x77, 2, 0x10), "mov [rax], ch: bits 8-15");
    let with_r9 = |r: &mut [u64; 16]| r[9] = 0xAB;
    assert_eq!(run(&asm64(|a| a.mov(byte_ptr(rax), r9b)), 0x20, with_r9), w(1, 0xAB, 3, 0x20), "REX r9b");
    assert_eq!(run(&[0x40, 0x88, 0x30], 0x20, |r| r[6] = 0x5A), w(1, 0x5A, 3, 0x20), "REX: sil, not dh");
    // Every addressing form lands on the same place.
    let idx = |r: &mut [u64; 16]| {
        r[1] = 7;
        r[3] = VA + 0x100 - 7 * 8 - 0x10;
        r[12] = VA;
    };
    assert_eq!(run(&asm64(|a| a.mov(dword_ptr(rbx + rcx * 8 + 0x10), ecx)), 0x100, idx), w(4, 7, 4, 0x100));
    assert_eq!(
        run(&asm64(|a| a.mov(dword_ptr(r12 + 0xB0), ecx)), 0xB0, idx),
        w(4, 7, 8, 0xB0),
        "SIB + disp32"
    );
}

#[test]
fn immediate_stores() {
    assert_eq!(
        run(&asm64(|a| a.mov(dword_ptr(rax), 0x8000_00FFu32)), 0xB0, |_| {}),
        w(4, 0x8000_00FF, 6, 0xB0)
    );
    assert_eq!(
        run(&asm64(|a| a.mov(qword_ptr(rax), -2)), 0xB0, |_| {}),
        w(8, u64::MAX - 1, 7, 0xB0),
        "imm32 sign-extended"
    );
    assert_eq!(run(&asm64(|a| a.mov(word_ptr(rax), 0xBEEF)), 0xB0, |_| {}), w(2, 0xBEEF, 5, 0xB0));
    assert_eq!(run(&asm64(|a| a.mov(byte_ptr(rax), 0x80)), 0xB0, |_| {}), w(1, 0x80, 3, 0xB0));
}

#[test]
fn loads_and_their_extensions() {
    let none = |_: &mut [u64; 16]| {};
    assert_eq!(
        run(&asm64(|a| a.mov(ecx, dword_ptr(rax + 0x20))), 0x20, |r| r[0] = VA),
        r(4, 1, 4, false, 3, 0x20)
    );
    assert_eq!(run(&asm64(|a| a.mov(r15, qword_ptr(rax))), 0, none), r(8, 15, 8, false, 3, 0));
    assert_eq!(run(&asm64(|a| a.mov(dx, word_ptr(rax))), 0, none), r(2, 2, 2, false, 3, 0));
    let high = Gpr { index: 0, size: 1, high: true };
    assert_eq!(
        run(&[0x8A, 0x20], 0, none),
        Ok(Access { gpa: APIC, size: 1, op: Op::Read { to: high, sign: false }, len: 2 })
    );
    assert_eq!(run(&asm64(|a| a.movzx(eax, byte_ptr(rax))), 0, none), r(1, 0, 4, false, 3, 0));
    assert_eq!(run(&asm64(|a| a.movzx(r8, word_ptr(rax))), 0, none), r(2, 8, 8, false, 4, 0));
    assert_eq!(run(&asm64(|a| a.movsx(ecx, byte_ptr(rax))), 0, none), r(1, 1, 4, true, 3, 0));
    assert_eq!(run(&asm64(|a| a.movsx(rcx, word_ptr(rax))), 0, none), r(2, 1, 8, true, 4, 0));
    assert_eq!(run(&asm64(|a| a.movsxd(rcx, dword_ptr(rax))), 0, none), r(4, 1, 8, true, 3, 0));
    assert_eq!(run(&asm64(|a| a.movzx(cx, byte_ptr(rax))), 0, none), r(1, 1, 2, false, 4, 0));
}

#[test]
fn rip_relative_and_moffs() {
    // mov eax, [rip + d]: the APIC page is 0x7F5F_C000 past the next instruction.
    let next = 0xFFFF_FFFF_8000_0006u64;
    let d = (VA + 0x80).wrapping_sub(next) as u32;
    let mut code = vec![0x8B, 0x05];
    code.extend_from_slice(&d.to_le_bytes());
    assert_eq!(run(&code, 0x80, |_| {}), r(4, 0, 4, false, 6, 0x80));
    // mov eax, [moffs64] / mov [moffs64], eax (A1 / A3).
    let mut code = vec![0xA1];
    code.extend_from_slice(&(VA + 0x20).to_le_bytes());
    assert_eq!(run(&code, 0x20, |_| {}), r(4, 0, 4, false, 9, 0x20));
    let mut code = vec![0x48, 0xA3];
    code.extend_from_slice(&(VA + 0x28).to_le_bytes());
    assert_eq!(run(&code, 0x28, |r| r[0] = 0xDEAD), w(8, 0xDEAD, 10, 0x28));
}

#[test]
fn other_instructions_are_refused() {
    let none = |_: &mut [u64; 16]| {};
    assert_eq!(run(&[0xF3, 0xA4], 0, |r| r[6] = VA), Err(Refused::String), "rep movsb");
    assert_eq!(run(&[0xAB], 0, |r| r[7] = VA), Err(Refused::String), "stosd");
    assert_eq!(run(&asm64(|a| a.lock().or(dword_ptr(rax), ecx)), 0, none), Err(Refused::Locked));
    assert_eq!(run(&asm64(|a| a.xchg(dword_ptr(rax), ecx)), 0, none), Err(Refused::Locked));
    assert_eq!(run(&asm64(|a| a.vmovdqa(ymm0, ptr(rax))), 0, none), Err(Refused::Vector), "AVX");
    assert_eq!(run(&asm64(|a| a.movd(xmm0, dword_ptr(rax))), 0, none), Err(Refused::Vector), "SSE");
    assert_eq!(run(&asm64(|a| a.movq(mm1, qword_ptr(rax))), 0, none), Err(Refused::Vector), "MMX");
    assert_eq!(
        run(&asm64(|a| a.add(dword_ptr(rax), ecx)), 0, none),
        Err(Refused::Unsupported { mnemonic: Mnemonic::Add })
    );
    assert_eq!(
        run(&asm64(|a| a.mov(eax, ecx)), 0, none),
        Err(Refused::Unsupported { mnemonic: Mnemonic::Mov }),
        "no memory operand"
    );
    assert_eq!(
        run(&[0x06], 0, none),
        Err(Refused::Invalid { linear: 0xFFFF_FFFF_8000_0000 }),
        "push es in 64-bit"
    );
    assert_eq!(Refused::Locked.fault(), (13, None));
    assert_eq!(Refused::NotMapped { linear: 5 }.fault(), (14, Some(5)));
}

#[test]
fn the_access_must_be_the_faults() {
    let code = asm64(|a| a.mov(dword_ptr(rax), ecx));
    let (m, mut cpu) = guest64(&code);
    cpu.regs[0] = VA + 0x30;
    assert_eq!(
        decode(&m, &cpu, APIC + 0x40),
        Err(Refused::Elsewhere { linear: VA + 0x30 }),
        "another address"
    );
    cpu.regs[0] = VA + 0xFFE;
    assert_eq!(
        decode(&m, &cpu, APIC + 0xFFE),
        Err(Refused::Elsewhere { linear: VA + 0xFFE }),
        "crosses a page"
    );
    cpu.regs[0] = 0x1234_0000;
    assert_eq!(decode(&m, &cpu, APIC), Err(Refused::NotMapped { linear: 0x1234_0000 }), "operand not mapped");
}

#[test]
fn an_instruction_across_a_page_boundary() {
    let mut m = Mem::new();
    let top = m.page();
    let code = asm64(|a| a.mov(dword_ptr(rax + 0x12345), 0x5566_7788u32)); // 10 bytes
    assert_eq!(code.len(), 10);
    // The code's pages are not contiguous in guest-physical memory.
    m.map(top, 0x7000, 0x20_0000, 1);
    m.map(top, 0x8000, 0x30_0000, 1);
    m.put(0x20_0FFC, &code[..4]);
    m.put(0x30_0000, &code[4..]);
    m.map(top, 0x12000, APIC, 1);
    let mut cpu = cpu64(top, 0x6FFC + 0x1000);
    assert_eq!(decode(&m, &cpu, APIC + 0x345), w(4, 0x5566_7788, 10, 0x345));
    // The second page unmapped: refused at it, for a #PF there.
    let mut m2 = Mem::new();
    let top = m2.page();
    m2.map(top, 0x7000, 0x20_0000, 1);
    m2.put(0x20_0FFC, &code[..4]);
    m2.map(top, 0x12000, APIC, 1);
    cpu.paging = Paging::Long { cr3: top };
    assert_eq!(decode(&m2, &cpu, APIC + 0x345), Err(Refused::NotMapped { linear: 0x8000 }));
    // An instruction that ends on the first page decodes without the second.
    let short = asm64(|a| a.mov(dword_ptr(rax), ecx)); // 2 bytes
    m2.put(0x20_0FFE, &short);
    cpu.rip = 0x7FFE;
    cpu.regs[0] = 0x12345;
    assert_eq!(decode(&m2, &cpu, APIC + 0x345).map(|a| a.len), Ok(2));
}

#[test]
fn the_walks_of_each_paging_mode() {
    let mut m = Mem::new();
    let top = m.page();
    m.map(top, 0xFFFF_8000_0000_0000, 0x4000_0000, 3); // 1 GiB
    m.map(top, 0x20_0000, 0x60_0000, 2); // 2 MiB
    m.map(top, 0x1000, 0xFEC0_0000, 1);
    let long = Paging::Long { cr3: top };
    assert_eq!(translate(&m, long, 0xFFFF_8000_1234_5678), Ok(0x5234_5678));
    assert_eq!(translate(&m, long, 0x2F_FFFF), Ok(0x6F_FFFF));
    assert_eq!(translate(&m, long, 0x1010), Ok(0xFEC0_0010));
    assert_eq!(translate(&m, long, 0x2000), Err(Refused::NotMapped { linear: 0x2000 }));
    assert_eq!(
        translate(&m, long, 0x8000_0000_0000),
        Err(Refused::NotMapped { linear: 0x8000_0000_0000 }),
        "non-canonical"
    );
    assert_eq!(
        translate(&m, Paging::Long { cr3: 0x7000_0000 }, 0),
        Err(Refused::NotMapped { linear: 0 }),
        "tables not in RAM"
    );

    // PAE: a 32-byte PDPT, a 2 MiB page and a 4 KiB one.
    let mut m = Mem::new();
    m.put(0x1000, &[0; 32]);
    m.put(0x1000 + 3 * 8, &(0x2000u64 | 1).to_le_bytes()); // 0xC000_0000..
    m.put(0x2000 + 8, &(0x80_0000u64 | 0x83).to_le_bytes()); // 0xC020_0000: 2 MiB
    m.put(0x2000, &(0x3000u64 | 1).to_le_bytes());
    m.put(0x3000 + 5 * 8, &(0xFEE0_0000u64 | 3).to_le_bytes()); // 0xC000_5000
    let pae = Paging::Pae { cr3: 0x1000 };
    assert_eq!(translate(&m, pae, 0xC021_2345), Ok(0x81_2345));
    assert_eq!(translate(&m, pae, 0xC000_5030), Ok(0xFEE0_0030));
    assert_eq!(translate(&m, pae, 0x1_C000_5030), Ok(0xFEE0_0030), "32-bit linear");
    assert_eq!(translate(&m, pae, 0x4000_0000), Err(Refused::NotMapped { linear: 0x4000_0000 }));

    // 32-bit: 4 KiB pages, and 4 MiB ones with PSE (PSE-36 bits too).
    let mut m = Mem::new();
    m.put(0x1000 + 0x3FB * 4, &(0xFEC0_0000u32 | 0x83 | (0x12 << 13)).to_le_bytes()); // 0xFEC0_0000: 4 MiB
    m.put(0x1000 + 4, &(0x2000u32 | 1).to_le_bytes());
    m.put(0x2000 + 7 * 4, &(0xFEE0_0000u32 | 3).to_le_bytes()); // 0x0040_7000
    let pse = Paging::Bits32 { cr3: 0x1000, pse: true };
    assert_eq!(translate(&m, pse, 0xFEC0_0010), Ok(0x12_FEC0_0010));
    assert_eq!(translate(&m, pse, 0x40_7300), Ok(0xFEE0_0300));
    let nopse = Paging::Bits32 { cr3: 0x1000, pse: false };
    assert_eq!(
        translate(&m, nopse, 0xFEC0_0010),
        Err(Refused::NotMapped { linear: 0xFEC0_0010 }),
        "PS ignored: a table"
    );
    assert_eq!(translate(&m, Paging::Off, 0xFEE0_0300), Ok(0xFEE0_0300));
}

#[test]
fn early_boot_32_and_16_bit_code() {
    // 32-bit protected mode, paging off: mov [eax+4], edx.
    let mut m = Mem::new();
    m.put(0x10_0000, &[0x89, 0x50, 0x04]);
    let mut regs = [0; 16];
    regs[0] = 0xFEE0_00AC;
    regs[2] = 0xFFFF_FFFF_0000_0001;
    let cpu = Cpu { regs, rip: 0x10_0000, bases: [0; 6], bitness: 32, paging: Paging::Off };
    assert_eq!(
        decode(&m, &cpu, 0xFEE0_00B0),
        Ok(Access { gpa: 0xFEE0_00B0, size: 4, op: Op::Write { value: 1 }, len: 3 })
    );
    // The same bytes in 16-bit code are a 16-bit store at [bx+si+4].
    m.put(0xF_0000 + 0x100, &[0x89, 0x50, 0x04]);
    let mut regs = [0; 16];
    regs[3] = 0x10; // bx
    regs[6] = 0x2C; // si
    regs[2] = 0xBEEF;
    let bases = [0, 0xF_0000, 0, 0xFEE0_0000, 0, 0];
    let cpu = Cpu { regs, rip: 0x100, bases, bitness: 16, paging: Paging::Off };
    assert_eq!(
        decode(&m, &cpu, 0xFEE0_0040),
        Ok(Access { gpa: 0xFEE0_0040, size: 2, op: Op::Write { value: 0xBEEF }, len: 3 })
    );
    // A 0x66 prefix in 32-bit code: a 16-bit load.
    m.put(0x10_0010, &[0x66, 0x8B, 0x08]);
    let cpu = Cpu {
        regs: [0xFEC0_0010, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        rip: 0x10_0010,
        bases: [0; 6],
        bitness: 32,
        paging: Paging::Off,
    };
    assert_eq!(decode(&m, &cpu, 0xFEC0_0010).map(|a| (a.size, a.len)), Ok((2, 3)));
}

#[test]
fn reads_complete_into_registers_as_a_cpu_writes_them() {
    let read = |size, to, sign| Access { gpa: 0, size, op: Op::Read { to, sign }, len: 2 };
    let g = |index, size, high| Gpr { index, size, high };
    let mut regs = [0x1111_2222_3333_4444u64; 16];
    read(4, g(0, 4, false), false).complete(&mut regs, 0xAAAA_BBBB_CCCC_DDDD);
    assert_eq!(regs[0], 0xCCCC_DDDD, "32-bit: the top half cleared");
    read(2, g(1, 2, false), false).complete(&mut regs, 0xFFFF_9876);
    assert_eq!(regs[1], 0x1111_2222_3333_9876, "16-bit: the rest kept");
    read(1, g(2, 1, true), false).complete(&mut regs, 0xAB);
    assert_eq!(regs[2], 0x1111_2222_3333_AB44, "dh");
    read(1, g(3, 1, false), false).complete(&mut regs, 0xAB);
    assert_eq!(regs[3], 0x1111_2222_3333_44AB, "bl");
    read(1, g(4, 8, false), true).complete(&mut regs, 0x80);
    assert_eq!(regs[4], 0xFFFF_FFFF_FFFF_FF80, "movsx r64, m8");
    read(2, g(5, 4, false), true).complete(&mut regs, 0x8000);
    assert_eq!(regs[5], 0xFFFF_8000, "movsx r32, m16: a 32-bit write");
    read(1, g(6, 2, false), false).complete(&mut regs, 0x1FF);
    assert_eq!(regs[6], 0x1111_2222_3333_00FF, "movzx r16, m8");
    read(4, g(7, 8, false), true).complete(&mut regs, 0x7FFF_FFFF);
    assert_eq!(regs[7], 0x7FFF_FFFF, "movsxd, positive");
    let before = regs;
    Access { gpa: 0, size: 4, op: Op::Write { value: 1 }, len: 2 }.complete(&mut regs, 5);
    assert_eq!(regs, before, "a write changes no register");
}

proptest! {
    /// Any bytes at RIP (often after an opcode that is emulated), any
    /// registers (often pointing into the APIC page), any mode: decoding
    /// never panics, and what it accepts is a well-formed access to the
    /// faulting address.
    #[test]
    fn hostile_instruction_bytes(
        opcode in prop_oneof![
            Just(vec![]), Just(vec![0x89]), Just(vec![0x8B]), Just(vec![0x88]), Just(vec![0x48, 0x8B]),
            Just(vec![0xC6]), Just(vec![0xC7]), Just(vec![0x0F, 0xB6]), Just(vec![0x48, 0x0F, 0xBF]),
            Just(vec![0x66, 0x89]), Just(vec![0x63]), Just(vec![0xA1]), Just(vec![0xF0, 0x89]),
        ],
        rest in proptest::collection::vec(any::<u8>(), 0..15),
        regs in any::<[u64; 16]>(), near in any::<bool>(), mode in 0u32..4, gpa in any::<u64>(), value in any::<u64>(),
    ) {
        let code: Vec<u8> = opcode.into_iter().chain(rest).take(15).collect();
        let (m, mut cpu) = guest64(&code);
        cpu.regs = if near { regs.map(|r| VA + (r & 0xFF8)) } else { regs };
        cpu.bitness = [16, 32, 64, 0][mode as usize];
        let mut got = decode(&m, &cpu, gpa);
        if let Err(Refused::Elsewhere { linear }) = got {
            // Fault where the instruction goes, if anything is mapped there.
            if let Ok(g) = translate(&m, cpu.paging, linear) {
                got = decode(&m, &cpu, g);
                let crosses = (linear & 0xFFF) + 8 > 0x1000;
                prop_assert!(got.is_ok() || crosses, "{:?}", got);
            }
        }
        if let Ok(a) = got {
            prop_assert!(matches!(a.size, 1 | 2 | 4 | 8));
            prop_assert!((1..=15).contains(&a.len));
            match a.op {
                Op::Write { value } => prop_assert_eq!(value & !mask(a.size), 0),
                Op::Read { to, .. } => {
                    prop_assert!(to.index < 16 && to.size >= a.size);
                    let mut r = cpu.regs;
                    a.complete(&mut r, value);
                    for i in (0..16).filter(|&i| i != usize::from(to.index)) {
                        prop_assert_eq!(r[i], cpu.regs[i], "only the destination changes");
                    }
                }
            }
        }
        // The same bytes as the only thing at a known address, paging off.
        let mut m = Mem::new();
        m.put(0x1000, &code);
        let cpu = Cpu { regs, rip: 0x1000, bases: [0; 6], bitness: 64, paging: Paging::Off };
        let _ = decode(&m, &cpu, gpa);
    }

    /// Page tables of random contents: every walk ends, none panics.
    #[test]
    fn hostile_page_tables(words in proptest::collection::vec(any::<u64>(), 512..1024), linear in any::<u64>(),
                           top in 0u64..0x3000, pse in any::<bool>()) {
        let mut m = Mem::new();
        for (i, w) in words.iter().enumerate() {
            // Entries point back into the same few pages.
            m.put(i as u64 * 8, &((w & !ADDRESS) | (w & 0x1000)).to_le_bytes());
        }
        for paging in [Paging::Off, Paging::Bits32 { cr3: top, pse }, Paging::Pae { cr3: top }, Paging::Long { cr3: top }] {
            let _ = translate(&m, paging, linear);
            let _ = fetch(&m, paging, linear, true);
        }
    }
}
