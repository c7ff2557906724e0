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
