//! The CMOS real-time clock and its memory (Motorola MC146818A, as a PC
//! has it): port 0x70 selects a byte (bit 7 masks NMIs), port 0x71 reads
//! or writes it.
//!
//! - The clock is the wall-clock time the VMM passes in on each access
//!   (Unix time in ns), plus an offset the guest sets by writing the time:
//!   the time registers are computed from it on every read, never ticked,
//!   so they cannot drift and need no timer.
//! - 0x00/0x02/0x04 seconds, minutes, hours; 0x06 day of the week (1 is
//!   Sunday; computed, writes ignored); 0x07–0x09 day, month, year; 0x32
//!   the century (the FADT's `CENTURY` field names it); 0x01/0x03/0x05 the
//!   alarm bytes, kept as written.
//! - Status A (0x0A): bit 7 update-in-progress, set in the last 244 µs of
//!   every second (the datasheet's t_BUC before the update), which is
//!   what a reader such as Linux's `mc146818_get_time` waits out; bits
//!   0–6 (divider and rate) kept, 0x26 at reset. Status B (0x0B): SET (7:
//!   the clock holds still while the guest writes it, and runs from the
//!   written time when cleared), the interrupt enables (6–4, kept), data
//!   mode (2: binary, else BCD) and 24-hour mode (1: else 12-hour, bit 7
//!   of the hour meaning PM), 0x02 at reset. Status D (0x0D) reads 0x80:
//!   the battery is good.
//! - Interrupts (IRQ 8): Status C (0x0C) holds the flags PF (6, periodic),
//!   AF (5, alarm) and UF (4, update ended), each set by its event whatever
//!   Status B's enables say, and IRQF (7), set while a flag and its enable
//!   (B's PIE, AIE, UIE: the same bits) are both set; reading C returns
//!   them and clears them all. The IRQ line is IRQF ([`Rtc::irq`]). The
//!   events come from the guest's clock, computed, never ticked:
//!   - periodic: every 2^(RS−1) cycles of the 32.768 kHz time base, RS
//!     being Status A's rate select (3: 122.07 µs, 8192 Hz … 15: 500 ms;
//!     1 and 2 are 8 and 9, as with this time base; 0 none), aligned to
//!     the second; none while the divider is held in reset (A's DV bits
//!     6–5 both set);
//!   - update ended: at each second's start (the new second is read from
//!     then on; UIP was set for the 244 µs before), not while SET; SET
//!     also clears UIE, as the datasheet says;
//!   - alarm: at an update whose new time matches the alarm bytes (0x01,
//!     0x03, 0x05, compared in the current data and hour mode), a byte of
//!     0xC0–0xFF matching any value ("don't care").
//!
//!   The flags start clear at the clock's first access (as a PC's firmware
//!   leaves them) and are brought up to date at each access. Once IRQF is
//!   set no later event can change the line until C is read, so
//!   [`Rtc::next_irq`] says when the line will next rise, and only while
//!   it is low: a guest that never reads C has one interrupt pending and
//!   costs no timer, whatever its rate.
//! - The CMOS memory a PC's firmware reports (the layout QEMU and SeaBIOS
//!   use): 0x14 equipment (a coprocessor), 0x15/0x16 base memory (640 KiB),
//!   0x17/0x18 and 0x30/0x31 KiB above 1 MiB (at most 0xFFFF), 0x34/0x35
//!   64 KiB blocks above 16 MiB and below 4 GiB, 0x5B–0x5D 64 KiB blocks
//!   above 4 GiB, 0x5F the vCPUs less one, and the checksum of 0x10–0x2D
//!   at 0x2E/0x2F. The other bytes up to 0x7F are the guest's to keep.
//! - Where the wall clock comes from: `mgmt` reads the machine's own CMOS
//!   clock once at its start and gives each VMM the date and time read and
//!   the TSC then (`ipc::guest::WallClock`, checked by the configuration's
//!   decoding); [`wall_ns`] runs it on by the TSC to the guest's start, and
//!   the platform adds the guest's virtual time (`Platform::with_rtc`).
//!   Without one the guest's clock starts at 1970-01-01 00:00:00.
//! - Written time registers decode by the current mode; values out of
//!   range carry arithmetically (a minute of 61 is the next hour's first),
//!   a month outside 1–12 is clamped, and the year is 0–9999: no value
//!   panics or overflows.

/// The index and data ports.
pub const INDEX: u16 = 0x70;
pub const DATA: u16 = 0x71;

const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const WEEKDAY: u8 = 0x06;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const STATUS_A: u8 = 0x0A;
const STATUS_B: u8 = 0x0B;
const STATUS_C: u8 = 0x0C;
const STATUS_D: u8 = 0x0D;
/// The century byte, which the FADT's `CENTURY` field names.
pub const CENTURY: u8 = 0x32;

const ALARM_SECONDS: u8 = 0x01;
const ALARM_MINUTES: u8 = 0x03;
const ALARM_HOURS: u8 = 0x05;

const A_UIP: u8 = 0x80;
/// Status A's divider bits 6–5 both set: the divider chain is in reset.
const A_DIVIDER_RESET: u8 = 0x60;
const A_RATE: u8 = 0x0F;
const B_SET: u8 = 0x80;
/// Status B's interrupt enables (PIE, AIE, UIE), at the bits of their
/// flags in Status C (PF, AF, UF).
const B_ENABLES: u8 = 0x70;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;
/// The divider's time base: the 32.768 kHz crystal.
const BASE_HZ: i128 = 32_768;
/// An alarm byte from 0xC0 matches any value.
const DONT_CARE: u8 = 0xC0;
const B_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;
const NS: i128 = 1_000_000_000;
/// The update-in-progress window before each second's update.
const UIP_NS: i128 = 244_000;
const DAY_S: i64 = 86_400;

/// Whether `port` is the clock's (index or data).
pub fn owns(port: u16) -> bool {
    port == INDEX || port == DATA
}

/// The Unix time in ns at TSC value `tsc`, by `wall` (a date read at its
/// own TSC value) and a TSC of `tsc_khz` ticks per ms; a TSC value before
/// `wall`'s counts back. Saturates at 1970 and at the end of u64 ns (in
/// 2554); a rate of 0 counts no time since `wall`.
pub fn wall_ns(wall: &ipc::guest::WallClock, tsc: u64, tsc_khz: u64) -> u64 {
    let t = Time {
        year: i64::from(wall.year),
        month: wall.month,
        day: wall.day,
        hour: wall.hour,
        minute: wall.minute,
        second: wall.second,
    };
    let since = i128::from(tsc) - i128::from(wall.tsc);
    let since_ns = if tsc_khz == 0 { 0 } else { since * 1_000_000 / i128::from(tsc_khz) };
    let ns = i128::from(normalise(t)) * NS + since_ns;
    u64::try_from(ns.clamp(0, i128::from(u64::MAX))).unwrap_or(u64::MAX)
}

/// What the guest's CMOS memory says about its machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    /// RAM below 4 GiB and above it, in bytes.
    pub below_4g: u64,
    pub above_4g: u64,
    pub vcpus: u8,
}

/// A date and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

#[derive(Clone, Debug)]
pub struct Rtc {
    index: u8,
    nmi_masked: bool,
    ram: [u8; 128],
    /// The guest's clock less the wall clock, in ns.
    offset_ns: i128,
    /// While SET: the time registers as the guest is writing them, not
    /// normalised until SET is cleared (so that a day of 31 written before
    /// the month does not carry into the next month).
    held: Option<Time>,
    /// Status C's PF, AF and UF, as set by the events up to `seen`.
    flags: u8,
    /// The wall-clock time (ns) the flags are brought up to; None before
    /// the first access.
    seen: Option<u64>,
}

impl Rtc {
    pub fn new(machine: Machine) -> Self {
        let mut ram = [0u8; 128];
        ram[usize::from(STATUS_A)] = 0x26;
        ram[usize::from(STATUS_B)] = B_24H;
        ram[0x14] = 0x02;
        ram[0x15..0x17].copy_from_slice(&640u16.to_le_bytes());
        let kib = (machine.below_4g / 1024).saturating_sub(1024).min(0xFFFF) as u16;
        ram[0x17..0x19].copy_from_slice(&kib.to_le_bytes());
        ram[0x30..0x32].copy_from_slice(&kib.to_le_bytes());
        let blocks = (machine.below_4g.saturating_sub(16 << 20) >> 16).min(0xFFFF) as u16;
        ram[0x34..0x36].copy_from_slice(&blocks.to_le_bytes());
        let high = (machine.above_4g >> 16).min(0xFF_FFFF) as u32;
        ram[0x5B..0x5E].copy_from_slice(&high.to_le_bytes()[..3]);
        ram[0x5F] = machine.vcpus.saturating_sub(1);
        let sum: u16 = ram[0x10..0x2E].iter().map(|&b| u16::from(b)).sum();
        ram[0x2E..0x30].copy_from_slice(&sum.to_be_bytes());
        Rtc { index: 0, nmi_masked: false, ram, offset_ns: 0, held: None, flags: 0, seen: None }
    }

    /// The clock after its machine's reset (a guest's reboot), keeping
    /// what a PC's battery keeps: the guest's date and time (the offset it
    /// set), the alarm bytes and the memory 0x0E–0x7F. Status A and B go
    /// back to their values at power-on (so SET and the interrupt enables
    /// are clear; a time half-written under SET is dropped, its writer
    /// gone), no flag is pending, the index is 0 and NMIs are unmasked.
    pub fn reset(&mut self) {
        self.ram[usize::from(STATUS_A)] = 0x26;
        self.ram[usize::from(STATUS_B)] = B_24H;
        (self.index, self.nmi_masked, self.held, self.flags, self.seen) = (0, false, None, 0, None);
    }

    /// Whether the guest masked NMIs (port 0x70 bit 7).
    pub fn nmi_masked(&self) -> bool {
        self.nmi_masked
    }

    /// The guest's clock at wall-clock time `wall_ns` (Unix time, ns).
    pub fn now(&self, wall_ns: u64) -> Time {
        civil(self.seconds(wall_ns))
    }

    /// A byte read of `port` at `wall_ns`: the selected byte at 0x71, 0xFF
    /// elsewhere (the index port is write-only). Reading Status C clears
    /// its flags.
    pub fn read(&mut self, wall_ns: u64, port: u16) -> u8 {
        if port != DATA {
            return 0xFF;
        }
        self.settle(wall_ns);
        let b = self.ram[usize::from(self.index)];
        let t = self.held.unwrap_or_else(|| self.now(wall_ns));
        match self.index {
            SECONDS => self.encode(t.second),
            MINUTES => self.encode(t.minute),
            HOURS => self.hour(t.hour),
            WEEKDAY => (self.seconds(wall_ns).div_euclid(DAY_S) + 4).rem_euclid(7) as u8 + 1, // 1970-01-01 was a Thursday
            DAY => self.encode(t.day),
            MONTH => self.encode(t.month),
            YEAR => self.encode(t.year.rem_euclid(100) as u8),
            CENTURY => self.encode((t.year / 100) as u8),
            STATUS_A if self.held.is_none() && self.updating(wall_ns) => b | A_UIP,
            STATUS_A => b,
            STATUS_C => {
                let c = self.flags | if self.irqf() { C_IRQF } else { 0 };
                self.flags = 0;
                c
            }
            STATUS_D => 0x80,
            _ => b,
        }
    }

    /// A byte write of `value` to `port` at `wall_ns`; other ports are ignored.
    pub fn write(&mut self, wall_ns: u64, port: u16, value: u8) {
        match port {
            INDEX => {
                self.index = value & 0x7F;
                self.nmi_masked = value & 0x80 != 0;
            }
            DATA => self.write_byte(wall_ns, value),
            _ => {}
        }
    }

    fn write_byte(&mut self, wall_ns: u64, value: u8) {
        // The events so far by the clock and programming they had.
        self.settle(wall_ns);
        let field = |t: &mut Time, v: u8| match self.index {
            SECONDS => t.second = v,
            MINUTES => t.minute = v,
            DAY => t.day = v,
            MONTH => t.month = v,
            _ => {}
        };
        match self.index {
            SECONDS | MINUTES | HOURS | DAY | MONTH | YEAR | CENTURY => {
                let mut t = self.held.unwrap_or_else(|| self.now(wall_ns));
                let v = self.decode(value);
                match self.index {
                    HOURS => t.hour = self.decode_hour(value),
                    YEAR => t.year = t.year - t.year.rem_euclid(100) + i64::from(v),
                    CENTURY => t.year = i64::from(v) * 100 + t.year.rem_euclid(100),
                    _ => field(&mut t, v),
                }
                self.set_time(wall_ns, t);
            }
            STATUS_A => self.ram[usize::from(STATUS_A)] = value & !A_UIP,
            STATUS_B => {
                let was_set = self.held.is_some();
                let set = value & B_SET != 0;
                if set && !was_set {
                    self.held = Some(self.now(wall_ns));
                } else if let Some(held) = self.held.take().filter(|_| !set) {
                    // The written second starts now.
                    self.offset_ns = i128::from(normalise(held)) * NS - i128::from(wall_ns);
                }
                // SET clears UIE (no update ends while it is held).
                self.ram[usize::from(STATUS_B)] = if set { value & !B_UIE } else { value };
            }
            WEEKDAY | STATUS_C | STATUS_D => {} // computed or read-only
            i => self.ram[usize::from(i)] = value,
        }
    }

    /// Whether the IRQ line is asserted at `wall_ns` (IRQF).
    pub fn irq(&mut self, wall_ns: u64) -> bool {
        self.settle(wall_ns);
        self.irqf()
    }

    /// When (wall-clock ns, after `wall_ns`) the IRQ line will next rise:
    /// the first event whose interrupt is enabled; None while it is
    /// asserted (nothing changes it until Status C is read) or if none is
    /// enabled or coming.
    pub fn next_irq(&mut self, wall_ns: u64) -> Option<u64> {
        self.settle(wall_ns);
        if self.irqf() {
            return None;
        }
        let b = self.ram[usize::from(STATUS_B)];
        let g = self.clock_ns(wall_ns);
        let periodic = self.period().filter(|_| b & B_PIE != 0).map(|p| {
            let tick = (ticks(g).div_euclid(p) + 1) * p;
            ceil_div(tick * NS, BASE_HZ)
        });
        let updates = self.held.is_none();
        let second = g.div_euclid(NS);
        let update = (updates && b & B_UIE != 0).then_some((second + 1) * NS);
        let alarm = self.alarm_after(second).filter(|_| updates && b & B_AIE != 0).map(|s| s * NS);
        let next = [periodic, update, alarm].into_iter().flatten().min()?;
        Some(u64::try_from((next - self.offset_ns).max(0)).unwrap_or(u64::MAX))
    }

    /// IRQF: a flag set whose interrupt is enabled.
    fn irqf(&self) -> bool {
        self.flags & self.ram[usize::from(STATUS_B)] & B_ENABLES != 0
    }

    /// The guest's clock in ns at `wall_ns` (running, whether or not SET
    /// holds the registers).
    fn clock_ns(&self, wall_ns: u64) -> i128 {
        i128::from(wall_ns) + self.offset_ns
    }

    /// The periodic interrupt's period in cycles of the time base, if it
    /// runs.
    fn period(&self) -> Option<i128> {
        let a = self.ram[usize::from(STATUS_A)];
        let rs = a & A_RATE;
        if rs == 0 || a & A_DIVIDER_RESET == A_DIVIDER_RESET {
            return None;
        }
        Some(1 << if rs <= 2 { rs + 6 } else { rs - 1 })
    }

    /// Sets the flags of the events from the last access to `wall_ns`
    /// (none if the time has not moved on).
    fn settle(&mut self, wall_ns: u64) {
        let Some(from) = self.seen.filter(|&s| s < wall_ns) else {
            self.seen = Some(self.seen.map_or(wall_ns, |s| s.max(wall_ns)));
            return;
        };
        self.seen = Some(wall_ns);
        let (a, b) = (self.clock_ns(from), self.clock_ns(wall_ns));
        if self.period().is_some_and(|p| ticks(b).div_euclid(p) > ticks(a).div_euclid(p)) {
            self.flags |= C_PF;
        }
        let (sa, sb) = (a.div_euclid(NS), b.div_euclid(NS));
        if self.held.is_none() && sb > sa {
            self.flags |= C_UF;
            if self.alarm_after(sa).is_some_and(|s| s <= sb) {
                self.flags |= C_AF;
            }
        }
    }

    /// The first second after second `s` (since 1970) whose time of day
    /// the alarm bytes match, if any does.
    fn alarm_after(&self, s: i128) -> Option<i128> {
        let byte = |i: u8| self.ram[usize::from(i)];
        let matches = |alarm: u8, v: u8| alarm >= DONT_CARE || alarm == v;
        let secs: [bool; 60] = core::array::from_fn(|v| matches(byte(ALARM_SECONDS), self.encode(v as u8)));
        let mins: [bool; 60] = core::array::from_fn(|v| matches(byte(ALARM_MINUTES), self.encode(v as u8)));
        let hours: [bool; 24] = core::array::from_fn(|h| matches(byte(ALARM_HOURS), self.hour(h as u8)));
        let first = |ok: &[bool], from: usize| (from..ok.len()).find(|&i| ok[i]);
        // Tomorrow's first match: none at all if a byte matches no value.
        let tomorrow = DAY_S as usize + first(&hours, 0)? * 3600 + first(&mins, 0)? * 60 + first(&secs, 0)?;
        let tod = s.rem_euclid(i128::from(DAY_S)) as usize;
        let (h, m, sec) = (tod / 3600, tod / 60 % 60, tod % 60);
        // Today's first match after `tod`: each inner search from 0 finds
        // one, so this looks at fewer than 24 + 60 + 60 values.
        let today = (h..24).filter(|&hh| hours[hh]).find_map(|hh| {
            let m0 = if hh == h { m } else { 0 };
            (m0..60).filter(|&mm| mins[mm]).find_map(|mm| {
                let s0 = if (hh, mm) == (h, m) { sec + 1 } else { 0 };
                first(&secs, s0).map(|ss| hh * 3600 + mm * 60 + ss)
            })
        });
        Some(s - tod as i128 + today.unwrap_or(tomorrow) as i128)
    }

    /// The guest's clock in whole seconds since 1970 (held while SET).
    fn seconds(&self, wall_ns: u64) -> i64 {
        if let Some(t) = self.held {
            return normalise(t);
        }
        let ns = i128::from(wall_ns) + self.offset_ns;
        i64::try_from(ns.div_euclid(NS)).unwrap_or(0).clamp(0, MAX_SECONDS)
    }

    /// Sets the guest's clock to `t` as of `wall_ns` (held as it is while SET).
    fn set_time(&mut self, wall_ns: u64, t: Time) {
        if self.held.is_some() {
            self.held = Some(t);
        } else {
            // The written second starts now.
            self.offset_ns = i128::from(normalise(t)) * NS - i128::from(wall_ns);
        }
    }

    /// Whether an update is about to happen (the last 244 µs of a second).
    fn updating(&self, wall_ns: u64) -> bool {
        let ns = i128::from(wall_ns) + self.offset_ns;
        ns.rem_euclid(NS) >= NS - UIP_NS
    }

    fn binary(&self) -> bool {
        self.ram[usize::from(STATUS_B)] & B_BINARY != 0
    }

    fn encode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            ((v / 10 % 10) << 4) | (v % 10)
        }
    }

    /// A written byte as a number: BCD digits (of 0–15 each) or binary.
    fn decode(&self, v: u8) -> u8 {
        if self.binary() {
            v
        } else {
            (v >> 4) * 10 + (v & 15)
        }
    }

    fn hour(&self, h: u8) -> u8 {
        if self.ram[usize::from(STATUS_B)] & B_24H != 0 {
            return self.encode(h);
        }
        let pm = if h >= 12 { 0x80 } else { 0 };
        let h12 = match h % 12 {
            0 => 12,
            x => x,
        };
        self.encode(h12) | pm
    }

    fn decode_hour(&self, v: u8) -> u8 {
        if self.ram[usize::from(STATUS_B)] & B_24H != 0 {
            return self.decode(v);
        }
        let h = self.decode(v & 0x7F) % 12; // 12 AM is 0
        h + if v & 0x80 != 0 { 12 } else { 0 }
    }
}

/// Whole cycles of the 32.768 kHz time base at the guest's clock `ns`.
fn ticks(ns: i128) -> i128 {
    (ns * BASE_HZ).div_euclid(NS)
}

/// `a / b` rounded up (`b` > 0).
fn ceil_div(a: i128, b: i128) -> i128 {
    -(-a).div_euclid(b)
}

/// `t` in seconds since 1970, its fields carried, within 1970–9999.
fn normalise(t: Time) -> i64 {
    (days(t).saturating_mul(DAY_S))
        .saturating_add(i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second))
        .clamp(0, MAX_SECONDS)
}

/// 9999-12-31 23:59:59.
const MAX_SECONDS: i64 = 253_402_300_799;

/// Days from 1970-01-01 to the date of `t`, its month clamped to 1–12 and
/// its day counted from the month's first (so day 0 or 40 carry over).
fn days(t: Time) -> i64 {
    let m = i64::from(t.month.clamp(1, 12));
    let y = t.year.clamp(0, 9999) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12; // March is 0
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + i64::from(t.day) - 1
}

/// The date and time `s` seconds after 1970-01-01 (`s` ≥ 0).
fn civil(s: i64) -> Time {
    let (d, rem) = (s.div_euclid(DAY_S), s.rem_euclid(DAY_S));
    let z = d + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Time {
        year,
        month,
        day,
        hour: (rem / 3600) as u8,
        minute: (rem / 60 % 60) as u8,
        second: (rem % 60) as u8,
    }
}

#[cfg(test)]
mod tests;
