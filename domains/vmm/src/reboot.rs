//! A guest's reboot: its reset ([`crate::platform::Note::Reset`]: the ACPI
//! reset register 0xCF9 or the keyboard controller's command 0xFE)
//! restarts it, as a PC's reset restarts the machine (Xen's
//! `on_reboot=restart`, QEMU's system reset); a triple fault is not a
//! reset here but a failure, and stays one.
//!
//! Where the restart happens: in the VMM, which keeps the platform and the
//! images it loaded. It destroys the guest's domain (its vCPUs, wherever
//! they run, its RAM and its tables: the kernel frees it all, and has no
//! verb to drop a vCPU alone) and makes it again from the same
//! configuration, kernel and modules, exactly as at the first boot: fresh
//! RAM loaded with the image, the first vCPU at the image's entry in its
//! initial state, the others waiting for INIT and start-up IPIs. The
//! platform is reset in place ([`crate::platform::Platform::reset`]): its
//! devices as at power-on but the CMOS clock's date and memory, which a
//! PC's battery keeps. The exit endpoint, the timer notification (its
//! timers disarmed) and the console stay the VMM's. `mgmt` sees no exit:
//! only the new domain handed over again (`ipc::guest::HANDOVER`, which it
//! takes in place of the destroyed one, keeping a CPU share set by hand).
//!
//! A guest that reboots in a loop: each restart costs the VMM a rebuild
//! (the image copied again), on the VMM's CPU share, so a loop is bounded
//! ([`Restarts`]): a reset less than [`QUICK_NS`] of virtual time into its
//! boot is quick, and after [`QUICK_MAX`] quick ones in a row the next
//! one is not restarted: the guest ends with [`crate::status::RESET`], and
//! the system file's restart policy for it decides what follows (`mgmt`'s
//! backoff). A boot that runs longer starts the count again, so a guest
//! that reboots now and then is restarted for ever.

/// A boot that resets sooner than this (virtual ns) reset quickly.
pub const QUICK_NS: u64 = 1_000_000_000;
/// How many quick resets in a row are restarted.
pub const QUICK_MAX: u32 = 8;

/// The count of a guest's boots and of its quick resets in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restarts {
    /// The boot running now, from 1.
    boot: u32,
    /// When it started (virtual ns).
    since_ns: u64,
    /// Quick resets in a row up to it.
    quick: u32,
}

/// Why a reset is not restarted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetLoop {
    /// The quick resets in a row, this one among them.
    pub quick: u32,
}

impl core::fmt::Display for ResetLoop {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} resets in a row, each less than {} ms into its boot: a reset loop, not restarted: stopped",
            self.quick,
            QUICK_NS / 1_000_000
        )
    }
}

impl Restarts {
    /// The first boot, started at virtual time `now_ns`.
    pub fn new(now_ns: u64) -> Self {
        Restarts { boot: 1, since_ns: now_ns, quick: 0 }
    }

    /// The boot running now, from 1.
    pub fn boot(&self) -> u32 {
        self.boot
    }

    /// The guest reset at virtual time `now_ns`: the number of the boot
    /// that follows (restart it), or the loop it is in (do not). A time
    /// before the boot's start (never: the virtual time does not go back)
    /// counts as quick.
    pub fn reset(&mut self, now_ns: u64) -> Result<u32, ResetLoop> {
        let quick = now_ns.checked_sub(self.since_ns).is_none_or(|ran| ran < QUICK_NS);
        self.quick = if quick { self.quick.saturating_add(1) } else { 0 };
        if self.quick > QUICK_MAX {
            return Err(ResetLoop { quick: self.quick });
        }
        self.boot = self.boot.saturating_add(1);
        self.since_ns = now_ns;
        Ok(self.boot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn resets_restart_the_guest_and_are_counted_by_boot() {
        let mut r = Restarts::new(5 * MS);
        assert_eq!(r.boot(), 1);
        assert_eq!(r.reset(10 * MS), Ok(2));
        assert_eq!(r.reset(11 * MS), Ok(3));
        assert_eq!(r.boot(), 3);
    }

    #[test]
    fn a_reset_loop_is_stopped_after_quick_max_restarts() {
        let mut r = Restarts::new(0);
        let mut t = 0;
        for boot in 2..=QUICK_MAX + 1 {
            t += QUICK_NS - 1;
            assert_eq!(r.reset(t), Ok(boot), "quick reset {} is restarted", boot - 1);
        }
        t += QUICK_NS - 1;
        assert_eq!(r.reset(t), Err(ResetLoop { quick: QUICK_MAX + 1 }));
        assert_eq!(r.boot(), QUICK_MAX + 1, "no boot after the loop");
        let said = ResetLoop { quick: 9 }.to_string();
        assert!(said.starts_with("9 resets in a row, each less than 1000 ms") && said.ends_with("stopped"));
    }

    #[test]
    fn a_boot_that_runs_a_while_starts_the_count_again() {
        let mut r = Restarts::new(0);
        let mut t = 0;
        for _ in 0..QUICK_MAX {
            t += 1;
            r.reset(t).unwrap();
        }
        t += QUICK_NS; // this boot ran a full second: not quick
        assert!(r.reset(t).is_ok());
        for _ in 0..QUICK_MAX {
            t += 1;
            assert!(r.reset(t).is_ok(), "a fresh count of quick ones");
        }
        assert!(r.reset(t + 1).is_err());
        // A guest rebooting every second is restarted for ever.
        let mut r = Restarts::new(0);
        for i in 1..1000u64 {
            assert_eq!(r.reset(i * QUICK_NS), Ok(i as u32 + 1));
        }
    }

    #[test]
    fn a_clock_before_the_boot_counts_as_quick_and_the_count_saturates() {
        let mut r = Restarts::new(100);
        assert_eq!(r.reset(50), Ok(2));
        assert_eq!(r.quick, 1);
        let mut r = Restarts { boot: u32::MAX, since_ns: 0, quick: 0 };
        assert_eq!(r.reset(u64::MAX), Ok(u32::MAX), "the boot count saturates");
        let mut r = Restarts { boot: 2, since_ns: 0, quick: u32::MAX };
        assert_eq!(r.reset(1), Err(ResetLoop { quick: u32::MAX }));
    }
}
