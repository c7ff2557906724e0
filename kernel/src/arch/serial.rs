//! The 16550 UART on COM1: the kernel's console and log.

use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;
const LSR_THRE: u8 = 1 << 5; // transmit holding register empty
const LSR_TEMT: u8 = 1 << 6; // transmitter empty: the last bit has left

/// Bounded waits: a missing or stuck UART must not hang the kernel.
const SPIN_LIMIT: u32 = 1_000_000;

/// The COM1 transmitter. Callers serialise access (see [`crate::klog`]).
pub struct Serial(());

impl Serial {
    /// Programs COM1 for 115200 8N1, FIFOs on, interrupts off.
    pub fn init() -> Self {
        for (reg, val) in [(1, 0x00), (3, 0x80), (0, 0x01), (1, 0x00), (3, 0x03), (2, 0xC7), (4, 0x03)] {
            outb(COM1 + reg, val);
        }
        Self(())
    }

    /// A handle to an already initialised port, for the emergency path.
    pub const fn already_initialised() -> Self {
        Self(())
    }

    /// Sends one byte.
    pub fn write_byte(&mut self, b: u8) {
        wait_for(LSR_THRE);
        outb(COM1, b);
    }

    /// Sends a string, turning `\n` into `\r\n`.
    pub fn write_str(&mut self, s: &str) {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
    }

    /// Waits until every byte has left the transmitter (before power-off).
    pub fn drain(&mut self) {
        wait_for(LSR_TEMT);
    }
}

impl core::fmt::Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Serial::write_str(self, s);
        Ok(())
    }
}

fn wait_for(bit: u8) {
    let mut lsr = Port::<u8>::new(COM1 + 5);
    for _ in 0..SPIN_LIMIT {
        // SAFETY: reading COM1's line status register has no side effects.
        if unsafe { lsr.read() } & bit != 0 {
            return;
        }
        core::hint::spin_loop();
    }
}

fn outb(port: u16, val: u8) {
    // SAFETY: COM1's registers are the kernel's; writing them affects only the UART.
    unsafe { Port::<u8>::new(port).write(val) }
}
