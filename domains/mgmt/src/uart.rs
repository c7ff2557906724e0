//! The control channel's line: the 16550 UART on COM2 (ports 0x2f8-0x2ff,
//! ISA interrupt 3), driven by `mgmt` through a port range it makes from its
//! `ioports`, its interrupt bound to mgmt's one notification.
//!
//! Decisions:
//! - Interrupt-driven receive, not polling: a timer poll costs a wake-up
//!   and two port syscalls every period whether or not anyone talks, and
//!   answers only at the next period; the interrupt wakes `mgmt` only when
//!   a byte came (receive-data-available, IER bit 0). `mgmt` also drains
//!   the line at every wake-up, so an interrupt lost to a race costs at
//!   most a delay until the next wake-up, never a frame.
//! - The line is acknowledged (unmasked) before it is drained: a byte that
//!   arrives during the drain then raises a new edge, which a masked I/O
//!   APIC input would lose.
//! - Transmit spins on the transmitter-empty bit, boundedly
//!   ([`TX_TIMEOUT_MS`] per FIFO of bytes): a host that stops reading
//!   stalls an answer, never `mgmt`; what does not go out in time is
//!   dropped (the client times out and may ask again). After a timeout the
//!   line counts as stalled and each FIFO waits [`STALLED_TIMEOUT_MS`]
//!   only, until one goes out in time: a host that never reads costs one
//!   long timeout, then short ones. (A timeout of 100 ms, and dropping
//!   every answer while stalled, lost 205 of 10^5 fuzzed answers on a
//!   loaded machine whose QEMU was merely slow to write the socket.)
//! - The UART is probed through its scratch register: with no COM2 (Bochs,
//!   QEMU without a second `-serial`) the ports read 0xff and no channel is
//!   served.

use ipc::syscall::Width;
use ipc::{CapSlot, Error};
use user::{sys, time};

/// COM2's ports and interrupt line (the PC's, since the IBM AT).
pub const BASE: u16 = 0x2f8;
pub const PORTS: u16 = 8;
pub const IRQ: u8 = 3;

const RBR_THR: u16 = 0; // receive buffer / transmit holding (DLL with DLAB)
const IER: u16 = 1; // interrupt enable (DLM with DLAB)
const FCR: u16 = 2; // FIFO control
const LCR: u16 = 3; // line control
const MCR: u16 = 4; // modem control
const LSR: u16 = 5; // line status
const SCRATCH: u16 = 7;

const LSR_DATA_READY: u32 = 1 << 0;
const LSR_THR_EMPTY: u32 = 1 << 5;
const IER_RX_AVAILABLE: u32 = 1 << 0;
/// DTR, RTS and OUT2 (which gates the interrupt onto the ISA line on a PC).
const MCR_DTR_RTS_OUT2: u32 = 0x0b;
/// The 16550's transmit FIFO.
const TX_FIFO: usize = 16;
/// How long a FIFO's worth may wait for the transmitter.
pub const TX_TIMEOUT_MS: u64 = 1000;
/// As long, once the line is stalled.
pub const STALLED_TIMEOUT_MS: u64 = 10;

/// COM2, programmed and bound.
pub struct Uart {
    ports: CapSlot,
    irq: CapSlot,
    /// The transmitter timed out: until a FIFO goes out in time, each waits
    /// [`STALLED_TIMEOUT_MS`] only.
    stalled: core::cell::Cell<bool>,
}

/// Why no channel is served.
#[derive(Clone, Copy, Debug)]
pub enum Absent {
    NoPorts,
    NoIrq,
    NoUart,
    Sys(&'static str, Error),
}

impl core::fmt::Display for Absent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Absent::NoPorts => write!(f, "mgmt has no `ioports`"),
            Absent::NoIrq => write!(f, "mgmt has no `irq:{IRQ}`"),
            Absent::NoUart => write!(f, "no UART at {BASE:#x}"),
            Absent::Sys(what, e) => write!(f, "{what}: {e:?}"),
        }
    }
}

impl Uart {
    /// Makes COM2's port range from `all` (mgmt's `ioports`), checks that a
    /// UART is there, programs it for 115200 8N1 with FIFOs and the receive
    /// interrupt, and binds interrupt line `irq` to `bell` as `bits`.
    pub fn open(
        all: Option<CapSlot>,
        irq: Option<CapSlot>,
        bell: CapSlot,
        bits: u64,
    ) -> Result<Self, Absent> {
        let all = all.ok_or(Absent::NoPorts)?;
        let irq = irq.ok_or(Absent::NoIrq)?;
        let ports = sys::ioports_create(all, BASE, PORTS).map_err(|e| Absent::Sys("making its ports", e))?;
        let uart = Uart { ports, irq, stalled: core::cell::Cell::new(false) };
        uart.out(SCRATCH, 0x5a);
        if uart.inb(SCRATCH) != Some(0x5a) {
            let _ = sys::cap_delete(ports);
            return Err(Absent::NoUart);
        }
        // 115200 baud (divisor 1), 8N1; FIFOs on and cleared; receive
        // interrupt on.
        for (reg, val) in [(IER, 0), (LCR, 0x80), (RBR_THR, 1), (IER, 0), (LCR, 0x03), (FCR, 0xc7)] {
            uart.out(reg, val);
        }
        uart.out(MCR, MCR_DTR_RTS_OUT2);
        sys::irq_bind(irq, bell, bits).map_err(|e| Absent::Sys("binding its interrupt", e))?;
        uart.out(IER, IER_RX_AVAILABLE);
        uart.ack();
        Ok(uart)
    }

    /// Acknowledges the interrupt line (unmasks it).
    pub fn ack(&self) {
        let _ = sys::irq_wait(self.irq);
    }

    /// The next byte received, if one is there.
    pub fn read(&self) -> Option<u8> {
        if self.inb(LSR)? & LSR_DATA_READY as u8 == 0 {
            return None;
        }
        self.inb(RBR_THR)
    }

    /// Sends `bytes`; false if the transmitter stayed busy and the rest was
    /// dropped. With the FIFOs on, an empty holding register means an empty
    /// 16-byte transmit FIFO: one status read per 16 bytes, not per byte.
    pub fn write(&self, bytes: &[u8]) -> bool {
        let empty = || self.inb(LSR).is_some_and(|l| l & LSR_THR_EMPTY as u8 != 0);
        for chunk in bytes.chunks(TX_FIFO) {
            let ms = if self.stalled.get() { STALLED_TIMEOUT_MS } else { TX_TIMEOUT_MS };
            let deadline = time::deadline_ms(ms);
            while !empty() {
                if time::passed(deadline) {
                    self.stalled.set(true);
                    return false;
                }
            }
            self.stalled.set(false);
            for &b in chunk {
                self.out(RBR_THR, u32::from(b));
            }
        }
        true
    }

    fn inb(&self, reg: u16) -> Option<u8> {
        sys::ioport_read(self.ports, BASE + reg, Width::Byte).ok().map(|v| v as u8)
    }

    fn out(&self, reg: u16, val: u32) {
        let _ = sys::ioport_write(self.ports, BASE + reg, Width::Byte, val);
    }
}
