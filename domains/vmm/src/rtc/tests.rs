use super::*;
use proptest::prelude::*;

/// 2024-02-29 13:45:30 UTC, a Thursday, as Unix ns (0.5 s into the second).
const LEAP_DAY: u64 = 1_709_214_330 * 1_000_000_000 + 500_000_000;

fn get(rtc: &mut Rtc, wall: u64, index: u8) -> u8 {
    rtc.write(wall, INDEX, index);
    rtc.read(wall, DATA)
}

fn put(rtc: &mut Rtc, wall: u64, index: u8, value: u8) {
    rtc.write(wall, INDEX, index);
    rtc.write(wall, DATA, value);
}

fn clock(rtc: &mut Rtc, wall: u64) -> [u8; 8] {
    [SECONDS, MINUTES, HOURS, WEEKDAY, DAY, MONTH, YEAR, CENTURY].map(|i| get(rtc, wall, i))
}

#[test]
fn reads_the_wall_clock_in_bcd_24h() {
    let mut rtc = Rtc::new(Machine::default());
    assert_eq!(clock(&mut rtc, LEAP_DAY), [0x30, 0x45, 0x13, 5, 0x29, 0x02, 0x24, 0x20]);
    assert_eq!(get(&mut rtc, LEAP_DAY, STATUS_A), 0x26);
    assert_eq!(get(&mut rtc, LEAP_DAY, STATUS_B), 0x02);
    assert_eq!(get(&mut rtc, LEAP_DAY, STATUS_D), 0x80);
    assert_eq!(get(&mut rtc, LEAP_DAY, STATUS_C), 0);
    assert_eq!(clock(&mut rtc, 946_684_799_000_000_000), [0x59, 0x59, 0x23, 6, 0x31, 0x12, 0x99, 0x19]);
    assert_eq!(clock(&mut rtc, 946_684_800_000_000_000), [0, 0, 0, 7, 0x01, 0x01, 0x00, 0x20], "Y2K");
    assert_eq!(clock(&mut rtc, 0), [0, 0, 0, 5, 1, 1, 0x70, 0x19], "1970-01-01, a Thursday");
    assert_eq!(rtc.now(u64::MAX).year, 2554, "the end of u64 ns");
}

#[test]
fn binary_and_12_hour_modes() {
    let mut rtc = Rtc::new(Machine::default());
    put(&mut rtc, 0, STATUS_B, B_BINARY); // binary, 12-hour
    assert_eq!(clock(&mut rtc, LEAP_DAY), [30, 45, 0x80 | 1, 5, 29, 2, 24, 20], "1 PM");
    let midnight = LEAP_DAY - (13 * 3600 + 45 * 60 + 30) * 1_000_000_000;
    assert_eq!(get(&mut rtc, midnight, HOURS), 12, "12 AM");
    assert_eq!(get(&mut rtc, midnight + 12 * 3_600_000_000_000, HOURS), 0x80 | 12, "12 PM");
    put(&mut rtc, 0, STATUS_B, 0); // BCD, 12-hour
    assert_eq!(get(&mut rtc, LEAP_DAY, HOURS), 0x81);
    assert_eq!(get(&mut rtc, midnight + 23 * 3_600_000_000_000, HOURS), 0x91, "11 PM in BCD");
}

#[test]
fn the_guest_sets_the_clock_and_it_runs_from_there() {
    let mut rtc = Rtc::new(Machine::default());
    put(&mut rtc, LEAP_DAY, STATUS_B, B_SET | B_24H);
    assert_eq!(get(&mut rtc, LEAP_DAY + 5_000_000_000, SECONDS), 0x30, "held while SET");
    assert_eq!(get(&mut rtc, LEAP_DAY, STATUS_A) & A_UIP, 0, "no update while SET");
    for (i, v) in [(SECONDS, 0x00), (MINUTES, 0x00), (HOURS, 0x08), (DAY, 0x01), (MONTH, 0x03), (YEAR, 0x25)]
    {
        put(&mut rtc, LEAP_DAY, i, v);
    }
    assert_eq!(clock(&mut rtc, LEAP_DAY + 9_000_000_000), [0, 0, 0x08, 7, 0x01, 0x03, 0x25, 0x20]);
    let go = LEAP_DAY + 10_000_000_000;
    put(&mut rtc, go, STATUS_B, B_24H);
    assert_eq!(clock(&mut rtc, go + 61_000_000_000), [0x01, 0x01, 0x08, 7, 0x01, 0x03, 0x25, 0x20], "runs");
    // A write without SET takes effect at once and the clock goes on.
    put(&mut rtc, go, MINUTES, 0x61); // BCD "61": the next hour's first minute
    assert_eq!(get(&mut rtc, go, HOURS), 0x09);
    assert_eq!(get(&mut rtc, go, MINUTES), 0x01);
    put(&mut rtc, go, CENTURY, 0x21);
    assert_eq!(get(&mut rtc, go, YEAR), 0x25);
    assert_eq!(rtc.now(go).year, 2125);
    put(&mut rtc, go, WEEKDAY, 1);
    assert_eq!(get(&mut rtc, go, WEEKDAY), 5, "computed: 2125-03-01 is a Thursday");
}

#[test]
fn fields_written_under_set_are_taken_together() {
    let mut rtc = Rtc::new(Machine::default());
    put(&mut rtc, LEAP_DAY, STATUS_B, B_SET | B_24H);
    put(&mut rtc, LEAP_DAY, DAY, 0x31); // the 31st, while the month is still February
    assert_eq!(get(&mut rtc, LEAP_DAY, DAY), 0x31, "held as written");
    put(&mut rtc, LEAP_DAY, MONTH, 0x01);
    put(&mut rtc, LEAP_DAY, STATUS_B, B_24H);
    assert_eq!(clock(&mut rtc, LEAP_DAY)[4..6], [0x31, 0x01], "January 31st, not March 2nd");
}

#[test]
fn update_in_progress_is_the_end_of_each_second() {
    let mut rtc = Rtc::new(Machine::default());
    let second = 1_709_214_330 * 1_000_000_000u64;
    assert_eq!(get(&mut rtc, second + 999_755_999, STATUS_A), 0x26);
    assert_eq!(get(&mut rtc, second + 999_756_000, STATUS_A), 0xA6);
    assert_eq!(get(&mut rtc, second + 999_999_999, STATUS_A), 0xA6);
    assert_eq!(get(&mut rtc, second + 1_000_000_000, STATUS_A), 0x26);
    put(&mut rtc, second, STATUS_A, 0xFF);
    assert_eq!(get(&mut rtc, second, STATUS_A), 0x7F, "UIP is read-only");
}

#[test]
fn nmi_mask_and_cmos_memory() {
    let mut rtc = Rtc::new(Machine { below_4g: 3 << 30, above_4g: 5u64 << 30, vcpus: 2 });
    rtc.write(0, INDEX, 0x8F);
    assert!(rtc.nmi_masked());
    assert_eq!(rtc.read(0, INDEX), 0xFF, "the index port is write-only");
    rtc.write(0, INDEX, 0x0F);
    assert!(!rtc.nmi_masked());
    let word = |rtc: &mut Rtc, i: u8| u16::from(get(rtc, 0, i)) | u16::from(get(rtc, 0, i + 1)) << 8;
    assert_eq!(word(&mut rtc, 0x15), 640);
    assert_eq!(word(&mut rtc, 0x17), 0xFFFF, "capped");
    assert_eq!(word(&mut rtc, 0x30), 0xFFFF);
    assert_eq!(word(&mut rtc, 0x34), (((3u64 << 30) - (16 << 20)) >> 16) as u16);
    assert_eq!(
        [0x5B, 0x5C, 0x5D].map(|i| get(&mut rtc, 0, i)),
        [0x00, 0x40, 0x01],
        "5 GiB: 0x14000 blocks of 64 KiB"
    );
    assert_eq!(get(&mut rtc, 0, 0x5F), 1, "two vCPUs");
    let sum: u16 = (0x10..0x2E).map(|i| u16::from(get(&mut rtc, 0, i))).sum();
    assert_eq!(u16::from(get(&mut rtc, 0, 0x2E)) << 8 | u16::from(get(&mut rtc, 0, 0x2F)), sum);
    let small = Rtc::new(Machine { below_4g: 32 << 20, above_4g: 0, vcpus: 1 });
    let mut small = small;
    assert_eq!(word(&mut small, 0x17), 31 * 1024);
    assert_eq!(word(&mut small, 0x34), 256);
    put(&mut small, 0, 0x40, 0xA5);
    assert_eq!(get(&mut small, 0, 0x40), 0xA5, "the guest's own byte");
    put(&mut small, 0, 0xC0, 0x5A); // index bit 7 is the NMI mask: byte 0x40
    assert_eq!(get(&mut small, 0, 0x40), 0x5A);
}

#[test]
fn calendar_round_trips() {
    for s in [0i64, 59, 86_399, 86_400, 951_782_400, 1_709_214_330, 4_107_542_400, MAX_SECONDS] {
        let t = civil(s);
        let back =
            days(t) * DAY_S + i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second);
        assert_eq!(back, s, "{t:?}");
    }
    assert_eq!(civil(951_782_400), Time { year: 2000, month: 2, day: 29, hour: 0, minute: 0, second: 0 });
}

#[derive(Clone, Debug)]
enum Op {
    Read(u16),
    Write(u16, u8),
    Wait(u64),
}

proptest! {
    /// Any accesses at any times: no panic or overflow, and the clock's
    /// registers always read as a valid time in the current mode.
    #[test]
    fn hostile_accesses(start in any::<u64>(), ops in proptest::collection::vec(prop_oneof![
        prop_oneof![Just(0x70u16), Just(0x71u16), any::<u16>()].prop_map(Op::Read),
        (prop_oneof![Just(0x70u16), Just(0x71u16)], any::<u8>()).prop_map(|(p, v)| Op::Write(p, v)),
        any::<u64>().prop_map(Op::Wait),
    ], 1..100)) {
        let mut rtc = Rtc::new(Machine { below_4g: start, above_4g: start, vcpus: start as u8 });
        let mut wall = start;
        for op in ops {
            match op {
                Op::Read(p) => { rtc.read(wall, p); }
                Op::Write(p, v) => rtc.write(wall, p, v),
                Op::Wait(dt) => wall = wall.saturating_add(dt % (1 << 50)),
            }
            let t = rtc.now(wall);
            let index = rtc.index;
            let b = get(&mut rtc, wall, STATUS_B);
            prop_assert!((1..=12).contains(&t.month) && (1..=31).contains(&t.day));
            prop_assert!(t.hour < 24 && t.minute < 60 && t.second < 60 && (1970..=9999).contains(&t.year));
            let s = get(&mut rtc, wall, SECONDS);
            if b & B_SET != 0 {
                // Held as written, whatever was written.
            } else if b & B_BINARY == 0 {
                prop_assert!(s >> 4 < 6 && s & 15 < 10, "BCD seconds {:#x}", s);
            } else {
                prop_assert!(s < 60);
            }
            prop_assert!((1..=7).contains(&get(&mut rtc, wall, WEEKDAY)));
            // The next rise is later, and only timed while the line is low.
            let (low, next) = (!rtc.irq(wall), rtc.next_irq(wall));
            prop_assert!(next.is_none_or(|n| low && (n > wall || n == u64::MAX)), "{:?} at {}", next, wall);
            rtc.write(wall, INDEX, index | if rtc.nmi_masked() { 0x80 } else { 0 });
        }
    }
}

#[test]
fn the_wall_clock_runs_on_by_the_tsc_from_mgmts_reading() {
    let leap =
        ipc::guest::WallClock { year: 2024, month: 2, day: 29, hour: 13, minute: 45, second: 30, tsc: 5_000 };
    let s = 1_709_214_330 * 1_000_000_000;
    assert_eq!(wall_ns(&leap, 5_000, 1_000), s, "at the reading");
    assert_eq!(wall_ns(&leap, 5_000 + 2_500, 1_000), s + 2_500_000, "2,500 ticks of 1 MHz later");
    assert_eq!(wall_ns(&leap, 4_000, 1_000), s - 1_000_000, "a TSC before the reading counts back");
    assert_eq!(wall_ns(&leap, 5_000 + 3 * 2_000_000_000, 2_000_000), s + 3_000_000_000, "3 s at 2 GHz");
    assert_eq!(wall_ns(&leap, u64::MAX, 0), s, "no rate: no time since");
    assert_eq!(wall_ns(&leap, u64::MAX, 1), u64::MAX, "held at the end of u64 ns");
    let epoch =
        ipc::guest::WallClock { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0, tsc: 10 };
    assert_eq!(wall_ns(&epoch, 0, 1), 0, "never before 1970");
    let mut rtc = Rtc::new(Machine::default());
    assert_eq!(
        clock(&mut rtc, wall_ns(&leap, 5_000, 1_000) + LEAP_DAY % 1_000_000_000),
        clock(&mut rtc, LEAP_DAY)
    );
}

/// A second's start (2024-02-29 13:45:30.0), as Unix ns.
const SECOND: u64 = LEAP_DAY - 500_000_000;
const S: u64 = 1_000_000_000;

/// Runs the clock from `from` for `ns` as a guest's handler would: at each
/// rise of the IRQ line it reads Status C. The times the line rose at.
fn serve(rtc: &mut Rtc, from: u64, ns: u64) -> Vec<u64> {
    let mut at = Vec::new();
    let mut now = from;
    while let Some(next) = rtc.next_irq(now).filter(|&n| n <= from + ns) {
        assert!(next > now, "the next rise is later than now");
        assert!(!rtc.irq(next - 1), "not before it is due");
        assert!(rtc.irq(next), "due at {next}");
        at.push(next);
        assert_ne!(get(rtc, next, STATUS_C) & C_IRQF, 0);
        assert!(!rtc.irq(next), "the read lowered the line");
        now = next;
    }
    at
}

#[test]
fn the_periodic_rate_is_status_as_rate_select() {
    for rs in 1..=15u8 {
        let mut rtc = Rtc::new(Machine::default());
        put(&mut rtc, SECOND, STATUS_A, 0x20 | rs);
        put(&mut rtc, SECOND, STATUS_B, B_24H | B_PIE);
        let hz = 32_768u64 >> if rs <= 2 { rs + 6 } else { rs - 1 };
        let at = serve(&mut rtc, SECOND, S);
        assert_eq!(at.len() as u64, hz, "rate select {rs}: {hz} Hz");
        // Each the k-th cycle of 2^n of the 32.768 kHz time base, the first ns it is reached.
        let cycles = 32_768 / hz;
        for (k, &t) in (1..).zip(&at) {
            assert_eq!(t - SECOND, (k * cycles * S).div_ceil(32_768), "rate select {rs}, interrupt {k}");
        }
    }
    let mut rtc = Rtc::new(Machine::default());
    put(&mut rtc, SECOND, STATUS_B, B_24H | B_PIE);
    put(&mut rtc, SECOND, STATUS_A, 0x20);
    assert!(serve(&mut rtc, SECOND, S).is_empty(), "rate select 0: none");
    put(&mut rtc, SECOND, STATUS_A, 0x66);
    assert!(serve(&mut rtc, SECOND, S).is_empty(), "the divider in reset: none");
    assert_eq!(get(&mut rtc, SECOND + 2 * S, STATUS_C) & C_PF, 0);
    put(&mut rtc, SECOND + 2 * S, STATUS_A, 0x26);
    assert_eq!(serve(&mut rtc, SECOND + 2 * S, S).len(), 1024, "runs again (0x26 is 1024 Hz)");
}

#[test]
fn status_c_flags_are_set_whatever_the_enables_and_cleared_on_read() {
    let mut rtc = Rtc::new(Machine::default());
    put(&mut rtc, SECOND, STATUS_A, 0x2F); // 2 Hz
    assert_eq!(get(&mut rtc, SECOND, STATUS_C), 0, "clear at the first access");
    assert_eq!(rtc.next_irq(SECOND), None, "nothing enabled: no interrupt to time");
    assert_eq!(get(&mut rtc, SECOND + S / 2 - 1, STATUS_C), 0);
    assert_eq!(get(&mut rtc, SECOND + S / 2, STATUS_C), C_PF, "the periodic flag, no IRQF");
    assert_eq!(get(&mut rtc, SECOND + S / 2, STATUS_C), 0, "cleared by the read");
    assert_eq!(get(&mut rtc, SECOND + S, STATUS_C), C_PF | C_UF, "and the update at the second");
    assert_eq!(get(&mut rtc, SECOND + 3 * S, STATUS_C), C_PF | C_UF, "no alarm: it is 00:00:00 at reset");
    // A flag pending when its interrupt is enabled raises the line at
    // once; disabling it lowers the line, the flag stays until read.
    let t = SECOND + 4 * S;
    assert!(!rtc.irq(t));
    put(&mut rtc, t, STATUS_B, B_24H | B_UIE);
    assert!(rtc.irq(t), "UF pending, UIE set");
    assert_eq!(rtc.next_irq(t), None, "asserted: nothing to time until C is read");
    put(&mut rtc, t, STATUS_B, B_24H);
    assert!(!rtc.irq(t));
    assert_eq!(get(&mut rtc, t, STATUS_C), C_PF | C_UF, "IRQF follows the enables");
    put(&mut rtc, t, STATUS_B, B_24H | B_PIE | B_AIE | B_UIE);
    assert_eq!(get(&mut rtc, t, STATUS_C), 0, "read: nothing pending");
    assert_eq!(rtc.next_irq(t), Some(t + S / 2), "the sooner of the periodic and the update");
    assert_eq!(get(&mut rtc, t + S / 2, STATUS_C), C_IRQF | C_PF);
    assert_eq!(get(&mut rtc, t + S, STATUS_C), C_IRQF | C_PF | C_UF);
}

#[test]
fn update_ended_once_a_second_and_set_stops_it() {
    let mut rtc = Rtc::new(Machine::default());
    put(&mut rtc, LEAP_DAY, STATUS_A, 0x20); // no periodic interrupt
    put(&mut rtc, LEAP_DAY, STATUS_B, B_24H | B_UIE);
    let at = serve(&mut rtc, LEAP_DAY, 5 * S);
    assert_eq!(at, (1..=5).map(|k| SECOND + k * S).collect::<Vec<_>>(), "at each second's start");
    for &t in &at {
        assert_eq!(get(&mut rtc, t - 1, STATUS_A) & A_UIP, A_UIP, "UIP just before");
    }
    // SET: the clock holds, no update ends, and UIE is cleared.
    let t = SECOND + 6 * S;
    put(&mut rtc, t, STATUS_B, B_SET | B_24H | B_UIE);
    assert_eq!(get(&mut rtc, t, STATUS_B), B_SET | B_24H, "SET clears UIE");
    assert_eq!(get(&mut rtc, t, STATUS_C) & C_UF, C_UF, "the update before SET");
    assert_eq!(get(&mut rtc, t + 3 * S, STATUS_C), 0, "none while SET");
    // Running again from the time written: the first second ends 1 s on.
    put(&mut rtc, t + 3 * S, SECONDS, 0x10);
    put(&mut rtc, t + 3 * S + S / 4, STATUS_B, B_24H | B_UIE);
    assert_eq!(rtc.next_irq(t + 3 * S + S / 4), Some(t + 4 * S + S / 4));
    assert_eq!(get(&mut rtc, t + 4 * S + S / 4, SECONDS), 0x11);
    assert_eq!(get(&mut rtc, t + 4 * S + S / 4, STATUS_C), C_IRQF | C_UF);
}

#[test]
fn the_alarm_matches_its_bytes_and_their_dont_care_values() {
    // 13:45:30.5 now.
    let alarm = |h: u8, m: u8, s: u8, b: u8| {
        let mut rtc = Rtc::new(Machine::default());
        put(&mut rtc, LEAP_DAY, STATUS_A, 0x20); // no periodic interrupt
        put(&mut rtc, LEAP_DAY, STATUS_B, b);
        put(&mut rtc, LEAP_DAY, ALARM_HOURS, h);
        put(&mut rtc, LEAP_DAY, ALARM_MINUTES, m);
        put(&mut rtc, LEAP_DAY, ALARM_SECONDS, s);
        put(&mut rtc, LEAP_DAY, STATUS_B, b | B_AIE);
        rtc
    };
    let next = |mut rtc: Rtc| rtc.next_irq(LEAP_DAY).map(|t| (t - SECOND) / S);
    assert_eq!(next(alarm(0x13, 0x45, 0x35, B_24H)), Some(5), "13:45:35 BCD");
    assert_eq!(next(alarm(13, 45, 35, B_24H | B_BINARY)), Some(5), "binary");
    assert_eq!(next(alarm(13, 45, 60, B_24H | B_BINARY)), None, "second 60: no such second");
    assert_eq!(next(alarm(0x13, 0x45, 0x30, B_24H)), Some(86_400), "passed: tomorrow");
    assert_eq!(next(alarm(0x81, 0x45, 0x35, 0)), Some(5), "1 PM in 12-hour mode");
    assert_eq!(next(alarm(0x13, 0x45, 0x35, 0)), None, "12-hour mode has no hour 13");
    assert_eq!(next(alarm(0xC0, 0xFF, 0xC5, B_24H)), Some(1), "all don't care: every second");
    assert_eq!(next(alarm(0xFF, 0xC0, 0x00, B_24H)), Some(30), "every minute at :00");
    assert_eq!(next(alarm(0xFF, 0x00, 0x00, B_24H)), Some(14 * 60 + 30), "every hour at :00:00");
    let noon_tomorrow = 86_400 - (13 * 3600 + 45 * 60 + 30) + 12 * 3600;
    assert_eq!(next(alarm(0x12, 0xC0, 0xC0, B_24H)), Some(noon_tomorrow), "12:00:00 tomorrow");
    assert_eq!(next(alarm(0x14, 0xC0, 0x07, B_24H)), Some(14 * 60 + 30 + 7), "14:00:07");
    assert_eq!(next(alarm(0xBF, 0xC0, 0xC0, B_24H)), None, "0xBF is no hour and not don't care");
    // Taken: AF at 13:45:35 with IRQF, and only then.
    let mut rtc = alarm(0x13, 0x45, 0x35, B_24H);
    assert_eq!(get(&mut rtc, SECOND + 5 * S - 1, STATUS_C), C_UF);
    assert_eq!(get(&mut rtc, SECOND + 5 * S, STATUS_C), C_IRQF | C_AF | C_UF);
    assert_eq!(get(&mut rtc, SECOND + 6 * S, STATUS_C), C_UF, "not the next second");
    // Passed over between two reads, it is still flagged.
    let mut rtc = alarm(0x13, 0x45, 0x35, B_24H);
    assert_eq!(get(&mut rtc, SECOND + 100 * S, STATUS_C), C_IRQF | C_AF | C_UF);
    // The clock set past it (SET held over the alarm's second): none.
    let mut rtc = alarm(0x13, 0x45, 0x35, B_24H);
    put(&mut rtc, LEAP_DAY, STATUS_B, B_SET | B_24H | B_AIE);
    put(&mut rtc, LEAP_DAY, SECONDS, 0x40);
    put(&mut rtc, LEAP_DAY + 10 * S, STATUS_B, B_24H | B_AIE);
    assert_eq!(get(&mut rtc, LEAP_DAY + 20 * S, STATUS_C), C_UF, "13:45:40 to :50: no alarm");
}

/// The hostile twin: the fastest rate, PIE set, and Status C never read.
/// One interrupt is pending, after which nothing needs timing, however
/// long it runs; a read of C then lets the next one come.
#[test]
fn a_guest_that_never_reads_status_c_has_one_interrupt_pending() {
    let mut rtc = Rtc::new(Machine::default());
    put(&mut rtc, SECOND, STATUS_A, 0x23); // 8192 Hz
    put(&mut rtc, SECOND, STATUS_B, B_24H | B_PIE);
    let first = rtc.next_irq(SECOND).unwrap_or(0);
    assert_eq!(first, SECOND + 122_071, "122.07 us");
    for t in (first..first + 10 * S).step_by(97_003) {
        assert!(rtc.irq(t));
        assert_eq!(rtc.next_irq(t), None, "no timer while it is pending at {t}");
    }
    let t = first + 10 * S;
    assert_eq!(get(&mut rtc, t, STATUS_C), C_IRQF | C_PF | C_UF, "the 81,920 periods as one");
    assert!(!rtc.irq(t));
    assert!(rtc.next_irq(t).is_some_and(|n| n > t && n - t <= 122_071));
}

#[test]
fn a_reset_keeps_the_date_the_alarm_and_the_memory_and_clears_the_rest() {
    let mut rtc = Rtc::new(Machine { below_4g: 32 << 20, above_4g: 0, vcpus: 2 });
    // The guest sets its clock to 2025-03-01 08:00:00, an alarm and NVRAM.
    put(&mut rtc, LEAP_DAY, STATUS_B, B_SET | B_24H);
    for (i, v) in [(SECONDS, 0x00), (MINUTES, 0x00), (HOURS, 0x08), (DAY, 0x01), (MONTH, 0x03), (YEAR, 0x25)]
    {
        put(&mut rtc, LEAP_DAY, i, v);
    }
    put(&mut rtc, LEAP_DAY, STATUS_B, B_24H);
    put(&mut rtc, LEAP_DAY, 0x01, 0x15);
    for i in 0x0E..0x80 {
        if i != i32::from(CENTURY) {
            put(&mut rtc, LEAP_DAY, i as u8, (i as u8) ^ 0x5A);
        }
    }
    // Then programs what a reset clears: periodic 2 Hz, PIE and UIE, binary
    // mode, a flag pending, a time half-written under SET and NMIs masked.
    put(&mut rtc, LEAP_DAY, STATUS_A, 0x2F);
    put(&mut rtc, LEAP_DAY, STATUS_B, B_PIE | B_UIE | B_BINARY | B_24H);
    assert!(rtc.irq(LEAP_DAY + 2 * S), "its interrupt pending");
    put(&mut rtc, LEAP_DAY + 2 * S, STATUS_B, B_SET | B_BINARY | B_24H);
    put(&mut rtc, LEAP_DAY + 2 * S, HOURS, 23);
    rtc.write(LEAP_DAY + 2 * S, INDEX, 0x80 | 0x40);
    let memory: Vec<u8> = (0x0E..0x80).map(|i| rtc.ram[i]).collect();

    rtc.reset();
    let later = LEAP_DAY + 3 * S;
    assert!(!rtc.nmi_masked() && !rtc.irq(later), "NMIs unmasked, no interrupt");
    assert_eq!(rtc.next_irq(later), None, "every enable clear");
    assert_eq!(rtc.read(later, DATA), get(&mut rtc, later, SECONDS), "index 0");
    assert_eq!([STATUS_A, STATUS_B, STATUS_C].map(|i| get(&mut rtc, later, i)), [0x26, 0x02, 0]);
    assert_eq!(
        clock(&mut rtc, later),
        [0x03, 0, 0x08, 7, 0x01, 0x03, 0x25, 0x20],
        "the guest's date runs on (3 s after it was set), not the 23 h written under SET"
    );
    assert_eq!(get(&mut rtc, later, 0x01), 0x15, "the alarm kept");
    let kept: Vec<u8> = (0x0E..0x80).map(|i| get(&mut rtc, later, i)).collect();
    assert_eq!(kept[..0x32 - 0x0E], memory[..0x32 - 0x0E], "NVRAM 0x0E-0x31 kept");
    assert_eq!(kept[0x33 - 0x0E..], memory[0x33 - 0x0E..], "NVRAM 0x33-0x7F kept");
    assert_eq!(get(&mut rtc, later, 0x5F), 0x5F ^ 0x5A, "the guest's own byte over the firmware's");
}
