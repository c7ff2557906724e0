//! The 8254 programmable interval timer (Intel 8254 datasheet, 231164):
//! ports 0x40–0x42 (channels 0–2), 0x43 (control word) and the PC's port
//! 0x61 (channel 2's gate, the speaker, channel 2's output), driven by the
//! virtual time the VMM passes in (ns since the guest started).
//!
//! - The clock is 1.193182 MHz, exactly the PM timer's 3.579545 MHz / 3
//!   (14.31818 MHz / 12 on a PC), so that the two agree. Time is counted in
//!   whole ticks from 0 ([`ticks`]), so no error accumulates.
//! - Channel 0's output is IRQ0 (its gate is always high); channel 1
//!   behaves the same and is wired to nothing; channel 2's gate is port
//!   0x61 bit 0 and its output reads back as port 0x61 bit 5.
//! - Modes 0 (interrupt on terminal count), 2 (rate generator) and 3
//!   (square wave) as the datasheet says; 1 and 5 start on a rising gate,
//!   4 and 5 pulse their output low for one tick at terminal count; 6 and
//!   7 are 2 and 3; a count of 1 in modes 2 and 3 (forbidden) is taken
//!   as 2. Binary or BCD counting; lo, hi or lo-then-hi byte
//!   access; the latch command and the read-back command (count and
//!   status).
//! - Simplifications, each of which only moves an edge by less than one
//!   period: a count takes effect at its write (not on the next clock),
//!   also in modes 2 and 3 (the datasheet waits for the current period's
//!   end); mode 3 with an odd count is high for (N+1)/2 ticks and low for
//!   (N−1)/2, reading back as an even count going down by two.
//! - IRQ0 is the rising edge of channel 0's output: [`Pit::next_irq0`]
//!   says when the next one is due, so the VMM sets a timer for then and
//!   raises the line when it fires. Port 0x61 bit 4 (refresh) toggles every
//!   15.085 µs of virtual time, which is what delay loops poll.

/// The PIT's ports.
pub const CHANNEL0: u16 = 0x40;
pub const CONTROL: u16 = 0x43;
/// The PC's system control port B (channel 2's gate and output, speaker).
pub const PORT_B: u16 = 0x61;

/// The clock's rate is 3_579_545 / 3 Hz.
const RATE_NUM: u128 = 3_579_545;
const RATE_DEN: u128 = 3 * 1_000_000_000;
const REFRESH_NS: u64 = 15_085;

/// Whole PIT ticks in `ns` of virtual time.
pub fn ticks(ns: u64) -> u64 {
    (u128::from(ns) * RATE_NUM / RATE_DEN) as u64
}

/// The first ns at which [`ticks`] reaches `tick` (saturating).
pub fn ns_at(tick: u64) -> u64 {
    u64::try_from((u128::from(tick) * RATE_DEN).div_ceil(RATE_NUM)).unwrap_or(u64::MAX)
}

#[derive(Clone, Copy, Debug, Default)]
struct Channel {
    /// 0..=5 (6 and 7 are stored as 2 and 3).
    mode: u8,
    bcd: bool,
    /// 1 lo byte, 2 hi byte, 3 lo then hi.
    access: u8,
    /// The count as written (binary or BCD).
    reload: u16,
    /// Lo/hi access: the next write is the high byte (the low one is here).
    write_hi: Option<u8>,
    /// Lo/hi access: the next read of the live count is the high byte.
    read_hi: bool,
    /// A latched count and whether its low byte was read.
    latch: Option<(u16, bool)>,
    status: Option<u8>,
    /// Counting: ticks elapsed before the current run, and the tick the
    /// current run began at (None while paused or not started).
    elapsed: u64,
    since: Option<u64>,
    /// A count is loaded (else the output keeps its initial state).
    loaded: bool,
    gate: bool,
}

impl Channel {
    /// The period in ticks the reload makes (0 is the largest count; modes
    /// 2 and 3 take 1, which the datasheet forbids, as 2).
    fn period(&self) -> u64 {
        let n = self.count();
        if n == 1 && matches!(self.mode, 2 | 3) {
            2
        } else {
            n
        }
    }

    fn count(&self) -> u64 {
        if self.bcd {
            let r = self.reload;
            let digits = [r >> 12, (r >> 8) & 15, (r >> 4) & 15, r & 15];
            let n = digits.iter().fold(0u64, |n, &d| n * 10 + u64::from(d)) % 10_000;
            if n == 0 {
                10_000
            } else {
                n
            }
        } else if self.reload == 0 {
            0x1_0000
        } else {
            u64::from(self.reload)
        }
    }

    fn modulus(&self) -> u64 {
        if self.bcd {
            10_000
        } else {
            0x1_0000
        }
    }

    /// Ticks counted by tick `t`; None before the count started.
    fn counted(&self, t: u64) -> Option<u64> {
        match self.since {
            Some(s) => Some(self.elapsed.saturating_add(t.saturating_sub(s))),
            None if self.elapsed > 0 => Some(self.elapsed),
            None => None,
        }
    }

    /// The counter's value (binary) and the output at tick `t`.
    fn state(&self, t: u64) -> (u64, bool) {
        let n = self.period();
        let Some(c) = self.counted(t).filter(|_| self.loaded) else {
            // Not counting yet: mode 0's output is low after programming,
            // the others' high; the counter holds the count written.
            return (n % self.modulus(), self.mode != 0);
        };
        match self.mode {
            0 | 1 => ((n + self.modulus() - c % self.modulus()) % self.modulus(), c >= n),
            4 | 5 => ((n + self.modulus() - c % self.modulus()) % self.modulus(), c != n),
            2 => {
                let p = c % n;
                (n - p, p != n - 1)
            }
            _ => {
                let high = n.div_ceil(2);
                let p = c % n;
                if p < high {
                    (n - 2 * p, true)
                } else {
                    (n - 2 * (p - high), false)
                }
            }
        }
    }

    /// The tick after `t` at which the output next rises, if it will.
    fn next_rise(&self, t: u64) -> Option<u64> {
        let s = self.since?;
        if !self.loaded {
            return None;
        }
        let n = self.period();
        let c = self.counted(t)?;
        // The counted ticks at which the output rises, relative to the run.
        let at = match self.mode {
            0 | 1 => (c < n).then_some(n)?,
            4 | 5 => (c <= n).then_some(n + 1)?,
            _ => (c / n + 1) * n,
        };
        Some(s.saturating_add(at - self.elapsed))
    }

    /// (Re)starts counting at tick `t` from the full count.
    fn start(&mut self, t: u64) {
        self.elapsed = 0;
        self.since = Some(t);
    }

    /// The count as read back: binary, or its BCD digits.
    fn shown(&self, value: u64) -> u16 {
        if self.bcd {
            let v = value % 10_000;
            (((v / 1000) << 12) | ((v / 100 % 10) << 8) | ((v / 10 % 10) << 4) | (v % 10)) as u16
        } else {
            value as u16 // 0x10000 reads as 0
        }
    }

    fn status_byte(&self, t: u64) -> u8 {
        let out = self.state(t).1;
        (u8::from(out) << 7)
            | (u8::from(!self.loaded) << 6) // null count: no count loaded yet
            | (self.access << 4)
            | (self.mode << 1)
            | u8::from(self.bcd)
    }
}

/// The three channels and port 0x61's bits.
#[derive(Clone, Debug)]
pub struct Pit {
    ch: [Channel; 3],
    /// Port 0x61 bits 0–3 as written (gate, speaker, parity checks).
    port_b: u8,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    pub fn new() -> Self {
        let ch = Channel { access: 3, gate: true, mode: 0, ..Channel::default() };
        let mut pit = Pit { ch: [ch; 3], port_b: 0 };
        pit.ch[2].gate = false;
        pit
    }

    /// Whether `port` is one of the PIT's (0x40–0x43 or 0x61).
    pub fn owns(port: u16) -> bool {
        (CHANNEL0..=CONTROL).contains(&port) || port == PORT_B
    }

    /// A byte read of `port` at `now_ns`; 0xFF for a port not the PIT's.
    pub fn read(&mut self, now_ns: u64, port: u16) -> u8 {
        let t = ticks(now_ns);
        match port {
            PORT_B => {
                let refresh = (now_ns / REFRESH_NS) & 1 != 0;
                let out2 = self.ch[2].state(t).1;
                (self.port_b & 0x0F) | (u8::from(refresh) << 4) | (u8::from(out2) << 5)
            }
            CONTROL => 0xFF, // write-only
            p if (CHANNEL0..CONTROL).contains(&p) => {
                let c = &mut self.ch[usize::from(p - CHANNEL0)];
                if let Some(s) = c.status.take() {
                    return s;
                }
                if let Some((v, lo_read)) = c.latch {
                    let (byte, done) = match (c.access, lo_read) {
                        (1, _) => (v as u8, true),
                        (2, _) => ((v >> 8) as u8, true),
                        (_, false) => (v as u8, false),
                        (_, true) => ((v >> 8) as u8, true),
                    };
                    c.latch = if done { None } else { Some((v, true)) };
                    return byte;
                }
                let v = c.shown(c.state(t).0);
                match c.access {
                    1 => v as u8,
                    2 => (v >> 8) as u8,
                    _ => {
                        let hi = c.read_hi;
                        c.read_hi = !hi;
                        if hi {
                            (v >> 8) as u8
                        } else {
                            v as u8
                        }
                    }
                }
            }
            _ => 0xFF,
        }
    }

    /// A byte write of `value` to `port` at `now_ns`; other ports are ignored.
    pub fn write(&mut self, now_ns: u64, port: u16, value: u8) {
        let t = ticks(now_ns);
        match port {
            PORT_B => {
                self.port_b = value & 0x0F;
                self.gate(2, value & 1 != 0, t);
            }
            CONTROL => self.control(value, t),
            p if (CHANNEL0..CONTROL).contains(&p) => {
                let c = &mut self.ch[usize::from(p - CHANNEL0)];
                let reload = match (c.access, c.write_hi) {
                    (1, _) => u16::from(value),
                    (2, _) => u16::from(value) << 8,
                    (_, None) => {
                        c.write_hi = Some(value);
                        if c.mode == 0 {
                            // The first byte stops mode 0's count (datasheet).
                            (c.since, c.elapsed, c.loaded) = (None, 0, false);
                        }
                        return;
                    }
                    (_, Some(lo)) => {
                        c.write_hi = None;
                        u16::from(lo) | u16::from(value) << 8
                    }
                };
                c.reload = reload;
                c.loaded = true;
                (c.since, c.elapsed) = (None, 0);
                // Modes 1 and 5 wait for a rising gate; the others count
                // now if their gate is high.
                if c.gate && !matches!(c.mode, 1 | 5) {
                    c.start(t);
                }
            }
            _ => {}
        }
    }

    fn control(&mut self, value: u8, t: u64) {
        let select = value >> 6;
        if select == 3 {
            // Read-back: bit 5 clear latches counts, bit 4 clear statuses,
            // of the channels in bits 1–3. A latched one is kept as it was.
            for i in (0..3).filter(|i| value & (2 << i) != 0) {
                let c = &mut self.ch[i];
                if value & 0x20 == 0 && c.latch.is_none() {
                    c.latch = Some((c.shown(c.state(t).0), false));
                }
                if value & 0x10 == 0 && c.status.is_none() {
                    c.status = Some(c.status_byte(t));
                }
            }
            return;
        }
        let c = &mut self.ch[usize::from(select)];
        let access = (value >> 4) & 3;
        if access == 0 {
            if c.latch.is_none() {
                c.latch = Some((c.shown(c.state(t).0), false));
            }
            return;
        }
        let mode = (value >> 1) & 7;
        let gate = c.gate;
        *c = Channel {
            mode: if mode >= 6 { mode - 4 } else { mode },
            bcd: value & 1 != 0,
            access,
            gate,
            ..Channel::default()
        };
    }

    /// Channel `i`'s gate goes to `high` at tick `t`.
    fn gate(&mut self, i: usize, high: bool, t: u64) {
        let c = &mut self.ch[i];
        let rising = high && !c.gate;
        let falling = !high && c.gate;
        c.gate = high;
        match c.mode {
            0 | 4 if falling => {
                if let Some(counted) = c.counted(t).filter(|_| c.since.is_some()) {
                    (c.elapsed, c.since) = (counted, None);
                }
            }
            0 | 4 if rising && c.loaded && c.since.is_none() => c.since = Some(t),
            2 | 3 if falling => (c.since, c.elapsed) = (None, 0),
            _ if rising && c.loaded && c.mode != 0 && c.mode != 4 => c.start(t),
            _ => {}
        }
    }

    /// Channel `i`'s output at `now_ns` (i in 0..3; others read low).
    pub fn out(&self, i: usize, now_ns: u64) -> bool {
        self.ch.get(i).is_some_and(|c| c.state(ticks(now_ns)).1)
    }

    /// The ns of virtual time, after `now_ns`, at which IRQ0 (channel 0's
    /// output rising) is next due; None if it will not rise again until
    /// the guest reprograms it.
    pub fn next_irq0(&self, now_ns: u64) -> Option<u64> {
        let rise = self.ch[0].next_rise(ticks(now_ns))?;
        // Past the end of u64 ns (saturated) is never.
        Some(ns_at(rise)).filter(|&due| due > now_ns)
    }
}

#[cfg(test)]
mod tests;
