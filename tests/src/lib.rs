//! Ryokan's system-test harness: boots images in QEMU and Bochs and judges them.
//!
//! A run's verdict comes from the emulator's exit status (QEMU's `isa-debug-exit`)
//! or the serial log's last line (Bochs, which has no exit device), and is a
//! failure whenever the log reports an exception or a panic. The test cases in
//! [`cases`] add what each configuration must have printed.

pub mod cases;
pub mod control;
pub mod domains;
pub mod emulator;
pub mod frames;
pub mod guests;
pub mod ipc_sched;
pub mod judge;
pub mod kvm;
pub mod log;
pub mod runner;
pub mod schedule;

pub use cases::{Image, SystemTest};
pub use emulator::{Accel, Bochs, Emulator, Qemu};
pub use judge::{Exit, Outcome, Verdict};

/// The name of the small module every image carries so that the kernel's
/// reservation of Multiboot2 modules is exercised.
pub const TESTBLOB_NAME: &str = "testblob";
/// Its length: deliberately not a multiple of the page size.
pub const TESTBLOB_LEN: usize = 12345;

/// The test module's content: byte `i` is `i mod 251` (a prime, so the
/// pattern does not repeat with any power-of-two period).
pub fn testblob() -> Vec<u8> {
    (0..TESTBLOB_LEN).map(|i| (i % 251) as u8).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn testblob_has_its_pattern() {
        let b = super::testblob();
        assert_eq!(b.len(), 12345);
        assert_eq!((b[0], b[250], b[251], b[12344]), (0, 250, 0, (12344 % 251) as u8));
    }
}
