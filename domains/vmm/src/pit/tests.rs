use super::*;
use proptest::prelude::*;

/// The ns at which `n` ticks have passed since time 0.
fn at(n: u64) -> u64 {
    ns_at(n)
}

#[test]
fn the_clock_is_the_pm_timers_third() {
    assert_eq!(ticks(1_000_000_000), 1_193_181, "1.193182 MHz");
    assert_eq!(ticks(3_000_000_000), 3_579_545);
    assert_eq!(ns_at(1), 839, "a tick is 838.1 ns");
    assert_eq!(ticks(ns_at(12345)), 12345);
    assert_eq!(ticks(ns_at(12345) - 1), 12344);
    assert_eq!(ns_at(u64::MAX), u64::MAX, "saturates");
}

#[test]
fn linux_100_hz_tick_in_mode_2() {
    let mut pit = Pit::new();
    assert_eq!(pit.next_irq0(0), None, "nothing programmed");
    pit.write(0, CONTROL, 0x34); // channel 0, lo/hi, mode 2, binary
    assert_eq!(pit.next_irq0(0), None, "no count yet");
    pit.write(0, 0x40, 0x9C);
    pit.write(0, 0x40, 0x2E); // 11932: 100.0 Hz
    assert_eq!(pit.next_irq0(0), Some(10_000_154));
    assert_eq!(pit.next_irq0(10_000_153), Some(10_000_154));
    assert_eq!(pit.next_irq0(10_000_154), Some(at(2 * 11932)), "periodic");
    assert_eq!(pit.next_irq0(at(1000 * 11932)), Some(at(1001 * 11932)), "no drift");
    assert!(pit.out(0, 0));
    assert!(!pit.out(0, at(11931)), "low for the count of 1");
    assert!(pit.out(0, at(11932)));
    // The live count: lo then hi.
    let now = at(932);
    assert_eq!((pit.read(now, 0x40), pit.read(now, 0x40)), (0xF8, 0x2A), "11000 left");
}

#[test]
fn mode_0_fires_once_and_counts_on() {
    let mut pit = Pit::new();
    pit.write(0, CONTROL, 0x30); // channel 0, lo/hi, mode 0
    assert!(!pit.out(0, 0), "mode 0's output starts low");
    pit.write(100, 0x40, 0x10);
    assert_eq!(pit.next_irq0(100), None, "half a count: stopped");
    pit.write(100, 0x40, 0x00); // 16
    assert_eq!(pit.next_irq0(100), Some(at(16)));
    assert!(!pit.out(0, at(15)));
    assert!(pit.out(0, at(16)));
    assert_eq!(pit.next_irq0(at(16)), None, "once");
    assert_eq!(pit.read(at(20), 0x40), 0xFC, "counts on past zero: 0xFFFC");
    assert_eq!(pit.read(at(20), 0x40), 0xFF);
}

#[test]
fn latch_and_byte_access() {
    let mut pit = Pit::new();
    pit.write(0, CONTROL, 0x14); // channel 0, lo only, mode 2
    pit.write(0, 0x40, 200);
    assert_eq!(pit.read(at(50), 0x40), 150);
    pit.write(0, CONTROL, 0x24); // hi only
    pit.write(0, 0x40, 0x01); // 256
    assert_eq!(pit.read(at(6), 0x40), 0x00, "250 = 0x00FA: high byte");
    pit.write(0, CONTROL, 0x34);
    pit.write(0, 0x40, 0x00);
    pit.write(0, 0x40, 0x10); // 0x1000
    pit.write(at(0x10), CONTROL, 0x00); // latch channel 0
    pit.write(at(0x20), CONTROL, 0x00); // a second latch keeps the first
    assert_eq!(pit.read(at(0x30), 0x40), 0xF0, "latched 0x0FF0");
    assert_eq!(pit.read(at(0x40), 0x40), 0x0F);
    assert_eq!(pit.read(at(0x50), 0x40), 0xB0, "live again: 0x0FB0");
}

#[test]
fn read_back_gives_status_and_count() {
    let mut pit = Pit::new();
    pit.write(0, CONTROL, 0xB1); // channel 2, lo/hi, mode 0, BCD
    pit.write(0, CONTROL, 0xE8); // read back channel 2's status
    assert_eq!(pit.read(0, 0x42), 0x71, "out low, null count, lo/hi, mode 0, BCD");
    pit.write(0, PORT_B, 0x01); // gate high
    pit.write(0, 0x42, 0x00);
    pit.write(0, 0x42, 0x10); // BCD 1000
    pit.write(at(1), CONTROL, 0xC8); // count and status
    assert_eq!(pit.read(at(5), 0x42), 0x31, "status first: counting, out low");
    assert_eq!((pit.read(at(5), 0x42), pit.read(at(5), 0x42)), (0x99, 0x09), "BCD 999");
    assert_eq!(pit.read(at(1000), PORT_B) & 0x20, 0x20, "terminal count: out high");
    assert_eq!(pit.read(0, 0x43), 0xFF, "the control port is write-only");
}

#[test]
fn channel_2_is_gated_by_port_0x61() {
    let mut pit = Pit::new();
    // As Linux's pit_calibrate_tsc: gate on, speaker off, mode 0.
    pit.write(0, PORT_B, 0x01);
    pit.write(0, CONTROL, 0xB0);
    pit.write(0, 0x42, 0x2E);
    pit.write(0, 0x42, 0x9B); // 0x9B2E
    assert_eq!(pit.read(at(0x9B2D), PORT_B) & 0x21, 0x01, "counting, out low");
    assert_eq!(pit.read(at(0x9B2E), PORT_B) & 0x21, 0x21, "done");
    // Gate low pauses mode 0, high resumes it.
    pit.write(0, CONTROL, 0xB0);
    pit.write(0, 0x42, 100);
    pit.write(0, 0x42, 0);
    pit.write(at(40), PORT_B, 0x00);
    assert_eq!(pit.read(at(500), 0x42), 60, "paused at 60");
    pit.read(at(500), 0x42);
    pit.write(at(500), PORT_B, 0x01);
    assert_eq!(pit.read(at(559), PORT_B) & 0x20, 0, "59 more ticks: not yet");
    assert_eq!(pit.read(at(560), PORT_B) & 0x20, 0x20);
    // Mode 3 restarts on a rising gate and stops (output high) on a falling one.
    pit.write(0, CONTROL, 0xB6);
    pit.write(0, 0x42, 10);
    pit.write(0, 0x42, 0);
    pit.write(0, PORT_B, 0x00);
    assert!(pit.out(2, at(7)), "stopped: high");
    pit.write(at(100), PORT_B, 0x03);
    assert!(pit.out(2, at(104)));
    assert!(!pit.out(2, at(105)), "square: low for the second half");
    assert!(pit.out(2, at(110)));
    assert_eq!(pit.read(0, PORT_B) & 0x0F, 0x03, "gate and speaker read back");
    assert_eq!(pit.read(REFRESH_NS, PORT_B) & 0x10, 0x10, "refresh toggles");
    assert_eq!(pit.read(2 * REFRESH_NS, PORT_B) & 0x10, 0);
}

#[test]
fn modes_1_and_5_wait_for_a_gate_and_4_pulses() {
    let mut pit = Pit::new();
    pit.write(0, CONTROL, 0xB2); // channel 2, mode 1
    pit.write(0, 0x42, 10);
    pit.write(0, 0x42, 0);
    assert!(pit.out(2, at(20)), "not triggered: high");
    pit.write(at(20), PORT_B, 1);
    assert!(!pit.out(2, at(29)));
    assert!(pit.out(2, at(30)));
    pit.write(0, CONTROL, 0x38); // channel 0, mode 4
    pit.write(0, 0x40, 10);
    pit.write(0, 0x40, 0);
    assert!(pit.out(0, at(9)));
    assert!(!pit.out(0, at(10)), "the strobe");
    assert!(pit.out(0, at(11)));
    assert_eq!(pit.next_irq0(0), Some(at(11)));
    assert_eq!(pit.next_irq0(at(11)), None);
    pit.write(0, CONTROL, 0x3E); // mode 7 is mode 3
    pit.write(0, 0x40, 1);
    pit.write(0, 0x40, 0);
    assert_eq!(pit.next_irq0(0), Some(at(2)), "a count of 1 is taken as 2");
}

#[derive(Clone, Debug)]
enum Op {
    Read(u16),
    Write(u16, u8),
    Wait(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let port = prop_oneof![0x40u16..=0x43, Just(0x61u16), any::<u16>()];
    prop_oneof![
        port.clone().prop_map(Op::Read),
        (port, any::<u8>()).prop_map(|(p, v)| Op::Write(p, v)),
        prop_oneof![0u64..2_000_000, any::<u64>()].prop_map(Op::Wait),
    ]
}

proptest! {
    /// Any sequence of port accesses at any times: no panic or overflow;
    /// IRQ0 is due strictly later, and the output really rises there.
    #[test]
    fn hostile_port_sequences(ops in proptest::collection::vec(op(), 1..200)) {
        let mut pit = Pit::new();
        let mut now = 0u64;
        for op in ops {
            match op {
                Op::Read(p) => { pit.read(now, p); }
                Op::Write(p, v) => pit.write(now, p, v),
                Op::Wait(dt) => now = now.saturating_add(dt),
            }
            if let Some(due) = pit.next_irq0(now) {
                prop_assert!(due > now);
                if due < u64::MAX {
                    prop_assert!(pit.out(0, due), "high at the edge");
                    prop_assert!(!pit.out(0, due - 1) || ticks(due - 1) == ticks(now),
                        "low just before it (unless that is now)");
                }
            }
        }
    }
}
