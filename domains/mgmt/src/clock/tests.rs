use super::*;
use vmm::rtc::{Machine, Rtc};

const NS: u64 = 1_000_000_000;
/// 2026-12-03 07:02:54 UTC.
const DEC_3: u64 = 1_796_281_374;

/// Reads `rtc` as `mgmt` does, the wall clock at `start_ns` and each
/// register access `step_ns` later than the last; the TSC is the access
/// count.
fn read_at(rtc: &mut Rtc, start_ns: u64, step_ns: u64) -> Option<WallClock> {
    let now = core::cell::Cell::new(start_ns);
    let rtc = core::cell::RefCell::new(rtc);
    let reg = |r: u8| {
        now.set(now.get() + step_ns);
        let mut rtc = rtc.borrow_mut();
        rtc.write(now.get(), vmm::rtc::INDEX, r);
        Some(rtc.read(now.get(), vmm::rtc::DATA))
    };
    read(reg, || now.get())
}

fn at(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> (u16, u8, u8, u8, u8, u8) {
    (year, month, day, hour, minute, second)
}

fn fields(w: WallClock) -> (u16, u8, u8, u8, u8, u8) {
    (w.year, w.month, w.day, w.hour, w.minute, w.second)
}

#[test]
fn a_bcd_24_hour_clock_is_read_as_utc() {
    let mut rtc = Rtc::new(Machine::default());
    let w = read_at(&mut rtc, DEC_3 * NS + NS / 2, 1000).unwrap();
    assert_eq!(fields(w), at(2026, 12, 3, 7, 2, 54));
    assert!(w.tsc > DEC_3 * NS + NS / 2, "the TSC read with the fields");
}

#[test]
fn binary_and_12_hour_modes_are_read_in_their_own_mode() {
    // 1999-12-31 13:00:00: 1 PM, the century 19.
    let t = 946_645_200 * NS + NS / 4;
    for b in [0x00, 0x04, 0x06] {
        let mut rtc = Rtc::new(Machine::default());
        rtc.write(t, vmm::rtc::INDEX, STATUS_B);
        rtc.write(t, vmm::rtc::DATA, b);
        let w = read_at(&mut rtc, t, 1000).unwrap();
        assert_eq!(fields(w), at(1999, 12, 31, 13, 0, 0), "status B {b:#x}");
    }
}

#[test]
fn an_update_in_progress_is_waited_out() {
    // 100 µs before 2026-12-31 23:59:59 turns into the next year: the
    // update bit is set; reads 1 µs apart wait for it to clear.
    let t = 1_798_761_600 * NS - 100_000;
    let mut rtc = Rtc::new(Machine::default());
    let w = read_at(&mut rtc, t, 1000).unwrap();
    assert_eq!(fields(w), at(2027, 1, 1, 0, 0, 0));
}

#[test]
fn a_torn_read_is_read_again() {
    // The seconds change between the two reads of the first try.
    let mut reads = 0u32;
    let reg = |r: u8| {
        reads += 1;
        Some(match r {
            0x00 if reads < 9 => 0x54, // the first read of the seconds, not the second
            0x00 => 0x55,
            0x02 => 0x02,
            0x04 => 0x07,
            0x07 => 0x03,
            0x08 => 0x12,
            0x09 => 0x26,
            0x32 => 0x20,
            STATUS_B => 0x02,
            _ => 0,
        })
    };
    let w = read(reg, || 7).unwrap();
    assert_eq!(fields(w), at(2026, 12, 3, 7, 2, 55));
    assert_eq!(w.tsc, 7);
}

#[test]
fn no_clock_or_a_broken_one_gives_no_time() {
    // Absent: every register reads 0xFF (and the update bit never clears).
    assert_eq!(read(|_| Some(0xFF), || 0), None);
    // The update bit clear, but 0xFF in the fields: no BCD number.
    assert_eq!(read(|r| Some(if r == STATUS_A { 0x26 } else { 0xFF }), || 0), None);
    // A port that cannot be read.
    assert_eq!(read(|_| None, || 0), None);
    assert_eq!(read(|r| (r != 0x09).then_some(0), || 0), None);
    // A month 13 and an hour 24, in binary mode: not a date.
    let bad = |month: u8, hour: u8| {
        move |r: u8| {
            Some(match r {
                0x08 => month,
                0x04 => hour,
                0x07 => 1,
                STATUS_B => 0x06,
                0x32 => 20,
                _ => 0,
            })
        }
    };
    assert!(read(bad(12, 23), || 0).is_some());
    assert_eq!(read(bad(13, 23), || 0), None);
    assert_eq!(read(bad(12, 24), || 0), None);
}

#[test]
fn a_century_register_that_holds_none_means_the_2000s() {
    let reg = |r: u8| {
        Some(match r {
            0x07 | 0x08 => 1,
            0x09 => 0x26,
            0x32 => 0x00,
            STATUS_B => 0x02,
            _ => 0,
        })
    };
    assert_eq!(read(reg, || 0).map(|w| w.year), Some(2026));
}
