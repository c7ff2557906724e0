//! The machine's wall-clock time, read once from its CMOS clock (the
//! MC146818A of a PC: index port 0x70, data port 0x71) for the guests'
//! clocks: each VMM's configuration says the date and time read and the
//! TSC then (`ipc::guest::WallClock`), and the VMM's emulated clock runs
//! on from it by the TSC (`domains/vmm/src/rtc.rs`).
//!
//! Why here: the kernel keeps no wall-clock time (it has no use for one:
//! its timers count the TSC), and reading a device at boot is a driver's
//! work, not mechanism; `mgmt` holds every I/O port and starts the VMMs.
//! The CMOS clock keeps UTC on the machines and emulators Ryokan runs on
//! (QEMU's default `-rtc base=utc`; Bochs `time0=utc`).
//!
//! The read is the usual careful one: wait for the update-in-progress bit
//! (status A, bit 7) to clear, read every field twice and take them only
//! if both reads agree (an update between them would tear the time), each
//! in the clock's own mode (status B: BCD or binary, 12- or 24-hour), the
//! century from register 0x32 (20 if it holds no year's century). Fields
//! that make no date (an absent clock reads 0xFF everywhere) give None.

use ipc::guest::WallClock;

/// The index and data ports.
pub const INDEX: u16 = 0x70;
pub const DATA: u16 = 0x71;
/// Reads of status A before giving up waiting for an update to end (an
/// update takes under 2 ms; a port read is a syscall, over a µs).
const UIP_READS: u32 = 100_000;
/// Attempts at two reads that agree.
const TRIES: u32 = 8;

/// Seconds, minutes, hours, day, month, year and century.
const FIELDS: [u8; 7] = [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32];
const STATUS_A: u8 = 0x0A;
const STATUS_B: u8 = 0x0B;

/// The clock's time, by `reg` (the byte of a CMOS register, None if it
/// cannot be read), and `tsc()` as read just before the fields taken.
pub fn read(mut reg: impl FnMut(u8) -> Option<u8>, mut tsc: impl FnMut() -> u64) -> Option<WallClock> {
    let fields = |reg: &mut dyn FnMut(u8) -> Option<u8>| -> Option<[u8; 7]> {
        let mut out = [0u8; 7];
        for (o, &r) in out.iter_mut().zip(&FIELDS) {
            *o = reg(r)?;
        }
        Some(out)
    };
    for _ in 0..TRIES {
        let mut waits = 0;
        while reg(STATUS_A)? & 0x80 != 0 {
            waits += 1;
            if waits == UIP_READS {
                return None;
            }
        }
        let at = tsc();
        let first = fields(&mut reg)?;
        let again = fields(&mut reg)?;
        if first == again && reg(STATUS_A)? & 0x80 == 0 {
            return decode(first, reg(STATUS_B)?, at);
        }
    }
    None
}

/// The fields as the clock keeps them, in the mode of status B `b`.
fn decode([s, m, h, day, month, year, century]: [u8; 7], b: u8, tsc: u64) -> Option<WallClock> {
    let binary = b & 0x04 != 0;
    let num = |v: u8| -> Option<u8> {
        if binary {
            Some(v)
        } else if v >> 4 > 9 || v & 15 > 9 {
            None
        } else {
            Some((v >> 4) * 10 + (v & 15))
        }
    };
    let hour = if b & 0x02 != 0 {
        num(h)?
    } else {
        // 12-hour: 12 AM is 0, bit 7 means PM.
        let h12 = num(h & 0x7F)?;
        if !(1..=12).contains(&h12) {
            return None;
        }
        h12 % 12 + if h & 0x80 != 0 { 12 } else { 0 }
    };
    let century = num(century).filter(|c| (19..=99).contains(c)).unwrap_or(20);
    let w = WallClock {
        year: u16::from(century) * 100 + u16::from(num(year)?),
        month: num(month)?,
        day: num(day)?,
        hour,
        minute: num(m)?,
        second: num(s)?,
        tsc,
    };
    w.valid().then_some(w)
}

#[cfg(test)]
mod tests;
