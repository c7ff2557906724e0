use super::*;
use crate::apic::{ApicAction, Apics, APIC_BASE_MSR, TSC_DEADLINE_MSR};
use proptest::prelude::*;

const XAPIC: u64 = 0xFEE0_0800;
const X2APIC: u64 = 0xFEE0_0C00;
const BSP: u64 = 0x100;

fn rd(a: &mut Apics, v: usize, offset: u64) -> u32 {
    a.mmio_read(v, offset, 4) as u32
}

fn wr(a: &mut Apics, v: usize, offset: u64, value: u32) -> ApicAction {
    a.mmio_write(v, offset, 4, u64::from(value))
}

#[test]
fn the_page_after_reset() {
    let mut a = Apics::new(2);
    assert_eq!(rd(&mut a, 1, 0x20), 1 << 24, "ID in bits 24-31");
    assert_eq!(rd(&mut a, 0, 0x30), 0x0006_0014, "version");
    assert_eq!(rd(&mut a, 0, 0xF0), 0xFF, "SVR");
    assert_eq!(rd(&mut a, 0, 0xE0), 0xFFFF_FFFF, "DFR: flat");
    assert_eq!(rd(&mut a, 0, 0xD0), 0, "LDR");
    for lvt in [0x2F0, 0x320, 0x330, 0x340, 0x350, 0x360, 0x370] {
        assert_eq!(rd(&mut a, 0, lvt), 1 << 16, "LVT {lvt:#x} masked");
    }
    for isr in (0x100..0x280).step_by(0x10) {
        assert_eq!(rd(&mut a, 0, isr), 0, "ISR/TMR/IRR {isr:#x}");
    }
    assert_eq!(rd(&mut a, 0, 0x24), 0, "the rest of a slot");
    assert_eq!(rd(&mut a, 2, 0x20), u32::MAX, "no vCPU 2");
}

#[test]
fn registers_by_any_access_size() {
    let mut a = Apics::new(1);
    assert_eq!(wr(&mut a, 0, 0x80, 0x1_25), ApicAction::None);
    assert_eq!(rd(&mut a, 0, 0x80), 0x25, "TPR");
    assert_eq!(rd(&mut a, 0, 0xA0), 0x25, "PPR follows TPR");
    assert_eq!(a.mmio_read(0, 0x80, 8), 0x25, "8 bytes: the TPR and its slot's zeros");
    assert_eq!(a.mmio_read(0, 0x80, 1), 0x25);
    a.mmio_write(0, 0x80, 1, 0x40);
    assert_eq!(rd(&mut a, 0, 0x80), 0x40, "a byte write");
    a.mmio_write(0, 0x84, 4, 0xFFFF_FFFF);
    assert_eq!(rd(&mut a, 0, 0x84), 0, "the rest of a slot ignores writes");
    assert_eq!(wr(&mut a, 0, 0x20, 7), ApicAction::None, "ID is read-only");
    assert_eq!(rd(&mut a, 0, 0x20), 0);
    wr(&mut a, 0, 0xD0, 0xFFFF_FFFF);
    assert_eq!(rd(&mut a, 0, 0xD0), 0xFF00_0000, "LDR bits 24-31");
    wr(&mut a, 0, 0xE0, 0);
    assert_eq!(rd(&mut a, 0, 0xE0), 0x0FFF_FFFF, "DFR: cluster");
}

#[test]
fn esr_latches_errors_on_write() {
    let mut a = Apics::new(2);
    assert_eq!(rd(&mut a, 0, 0x40), 0, "no register at 0x40");
    wr(&mut a, 0, 0x010, 1);
    assert_eq!(rd(&mut a, 0, 0x280), 0, "not latched yet");
    wr(&mut a, 0, 0x280, 0);
    assert_eq!(rd(&mut a, 0, 0x280), 1 << 7, "illegal register address");
    wr(&mut a, 0, 0x310, 1 << 24);
    wr(&mut a, 0, 0x300, 0x05); // fixed, vector 5
    wr(&mut a, 0, 0x280, 0);
    assert_eq!(rd(&mut a, 0, 0x280), 1 << 5, "send illegal vector");
    wr(&mut a, 0, 0x280, 0);
    assert_eq!(rd(&mut a, 0, 0x280), 0, "cleared by the next latch");
}

#[test]
fn icr_in_xapic_form() {
    let mut a = Apics::new(3);
    assert_eq!(wr(&mut a, 0, 0x310, 0x0200_0000), ApicAction::None);
    assert_eq!(rd(&mut a, 0, 0x310), 0x0200_0000);
    assert_eq!(wr(&mut a, 0, 0x300, 0x4500), ApicAction::None, "INIT to APIC 2");
    assert_eq!(wr(&mut a, 0, 0x300, 0x4608), ApicAction::Start { vcpu: 2, vector: 8 });
    assert_eq!(rd(&mut a, 0, 0x300), 0x4608, "delivery status idle");
    assert_eq!(wr(&mut a, 0, 0x300, 0x0040), ApicAction::Ipi { targets: 0b100, vector: 0x40 });
    wr(&mut a, 0, 0x310, 0xFF00_0000);
    assert_eq!(wr(&mut a, 0, 0x300, 0x0041), ApicAction::Ipi { targets: 0b111, vector: 0x41 }, "broadcast");
    assert_eq!(
        wr(&mut a, 1, 0x300, 0xC_0042),
        ApicAction::Ipi { targets: 0b101, vector: 0x42 },
        "all but self"
    );
    // Logical, flat: vCPU v's LDR bit v.
    for v in 0..3 {
        wr(&mut a, v, 0xD0, 1 << (24 + v));
    }
    wr(&mut a, 0, 0x310, 0x0600_0000);
    assert_eq!(wr(&mut a, 0, 0x300, 0x0843), ApicAction::Ipi { targets: 0b110, vector: 0x43 });
    // Logical, cluster: cluster 1, members by the low nibble.
    for v in 0..3 {
        wr(&mut a, v, 0xE0, 0x0FFF_FFFF);
        wr(&mut a, v, 0xD0, (0x10 | (1 << v)) << 24);
    }
    wr(&mut a, 0, 0x310, 0x1500_0000);
    assert_eq!(wr(&mut a, 0, 0x300, 0x0844), ApicAction::Ipi { targets: 0b101, vector: 0x44 });
    wr(&mut a, 0, 0x310, 0x2500_0000);
    assert_eq!(
        wr(&mut a, 0, 0x300, 0x0845),
        ApicAction::Ipi { targets: 0, vector: 0x45 },
        "cluster 2: no one"
    );
    assert_eq!(a.targets(0x15, true), 0b101, "the I/O APIC's logical destinations too");
    assert_eq!(a.targets(1, false), 0b010);
    assert_eq!(a.targets(0xFF, false), 0b111);
    assert_eq!(wr(&mut a, 0, 0x300, 0x0400), ApicAction::Unsupported { icr: 0x2500_0000_0000_0400 }, "NMI");
}

#[test]
fn apic_base_follows_the_sdm_state_diagram() {
    let mut a = Apics::new(2);
    let base = |a: &Apics, v| a.read(v, APIC_BASE_MSR);
    assert_eq!(base(&a, 0), Some(XAPIC | BSP));
    assert_eq!(a.write(0, APIC_BASE_MSR, XAPIC | BSP | 0x200), None, "reserved bit 9");
    assert_eq!(a.write(0, APIC_BASE_MSR, (XAPIC | BSP) + 0x1000), None, "relocation");
    assert_eq!(a.write(0, APIC_BASE_MSR, XAPIC | BSP | (1 << 40)), None, "past the physical address");
    assert_eq!(a.write(0, APIC_BASE_MSR, 0xFEE0_0400 | BSP), None, "EXTD without EN: invalid");
    // xAPIC -> x2APIC, and the state is shared.
    wr(&mut a, 0, 0x80, 0x30);
    assert_eq!(a.write(0, APIC_BASE_MSR, X2APIC | BSP), Some(ApicAction::None));
    assert_eq!(a.read(0, 0x808), Some(0x30), "TPR written as xAPIC, read as x2APIC");
    assert_eq!(a.read(0, 0x80D), Some(1), "x2APIC LDR derived");
    assert_eq!(rd(&mut a, 0, 0x80), u32::MAX, "the page is gone in x2APIC mode");
    assert_eq!(wr(&mut a, 0, 0x80, 0), ApicAction::None);
    assert_eq!(a.read(0, 0x808), Some(0x30), "and its writes go nowhere");
    assert_eq!(a.write(0, APIC_BASE_MSR, XAPIC | BSP), None, "x2APIC -> xAPIC directly: #GP");
    assert_eq!(a.write(0, APIC_BASE_MSR, 0xFEE0_0000 | BSP), Some(ApicAction::None), "x2APIC -> disabled");
    assert_eq!(base(&a, 0), Some(0xFEE0_0000 | BSP));
    assert_eq!(a.read(0, 0x808), None, "disabled: no registers");
    assert_eq!(rd(&mut a, 0, 0x80), u32::MAX);
    assert_eq!(a.write(0, APIC_BASE_MSR, X2APIC | BSP), None, "disabled -> x2APIC: #GP");
    assert_eq!(a.write(0, APIC_BASE_MSR, XAPIC | BSP), Some(ApicAction::None), "disabled -> xAPIC");
    assert_eq!(rd(&mut a, 0, 0x80), 0, "the TPR was reset");
    assert_eq!(rd(&mut a, 0, 0xF0), 0xFF, "and the SVR");
    assert_eq!(a.write(1, APIC_BASE_MSR, XAPIC | BSP), None, "vCPU 1 is no BSP");
    assert_eq!(a.write(1, APIC_BASE_MSR, XAPIC), Some(ApicAction::None), "as it reads: no change");
    assert_eq!(a.write(1, APIC_BASE_MSR, 0xFEE0_0000), Some(ApicAction::None), "xAPIC -> disabled");
}

#[test]
fn disabling_stops_an_armed_timer() {
    let mut a = Apics::new(1);
    wr(&mut a, 0, 0x320, 0x30);
    assert!(matches!(wr(&mut a, 0, 0x380, 100), ApicAction::Timer { delay_ns: 200, .. }));
    let off = ApicAction::Timer { vcpu: 0, delay_ns: 0, period_ns: 0 };
    assert_eq!(a.write(0, APIC_BASE_MSR, 0xFEE0_0000 | BSP), Some(off));
    assert_eq!(a.timer_fired(0), None);
}

#[test]
fn one_shot_and_periodic_count_down_in_virtual_time() {
    let mut a = Apics::new(1);
    wr(&mut a, 0, 0x3E0, 0xB); // divide by 1: a tick a ns
    wr(&mut a, 0, 0x320, 0x31);
    a.set_time(1_000, 0);
    let once = ApicAction::Timer { vcpu: 0, delay_ns: 500, period_ns: 0 };
    assert_eq!(wr(&mut a, 0, 0x380, 500), once);
    a.set_time(1_200, 0);
    assert_eq!(rd(&mut a, 0, 0x390), 300);
    a.set_time(1_600, 0);
    assert_eq!(rd(&mut a, 0, 0x390), 0, "expired");
    assert_eq!(a.timer_fired(0), Some(0x31));
    wr(&mut a, 0, 0x3E0, 0x0); // divide by 2
    wr(&mut a, 0, 0x320, 0x2_0032);
    let periodic = ApicAction::Timer { vcpu: 0, delay_ns: 200, period_ns: 200 };
    assert_eq!(wr(&mut a, 0, 0x380, 100), periodic);
    a.set_time(1_600 + 450, 0);
    assert_eq!(rd(&mut a, 0, 0x390), 100 - 225 % 100, "periodic: wraps");
    a.set_time(u64::MAX, 0);
    let _ = rd(&mut a, 0, 0x390);
}

#[test]
fn tsc_deadline_mode() {
    let mut plain = Apics::new(1);
    assert_eq!(plain.read(0, TSC_DEADLINE_MSR), None, "not offered: #GP");
    assert_eq!(wr(&mut plain, 0, 0x320, 0x4_0030), ApicAction::None);
    assert_eq!(rd(&mut plain, 0, 0x320), 0x1_0000, "not offered: the write is dropped");

    let mut a = Apics::with_tsc_deadline(1, 2_000_000); // 2 GHz
    a.set_time(0, 10_000);
    assert_eq!(a.read(0, TSC_DEADLINE_MSR), Some(0));
    assert_eq!(a.write(0, TSC_DEADLINE_MSR, 50_000), Some(ApicAction::None), "ignored outside the mode");
    assert_eq!(a.read(0, TSC_DEADLINE_MSR), Some(0));
    assert_eq!(wr(&mut a, 0, 0x320, 0x4_0030), ApicAction::None);
    assert_eq!(rd(&mut a, 0, 0x320), 0x4_0030);
    let armed = ApicAction::Timer { vcpu: 0, delay_ns: 1_000_000, period_ns: 0 };
    assert_eq!(a.write(0, TSC_DEADLINE_MSR, 10_000 + 2_000_000), Some(armed), "1 ms at 2 GHz");
    assert_eq!(a.read(0, TSC_DEADLINE_MSR), Some(2_010_000));
    assert_eq!(wr(&mut a, 0, 0x380, 1000), ApicAction::None, "the initial count is ignored");
    assert_eq!(rd(&mut a, 0, 0x390), 0, "the current count reads 0");
    assert_eq!(a.timer_fired(0), Some(0x30));
    assert_eq!(a.read(0, TSC_DEADLINE_MSR), Some(0), "cleared as it fires");
    assert_eq!(a.timer_fired(0), None, "once");
    let now = ApicAction::Timer { vcpu: 0, delay_ns: 1, period_ns: 0 };
    assert_eq!(a.write(0, TSC_DEADLINE_MSR, 5), Some(now), "a deadline passed fires at once");
    let off = ApicAction::Timer { vcpu: 0, delay_ns: 0, period_ns: 0 };
    assert_eq!(wr(&mut a, 0, 0x320, 0x0_0030), off, "leaving the mode disarms");
    assert_eq!(a.read(0, TSC_DEADLINE_MSR), Some(0));
    assert_eq!(wr(&mut a, 0, 0x320, 0x6_0030), ApicAction::None, "the reserved mode is dropped");
    assert_eq!(rd(&mut a, 0, 0x320), 0x30);
    assert_eq!(a.write(0, 0x1B, X2APIC | BSP), Some(ApicAction::None));
    assert_eq!(a.write(0, 0x832, 0x6_0030), None, "x2APIC: the reserved mode is #GP");
    assert_eq!(a.write(0, 0x832, 0x4_0030), Some(ApicAction::None));
    assert_eq!(a.write(0, 0x6E0, u64::MAX).map(|x| matches!(x, ApicAction::Timer { .. })), Some(true));
}

#[test]
fn eoi_ends_the_highest_in_service_and_broadcasts_level_ones() {
    let mut a = Apics::new(1);
    a.accepted(0, 0x30, false);
    a.accepted(0, 0x61, true);
    assert_eq!(rd(&mut a, 0, 0x130), 1 << 1, "ISR bit 0x61");
    assert_eq!(rd(&mut a, 0, 0x110), 1 << 16, "ISR bit 0x30");
    assert_eq!(rd(&mut a, 0, 0x1B0), 1 << 1, "TMR bit 0x61");
    assert_eq!(rd(&mut a, 0, 0xA0), 0x60, "PPR from the ISR");
    assert_eq!(wr(&mut a, 0, 0xB0, 0), ApicAction::Eoi { vector: 0x61 });
    assert_eq!(rd(&mut a, 0, 0xA0), 0x30);
    assert_eq!(wr(&mut a, 0, 0xB0, 0), ApicAction::None, "edge: no broadcast");
    assert_eq!(wr(&mut a, 0, 0xB0, 0), ApicAction::None, "nothing in service");
    a.accepted(7, 0x30, false); // no vCPU 7: ignored
}

#[derive(Clone, Debug)]
enum Op {
    MmioRead(usize, u64, u8),
    MmioWrite(usize, u64, u8, u64),
    MsrRead(usize, u32),
    MsrWrite(usize, u32, u64),
    Fired(usize),
    Accepted(usize, u8, bool),
    Time(u64, u64),
}

fn op() -> impl Strategy<Value = Op> {
    let v = 0usize..4;
    let msr = prop_oneof![Just(0x1Bu32), Just(0x6E0u32), 0x800u32..0x900, any::<u32>()];
    let base = prop_oneof![
        Just(XAPIC),
        Just(X2APIC),
        Just(0xFEE0_0000u64),
        Just(XAPIC | BSP),
        Just(X2APIC | BSP),
        Just(0xFEE0_0100u64),
        any::<u64>()
    ];
    prop_oneof![
        (v.clone(), 0u64..0x1010, any::<u8>()).prop_map(|(v, o, s)| Op::MmioRead(v, o, s)),
        (v.clone(), 0u64..0x1010, any::<u8>(), any::<u64>())
            .prop_map(|(v, o, s, x)| Op::MmioWrite(v, o, s, x)),
        (v.clone(), msr.clone()).prop_map(|(v, m)| Op::MsrRead(v, m)),
        (v.clone(), msr, any::<u64>()).prop_map(|(v, m, x)| Op::MsrWrite(v, m, x)),
        (v.clone(), base).prop_map(|(v, b)| Op::MsrWrite(v, 0x1B, b)),
        v.clone().prop_map(Op::Fired),
        (v, any::<u8>(), any::<bool>()).prop_map(|(v, x, l)| Op::Accepted(v, x, l)),
        (any::<u64>(), any::<u64>()).prop_map(|(n, t)| Op::Time(n, t)),
    ]
}

proptest! {
    /// Any sequence of MMIO and MSR accesses, timers and deliveries: no
    /// panic or overflow; the mode is always one IA32_APIC_BASE reads as,
    /// the ID never changes, and every action names vCPUs that exist.
    #[test]
    fn hostile_access_sequences(deadline in any::<bool>(), ops in proptest::collection::vec(op(), 1..150)) {
        let n = 3;
        let mut a = if deadline { Apics::with_tsc_deadline(n, 3_000_000) } else { Apics::new(n) };
        for op in ops {
            let action = match op {
                Op::MmioRead(v, o, s) => { a.mmio_read(v, o, s); None }
                Op::MmioWrite(v, o, s, x) => Some(a.mmio_write(v, o, s, x)),
                Op::MsrRead(v, m) => { a.read(v, m); None }
                Op::MsrWrite(v, m, x) => a.write(v, m, x),
                Op::Fired(v) => { a.timer_fired(v); None }
                Op::Accepted(v, x, l) => { a.accepted(v, x, l); None }
                Op::Time(ns, tsc) => { a.set_time(ns, tsc); None }
            };
            match action {
                Some(ApicAction::Ipi { targets, .. }) => prop_assert!(targets < 1 << n),
                Some(ApicAction::Start { vcpu, .. }) | Some(ApicAction::Timer { vcpu, .. }) => {
                    prop_assert!(usize::from(vcpu) < n)
                }
                _ => {}
            }
            for v in 0..n {
                let mode = a.mode(v).unwrap();
                prop_assert_eq!(a.read(v, 0x1B), Some(base(mode, v == 0)));
                match mode {
                    Mode::X2Apic => prop_assert_eq!(a.read(v, 0x802), Some(v as u64)),
                    Mode::XApic => prop_assert_eq!(a.mmio_read(v, 0x20, 4), (v as u64) << 24),
                    Mode::Disabled => prop_assert_eq!(a.mmio_read(v, 0x20, 4), 0xFFFF_FFFF),
                }
            }
        }
    }
}
