//! The ACPI power-management timer (ACPI 6.5 §4.8.3.3): a free-running
//! counter at 3.579545 MHz that a guest reads at an I/O port and uses as a
//! clock source (Linux's `acpi_pm`) and to calibrate the TSC.
//!
//! - The port is [`PORT`], 0x608: the PM1 block at 0x600 as QEMU's q35
//!   places it (PM1a event at +0, control at +4, the timer at +8), so that
//!   the FADT the VMM builds names `PM_TMR_BLK` = 0x608, `PM_TMR_LEN` = 4.
//! - 32 bits wide by default ([`Width::Bits32`], FADT flag `TMR_VAL_EXT`),
//!   or 24 (then the top byte reads 0), as a guest is told in the FADT.
//! - Its value is a pure function of the virtual time passed in (ns since
//!   the guest started): `floor(ns × 3_579_545 / 10^9)` modulo 2^width,
//!   computed in 128 bits, so it never overflows and wraps exactly where a
//!   real counter would (every 2^32 / 3.579545 MHz ≈ 1199.57 s).
//! - Reads of 1, 2 or 4 bytes at the timer's ports give those bytes of the
//!   counter (a byte at 0x609 is bits 8–15); writes are ignored, as the
//!   register is read-only. The overflow status (`TMR_STS` in PM1 status,
//!   and its SCI) is not modelled: Linux does not enable it.

/// The timer's rate, in Hz.
pub const HZ: u64 = 3_579_545;
/// The timer's port (`PM_TMR_BLK`) and how many ports it spans.
pub const PORT: u16 = 0x608;
pub const PORTS: u16 = 4;

/// How wide the counter is (the FADT's `TMR_VAL_EXT` flag says which).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Width {
    Bits24,
    #[default]
    Bits32,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct PmTimer {
    width: Width,
}

impl PmTimer {
    pub fn new(width: Width) -> Self {
        PmTimer { width }
    }

    /// The counter at `now_ns` of virtual time.
    pub fn count(&self, now_ns: u64) -> u32 {
        let ticks = u128::from(now_ns) * u128::from(HZ) / 1_000_000_000;
        let mask = match self.width {
            Width::Bits24 => 0xFF_FFFF,
            Width::Bits32 => 0xFFFF_FFFF,
        };
        (ticks & mask) as u32
    }

    /// An IN of `size` bytes (1, 2 or 4) at `port`; None if the access is
    /// not the timer's (another port, another size, or past its end).
    pub fn read(&self, now_ns: u64, port: u16, size: u8) -> Option<u32> {
        let offset = port.checked_sub(PORT).filter(|&o| o < PORTS)?;
        if !matches!(size, 1 | 2 | 4) || offset + u16::from(size) > PORTS {
            return None;
        }
        let value = self.count(now_ns) >> (8 * offset);
        Some(match size {
            1 => value & 0xFF,
            2 => value & 0xFFFF,
            _ => value,
        })
    }

    /// How many ns of virtual time until the counter next reads `ticks`
    /// more than at `now_ns` (at least 1): for a VMM that wants to wake
    /// when a guest's busy-wait on the timer ends.
    pub fn ns_until(&self, now_ns: u64, ticks: u32) -> u64 {
        let start = u128::from(now_ns) * u128::from(HZ) / 1_000_000_000;
        let target = start + u128::from(ticks);
        // The first ns at which floor(ns × HZ / 10^9) reaches `target`.
        let at = (target * 1_000_000_000).div_ceil(u128::from(HZ));
        u64::try_from(at.saturating_sub(u128::from(now_ns))).unwrap_or(u64::MAX).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn counts_at_3_579545_mhz() {
        let t = PmTimer::default();
        assert_eq!(t.count(0), 0);
        assert_eq!(t.count(279), 0, "one tick is 279.365 ns");
        assert_eq!(t.count(280), 1);
        assert_eq!(t.count(1_000_000_000), 3_579_545, "a second");
        assert_eq!(
            t.count(3_600 * 1_000_000_000),
            (3_579_545u64 * 3_600 % (1 << 32)) as u32,
            "an hour wraps"
        );
    }

    #[test]
    fn wraps_exactly_at_its_width() {
        // The first ns at which the 32-bit counter is 2^32: ceil(2^32 × 10^9 / HZ).
        let wrap32 = ((1u128 << 32) * 1_000_000_000).div_ceil(u128::from(HZ)) as u64;
        let t = PmTimer::new(Width::Bits32);
        assert_eq!(t.count(wrap32 - 1), 0xFFFF_FFFF);
        assert_eq!(t.count(wrap32), 0);
        let wrap24 = ((1u128 << 24) * 1_000_000_000).div_ceil(u128::from(HZ)) as u64;
        let t = PmTimer::new(Width::Bits24);
        assert_eq!(t.count(wrap24 - 1), 0xFF_FFFF);
        assert_eq!(t.count(wrap24), 0);
        assert_eq!(
            t.count(u64::MAX),
            ((u128::from(u64::MAX) * 3_579_545 / 1_000_000_000) & 0xFF_FFFF) as u32
        );
    }

    #[test]
    fn ports_read_its_bytes() {
        let t = PmTimer::default();
        let now = 0x1234_5678u64 * 1_000_000_000 / HZ + 1; // counter 0x1234_5678
        assert_eq!(t.count(now), 0x1234_5678);
        assert_eq!(t.read(now, 0x608, 4), Some(0x1234_5678));
        assert_eq!(t.read(now, 0x608, 2), Some(0x5678));
        assert_eq!(t.read(now, 0x609, 1), Some(0x56));
        assert_eq!(t.read(now, 0x60A, 2), Some(0x1234));
        assert_eq!(t.read(now, 0x60B, 1), Some(0x12));
        assert_eq!(t.read(now, 0x609, 4), None, "past the end");
        assert_eq!(t.read(now, 0x60C, 1), None);
        assert_eq!(t.read(now, 0x607, 1), None);
        assert_eq!(t.read(now, 0x608, 3), None);
    }

    #[test]
    fn ns_until_lands_on_the_tick() {
        let t = PmTimer::default();
        assert_eq!(t.ns_until(0, 1), 280);
        assert_eq!(t.ns_until(0, 3_579_545), 1_000_000_000);
        let w = t.ns_until(u64::MAX, 10);
        assert!((2_500..=2_800).contains(&w), "10 ticks are 2794 ns, even past the end of time: {w}");
    }

    proptest! {
        /// Any port, size and time: defined, and monotonic modulo the wrap.
        #[test]
        fn hostile_reads(now in any::<u64>(), dt in 0u64..1_000_000_000, port in any::<u16>(), size in any::<u8>(),
                         ticks in any::<u32>()) {
            for w in [Width::Bits24, Width::Bits32] {
                let t = PmTimer::new(w);
                let _ = t.read(now, port, size);
                let later = now.saturating_add(dt);
                let (a, b) = (t.count(now), t.count(later));
                let expect = (u128::from(later) * 3_579_545 / 1_000_000_000
                    - u128::from(now) * 3_579_545 / 1_000_000_000) as u32;
                let mask = if w == Width::Bits24 { 0xFF_FFFF } else { u32::MAX };
                prop_assert_eq!(b.wrapping_sub(a) & mask, expect & mask);
                let wait = t.ns_until(now, ticks);
                prop_assert!(wait >= 1);
                if let Some(at) = now.checked_add(wait) {
                    let reached = u128::from(at) * 3_579_545 / 1_000_000_000;
                    prop_assert!(reached >= u128::from(now) * 3_579_545 / 1_000_000_000 + u128::from(ticks));
                }
            }
        }
    }
}
