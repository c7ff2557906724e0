use super::*;
use proptest::prelude::*;

fn select_write(io: &mut IoApic, index: u32, value: u32) -> Option<Delivery> {
    io.write(IOREGSEL, 4, u64::from(index));
    io.write(IOWIN, 4, u64::from(value))
}

fn select_read(io: &mut IoApic, index: u32) -> u32 {
    io.write(IOREGSEL, 4, u64::from(index));
    io.read(IOWIN, 4) as u32
}

/// Routes `line` to `vector` on APIC `dest` (physical, fixed), with `low`'s extra bits.
fn route(io: &mut IoApic, line: u32, vector: u32, dest: u32, low: u32) -> Option<Delivery> {
    select_write(io, 0x11 + 2 * line, dest << 24);
    select_write(io, 0x10 + 2 * line, vector | low)
}

const LEVEL_BIT: u32 = 1 << 15;

#[test]
fn identifies_as_an_82093aa_with_24_entries() {
    let mut io = IoApic::new();
    assert_eq!(select_read(&mut io, 1), 0x0017_0011);
    assert_eq!(select_read(&mut io, 0), 0);
    select_write(&mut io, 0, 0xFFFF_FFFF);
    assert_eq!(select_read(&mut io, 0), 0x0F00_0000, "only bits 24-27 of the ID");
    assert_eq!(select_read(&mut io, 2), 0x0F00_0000, "arbitration ID follows the ID");
    select_write(&mut io, 1, 0);
    assert_eq!(select_read(&mut io, 1), 0x0017_0011, "version is read-only");
    assert_eq!(io.read(IOREGSEL, 4), 1, "IOREGSEL reads back");
    assert_eq!(select_read(&mut io, 0x10), 1 << 16, "entries start masked");
    assert_eq!(select_read(&mut io, 0x3F), 0, "entry 23's high dword");
    assert_eq!(select_read(&mut io, 0x40), 0, "past the table");
    assert_eq!(io.read(0x20, 4), 0, "not a register");
    io.write(IOREGSEL, 1, 0x1234_5601);
    assert_eq!(io.read(IOREGSEL, 4), 0x01, "a byte write selects");
    assert_eq!(io.read(IOWIN, 2), 0x0011, "a half read of the version");
    assert_eq!(io.read(IOWIN + 2, 1), 0x17);
}

#[test]
fn an_edge_line_delivers_once_per_rising_edge() {
    let mut io = IoApic::new();
    assert_eq!(route(&mut io, 4, 0x24, 3, 0), None);
    assert_eq!(select_read(&mut io, 0x18), 0x24);
    assert_eq!(select_read(&mut io, 0x19), 3 << 24);
    let d = Delivery { line: 4, vector: 0x24, mode: Mode::Fixed, logical: false, dest: 3, level: false };
    assert_eq!(io.raise(4), Some(d));
    assert_eq!(io.raise(4), None, "still high: no edge");
    io.lower(4);
    assert_eq!(io.raise(4), Some(d));
    io.lower(4);
    route(&mut io, 4, 0x24, 3, 1 << 16);
    assert_eq!(io.raise(4), None, "masked");
    io.lower(4);
    assert_eq!(route(&mut io, 4, 0x24, 3, 0), None, "an edge seen while masked is lost");
    assert_eq!(io.raise(99), None, "no line 99");
    io.lower(99);
    route(&mut io, 5, 0x25, 0x0F, (1 << 11) | (1 << 8) | (1 << 13));
    let d = io.raise(5).unwrap();
    assert_eq!((d.mode, d.logical, d.dest), (Mode::LowestPriority, true, 0x0F));
    assert_eq!(select_read(&mut io, 0x1A) & (1 << 13), 1 << 13, "polarity kept");
}

#[test]
fn a_level_line_waits_for_eoi_and_reasserts() {
    let mut io = IoApic::new();
    route(&mut io, 9, 0x39, 0, LEVEL_BIT);
    let d = io.raise(9).unwrap();
    assert!(d.level);
    assert_eq!(select_read(&mut io, 0x22) & (1 << 14), 1 << 14, "remote IRR set");
    assert_eq!(io.raise(9), None, "waits for the EOI");
    assert_eq!(io.eoi(0x38), [], "another vector");
    assert_eq!(io.eoi(0x39), [d], "still asserted: delivered again");
    assert_eq!(select_read(&mut io, 0x22) & (1 << 14), 1 << 14);
    io.lower(9);
    assert_eq!(io.eoi(0x39), [], "withdrawn: nothing more");
    assert_eq!(select_read(&mut io, 0x22) & (1 << 14), 0, "remote IRR clear");
    // Masked while asserted: delivered when unmasked.
    route(&mut io, 9, 0x39, 0, LEVEL_BIT | (1 << 16));
    assert_eq!(io.raise(9), None);
    assert_eq!(route(&mut io, 9, 0x39, 0, LEVEL_BIT), Some(d));
    // Remote IRR is read-only, and cleared by a switch to edge.
    select_write(&mut io, 0x22, 0x39 | LEVEL_BIT);
    assert_eq!(select_read(&mut io, 0x22) & (1 << 14), 1 << 14, "a write does not clear it");
    select_write(&mut io, 0x22, 0x39);
    assert_eq!(select_read(&mut io, 0x22) & (1 << 14), 0, "edge: cleared");
}

#[test]
fn eoi_reaches_every_level_entry_of_the_vector() {
    let mut io = IoApic::new();
    route(&mut io, 16, 0x50, 1, LEVEL_BIT);
    route(&mut io, 17, 0x50, 2, LEVEL_BIT);
    route(&mut io, 18, 0x51, 2, LEVEL_BIT);
    let (a, b, c) = (io.raise(16).unwrap(), io.raise(17).unwrap(), io.raise(18).unwrap());
    assert_eq!((a.dest, b.dest, c.vector), (1, 2, 0x51));
    io.lower(17);
    assert_eq!(io.eoi(0x50), [a], "16 still asserted, 17 withdrawn");
    assert_eq!(io.eoi(0x51), [c]);
}

#[test]
fn nmi_and_init_are_edge_whatever_the_trigger_bit() {
    let mut io = IoApic::new();
    route(&mut io, 2, 0, 0, LEVEL_BIT | (4 << 8));
    let d = io.raise(2).unwrap();
    assert_eq!((d.mode, d.level), (Mode::Nmi, false));
    assert_eq!(io.raise(2), None, "no new edge");
    assert_eq!(select_read(&mut io, 0x14) & (1 << 14), 0, "no remote IRR");
    route(&mut io, 3, 0, 0, 3 << 8);
    assert_eq!(io.raise(3).unwrap().mode, Mode::Reserved(3), "said as it is, for the VMM to refuse");
}

#[derive(Clone, Debug)]
enum Op {
    Read(u64, u8),
    Write(u64, u8, u64),
    Select(u32, u32),
    Raise(usize),
    Lower(usize),
    Eoi(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..0x1000, any::<u8>()).prop_map(|(o, s)| Op::Read(o, s)),
        (any::<u64>(), any::<u8>(), any::<u64>()).prop_map(|(o, s, v)| Op::Write(o, s, v)),
        (0u32..0x60, any::<u32>()).prop_map(|(i, v)| Op::Select(i, v)),
        (0usize..30).prop_map(Op::Raise),
        (0usize..30).prop_map(Op::Lower),
        any::<u8>().prop_map(Op::Eoi),
    ]
}

proptest! {
    /// Any sequence of guest accesses and line changes: no panic, the
    /// version never changes, remote IRR only on level entries, and every
    /// delivery comes from an unmasked entry and carries its vector.
    #[test]
    fn hostile_access_sequences(ops in proptest::collection::vec(op(), 1..200)) {
        let mut io = IoApic::new();
        for op in ops {
            let before = io.table;
            let delivered: std::vec::Vec<Delivery> = match op {
                Op::Read(o, s) => { io.read(o, s); vec![] }
                Op::Write(o, s, v) => io.write(o, s, v).into_iter().collect(),
                Op::Select(i, v) => select_write(&mut io, i, v).into_iter().collect(),
                Op::Raise(l) => io.raise(l).into_iter().collect(),
                Op::Lower(l) => { io.lower(l); vec![] }
                Op::Eoi(v) => io.eoi(v).into_iter().collect(),
            };
            for d in &delivered {
                let e = io.table[usize::from(d.line)];
                prop_assert_eq!(e & MASKED, 0);
                prop_assert_eq!(d.vector as u64, e & VECTOR);
                prop_assert_eq!(d.level, level(e));
                if d.level {
                    prop_assert!(e & REMOTE_IRR != 0, "a level delivery waits for its EOI");
                    prop_assert!(before[usize::from(d.line)] & REMOTE_IRR == 0 || matches!(op, Op::Eoi(_)));
                }
            }
            for e in io.table {
                prop_assert!(e & REMOTE_IRR == 0 || level(e) || e & LEVEL != 0);
                prop_assert_eq!(e & (1 << 12), 0, "delivery status is always idle");
                prop_assert_eq!(e & 0x00FF_FFFF_FFFE_0000, 0, "reserved bits stay clear");
            }
            prop_assert_eq!(io.register(REG_VERSION), VERSION);
        }
    }
}
