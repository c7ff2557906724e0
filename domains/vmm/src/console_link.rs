//! The guest's console as the VMM sees it (`ryokan console`): the bytes the
//! guest sends to its UART go into one ring (`ipc::guest::CONSOLE_OUT_AT`)
//! in messages of up to a slot's payload, and what the console types comes
//! from the other (`CONSOLE_IN_AT`) into the UART's receive FIFO, only as
//! fast as the FIFO has room: a message the FIFO cannot take whole is kept
//! here, and the rest given when the guest has read, so typing faster than
//! the guest reads loses nothing. Input is looked at only when the guest
//! touches its UART (or a notification says some came), never on other
//! exits. Output nobody reads (the ring full) is dropped and counted: a
//! console shows what the guest says while it is attached.
//!
//! `mgmt` is the peer, and less trusted than nothing here: the ring checks
//! its indices and lengths (`ipc::ring`); a peer that breaks them only
//! stops the console (`PeerMisbehaved`), never the guest.
//!
//! The binary wires it (`link.rs`): the pages are `ipc::guest::CONSOLE_CAP`,
//! the wake-ups `ipc::guest::CONSOLE_INPUT_BIT` and `CONSOLE_OUTPUT_BIT`.

use heapless::Vec;
use ipc::guest::CONSOLE_RING;
use ipc::ring::{Consumer, Producer, Region, RingLayout};
use ipc::Error;

use crate::uart::Uart;

/// A slot's payload: the most bytes one message carries.
pub const CHUNK: usize = CONSOLE_RING.1 as usize - 4;

/// The ring layout both ends use.
pub fn layout() -> Result<RingLayout, Error> {
    RingLayout::new(CONSOLE_RING.0, CONSOLE_RING.1)
}

#[derive(Debug)]
pub struct ConsoleLink<'a> {
    out: Producer<'a>,
    input: Consumer<'a>,
    /// Output not yet pushed: sent at a newline or when a message is full.
    line: Vec<u8, CHUNK>,
    /// An input message the UART has not taken all of, and how much it took.
    held: Vec<u8, CHUNK>,
    taken: usize,
    /// Output bytes dropped because the ring was full.
    pub dropped: u64,
}

impl<'a> ConsoleLink<'a> {
    /// The VMM's ends of the two rings.
    pub fn new(out: Region<'a>, input: Region<'a>) -> Result<Self, Error> {
        let l = layout()?;
        Ok(Self {
            out: Producer::new(out, l)?,
            input: Consumer::new(input, l)?,
            line: Vec::new(),
            held: Vec::new(),
            taken: 0,
            dropped: 0,
        })
    }

    /// A byte the guest sent; whether the peer is to be signalled.
    pub fn output(&mut self, byte: u8) -> bool {
        // Never fails: the line is pushed whenever it is full.
        let _ = self.line.push(byte);
        if byte == b'\n' || self.line.is_full() {
            return self.flush();
        }
        false
    }

    /// Whether output waits to be pushed.
    pub fn pending(&self) -> bool {
        !self.line.is_empty()
    }

    /// Pushes what output waits (before the guest idles, say); whether the
    /// peer is to be signalled.
    pub fn flush(&mut self) -> bool {
        if self.line.is_empty() {
            return false;
        }
        let signal = match self.out.push(&self.line) {
            Ok(s) => s.is_needed(),
            Err(_) => {
                self.dropped += self.line.len() as u64;
                false
            }
        };
        self.line.clear();
        signal
    }

    /// Whether [`Self::feed`] may have input to give: some held, or a
    /// message in the ring as it looks (a hint: `feed` checks).
    #[inline(always)]
    pub fn has_input(&self) -> bool {
        self.taken < self.held.len() || !self.input.looks_empty()
    }

    /// Gives `uart` what input it has room for: what is held first, then
    /// the ring's messages in order. `PeerMisbehaved` if the peer broke the
    /// ring (what was taken stays taken).
    pub fn feed(&mut self, uart: &mut Uart) -> Result<(), Error> {
        loop {
            if self.taken < self.held.len() {
                let rest = self.held.get(self.taken..).unwrap_or_default();
                self.taken += uart.receive(rest);
                if self.taken < self.held.len() {
                    return Ok(()); // The FIFO is full.
                }
            }
            let mut buf = [0u8; CHUNK];
            match self.input.pop(&mut buf) {
                Ok((n, _)) => {
                    self.held.clear();
                    let _ = self.held.extend_from_slice(buf.get(..n).unwrap_or_default());
                    self.taken = 0;
                }
                Err(Error::WouldBlock) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use core::sync::atomic::AtomicU32;

    use super::*;

    fn region() -> std::vec::Vec<AtomicU32> {
        (0..1024).map(|_| AtomicU32::new(0)).collect()
    }

    /// mgmt's ends of the rings.
    fn peer<'a>(out: Region<'a>, input: Region<'a>) -> (Consumer<'a>, Producer<'a>) {
        (Consumer::new(out, layout().unwrap()).unwrap(), Producer::new(input, layout().unwrap()).unwrap())
    }

    #[test]
    fn output_goes_out_by_lines_and_full_messages() {
        let (o, i) = (region(), region());
        let (ro, ri) = (Region::from_words(&o), Region::from_words(&i));
        let mut link = ConsoleLink::new(ro, ri).unwrap();
        let (mut from_vmm, _to_vmm) = peer(ro, ri);
        for &b in b"hello\nwor" {
            link.output(b);
        }
        let mut buf = [0u8; CHUNK];
        let (n, _) = from_vmm.pop(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello\n");
        assert_eq!(from_vmm.pop(&mut buf).err(), Some(Error::WouldBlock), "no newline yet");
        link.flush();
        let (n, _) = from_vmm.pop(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"wor");
        for _ in 0..CHUNK + 1 {
            link.output(b'x');
        }
        assert_eq!(from_vmm.pop(&mut buf).map(|(n, _)| n), Ok(CHUNK), "a full message goes at once");
        // Nobody reading: the ring fills, then output is dropped and counted.
        for _ in 0..(CONSOLE_RING.0 as usize + 2) * CHUNK {
            link.output(b'y');
        }
        assert!(link.dropped > 0);
    }

    #[test]
    fn input_typed_faster_than_the_guest_reads_loses_nothing() {
        let (o, i) = (region(), region());
        let (ro, ri) = (Region::from_words(&o), Region::from_words(&i));
        let mut link = ConsoleLink::new(ro, ri).unwrap();
        let (_, mut to_vmm) = peer(ro, ri);
        let typed: std::vec::Vec<u8> = (0..600u32).map(|i| b' ' + (i % 90) as u8).collect();
        let mut left = &typed[..];
        let (mut uart, mut got) = (Uart::new(), std::vec::Vec::new());
        while got.len() < typed.len() {
            // mgmt pushes what the ring takes; the guest reads a few bytes
            // each time it touches the UART.
            while !left.is_empty() {
                let n = left.len().min(1 + left.len() % CHUNK);
                if to_vmm.push(&left[..n]).is_err() {
                    break;
                }
                left = &left[n..];
            }
            link.feed(&mut uart).unwrap();
            for _ in 0..5 {
                if uart.read(5) & crate::uart::LSR_DATA_READY != 0 {
                    got.push(uart.read(0));
                }
            }
        }
        assert_eq!(got, typed);
    }

    #[test]
    fn input_is_looked_for_only_where_some_came_or_is_held() {
        let (o, i) = (region(), region());
        let (ro, ri) = (Region::from_words(&o), Region::from_words(&i));
        let mut link = ConsoleLink::new(ro, ri).unwrap();
        let (_, mut to_vmm) = peer(ro, ri);
        assert!(!link.has_input(), "nothing came");
        let _ = to_vmm.push(&[b'a'; CHUNK]).unwrap();
        assert!(link.has_input(), "a message came");
        let (mut uart, mut got) = (Uart::new(), 0);
        link.feed(&mut uart).unwrap();
        assert!(
            link.has_input(),
            "the FIFO took {} bytes of {CHUNK}: the rest is held",
            crate::uart::RX_FIFO
        );
        while got < CHUNK {
            while uart.read(5) & crate::uart::LSR_DATA_READY != 0 {
                uart.read(0);
                got += 1;
            }
            link.feed(&mut uart).unwrap();
        }
        assert!(!link.has_input(), "all of it given");
        let _ = to_vmm.push(b"b").unwrap();
        assert!(link.has_input(), "the next message");
    }

    #[test]
    fn a_peer_breaking_the_ring_stops_the_console_not_the_guest() {
        let (o, i) = (region(), region());
        let (ro, ri) = (Region::from_words(&o), Region::from_words(&i));
        let mut link = ConsoleLink::new(ro, ri).unwrap();
        // mgmt says 5 messages wait, each of a length no slot holds.
        i[0].store(5, core::sync::atomic::Ordering::Relaxed);
        for w in i.iter().skip(32) {
            w.store(u32::MAX, core::sync::atomic::Ordering::Relaxed);
        }
        let mut uart = Uart::new();
        assert!(link.has_input(), "the hint believes the index; feeding checks it");
        assert_eq!(link.feed(&mut uart), Err(Error::PeerMisbehaved));
        assert_eq!(uart.read(5) & crate::uart::LSR_DATA_READY, 0, "nothing received");
        // Its indices out of bounds: refused likewise.
        i[0].store(1000, core::sync::atomic::Ordering::Relaxed);
        assert_eq!(link.feed(&mut uart), Err(Error::PeerMisbehaved));
    }
}
