//! The guest's serial port: a 16550 UART at 0x3f8 whose transmitter is
//! always ready and whose output is collected into lines (the VMM prints
//! each as `[<guest>] <line>`). Input is a receive FIFO of [`RX_FIFO`]
//! bytes as the chip's: what [`Uart::receive`] is given (a console's
//! typing), or, in loopback, what the guest sends; the line status shows
//! data ready while it holds any, and with the receive interrupt enabled
//! the interrupt identification says "received data available". The
//! transmitter's interrupt is a 16550's: with its enable (IER bit 1) the
//! holding register's being empty is an interrupt, pending from the moment
//! the enable is set and again after every byte written (the byte leaves at
//! once), until the interrupt identification reports it or the enable is
//! cleared — what a driver that sends from its interrupt handler (Linux's
//! 8250 for everything user space writes) waits for. [`Uart::interrupt`] is
//! the chip's interrupt output, the level of ISA IRQ 4: the VMM raises the
//! I/O APIC's pin at its rising edge. No other interrupt is made (the
//! line's, the modem's).
//! The other registers keep what the guest writes, as a driver probing the
//! chip expects (scratch, line and modem control, divisor latch).
//!
//! The FIFO is bounded: a byte that arrives when it is full is lost and
//! sets the line status's overrun error (LSR bit 1, cleared when the line
//! status is read), as on the chip. Only loopback can overrun it: the
//! console's input ([`Uart::receive`]) is flow-controlled, given only as
//! the FIFO has room (`crate::console_link` holds the rest), so typing
//! into a guest that does not read loses nothing and costs the VMM
//! nothing but the bytes its console ring already holds.

use heapless::{Deque, String};

/// The ports, from the base.
pub const BASE: u16 = 0x3f8;
pub const PORTS: u16 = 8;
/// The longest line kept; a longer one is cut into lines of this length.
pub const LINE_MAX: usize = 120;
/// The receive FIFO's bytes (a 16550A's).
pub const RX_FIFO: usize = 16;

/// Register offsets (with DLAB, the line control's bit 7, clear / set).
const DATA: u16 = 0; // THR / RBR; DLL
const IER: u16 = 1; // interrupt enable; DLM
const IIR: u16 = 2; // interrupt identification / FIFO control
const LCR: u16 = 3;
const MCR: u16 = 4;
const LSR: u16 = 5;
const MSR: u16 = 6;
const SCR: u16 = 7;

const LCR_DLAB: u8 = 0x80;
/// Transmitter holding register empty, transmitter empty.
pub const LSR_IDLE: u8 = 0x60;
/// Line status: data ready (the receive FIFO holds a byte).
pub const LSR_DATA_READY: u8 = 0x01;
/// Line status: overrun error (a byte came while the FIFO was full).
pub const LSR_OVERRUN: u8 = 0x02;
/// Interrupt enable: received data available.
const IER_RX: u8 = 0x01;
const IER_THRE: u8 = 0x02;
/// Interrupt identification: none pending; received data available.
const IIR_NONE: u8 = 0x01;
const IIR_RX: u8 = 0x04;
const IIR_THRE: u8 = 0x02;
/// Clear to send, data set ready, carrier detect.
const MSR_READY: u8 = 0xB0;
const MCR_LOOPBACK: u8 = 0x10;

/// A line of guest output.
pub type Line = String<LINE_MAX>;

#[derive(Clone, Debug, Default)]
pub struct Uart {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    divisor: [u8; 2],
    fifo: bool,
    /// The transmitter's interrupt is pending (it counts with IER's bit 1).
    thre: bool,
    /// A received byte was lost to a full FIFO since the line status was
    /// last read.
    overrun: bool,
    line: Line,
    rx: Deque<u8, RX_FIFO>,
}

impl Uart {
    pub fn new() -> Self {
        Self::default()
    }

    /// A write of `value` to register `offset`; a line, if one is complete.
    pub fn write(&mut self, offset: u16, value: u8) -> Option<Line> {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            DATA if dlab => self.divisor[0] = value,
            DATA if self.mcr & MCR_LOOPBACK != 0 => {
                // Looped back to the receiver; lost when it is full, as
                // the chip overruns.
                if self.rx.push_back(value).is_err() {
                    self.overrun = true;
                }
                self.thre = true;
            }
            DATA => {
                // The byte leaves at once: the holding register is empty
                // again, which is an interrupt anew.
                self.thre = true;
                return self.put(value);
            }
            IER if dlab => self.divisor[1] = value,
            IER => {
                let value = value & 0x0F;
                if value & IER_THRE != 0 && self.ier & IER_THRE == 0 {
                    self.thre = true; // enabled while empty: at once
                }
                self.ier = value;
            }
            IIR => self.fifo = value & 1 != 0,
            LCR => self.lcr = value,
            MCR => self.mcr = value & 0x1F,
            SCR => self.scr = value,
            _ => {} // LSR and MSR are read-only.
        }
        None
    }

    /// A read of register `offset` (reading the data register takes the
    /// oldest received byte, 0 when there is none).
    pub fn read(&mut self, offset: u16) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            DATA if dlab => self.divisor[0],
            DATA => self.rx.pop_front().unwrap_or(0),
            IER if dlab => self.divisor[1],
            IER => self.ier,
            IIR => {
                let id = if self.rx_interrupt() {
                    IIR_RX
                } else if self.thre_interrupt() {
                    self.thre = false; // reported: the read clears it
                    IIR_THRE
                } else {
                    IIR_NONE
                };
                id | if self.fifo { 0xC0 } else { 0 }
            }
            LCR => self.lcr,
            MCR => self.mcr,
            LSR => {
                let overrun = if core::mem::take(&mut self.overrun) { LSR_OVERRUN } else { 0 };
                LSR_IDLE | overrun | if self.rx.is_empty() { 0 } else { LSR_DATA_READY }
            }
            MSR => MSR_READY,
            SCR => self.scr,
            _ => 0xFF,
        }
    }

    /// Whether a write to register `offset` now sends a byte out (the
    /// data register, neither the divisor latch nor looped back).
    pub fn transmits(&self, offset: u16) -> bool {
        offset == DATA && self.lcr & LCR_DLAB == 0 && self.mcr & MCR_LOOPBACK == 0
    }

    /// Whether the receive FIFO has room for another byte.
    pub fn has_room(&self) -> bool {
        !self.rx.is_full()
    }

    /// Takes what of `input` the receive FIFO has room for, in order;
    /// returns how many bytes it took (the rest is the caller's to offer
    /// again once the guest has read: nothing is lost).
    pub fn receive(&mut self, input: &[u8]) -> usize {
        input.iter().take_while(|&&b| self.rx.push_back(b).is_ok()).count()
    }

    /// The chip's interrupt output: the receive interrupt is enabled and
    /// data waits, or the transmitter's is enabled and pending.
    pub fn interrupt(&self) -> bool {
        self.rx_interrupt() || self.thre_interrupt()
    }

    fn rx_interrupt(&self) -> bool {
        self.ier & IER_RX != 0 && !self.rx.is_empty()
    }

    fn thre_interrupt(&self) -> bool {
        self.ier & IER_THRE != 0 && self.thre
    }

    /// What is left of an unfinished line.
    pub fn flush(&mut self) -> Option<Line> {
        (!self.line.is_empty()).then(|| core::mem::take(&mut self.line))
    }

    fn put(&mut self, byte: u8) -> Option<Line> {
        let c = match byte {
            b'\n' => return Some(core::mem::take(&mut self.line)),
            b'\r' | 0 => return None,
            b'\t' => ' ',
            0x20..=0x7E => char::from(byte),
            _ => '?',
        };
        // Never fails: the line is flushed below whenever it is full.
        let _ = self.line.push(c);
        if self.line.len() == LINE_MAX {
            return self.flush();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(u: &mut Uart, s: &[u8]) -> Vec<String<LINE_MAX>> {
        s.iter().filter_map(|&b| u.write(0, b)).collect()
    }

    #[test]
    fn output_becomes_lines() {
        let mut u = Uart::new();
        assert_eq!(send(&mut u, b"hello from a guest\r\nsecond"), ["hello from a guest"]);
        assert_eq!(u.flush().as_deref(), Some("second"));
        assert_eq!(u.flush(), None);
        assert_eq!(send(&mut u, b"a\x1b[1mb\tc\n"), ["a?[1mb c"]);
        assert_eq!(send(&mut u, b"\n"), [""], "an empty line is a line");
        let long = [b'x'; LINE_MAX + 5];
        let lines = send(&mut u, &long);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), LINE_MAX);
        assert_eq!(u.flush().as_deref(), Some("xxxxx"));
    }

    /// The transmitter's interrupt as a 16550's, and as Linux's 8250
    /// driver probes it at start-up (`serial8250_do_startup`: the enable
    /// set twice, the interrupt identification read after each; a chip
    /// that reports nothing the second time is taken as buggy).
    #[test]
    fn the_transmitter_interrupts_while_its_holding_register_is_empty() {
        let mut u = Uart::new();
        assert!(!u.interrupt(), "off until enabled");
        u.write(1, 0x02);
        assert!(u.interrupt(), "enabled while empty: at once");
        assert_eq!(u.read(2), 0x02, "reported as the transmitter's");
        assert!(!u.interrupt(), "the read cleared it");
        assert_eq!(u.read(2), 0x01, "and only once");
        u.write(1, 0x02);
        assert_eq!(u.read(2), 0x01, "setting the enable again, already set, is no new interrupt");
        u.write(1, 0x00);
        u.write(1, 0x02);
        assert_eq!(u.read(2), 0x02, "Linux's probe: the enable cleared and set anew interrupts again");
        u.write(0, b'x');
        assert!(u.interrupt(), "every byte sent empties the register anew");
        u.write(1, 0x00);
        assert!(!u.interrupt(), "the enable cleared: the output goes low");
        u.write(0, b'\n');
        assert!(!u.interrupt(), "a byte sent without the enable is no interrupt");
        // Received data comes first; the transmitter's waits behind it.
        u.write(4, 0x10); // loopback
        u.write(1, 0x03);
        u.write(0, b'a');
        assert_eq!(u.read(2), 0x04, "data available first");
        assert_eq!(u.read(0), b'a');
        assert_eq!(u.read(2), 0x02, "then the transmitter");
        assert_eq!(u.read(2), 0x01);
    }

    #[test]
    fn registers_read_back_as_a_16550() {
        let mut u = Uart::new();
        assert_eq!(u.read(5), 0x60, "always ready to send, nothing received");
        assert_eq!(u.read(2), 0x01, "no interrupt pending");
        u.write(7, 0x5A);
        assert_eq!(u.read(7), 0x5A, "scratch");
        u.write(3, 0x80);
        u.write(0, 0x01);
        u.write(1, 0x00);
        assert_eq!((u.read(0), u.read(1)), (0x01, 0x00), "divisor latch");
        assert_eq!(send(&mut u, b"x\n"), Vec::<String<LINE_MAX>>::new(), "DLAB set: no output");
        u.write(3, 0x03);
        u.write(2, 0xC7);
        assert_eq!(u.read(2), 0xC1, "FIFOs on");
        u.write(1, 0xFF);
        assert_eq!(u.read(1), 0x0F);
        u.write(4, 0x10);
        assert_eq!(send(&mut u, b"loop\n").len(), 0, "loopback: nothing goes out");
        assert_eq!(u.read(5), 0x61, "but it comes back in");
        assert_eq!(u.read(2), 0xC4, "with the receive interrupt enabled: data available");
        assert_eq!([u.read(0), u.read(0), u.read(0), u.read(0), u.read(0)], *b"loop\n");
        assert_eq!((u.read(5), u.read(2)), (0x60, 0xC2), "all read: the transmitter's (enabled) is left");
        assert_eq!(u.read(2), 0xC1, "and once reported, nothing is pending");
        assert_eq!(u.read(6), 0xB0);
        assert_eq!(u.read(9), 0xFF);
    }

    /// Input typed faster than the guest reads is taken a FIFO's worth at
    /// a time, never lost, in order; interrupts only with IER's bit 0.
    #[test]
    fn input_fills_the_fifo_and_the_rest_waits() {
        let mut u = Uart::new();
        assert_eq!((u.read(0), u.read(5)), (0, 0x60), "nothing received: data reads 0");
        let typed: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        let mut left = &typed[..];
        let mut got = Vec::new();
        while !left.is_empty() {
            let took = u.receive(left);
            assert!(took <= RX_FIFO && took > 0, "took {took}");
            left = &left[took..];
            assert!(!u.interrupt(), "the receive interrupt is off");
            assert_eq!(u.read(2), 0x01);
            while u.read(5) & LSR_DATA_READY != 0 {
                got.push(u.read(0));
            }
        }
        assert_eq!(got, typed);
        assert_eq!(u.receive(&[0; RX_FIFO + 3]), RX_FIFO, "a full FIFO takes no more");
        assert_eq!(u.receive(b"x"), 0);
        u.write(1, 0x01);
        assert!(u.interrupt());
        assert_eq!(u.read(2), 0x04);
        for _ in 0..RX_FIFO {
            u.read(0);
        }
        assert!(!u.interrupt(), "drained: the line goes quiet");
        // With DLAB set the data register is the divisor's: nothing is taken.
        u.receive(b"y");
        u.write(3, 0x80);
        assert_eq!(u.read(0), 0);
        u.write(3, 0x03);
        assert_eq!(u.read(0), b'y');
    }

    /// A full FIFO that receives another byte loses it and says so in the
    /// line status, once; the bytes it held are kept.
    #[test]
    fn a_byte_into_a_full_fifo_is_an_overrun() {
        let mut u = Uart::new();
        u.write(4, 0x10); // loopback
        for b in 0..RX_FIFO as u8 + 3 {
            u.write(0, b'a' + b);
        }
        assert!(!u.has_room());
        assert_eq!(u.read(5), LSR_IDLE | LSR_OVERRUN | LSR_DATA_READY);
        assert_eq!(u.read(5), LSR_IDLE | LSR_DATA_READY, "reading the line status cleared it");
        let got: Vec<u8> = (0..RX_FIFO).map(|_| u.read(0)).collect();
        let want: Vec<u8> = (0..RX_FIFO as u8).map(|b| b'a' + b).collect();
        assert_eq!(got, want, "the first 16 kept, in order");
        assert_eq!(u.read(5), LSR_IDLE);
        // The console's input never overruns: it is taken as room allows.
        u.write(4, 0x00);
        assert_eq!(u.receive(&[b'z'; RX_FIFO + 5]), RX_FIFO);
        assert_eq!(u.receive(b"z"), 0);
        assert_eq!(u.read(5), LSR_IDLE | LSR_DATA_READY, "no overrun");
    }

    #[test]
    fn only_data_writes_outside_loopback_and_the_latch_transmit() {
        let mut u = Uart::new();
        assert!(u.transmits(0));
        assert!(!u.transmits(1) && !u.transmits(7));
        u.write(3, 0x80);
        assert!(!u.transmits(0), "the divisor latch");
        u.write(3, 0x03);
        u.write(4, 0x10);
        assert!(!u.transmits(0), "loopback");
    }
}
